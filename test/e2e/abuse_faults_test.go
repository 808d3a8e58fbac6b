package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// outcome is one request made off the test goroutine, where t.Fatal is not allowed.
type outcome struct {
	status  int
	body    string
	elapsed time.Duration
	err     error
}

func fetch(c *http.Client, rawURL, accept string) outcome {
	start := time.Now()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return outcome{err: err}
	}
	req.Header.Set("Accept", accept)
	resp, err := c.Do(req)
	if err != nil {
		return outcome{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return outcome{status: resp.StatusCode, body: string(body), elapsed: time.Since(start), err: err}
}

// checkFailure describes what is wrong with a login's failure page, or "": the
// status, the title, an error reference, and that reference in Caddy's log.
func checkFailure(o outcome, status int, title, logText string) string {
	m := errorRef.FindStringSubmatch(o.body)
	switch {
	case o.err != nil:
		return o.err.Error()
	case o.status != status || !strings.Contains(o.body, "<h1>"+title+"</h1>"):
		return fmt.Sprintf("%d %.200q, want %d %q", o.status, o.body, status, title)
	case m == nil:
		return "no error reference on the page"
	case !strings.Contains(logText, `"error_id":"`+m[1]+`"`):
		return "error reference " + m[1] + " is not in the log"
	}
	return ""
}

// failedLogin asserts that a login, with sgID misbehaving, ends on a clean page.
func (g *gateway) failedLogin(t *testing.T, log caddyLog, what string, status int, title string) outcome {
	t.Helper()
	o := fetch(g.newBrowser().client, g.base+"/start", "text/html")
	if o.status == http.StatusInternalServerError {
		t.Errorf("%s: a 500", what)
	}
	if msg := checkFailure(o, status, title, log.text(t)); msg != "" {
		t.Errorf("%s: %s", what, msg)
	}
	return o
}

func TestAbuseSlowSgIDIsCutAtTheTimeoutAndOtherSitesStayFast(t *testing.T) {
	const timeout = time.Second
	log := newCaddyLog(t)
	other := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	opts := gatewayOptions{directives: "timeout 1s", globalExtra: log.option, extraSites: other + " {\n\trespond \"fast\"\n}"}
	g := newGateway(t, opts)
	logged := g.newBrowser()
	g.login(logged, "/")
	opts = g.sameSite(opts)

	for _, e := range []sgidtest.Endpoint{sgidtest.EndpointToken, sgidtest.EndpointUserInfo, sgidtest.EndpointJWKS} {
		t.Run(string(e), func(t *testing.T) {
			if e == sgidtest.EndpointJWKS {
				newGateway(t, opts) // a new client, whose first login must fetch the keys
			}
			g.sgid.SetFaults(sgidtest.Faults{Delay: map[sgidtest.Endpoint]time.Duration{e: 5 * time.Second}})
			t.Cleanup(func() { g.sgid.SetFaults(sgidtest.Faults{}) })
			done := make(chan outcome)
			go func() { done <- fetch(g.newBrowser().client, g.base+"/slow", "text/html") }()

			var slowest, slowestUser time.Duration
			polls := 0
			for waiting := true; waiting; {
				select {
				case o := <-done:
					waiting = false
					if msg := checkFailure(o, http.StatusBadGateway, "sgID unavailable", log.text(t)); msg != "" {
						t.Errorf("slow %s: %s", e, msg)
					}
					if o.elapsed < timeout-100*time.Millisecond || o.elapsed > timeout+2*time.Second {
						t.Errorf("slow %s: the error page came after %v, want about the %v timeout", e, o.elapsed, timeout)
					}
				case <-time.After(50 * time.Millisecond):
					polls++
					o := fetch(http.DefaultClient, other+"/", "text/html")
					if o.err != nil || o.status != http.StatusOK || o.body != "fast" {
						t.Errorf("the other site: %d %q %v", o.status, o.body, o.err)
					}
					slowest = max(slowest, o.elapsed)
					if e != sgidtest.EndpointJWKS {
						o = fetch(logged.client, g.base+"/api", "application/json")
						if o.status != http.StatusOK {
							t.Errorf("a logged-in user during the slow login: %d", o.status)
						}
						slowestUser = max(slowestUser, o.elapsed)
					}
				}
			}
			if polls < 5 || slowest > 500*time.Millisecond || slowestUser > 500*time.Millisecond {
				t.Errorf("during the slow login: %d polls, slowest answer from the other site %v, from this site to a logged-in user %v", polls, slowest, slowestUser)
			}
		})
	}
}

func TestAbuseSgIDFailuresGiveCleanErrorPages(t *testing.T) {
	log := newCaddyLog(t)
	g := newGateway(t, gatewayOptions{globalExtra: log.option})
	g.login(g.newBrowser(), "/") // the keys are cached from here on
	on := func(e sgidtest.Endpoint) map[sgidtest.Endpoint]bool { return map[sgidtest.Endpoint]bool{e: true} }
	status := func(e sgidtest.Endpoint, code int) map[sgidtest.Endpoint]int {
		return map[sgidtest.Endpoint]int{e: code}
	}
	for _, c := range []struct {
		name   string
		faults sgidtest.Faults
		status int
		title  string
	}{
		{"token 500", sgidtest.Faults{Status: status(sgidtest.EndpointToken, 500)}, 502, "sgID unavailable"},
		{"token 503", sgidtest.Faults{Status: status(sgidtest.EndpointToken, 503)}, 502, "sgID unavailable"},
		{"token 400 server_error", sgidtest.Faults{Status: status(sgidtest.EndpointToken, 400)}, 502, "Login failed"},
		{"token 401", sgidtest.Faults{Status: status(sgidtest.EndpointToken, 401)}, 502, "Login failed"},
		{"userinfo 500", sgidtest.Faults{Status: status(sgidtest.EndpointUserInfo, 500)}, 502, "sgID unavailable"},
		{"userinfo 502", sgidtest.Faults{Status: status(sgidtest.EndpointUserInfo, 502)}, 502, "sgID unavailable"},
		{"token malformed JSON", sgidtest.Faults{Malformed: on(sgidtest.EndpointToken)}, 502, "Login failed"},
		{"userinfo malformed JSON", sgidtest.Faults{Malformed: on(sgidtest.EndpointUserInfo)}, 502, "Login failed"},
		{"token 1 MB", sgidtest.Faults{Oversized: status(sgidtest.EndpointToken, 1<<20)}, 502, "Login failed"},
		{"userinfo 20 MB", sgidtest.Faults{Oversized: status(sgidtest.EndpointUserInfo, 20<<20)}, 502, "Login failed"},
		{"jwks 500", sgidtest.Faults{Status: status(sgidtest.EndpointJWKS, 500)}, 502, "sgID unavailable"},
		{"jwks malformed JSON", sgidtest.Faults{Malformed: on(sgidtest.EndpointJWKS)}, 502, "Login failed"},
		{"jwks 1 MB", sgidtest.Faults{Oversized: status(sgidtest.EndpointJWKS, 1<<20)}, 502, "Login failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if strings.HasPrefix(c.name, "jwks") {
				// A new client, with no keys yet, on the same port and storage.
				newGateway(t, g.sameSite(gatewayOptions{globalExtra: log.option}))
			}
			g.sgid.SetFaults(c.faults)
			start := time.Now()
			g.failedLogin(t, log, c.name, c.status, c.title)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the failure took %v", d)
			}
			g.sgid.SetFaults(sgidtest.Faults{})
			if s := g.login(g.newBrowser(), "/after"); s.header("X-Sgid-Sub") == "" {
				t.Error("no login once sgID behaves again")
			}
		})
	}
}

