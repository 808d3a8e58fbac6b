// Package soak runs the gateway, as the real cmd/caddy binary, through a long
// mixed load and checks that every answer is right and that the process does
// not grow. The default is short enough for CI; for the release figures:
//
//	go test ./test/soak -run Soak -v -timeout 60m -soak.requests 1000000
//
// and with -soak.race to build the Caddy under test with the race detector.
package soak

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	caddysgid "github.com/sgidproxy/caddy-sgid"
	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
	"github.com/sgidproxy/caddy-sgid/test/instances"
)

var (
	requests  = flag.Int("soak.requests", 20000, "requests to send after the warm-up")
	warmup    = flag.Int("soak.warmup", 10000, "requests to send before the first memory sample")
	workers   = flag.Int("soak.workers", 4, "concurrent clients")
	race      = flag.Bool("soak.race", false, "build the Caddy under test with the race detector")
	rssGrowth = flag.Int("soak.rss-growth", 20, "MiB the Caddy process's RSS and Go heap may each grow after the warm-up")
)

// goroutineGrowth bounds the Caddy process's goroutines after the run over
// those after the warm-up: connections are kept alive and reused, so a leak
// of one goroutine per request or per login would pass it many times over.
const goroutineGrowth = 50

var caddyBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "caddy-sgid-soak")
	if err != nil {
		panic(err)
	}
	if caddyBin, err = instances.Build(dir, *race); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The soak: requests with sessions from real logins and with sessions minted
