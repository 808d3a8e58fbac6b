package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// memFigures is the memory comparison: two fresh Caddies, one serving only
// the bare site and one only the sgid site (with the run's revocations
// loaded), given the same load, their resident set sizes taken at the same
// points. A Caddy that also served the other site, other protocols or
// logins would hold what those cost too, so neither shares a process with
// anything else.
type memFigures struct {
	sessions int
	// After the one-session load, after the first half of the distinct
	// sessions, and after all of them. "bare" is the first side throughout:
	// the bare Caddy, or -versus's.
	bare, sgid [3]int64
	// The same points' loads sent to both Caddies at once (together), in
	// rounds: [point] → each round's bare and sgid run.
	atOnceBare, atOnceSgid [3][]wrkResult
	// The same at one fixed rate for both (pacedPair), if -paced-rate.
	pacedBare, pacedSgid [3][]pacedRun
	pacedRate            int
	// names are the two sides' (pairSide.name): bare or versus, then sgid.
	names [2]string
}

// memoryConfig is what the memory phase starts its two Caddies with.
type memoryConfig struct {
	proxy, gated string // the site bodies
	// versus is -versus: a second build of the gateway, which then takes the
	// bare Caddy's place (startPair).
	versus              string
	env                 []string
	issuer, clientID    string
	secret              string
	sessions, revokeAll int
}

// memory runs the memory phase: the one-session wrk load, then the first
// half of the distinct sessions (each session's first request goes to the
// sgid Caddy, which must answer it with the identity; then a wrk round
// robin over that half goes to both), then the second half the same way.
// If the gateway's memory is bounded, the second half adds nothing.
func (b *bench) memory(mc memoryConfig) (memFigures, error) {
	f := memFigures{sessions: mc.sessions, pacedRate: b.pacedRate}
	var addrs [4]string
	for i := range addrs {
		var err error
		if addrs[i], err = freeAddr(); err != nil {
			return f, err
		}
	}
	sides, stop, err := b.startPair(mc, addrs)
	defer stop()
	if err != nil {
		return f, err
	}
	f.names = [2]string{sides[0].name, sides[1].name}
	sgidURL := sides[1].url
	for _, side := range sides {
		if mc.revokeAll > 0 && side.name != "bare" {
			if err := loadRevocations(side.admin, mc.revokeAll, sgidURL); err != nil {
				return f, fmt.Errorf("loading revocations: %w", err)
			}
		}
	}
	cookie, _, _, err := login(sgidURL)
	if err != nil {
		return f, fmt.Errorf("logging in: %w", err)
	}
	for _, side := range sides {
		if _, err := b.load.run(side.pid, side.url, side.want, side.with("Cookie: "+cookie)...); err != nil {
			return f, err
		}
	}
	take := func(i int) error {
		if err := f.take(i, sides); err != nil {
			return err
		}
		if b.profileDir == "" {
			return nil
		}
		// Heap profiles at the same points, to tell what the difference is.
		for _, side := range sides {
			if err := fetchTo("http://"+side.admin+"/debug/pprof/heap", filepath.Join(b.profileDir, fmt.Sprintf("memory-%s-%d.heap", side.name, i))); err != nil {
				return err
			}
		}
		return nil
	}
	if err := take(0); err != nil {
		return f, err
	}
	if err := b.atOnce(&f, 0, sides, "", "Cookie: "+cookie); err != nil {
		return f, err
	}
	if err := b.pacedPair(&f, 0, sides, []string{cookie}); err != nil {
		return f, err
	}
	codec, err := minter(mc.issuer, mc.clientID, sgidURL, mc.secret)
	if err != nil {
		return f, err
	}
	half := mc.sessions / 2
	for i, part := range [][2]int{{0, half}, {half, mc.sessions - half}} {
		fmt.Fprintf(os.Stderr, "  sessions %d to %d\n", part[0]+1, part[0]+part[1])
		lines, err := warmLines(codec, sgidURL, part[0], part[1], &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}, false)
		if err != nil {
			return f, err
		}
		file := filepath.Join(b.dir, fmt.Sprintf("memory-%d.txt", i))
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return f, err
		}
		for _, side := range sides {
			if _, err := b.load.runWith(side.pid, side.url, side.want, file, side.with()...); err != nil {
				return f, err
			}
		}
		if err := take(1 + i); err != nil {
			return f, err
		}
		// The cookies of every session so far, so that the sgid Caddy's
		// cache misses on nearly every request.
		all := file
		if i > 0 {
			all = filepath.Join(b.dir, fmt.Sprintf("memory-all-%d.txt", i))
			if err := concatFiles(all, filepath.Join(b.dir, "memory-0.txt"), file); err != nil {
				return f, err
			}
		}
		if err := b.atOnce(&f, 1+i, sides, all); err != nil {
			return f, err
		}
		cookies, err := cookieLines(all, "")
		if err != nil {
			return f, err
		}
		if err := b.pacedPair(&f, 1+i, sides, cookies); err != nil {
			return f, err
		}
	}
	return f, nil
}