func TestAbuseJWKSRotationDuringLogins(t *testing.T) {
	const refreshInterval = 10 * time.Second // sgid.Config.JWKSRefreshInterval's default
	log := newCaddyLog(t)
	g := newGateway(t, gatewayOptions{globalExtra: log.option})
	g.login(g.newBrowser(), "/")

	// Eight logins wait at their callback; sgID signs each ID token when the
	// gateway exchanges the code. Four finish together on the cached key, then
	// four race a rotation: each lands or fails cleanly.
	var callbacks []*browser
	var urls []string
	for range 8 {
		b := g.newBrowser()
		callbacks, urls = append(callbacks, b), append(urls, g.callbackURL(b, "/race"))
	}
	finish := func(from, to int, during func()) (landed int) {
		results := make(chan outcome, to-from)
		var wg sync.WaitGroup
		for i := from; i < to; i++ {
			wg.Go(func() { results <- fetch(callbacks[i].client, urls[i], "text/html") })
		}
		if during != nil {
			during()
		}
		wg.Wait()
		close(results)
		for o := range results {
			if o.status == http.StatusOK && strings.Contains(o.body, `"/race"`) {
				landed++
			} else if msg := checkFailure(o, http.StatusBadGateway, "Login failed", log.text(t)); msg != "" {
				t.Errorf("a login racing a key rotation: %s", msg)
			}
		}
		return landed
	}
	if n := finish(0, 4, nil); n != 4 {
		t.Errorf("%d of 4 concurrent logins on the cached key landed", n)
	}
	landed := finish(4, 8, func() { g.sgid.RotateSigningKey() })

	// Between logins: sgID signs with a key the gateway has not fetched.
	kid, err := g.sgid.RotateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	o := fetch(g.newBrowser().client, g.base+"/next", "text/html")
	if o.status != http.StatusOK {
		if msg := checkFailure(o, http.StatusBadGateway, "Login failed", log.text(t)); msg != "" {
			t.Errorf("the first login after a rotation: %s", msg)
		}
	}
	t.Logf("%d of 4 logins racing a rotation landed; the login right after another rotation got %d", landed, o.status)

	// Once the JWKS may be fetched again, the new key is learned, once.
	time.Sleep(refreshInterval + 500*time.Millisecond)
	before := g.sgid.Requests(sgidtest.EndpointJWKS)
	if s := g.login(g.newBrowser(), "/later"); s.header("X-Sgid-Sub") == "" {
		t.Fatalf("no login with key %s after the refresh interval", kid)
	}
	fetched := g.sgid.Requests(sgidtest.EndpointJWKS) - before
	g.login(g.newBrowser(), "/again")
	if fetched < 1 || g.sgid.Requests(sgidtest.EndpointJWKS)-before != fetched {
		t.Errorf("JWKS fetches: %d for the login with the new key, %d more for the next, want at least 1 then none",
			fetched, g.sgid.Requests(sgidtest.EndpointJWKS)-before-fetched)
	}
}