// under the configured secret (a new one on almost every such request, many
// times the decoded-session cache of 4096), navigations and API calls without
// a session, tampered cookies, user info, and whole logins each followed by a
// logout, all against one Caddy process. Every answer must be the expected
// one; from after the warm-up to the end, the process's RSS (read from
// /proc/<pid>/status) and its Go heap in use must each grow less than
// -soak.rss-growth MiB, and its goroutines by fewer than goroutineGrowth. The
// decoded-session cache holds up to 4096 sessions of about 1 KB, so a flat
// process stays far inside the default 20 MiB; a leak of even 100 bytes per
// request passes it within the million-request run.
func TestSoakMixedLoadAnswersRightAndStaysFlat(t *testing.T) {
	idp := sgidtest.Start(t, sgidtest.Options{})
	app := instances.Upstream()
	defer app.Close()
	dir := t.TempDir()
	secret := strings.Repeat("soak", 4) + idp.ClientSecret() // 48 characters, only in the environment
	site := instances.Site{Storage: filepath.Join(dir, "storage"), Upstream: strings.TrimPrefix(app.URL, "http://"),
		Sgid: "\t\tsession_secret {env.SOAK_SESSION_SECRET}"}
	var err error
	if site.Addr, err = instances.FreeAddr(); err != nil {
		t.Fatal(err)
	}
	if site.Admin, err = instances.FreeAddr(); err != nil {
		t.Fatal(err)
	}
	p, err := instances.Start(caddyBin, dir, "soak", site, append(instances.Env(idp), "SOAK_SESSION_SECRET="+secret))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Stop()
		if t.Failed() {
			t.Logf("caddy output:\n%s", p.Tail(30))
		}
	}()
	issuer, err := sgid.Issuer(idp.URL())
	if err != nil {
		t.Fatal(err)
	}
	// The gateway's own codec, bound as the site's cookies are.
	mint, err := session.New(session.Config{Binding: caddysgid.SessionBinding(issuer, idp.ClientID(), site.URL()),
		Secrets: [][]byte{[]byte(secret)}})
	if err != nil {
		t.Fatal(err)
	}

	l := &load{
		t: t, site: site.URL(), idp: idp.URL(), mint: mint,
		sub: sgidtest.PairwiseSub(idp.ClientID(), sgidtest.Personas()[0].ID),
		tr:  &http.Transport{MaxIdleConnsPerHost: *workers + 2},
	}
	defer l.tr.CloseIdleConnections()
	l.pool = make([]atomic.Pointer[string], 16)
	for i := range l.pool {
		cookie, _, err := instances.Login(l.tr, l.site)
		if err != nil {
			t.Fatal(err)
		}
		l.pool[i].Store(&cookie)
	}

	l.run(0, *warmup)
	time.Sleep(time.Second) // let the last responses' garbage be collected alike
	before := l.sample(p)
	start := time.Now()
	var peakRSS atomic.Int64
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() {
		var reported int64
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(2 * time.Second):
			}
			kb, err := p.Status("VmRSS")
			if err == nil && kb > peakRSS.Load() {
				peakRSS.Store(kb)
			}
			// Progress, every tenth of the run, for runs of many minutes.
			if tenth := (l.done.Load() - int64(*warmup)) * 10 / int64(max(*requests, 1)); tenth > reported && tenth < 10 {
				reported = tenth
				t.Logf("%d0%% after %s, RSS %.1f MiB", tenth, time.Since(start).Round(time.Second), mib(kb))
			}
		}
	})
	l.run(*warmup, *warmup+*requests)
	took := time.Since(start)
	close(stopSampling)
	sampling.Wait()
	after := l.sample(p)

	if p.Exited() {
		t.Fatal("caddy exited during the soak")
	}
	t.Logf("caddy built with -race: %v; %d workers", *race, *workers)
	t.Logf("%d requests after %d of warm-up in %s (%.0f/s); %d whole logins, each followed by a logout (warm-up included)",
		*requests, *warmup, took.Round(time.Millisecond), float64(*requests)/took.Seconds(), l.logins.Load())
	t.Logf("by kind and status (warm-up included): %s", l.statuses())
	t.Logf("caddy RSS: %.1f MiB after warm-up, %.1f MiB after, peak sampled %.1f MiB; Go heap in use %.1f -> %.1f MiB; threads %d -> %d; goroutines %d -> %d",
		mib(before.rss), mib(after.rss), mib(max(peakRSS.Load(), after.rss)), mib(before.heap), mib(after.heap),
		before.threads, after.threads, before.goroutines, after.goroutines)
	p.Stop()
	if log, err := os.ReadFile(p.Log); err != nil {
		t.Error(err)
	} else if n := strings.Count(string(log), "WARNING: DATA RACE"); n > 0 {
		t.Errorf("the race detector reported %d data races in caddy; see its output", n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.failures {
		t.Error(f)
	}
	if l.transport+l.unexpected > 0 {
		t.Errorf("%d transport errors and %d unexpected answers, want none", l.transport, l.unexpected)
	}
	// Under the race detector RSS is no measure of the program: the race
	// runtime's own memory, which the Go heap does not count, grows with the
	// requests an HTTP server serves (golang/go#63276): 263 MiB over a
	// million requests here, while the Go heap grew 5 MiB and RSS without
	// -race 8 MiB. So only the heap is held to the bound there.
	if growth := after.rss - before.rss; growth >= int64(*rssGrowth)<<10 && !*race {
		t.Errorf("caddy RSS grew %.1f MiB over the run, want less than %d MiB", mib(growth), *rssGrowth)
	}
	if growth := after.heap - before.heap; growth >= int64(*rssGrowth)<<10 {
		t.Errorf("caddy's Go heap in use grew %.1f MiB over the run, want less than %d MiB", mib(growth), *rssGrowth)
	}
	if growth := after.goroutines - before.goroutines; growth >= goroutineGrowth {
		t.Errorf("caddy goroutines grew by %d over the run, want fewer than %d", growth, goroutineGrowth)
	}
}

func mib(kb int64) float64 { return float64(kb) / 1024 }

type sample struct{ rss, threads, goroutines, heap int64 }

func (l *load) sample(p *instances.Process) sample {
	l.t.Helper()
	var s sample
	var err error
	if s.rss, err = p.Status("VmRSS"); err != nil {
		l.t.Fatal(err)
	}
	if s.threads, err = p.Status("Threads"); err != nil {
		l.t.Fatal(err)
	}
	g, err := p.Goroutines()
	if err != nil {
		l.t.Fatal(err)
	}
	s.goroutines = int64(g)
	if s.heap, err = heapInuse(p.Admin); err != nil {
		l.t.Fatal(err)
	}
	return s
}

// heapInuse is the Go heap in use, in kB, from Caddy's /metrics: unlike RSS,
// it does not count the race detector's shadow memory.
func heapInuse(admin string) (int64, error) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f) >> 10, err
		}
	}
	return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes in caddy's metrics")
}

