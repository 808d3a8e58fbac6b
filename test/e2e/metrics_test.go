package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// scrape reads Caddy's admin /metrics: series (name plus labels, as printed) to
// value, and the raw text.
func scrape(t *testing.T) (map[string]float64, string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping /metrics: %d %v", resp.StatusCode, err)
	}
	series := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if line == "" || line[0] == '#' || i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series, string(body)
}

// The scenario runs with two sgid handlers in the config, the second never
// used, so that two handlers sharing one registry is part of it.
func TestMetricsCountLoginsFailuresDenialsRefreshesAndSgIDCalls(t *testing.T) {
	srv := sgidtest.Start(t, sgidtest.Options{})
	g := newGateway(t, gatewayOptions{
		sgid:       srv,
		directives: "require myinfo.is_age_above_18 true\n\t\tidle_timeout 4s",
		siteExtra:  "handle /second/* {\n\t\t" + sgidBlock(srv, "cookie_name second") + "\n\t}",
	})
	// Counters are process-wide and earlier tests count too: compare deltas.
	before, _ := scrape(t)

	// Someone under 18 logs in, and the require rule turns them away.
	if err := srv.SetPersona("lee-jun-wei"); err != nil {
		t.Fatal(err)
	}
	if resp, body := g.newBrowser().get(g.base + "/adults"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("minor: %d %.200s, want 403", resp.StatusCode, body)
	}
	if err := srv.SetPersona(sgidtest.Personas()[0].ID); err != nil {
		t.Fatal(err)
	}

	// Someone cancels at sgID.
	b := g.newBrowser()
	resp, _ := b.noFollow().get(g.base + "/")
	cancel, err := srv.Cancel(t.Context(), resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := b.get(cancel); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cancel: %d %.200s, want 403", resp.StatusCode, body)
	}

	// A callback no login attempt matches.
	if resp, _ := g.newBrowser().get(g.base + "/.sgid/callback?state=forged&code=forged"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("forged callback: %d, want 400", resp.StatusCode)
	}

	// sgID's token endpoint fails.
	srv.SetFaults(sgidtest.Faults{Status: map[sgidtest.Endpoint]int{sgidtest.EndpointToken: 503}})
	if resp, _ := g.newBrowser().get(g.base + "/"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("token endpoint down: %d, want 502", resp.StatusCode)
	}
	srv.SetFaults(sgidtest.Faults{})

	// A login, and a request once the session is due a refresh. With a 4s idle
	// timeout the cookie is rewritten from 2s on; its times are whole seconds, so
	// at 2.3s it is due and not yet idle.
	b = g.newBrowser()
	g.login(b, "/")
	time.Sleep(2300 * time.Millisecond)
	resp, body := b.get(g.base + "/after")
	upstreamSaw(t, resp, body)

	after, text := scrape(t)
	want := map[string]float64{
		"caddy_sgid_logins_started_total":                                       4,
		"caddy_sgid_logins_completed_total":                                     2,
		`caddy_sgid_logins_failed_total{reason="cancelled"}`:                    1,
		`caddy_sgid_logins_failed_total{reason="no_attempt"}`:                   1,
		`caddy_sgid_logins_failed_total{reason="sgid_unavailable"}`:             1,
		`caddy_sgid_logins_failed_total{reason="invalid_grant"}`:                0,
		`caddy_sgid_logins_failed_total{reason="bad_callback"}`:                 0,
		`caddy_sgid_logins_failed_total{reason="verification_failed"}`:          0,
		`caddy_sgid_logins_failed_total{reason="session_write"}`:                0,
		"caddy_sgid_require_denied_total":                                       1,
		"caddy_sgid_sessions_refreshed_total":                                   1,
		`caddy_sgid_request_duration_seconds_count{endpoint="token"}`:           3, // the failed call counts
		`caddy_sgid_request_duration_seconds_count{endpoint="userinfo"}`:        2,
		`caddy_sgid_request_duration_seconds_count{endpoint="jwks"}`:            1, // then cached
		`caddy_sgid_request_duration_seconds_bucket{endpoint="jwks",le="+Inf"}`: 1,
	}
	for series, delta := range want {
		got, ok := after[series]
		if !ok {
			t.Errorf("%s is not in the scrape", series)
			continue
		}
		if got-before[series] != delta {
			t.Errorf("%s went up by %v, want %v", series, got-before[series], delta)
		}
	}

	// Labels come from fixed sets or the configuration (a site's origin, a
	// key's fingerprint or kid); no personal data anywhere in the scrape.
	allowed := regexp.MustCompile(`^caddy_sgid_[a-z_]+(\{(reason="[a-z_]+"|endpoint="(token|userinfo|jwks)"(,le="[^"]+")?|(id="[A-Za-z0-9_-]+",kind="[a-z_]+",)?site="https?://[a-z0-9.:\[\]-]+")\})?$`)
	n := 0
	for series := range after {
		if strings.HasPrefix(series, "caddy_sgid_") {
			n++
			if !allowed.MatchString(series) {
				t.Errorf("unexpected labels on %s", series)
			}
		}
	}
	if n == 0 {
		t.Fatal("no caddy_sgid_ series")
	}
	forbidden := map[string]string{"client secret": srv.ClientSecret()}
	for _, p := range sgidtest.Personas() {
		forbidden[p.ID+" name"] = p.Data["myinfo.name"]
		forbidden[p.ID+" email"] = p.Data["myinfo.email"]
		forbidden[p.ID+" sub"] = g.subOf(p.ID)
	}
	for what, v := range forbidden {
		if len(v) > 3 && strings.Contains(text, v) {
			t.Errorf("the scrape holds %s", what)
		}
	}

	// A reload registers the same collectors in the new config's registry: the
	// counts carry on.
	newGateway(t, gatewayOptions{sgid: srv})
	reloaded, _ := scrape(t)
	for _, series := range []string{"caddy_sgid_logins_completed_total", `caddy_sgid_logins_failed_total{reason="cancelled"}`} {
		if reloaded[series] != after[series] {
			t.Errorf("after a reload %s = %v, want %v", series, reloaded[series], after[series])
		}
	}
}