func TestAbuseClockSkewBeyondTheToleranceFailsCleanly(t *testing.T) {
	var offset atomic.Int64
	srv, err := sgidtest.NewServer(sgidtest.Options{
		TokenTTL: time.Minute,
		Now:      func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	log := newCaddyLog(t)
	g := newGateway(t, gatewayOptions{sgid: srv, directives: "clock_skew 30s", globalExtra: log.option})
	for _, c := range []struct {
		sgidClock time.Duration // sgID's clock against this machine's
		reason    string        // "" when the login works
	}{
		{20 * time.Second, ""},
		{45 * time.Second, "issued in the future"}, // within the 60s default, not the 30s configured
		{90 * time.Second, "issued in the future"},
		{-80 * time.Second, ""}, // the 1m token expired 20s ago: within 30s
		{-3 * time.Minute, "expired"},
	} {
		t.Run(fmt.Sprint(c.sgidClock), func(t *testing.T) {
			offset.Store(int64(c.sgidClock))
			if c.reason == "" {
				if s := g.login(g.newBrowser(), "/"); s.header("X-Sgid-Sub") == "" {
					t.Error("no identity")
				}
				return
			}
			o := g.failedLogin(t, log, "skewed clock", http.StatusBadGateway, "Login failed")
			if m := errorRef.FindStringSubmatch(o.body); m != nil {
				for _, line := range strings.Split(log.text(t), "\n") {
					// The audit line has the reference, not the cause.
					if strings.Contains(line, m[1]) && !isAuditLine(line) && !strings.Contains(line, c.reason) {
						t.Errorf("the log line for %s does not say %q: %.300s", m[1], c.reason, line)
					}
				}
			}
		})
	}
}

func TestAbuseFaultyLoginsLeakNoGoroutines(t *testing.T) {
	// A leak of one goroutine per failed login leaves 80; connection pools
	// refilled after the faults cut connections leave a few.
	const margin = 15
	log := newCaddyLog(t)
	g := newGateway(t, gatewayOptions{directives: "timeout 300ms", globalExtra: log.option})
	g.login(g.newBrowser(), "/")
	phases := []sgidtest.Faults{
		{Delay: map[sgidtest.Endpoint]time.Duration{sgidtest.EndpointToken: 3 * time.Second}},
		{Delay: map[sgidtest.Endpoint]time.Duration{sgidtest.EndpointUserInfo: 3 * time.Second}},
		{Status: map[sgidtest.Endpoint]int{sgidtest.EndpointUserInfo: 503}},
		{Malformed: map[sgidtest.Endpoint]bool{sgidtest.EndpointToken: true}},
		{Oversized: map[sgidtest.Endpoint]int{sgidtest.EndpointUserInfo: 20 << 20}},
	}
	burst := func() {
		t.Helper()
		for _, f := range phases {
			g.sgid.SetFaults(f)
			var wg sync.WaitGroup
			var bad atomic.Int32
			for range 8 {
				wg.Go(func() {
					if o := fetch(g.newBrowser().client, g.base+"/x", "text/html"); o.status != http.StatusBadGateway {
						bad.Add(1)
					}
				})
			}
			wg.Wait()
			if bad.Load() > 0 {
				t.Errorf("faults %+v: %d logins did not end in a 502", f, bad.Load())
			}
		}
		g.sgid.SetFaults(sgidtest.Faults{})
	}
	burst() // warm-up: connection pools and Caddy's own goroutines fill up
	baseline := goroutines()
	burst()
	burst()
	left, kinds := leftSince(baseline)
	if left > margin {
		t.Errorf("%d goroutines started during 80 faulty logins are still running: a leak%s", left, leakReport(kinds))
	} else {
		t.Logf("%d goroutines started during 80 faulty logins are still running%s", left, leakReport(kinds))
	}

	// The measure can fail: HTTP responses left open, fewer than the logins
	// above, are caught, though no frame of theirs is this module's.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	for range 20 {
		resp, err := (&http.Client{Transport: tr}).Get(g.sgid.Issuer() + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
	}
	if leaky, kinds := leftSince(baseline); leaky <= left+margin {
		t.Errorf("20 responses left open went unnoticed: %d goroutines against %d%s", leaky, left, leakReport(kinds))
	}
	log.assertNoPanic(t)
}