// pairSide is one of the memory phase's two Caddies, as its loads reach it.
type pairSide struct {
	name       string // bare, versus or sgid
	pid        int
	url, admin string
	want       check
	host       string // the Host header to send, if not the URL's
}

// with is headers, with side's Host header first if it has one.
func (s pairSide) with(headers ...string) []string {
	if s.host == "" {
		return headers
	}
	return append([]string{"Host: " + s.host}, headers...)
}

// startPair starts the memory phase's two Caddies on addrs (the first
// side's site, the sgid site, the first side's admin, the sgid one's): a
// bare-only one and an sgid-only one. With -versus, the first is instead an
// sgid-only Caddy of that build, on the sgid site's port at 127.0.0.2, each
// bound to its own address: the site's origin, and so the sessions' binding
// and the assertion's issuer, are the same for both, and the cookies the
// phase mints open on either. stop stops whatever was started.
func (b *bench) startPair(mc memoryConfig, addrs [4]string) (sides [2]pairSide, stop func(), err error) {
	var procs []*caddyProc
	stop = func() {
		for _, p := range procs {
			p.stop()
		}
	}
	withIdentity := check{status: 200, header: identityHeader, value: "1"}
	sgidBody := mc.gated
	if mc.versus != "" {
		sgidBody = "\tbind 127.0.0.1\n" + mc.gated
	}
	gated, err := startCaddy(b.caddy, b.dir, "memory-sgid", addrs[3], []site{{addr: addrs[1], body: sgidBody}}, mc.env)
	if err != nil {
		return sides, stop, err
	}
	procs = append(procs, gated)
	sides[1] = pairSide{name: "sgid", pid: gated.pid, url: "http://" + addrs[1], admin: addrs[3], want: withIdentity}
	if mc.versus == "" {
		bare, err := startCaddy(b.caddy, b.dir, "memory-bare", addrs[2], []site{{addr: addrs[0], body: mc.proxy}}, mc.env)
		if err != nil {
			return sides, stop, err
		}
		procs = append(procs, bare)
		sides[0] = pairSide{name: "bare", pid: bare.pid, url: "http://" + addrs[0], admin: addrs[2], want: check{status: 200}}
		return sides, stop, nil
	}
	_, port, err := net.SplitHostPort(addrs[1])
	if err != nil {
		return sides, stop, err
	}
	other := net.JoinHostPort("127.0.0.2", port)
	// startCaddy waits for the site's address, which the sgid Caddy already
	// answers: wait for the other one's too.
	versus, err := startCaddy(mc.versus, b.dir, "memory-versus", addrs[2], []site{{addr: addrs[1], body: "\tbind 127.0.0.2\n" + mc.gated}}, mc.env)
	if err != nil {
		return sides, stop, err
	}
	procs = append(procs, versus)
	if err := waitListening(other, 20*time.Second); err != nil {
		return sides, stop, fmt.Errorf("caddy (-versus) did not start: %w", err)
	}
	sides[0] = pairSide{name: "versus", pid: versus.pid, url: "http://" + other, admin: addrs[2], want: withIdentity, host: addrs[1]}
	return sides, stop, nil
}