// load sends the mix and checks each answer.
type load struct {
	t    *testing.T
	site string // http://127.0.0.1:port
	idp  string // the fake sgID's URL, where navigations are sent
	sub  string // the sub of every real login
	mint *session.Codec
	tr   *http.Transport
	pool []atomic.Pointer[string] // Cookie headers from real logins, updated on refresh

	logins atomic.Int64
	done   atomic.Int64 // requests answered, warm-up included

	mu         sync.Mutex
	counts     map[string]int // "kind status" -> answers as expected
	transport  int
	unexpected int
	failures   []string
}

// run sends requests numbered [from, to) over *workers clients. A request's
// number picks its kind, so every run has the same mix.
func (l *load) run(from, to int) {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			c := &http.Client{Transport: l.tr, Timeout: 30 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			counts := map[string]int{}
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					break
				}
				kind, status, err := l.one(c, i)
				l.done.Add(1)
				if err != nil {
					l.fail(kind, err)
					continue
				}
				counts[fmt.Sprintf("%s %d", kind, status)]++
			}
			l.mu.Lock()
			if l.counts == nil {
				l.counts = map[string]int{}
			}
			for k, n := range counts {
				l.counts[k] += n
			}
			l.mu.Unlock()
		})
	}
	wg.Wait()
}

// transportError marks a failure to get an answer at all.
type transportError struct{ error }

func (l *load) fail(kind string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := err.(transportError); ok {
		l.transport++
	} else {
		l.unexpected++
	}
	if len(l.failures) < 20 {
		l.failures = append(l.failures, kind+": "+err.Error())
	}
}

func (l *load) statuses() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keys []string
	for k := range l.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d; ", k, l.counts[k])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// one sends request number i. Per 1000: 400 with a real login's session, 300
