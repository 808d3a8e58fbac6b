// Command bench measures the sgid gateway against bare Caddy reverse_proxy in
// one run: one Caddy serving both sites to the same upstream, loaded in
// alternation with wrk, plus logins against the fake sgID and many distinct
// sessions. Run it through bench/run, which builds Caddy and installs wrk.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	caddysgid "github.com/sgidproxy/caddy-sgid"
	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// identityHeader is on every upstream response: "1" when the request carried the
// gateway's identity, "0" otherwise, so wrk can check every response and both
// sites' responses are the same size.
const identityHeader = "X-Bench-Identity"

// upstreamBody is a ~200-byte response, like the reference figures'.
var upstreamBody = []byte(strings.Repeat("legacy app page. ", 12) + "\n")

func main() {
	caddyBin := flag.String("caddy", "", "the caddy binary built from ./cmd/caddy (required)")
	wrkBin := flag.String("wrk", "wrk", "the wrk binary")
	duration := flag.Duration("duration", 10*time.Second, "length of each wrk run")
	conns := flag.Int("conns", 32, "wrk connections")
	threads := flag.Int("threads", 2, "wrk threads")
	rounds := flag.Int("rounds", 5, "alternating rounds of bare and sgid runs")
	logins := flag.Int("logins", 20, "logins to time (the median is reported)")
	loginCPU := flag.Int("login-cpu", 300, "logins over which the gateway's CPU per login is taken")
	profileDir := flag.String("profile", "", "write CPU profiles of the gateway's Caddy (first bare and sgid runs, the first round of each -sessions-rr count, logins) and heap profiles of the memory comparison, and the first round of its loads at once, flat out and paced, to this directory")
	sessions := flag.Int("sessions", 100000, "distinct sessions for the memory comparison (a bare-only and an sgid-only Caddy, the same load to each); 0 for none")
	revocations := flag.Int("revocations", 10000, "live revocations to load into the sgid site (through the admin API, other users' subs) before the load rounds, with a second sgid site without any measured in the same rounds; 0 for neither")
	h2 := flag.Bool("h2", false, "also an HTTPS site of each kind (tls internal), loaded over HTTP/2 with the -sessions-rr counts (default 1,100000); with -profile, the first round of each count is profiled, bare and sgid, as in the distinct-session mode")
	sessionsRR := flag.String("sessions-rr", "", "distinct-session mode: for each count (e.g. 1,1000,100000), that many sessions' cookies presented round robin to both sites, in alternating rounds")
	control := flag.Bool("control", false, "also load the bare site with the identity headers sgid sends upstream, sent by the client: what carrying them costs Caddy, apart from the gateway")
	pacedRate := flag.Int("paced-rate", 0, "with -sessions, also load the memory phase's two Caddies at once at this fixed rate each (requests a second, below what either serves flat out), in -rounds rounds; 0 for none")
	versus := flag.String("versus", "", "with -sessions, a second caddy binary (another build of the gateway) for the memory phase to compare -caddy's with: it takes the bare Caddy's place, an sgid-only Caddy of the same config and signing key on the same port of 127.0.0.2, so the phase's loads at once (and -paced-rate) give the two builds' difference in CPU per request at each point")
	pin := flag.Bool("pin", false, "run Caddy on CPU 0 and this driver (its upstream, wrk, the HTTP/2 client) on CPU 1, with taskset, so the load does not share Caddy's core; needs 2 CPUs")
	flag.Parse()
	if *caddyBin == "" {
		log.Fatal("-caddy is required")
	}
	if *pin {
		pinSelf()
		pinnedCaddy = true
	}
	if *profileDir != "" {
		if err := os.MkdirAll(*profileDir, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "caddy-sgid-bench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	rr, err := parseCounts(*sessionsRR)
	if err != nil {
		log.Fatal(err)
	}
	b := &bench{rr: rr, h2: *h2, dir: dir, caddy: *caddyBin, logins: *logins, loginCPU: *loginCPU, sessions: *sessions, profileDir: *profileDir, rounds: *rounds, control: *control, revocations: *revocations, pacedRate: *pacedRate, versus: *versus,
		load: loadRun{wrk: *wrkBin, dir: dir, threads: *threads, conns: *conns, duration: *duration}}
	if err := b.run(); err != nil {
		log.Fatal(err)
	}
}

type bench struct {
	dir, caddy       string
	load             loadRun
	rounds           int
	logins, loginCPU int
	sessions         int
	profileDir       string
	control          bool
	revocations      int
	rr               []int // -sessions-rr
	h2               bool
	pacedRate        int    // -paced-rate
	versus           string // -versus
}

// runH2 loads the HTTPS sites over HTTP/2, for each -sessions-rr count (1
// and 100,000 without it), in alternating rounds.
func (b *bench) runH2(t *table, pid int, admin, issuer, clientID, secret, bareURL, sgidURL string) error {
	counts := b.rr
	if len(counts) == 0 {
		counts = []int{1, 100_000}
	}
	codec, err := minter(issuer, clientID, sgidURL, secret)
	if err != nil {
		return err
	}
	load := h2Load{conns: max(b.load.conns/8, 1), streams: 8, duration: b.load.duration}
	for _, n := range counts {
		fmt.Fprintf(os.Stderr, "HTTP/2, %d distinct sessions: first requests\n", n)
		cookies, err := warmLines(codec, sgidURL, 0, n, tlsClient(true), true)
		if err != nil {
			return err
		}
		f := rrFigures{n: n}
		for round := range b.rounds {
			fmt.Fprintf(os.Stderr, "  round %d of %d\n", round+1, b.rounds)
			bare := func() error {
				var prof <-chan error
				if b.profileDir != "" && round == 0 {
					prof = profile(admin, filepath.Join(b.profileDir, fmt.Sprintf("h2-bare-%d.pprof", n)), b.load.duration-time.Second)
				}
				r, err := load.run(pid, bareURL+"/", check{status: 200}, cookies)
				if err != nil {
					return err
				}
				if prof != nil {
					if err := <-prof; err != nil {
						return fmt.Errorf("profile: %w", err)
					}
				}
				r.report("    bare, HTTP/2")
				f.bare = append(f.bare, r)
				return nil
			}
			gated := func() error {
				var prof <-chan error
				if b.profileDir != "" && round == 0 {
					prof = profile(admin, filepath.Join(b.profileDir, fmt.Sprintf("h2-sgid-%d.pprof", n)), b.load.duration-time.Second)
				}
				before := refreshed(admin)
				r, err := load.run(pid, sgidURL+"/", check{status: 200, header: identityHeader, value: "1"}, cookies)
				if err != nil {
					return err
				}
				rw := rewrites(before, refreshed(admin))
				if prof != nil {
					if err := <-prof; err != nil {
						return fmt.Errorf("profile: %w", err)
					}
				}
				r.report("    sgid, HTTP/2" + rw)
				f.gated = append(f.gated, r)
				return nil
			}
			if err := inTurn(round, bare, gated); err != nil {
				return err
			}
		}
		t.h2 = append(t.h2, f)
	}
	return nil
}

// inTurn runs the round's two measurements, bare first in even rounds and
// sgid first in odd ones, so that neither site is always the one measured
// right after the other (the first requests, or the previous count's load):
// each round's difference pairs the two, and the order's bias cancels over
// the rounds.
func inTurn(round int, bare, gated func() error) error {
	order := [2]func() error{bare, gated}
	if round%2 == 1 {
		order = [2]func() error{gated, bare}
	}
	for _, m := range order {
		if err := m(); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) run() error {
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// While capture is set, the upstream keeps a copy of the identified request's
	// headers, for the control run; under load it keeps nothing.
	var capture atomic.Bool
	var captured atomic.Pointer[http.Header]
	go http.Serve(upstream, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		identified := "0"
		if r.Header.Get("X-Sgid-Sub") != "" && r.Header.Get("X-Sgid-Assertion") != "" {
			identified = "1"
			if capture.Load() {
				h := r.Header.Clone()
				captured.Store(&h)
			}
		}
		w.Header().Set(identityHeader, identified)
		w.Header().Set("Content-Type", "text/plain")
		w.Write(upstreamBody)
	}))
	idp, err := sgidtest.NewServer(sgidtest.Options{})
	if err != nil {
		return err
	}
	defer idp.Close()
	secretBytes := make([]byte, 32)
	rand.Read(secretBytes)
	secret := hex.EncodeToString(secretBytes)
	env := []string{
		"BENCH_CLIENT_ID=" + idp.ClientID(), "BENCH_CLIENT_SECRET=" + idp.ClientSecret(),
		"BENCH_PRIVATE_KEY=" + sgidtest.EncodePKCS8(idp.ClientKey()), "BENCH_SESSION_SECRET=" + secret,
	}
	proxy := "\treverse_proxy " + upstream.Addr().String()
	gated := fmt.Sprintf(`	sgid {
		client_id {env.BENCH_CLIENT_ID}
		client_secret {env.BENCH_CLIENT_SECRET}
		private_key {env.BENCH_PRIVATE_KEY}
		hostname %s
		scope openid myinfo.name myinfo.email
		forward myinfo.name
		forward myinfo.email X-Email
		session_secret {env.BENCH_SESSION_SECRET}
		# wrk and the HTTP/2 client replay the same cookies for the whole run and
		# never take the ones the gateway rewrites, as a browser would: an idle
		# window as long as the lifetime (never rewritten) and a long assertion
		# lifetime (never re-signed) keep that replay from costing a cookie write
		# or a signature on every request. Each round reports the rewrites seen.
		idle_timeout 12h
		assertion_lifetime 1h
	}
`, idp.URL()) + proxy
	if b.versus != "" {
		// Both builds sign with one key, as a cluster's instances do, so each
		// rebuilds the assertion the other's cookies carry.
		key, err := caddysgid.NewSigningKeyPEM()
		if err != nil {
			return err
		}
		env = append(env, "BENCH_SIGNING_KEY="+key)
		gated = strings.Replace(gated, "\t\tsession_secret {env.BENCH_SESSION_SECRET}\n", "\t\tsession_secret {env.BENCH_SESSION_SECRET}\n\t\tsigning_key {env.BENCH_SIGNING_KEY}\n", 1)
	}
	var addrs [5]string
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return err
		}
	}
	bareAddr, sgidAddr, norevAddr := addrs[0], addrs[1], addrs[2]
	h2BareURL, h2SgidURL := "https://"+addrs[3], "https://"+addrs[4]
	bareURL, sgidURL, norevURL := "http://"+bareAddr, "http://"+sgidAddr, "http://"+norevAddr
	ok200 := check{status: 200}
	withIdentity := check{status: 200, header: identityHeader, value: "1"}
	var t table

	// Sessions for the sgid site are minted with the site's own binding and
	// secret, as its logins would make them.
	issuer, err := sgid.Issuer(idp.URL())
	if err != nil {
		return err
	}
	codec, err := minter(issuer, idp.ClientID(), sgidURL, secret)
	if err != nil {
		return err
	}

	admin := ""
	if b.profileDir != "" || b.revocations > 0 || len(b.rr) > 0 || b.h2 {
		if admin, err = freeAddr(); err != nil {
			return err
		}
	}
	sites := []site{{addr: bareAddr, body: proxy}, {addr: sgidAddr, body: gated}}
	if b.revocations > 0 {
		// The same sgid site again, with no revocations: the per-request
		// cost of checking them, measured in the same rounds.
		sites = append(sites, site{addr: norevAddr, body: gated})
	}
	if b.h2 {
		sites = append(sites, site{addr: addrs[3], body: proxy, https: true}, site{addr: addrs[4], body: gated, https: true})
	}
	c, err := startCaddy(b.caddy, b.dir, "both", admin, sites, env)
	if err != nil {
		return err
	}
	defer c.stop()
	cookie, _, _, err := login(sgidURL)
	if err != nil {
		return fmt.Errorf("logging in for the load runs: %w", err)
	}
	var norevCookie string
	if b.revocations > 0 {
		if norevCookie, _, _, err = login(norevURL); err != nil {
			return fmt.Errorf("logging in at the site without revocations: %w", err)
		}
	}
	// One minted session now, so that a codec that does not match the site's
	// fails the run here and not after the load runs.
	if err := oneSession(http.DefaultClient, codec, sgidURL, 0); err != nil {
		return fmt.Errorf("a minted session: %w", err)
	}
	if b.revocations > 0 {
		fmt.Fprintf(os.Stderr, "loading %d revocations\n", b.revocations)
		if err := loadRevocations(admin, b.revocations, sgidURL); err != nil {
			return fmt.Errorf("loading revocations: %w", err)
		}
		if err := checkRevocationCounts(admin, map[string]int{sgidURL: b.revocations, norevURL: 0}); err != nil {
			return err
		}
		if err := oneSession(http.DefaultClient, codec, sgidURL, 1); err != nil {
			return fmt.Errorf("a minted session after the revocations: %w", err)
		}
		// And the revocations are checked: a session of a revoked sub is none.
		if err := revokedSession(codec, sgidURL, "bench-revoked-1"); err != nil {
			return err
		}
	}
	t.revocations = b.revocations
	var control []string
	if b.control {
		if control, err = identityHeaders(sgidURL, cookie, &capture, &captured); err != nil {
			return fmt.Errorf("control: %w", err)
		}
	}
	measure := func(round int, name, url string, want check, profName string, headers ...string) (wrkResult, error) {
		var prof <-chan error
		if b.profileDir != "" && round == 0 && profName != "" {
			prof = profile(admin, filepath.Join(b.profileDir, profName), b.load.duration-time.Second)
		}
		r, err := b.load.run(c.pid, url, want, headers...)
		if err != nil {
			return r, err
		}
		if prof != nil {
			if err := <-prof; err != nil {
				return r, fmt.Errorf("profile: %w", err)
			}
		}
		r.report("  " + name)
		return r, nil
	}
	for round := range b.rounds {
		fmt.Fprintf(os.Stderr, "round %d of %d\n", round+1, b.rounds)
		r, err := measure(round, "bare", bareURL, ok200, "bare.pprof", "Cookie: "+cookie)
		if err != nil {
			return err
		}
		t.bare = append(t.bare, r)
		gated := func() error {
			r, err := measure(round, "sgid", sgidURL, withIdentity, "authenticated.pprof", "Cookie: "+cookie)
			t.gated = append(t.gated, r)
			return err
		}
		norev := func() error {
			if norevCookie == "" {
				return nil
			}
			r, err := measure(round, "sgid, no revocations", norevURL, withIdentity, "", "Cookie: "+norevCookie)
			t.norev = append(t.norev, r)
			return err
		}
		// The two sgid sites trade places each round, so that neither is
		// always the one measured right after bare.
		order := []func() error{gated, norev}
		if round%2 == 1 {
			order = []func() error{norev, gated}
		}
		for _, m := range order {
			if err := m(); err != nil {
				return err
			}
		}
		if control != nil {
			if r, err = measure(round, "control", bareURL, withIdentity, "", control...); err != nil {
				return err
			}
			t.control = append(t.control, r)
		}
	}
	for _, n := range b.rr {
		fmt.Fprintf(os.Stderr, "%d distinct sessions round robin: first requests\n", n)
		file, err := warmCookies(b.dir, codec, sgidURL, n)
		if err != nil {
			return err
		}
		f := rrFigures{n: n}
		for round := range b.rounds {
			fmt.Fprintf(os.Stderr, "  round %d of %d\n", round+1, b.rounds)
			// With -profile, the first round of each count is profiled,
			// bare and sgid.
			profiled := func(name string, run func() (wrkResult, error)) (wrkResult, error) {
				if b.profileDir == "" || round > 0 {
					return run()
				}
				prof := profile(admin, filepath.Join(b.profileDir, fmt.Sprintf("rr-%s-%d.pprof", name, n)), b.load.duration-time.Second)
				r, err := run()
				if perr := <-prof; err == nil && perr != nil {
					err = fmt.Errorf("profile: %w", perr)
				}
				return r, err
			}
			bare := func() error {
				r, err := profiled("bare", func() (wrkResult, error) { return b.load.runWith(c.pid, bareURL, ok200, file) })
				if err != nil {
					return err
				}
				r.report("    bare")
				f.bare = append(f.bare, r)
				return nil
			}
			gated := func() error {
				before := refreshed(admin)
				r, err := profiled("sgid", func() (wrkResult, error) { return b.load.runWith(c.pid, sgidURL, withIdentity, file) })
				if err != nil {
					return err
				}
				r.report("    sgid" + rewrites(before, refreshed(admin)))
				f.gated = append(f.gated, r)
				return nil
			}
			if err := inTurn(round, bare, gated); err != nil {
				return err
			}
		}
		t.rr = append(t.rr, f)
	}
	if b.h2 {
		if err := b.runH2(&t, c.pid, admin, issuer, idp.ClientID(), secret, h2BareURL, h2SgidURL); err != nil {
			return fmt.Errorf("HTTP/2: %w", err)
		}
	}
	fmt.Fprintln(os.Stderr, "unauthenticated")
	navigate := "Accept: text/html"
	if t.unauthBare, err = b.load.run(c.pid, bareURL, ok200, navigate); err != nil {
		return err
	}
	if t.unauthGated, err = b.load.run(c.pid, sgidURL, check{status: 302, header: "Location"}, navigate); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d logins\n", max(b.logins, b.loginCPU))
	var prof <-chan error
	if b.profileDir != "" {
		prof = profile(admin, filepath.Join(b.profileDir, "logins.pprof"), 5*time.Second)
	}
	if t.logins, err = measureLogins(c.pid, sgidURL, b.logins, b.loginCPU, idp.ClientKey()); err != nil {
		return err
	}
	if prof != nil {
		if err := <-prof; err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	if b.sessions > 0 {
		// The processes above served every site and protocol: memory is
		// compared between two Caddies of their own.
		c.stop()
		fmt.Fprintf(os.Stderr, "memory: %d distinct sessions\n", b.sessions)
		if t.memory, err = b.memory(memoryConfig{proxy: proxy, gated: gated, env: env, issuer: issuer, clientID: idp.ClientID(),
			secret: secret, sessions: b.sessions, revokeAll: b.revocations, versus: b.versus}); err != nil {
			return fmt.Errorf("memory: %w", err)
		}
	}
	t.print(os.Stdout, b.load)
	return t.verdict()
}

// identityHeaders asks the sgid site for one page and returns, as wrk -H
// arguments, the identity headers the upstream received with it.
func identityHeaders(sgidURL, cookie string, capture *atomic.Bool, captured *atomic.Pointer[http.Header]) ([]string, error) {
	capture.Store(true)
	req, _ := http.NewRequest(http.MethodGet, sgidURL+"/", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	capture.Store(false)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	h := captured.Load()
	if h == nil {
		return nil, errors.New("the upstream saw no identity")
	}
	var out []string
	for name, values := range *h {
		if strings.HasPrefix(name, "X-Sgid-") || name == "X-Email" {
			out = append(out, name+": "+values[0])
		}
	}
	return out, nil
}