// atOnce loads the bare-only and the sgid-only Caddy at the same time, each
// with its own wrk of half the connections, for b.rounds rounds after the
// memory was taken at point i. Both Caddies are on the same core (-pin) for
// the same seconds, so the machine's drift, which between rounds of the
// alternating mode moves one site by more than the two differ, falls on both
// alike; each one's CPU per request is its own process's. The two runs'
// windows differ only by when the two wrk processes start and end. With
// -profile, the first round at each point is profiled, both Caddies.
func (b *bench) atOnce(f *memFigures, i int, sides [2]pairSide, file string, headers ...string) error {
	half := b.load
	half.conns = max(b.load.conns/2, 1)
	half.threads = max(b.load.threads/2, 1)
	for round := range b.rounds {
		r, err := bothAtOnce(b, sides, round == 0, "atonce", i, func(side pairSide) (wrkResult, error) {
			return half.runWith(side.pid, side.url, side.want, file, side.with(headers...)...)
		})
		if err != nil {
			return err
		}
		rb, rs := r[0], r[1]
		rb.report(fmt.Sprintf("    at once, round %d: %s", round+1, sides[0].name))
		rs.report(fmt.Sprintf("    at once, round %d: %s", round+1, sides[1].name))
		f.atOnceBare[i] = append(f.atOnceBare[i], rb)
		f.atOnceSgid[i] = append(f.atOnceSgid[i], rs)
	}
	return nil
}

// bothAtOnce runs load on both sides at the same time and waits for both;
// with profile, it profiles both Caddies (profilePair, as kind at point i)
// once both loads are under way.
func bothAtOnce[T any](b *bench, sides [2]pairSide, profile bool, kind string, i int, load func(pairSide) (T, error)) ([2]T, error) {
	var r [2]T
	var errs [3]error
	var wg sync.WaitGroup
	for j, side := range sides {
		wg.Go(func() { r[j], errs[j] = load(side) })
	}
	profs := func() error { return nil }
	if profile {
		profs = b.profilePair(sides, kind, i)
	}
	wg.Wait()
	errs[2] = profs()
	return r, errors.Join(errs[:]...)
}

// concatFiles writes the files' contents, in order, to dst.
func concatFiles(dst string, srcs ...string) error {
	var all []byte
	for _, src := range srcs {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		all = append(all, b...)
	}
	return os.WriteFile(dst, all, 0o600)
}

// take records both processes' RSS at point i.
func (f *memFigures) take(i int, sides [2]pairSide) error {
	var err error
	if f.bare[i], err = rss(sides[0].pid); err != nil {
		return err
	}
	f.sgid[i], err = rss(sides[1].pid)
	return err
}