// with a freshly minted one, 100 navigations and 100 API calls without a
// session, 50 POSTs without one, 30 user info calls, 19 tampered cookies, and
// one whole login followed by a logout.
func (l *load) one(c *http.Client, i int) (kind string, status int, err error) {
	n := i % 1000
	switch {
	case n < 400:
		kind = "session"
		slot := &l.pool[i%len(l.pool)]
		resp, _, err := l.do(c, http.MethodGet, fmt.Sprintf("/page/%d", i), "text/html", *slot.Load())
		if err != nil {
			return kind, 0, err
		}
		if resp.Header.Get("X-Seen-X-Sgid-Sub") != l.sub || resp.Header.Get("X-Seen-X-Sgid-Assertion") == "" || resp.Header.Get("X-Seen-X-Sgid-Myinfo-Name") == "" {
			return kind, 0, fmt.Errorf("%d with sub %q: want 200 and the logged-in user's identity", resp.StatusCode, resp.Header.Get("X-Seen-X-Sgid-Sub"))
		}
		if len(resp.Cookies()) > 0 { // the idle window slid: keep the new cookie, as a browser does
			updated := instances.UpdateCookies(*slot.Load(), resp)
			slot.Store(&updated)
		}
		return kind, resp.StatusCode, nil
	case n < 700:
		kind = "minted"
		sub, name := fmt.Sprintf("soak-user-%08d", i), fmt.Sprintf("SOAK USER %d", i)
		cookie, err := l.minted(sub, name)
		if err != nil {
			return kind, 0, err
		}
		resp, _, err := l.do(c, http.MethodGet, "/", "application/json", cookie)
		if err != nil {
			return kind, 0, err
		}
		if resp.Header.Get("X-Seen-X-Sgid-Sub") != sub || resp.Header.Get("X-Seen-X-Sgid-Myinfo-Name") != name {
			return kind, 0, fmt.Errorf("%d with sub %q name %q: want 200, %s and %s", resp.StatusCode,
				resp.Header.Get("X-Seen-X-Sgid-Sub"), resp.Header.Get("X-Seen-X-Sgid-Myinfo-Name"), sub, name)
		}
		return kind, resp.StatusCode, nil
	case n < 800:
		kind = "navigation"
		resp, _, err := l.do(c, http.MethodGet, fmt.Sprintf("/page/%d?x=1", i), "text/html", "")
		if err != nil {
			return kind, 0, err
		}
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), l.idp) {
			return kind, 0, fmt.Errorf("%d to %q: want 302 to sgID", resp.StatusCode, resp.Header.Get("Location"))
		}
		return kind, resp.StatusCode, nil
	case n < 950:
		kind = "api"
		method := http.MethodGet
		if n >= 900 {
			kind, method = "post", http.MethodPost
		}
		resp, body, err := l.do(c, method, "/api/items", "application/json", "")
		if err != nil {
			return kind, 0, err
		}
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"login_url"`) {
			return kind, 0, fmt.Errorf("%d: want 401 with a login_url", resp.StatusCode)
		}
		return kind, resp.StatusCode, nil
	case n < 980:
		kind = "userinfo"
		resp, body, err := l.do(c, http.MethodGet, "/.sgid/userinfo", "application/json", *l.pool[i%len(l.pool)].Load())
		if err != nil {
			return kind, 0, err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, l.sub) {
			return kind, 0, fmt.Errorf("%d: want 200 with the sub", resp.StatusCode)
		}
		return kind, resp.StatusCode, nil
	case n < 999:
		kind = "tampered"
		cookie := *l.pool[i%len(l.pool)].Load()
		// A character from the middle of the sealed value, where every bit
		// counts (near the end, base64 padding bits may not).
		at := len(cookie)/2 + i%40 - 20
		flipped := byte('A')
		if cookie[at] == 'A' {
			flipped = 'B'
		}
		resp, _, err := l.do(c, http.MethodGet, "/api/items", "application/json", cookie[:at]+string(flipped)+cookie[at+1:])
		if err != nil {
			return kind, 0, err
		}
		if resp.StatusCode != http.StatusUnauthorized {
			return kind, 0, fmt.Errorf("%d: want 401", resp.StatusCode)
		}
		return kind, resp.StatusCode, nil
	default:
		return "login+logout", http.StatusNoContent, l.loginLogout(c)
	}
}

// loginLogout logs a new browser in, then out: the logout answers 204 and
// expires every session cookie, after which the browser has no session.
func (l *load) loginLogout(c *http.Client) error {
	cookie, resp, err := instances.Login(l.tr, l.site)
	if err != nil {
		if resp == nil {
			return transportError{err}
		}
		return err
	}
	l.logins.Add(1)
	resp, _, err = l.do(c, http.MethodGet, "/.sgid/logout", "application/json", cookie)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("logout: %d, want 204", resp.StatusCode)
	}
	if left := instances.UpdateCookies(cookie, resp); left != "" {
		return fmt.Errorf("logout left cookies %q", left)
	}
	resp, _, err = l.do(c, http.MethodGet, "/api/items", "application/json", "")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("after logout: %d, want 401", resp.StatusCode)
	}
	return nil
}

// minted is the Cookie header of a new session sealed with the configured
// secret by the gateway's own codec.
func (l *load) minted(sub, name string) (string, error) {
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest(http.MethodGet, l.site, nil)
	if err := l.mint.Write(rec, req, &session.Data{Sub: sub, Fields: map[string]string{"myinfo.name": name}}, false); err != nil {
		return "", err
	}
	var parts []string
	for _, ck := range rec.Result().Cookies() {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; "), nil
}

// do sends one request and reads the whole answer.
func (l *load) do(c *http.Client, method, path, accept, cookie string) (*http.Response, string, error) {
	req, err := http.NewRequest(method, l.site+path, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", accept)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", transportError{err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", transportError{err}
	}
	return resp, string(body), nil
}
