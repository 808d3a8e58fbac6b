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
	"os"
	"path/filepath"
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
	flag.Parse() // for -soak.race, before the build
	os.Exit(instances.Main(m, *race, &caddyBin))
}

// The soak: requests with sessions from real logins and with sessions minted
// under the configured secret (a new one on almost every such request, many
// times what the decoded-session cache holds), navigations and API calls without
// a session, tampered cookies, user info, and whole logins each followed by a
// logout, all against one Caddy process. Every answer must be the expected
// one; from after the warm-up to the end, the process's RSS (read from
// /proc/<pid>/status) and its Go heap in use must each grow less than
// -soak.rss-growth MiB, and its goroutines by fewer than goroutineGrowth. The
// decoded-session cache holds at most 4 MiB of sessions, so a flat
// process stays far inside the default 20 MiB; a leak of even 100 bytes per
// request passes it within the million-request run.
func TestSoakMixedLoadAnswersRightAndStaysFlat(t *testing.T) {
	idp := sgidtest.Start(t, sgidtest.Options{})
	app := instances.Upstream()
	defer app.Close()
	dir := t.TempDir()
	secret := strings.Repeat("soak", 4) + idp.ClientSecret() // 48 characters, only in the environment
	site, err := instances.LocalSite(filepath.Join(dir, "storage"), app.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	site.Sgid = "\t\tsession_secret {env.SOAK_SESSION_SECRET}"
	p := instances.StartForTest(t, caddyBin, dir, "soak", site, append(instances.Env(idp), "SOAK_SESSION_SECRET="+secret))
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