// print writes the memory rows.
func (f memFigures) print(w io.Writer) {
	if f.sessions == 0 {
		return
	}
	first := f.names[0]
	if first == "versus" {
		fmt.Fprintf(w, "\nmemory: two sgid-only Caddies, -caddy's build (sgid) and -versus's (versus), the same load to each (RSS MiB):\n\n")
	} else {
		fmt.Fprintf(w, "\nmemory: a bare-only and an sgid-only Caddy, the same load to each (RSS MiB):\n\n")
	}
	fmt.Fprintf(w, "| after | %s | sgid | difference |\n|---|---|---|---|\n", first)
	points := []string{"the one-session load", fmt.Sprintf("%d distinct sessions", f.sessions/2), fmt.Sprintf("%d distinct sessions", f.sessions)}
	for i, p := range points {
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %+.1f |\n", p, mib(f.bare[i]), mib(f.sgid[i]), mib(f.sgid[i]-f.bare[i]))
	}
	fmt.Fprintf(w, "\nthe same two Caddies loaded at once, on the same core (-pin), at each point (%d rounds; Caddy CPU µs per request, medians, and the median of each round's difference with its quartiles; the capacity ratio, %s's CPU per request over sgid's, each round's median):\n\n", len(f.atOnceBare[0]), first)
	fmt.Fprintf(w, "| load | %s | sgid | difference | quartiles | ratio |\n|---|---|---|---|---|---|\n", first)
	loads := []string{"one session", fmt.Sprintf("%d distinct sessions", f.sessions/2), fmt.Sprintf("%d distinct sessions", f.sessions)}
	cpu := func(r wrkResult) float64 { return us(r.cpuPerReq) }
	for i, l := range loads {
		rb, rs := f.atOnceBare[i], f.atOnceSgid[i]
		if len(rb) == 0 {
			continue
		}
		diffs := make([]float64, len(rb))
		for j := range rb {
			diffs[j] = cpu(rs[j]) - cpu(rb[j])
		}
		slices.Sort(diffs)
		ratio := pairedOf(rs, rb, cpu, func(g, b float64) float64 { return b / g })
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %+.1f | %+.1f to %+.1f | %.2fx |\n", l, medianOf(rb, cpu), medianOf(rs, cpu),
			pairedOf(rs, rb, cpu, func(g, b float64) float64 { return g - b }), diffs[len(diffs)/4], diffs[len(diffs)*3/4], ratio)
	}
	if len(f.pacedBare[0]) > 0 {
		fmt.Fprintf(w, "\nthe same two Caddies at once, both paced at %d requests a second (%d rounds; Caddy CPU µs per request, medians, and the median of each round's difference with its quartiles; the capacity ratio, %s's CPU per request over sgid's):\n\n", f.pacedRate, len(f.pacedBare[0]), first)
		fmt.Fprintf(w, "| load | %s | sgid | difference | quartiles | ratio |\n|---|---|---|---|---|---|\n", first)
		for i, l := range loads {
			rb, rs := f.pacedBare[i], f.pacedSgid[i]
			if len(rb) == 0 {
				continue
			}
			diffs := make([]float64, len(rb))
			var cb, cs, ratios []float64
			for j := range rb {
				b, s := us(rb[j].cpuPerReq), us(rs[j].cpuPerReq)
				diffs[j], cb, cs, ratios = s-b, append(cb, b), append(cs, s), append(ratios, b/s)
			}
			fmt.Fprintf(w, "| %s | %.1f | %.1f | %+.1f | %+.1f to %+.1f | %.2fx |\n", l, medianFloat(cb), medianFloat(cs), medianFloat(diffs),
				quartile(diffs, 1), quartile(diffs, 3), medianFloat(ratios))
		}
	}
	extra := mib(f.sgid[2] - f.bare[2])
	second := mib((f.sgid[2] - f.bare[2]) - (f.sgid[1] - f.bare[1]))
	if first == "versus" {
		fmt.Fprintf(w, "\nRSS of sgid over versus after %d sessions: %+.1f MiB; the second %d sessions added %+.1f MiB\n", f.sessions, extra, f.sessions-f.sessions/2, second)
		return
	}
	fmt.Fprintf(w, "\nRSS over bare after %d sessions: %+.1f MiB, target <= +32 MiB: %s; the second %d sessions added %+.1f MiB over bare\n",
		f.sessions, extra, mark(extra <= 32), f.sessions-f.sessions/2, second)
}

// medianFloat is the median of v (the upper one of an even count).
func medianFloat(v []float64) float64 { return quartile(v, 2) }

// quartile is v's q-th quartile, by the same rank as the other tables'.
func quartile(v []float64, q int) float64 {
	s := slices.Sorted(slices.Values(v))
	return s[len(s)*q/4]
}

// profilePair starts CPU profiles of the memory phase's two Caddies for the
// load now running, if -profile, named kind-<side>-i (bare or versus, then
// sgid); the function it returns waits for both.
func (b *bench) profilePair(sides [2]pairSide, kind string, i int) func() error {
	if b.profileDir == "" {
		return func() error { return nil }
	}
	var profs []<-chan error
	for _, side := range sides {
		profs = append(profs, profile(side.admin, filepath.Join(b.profileDir, fmt.Sprintf("%s-%s-%d.pprof", kind, side.name, i)), b.load.duration-time.Second))
	}
	return func() error {
		var err error
		for _, p := range profs {
			err = errors.Join(err, <-p)
		}
		return err
	}
}
