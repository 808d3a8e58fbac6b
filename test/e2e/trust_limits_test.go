package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// cookieBytes is the size of the Cookie header b's jar sends to base.
func cookieBytes(b *browser, base string) int {
	return len(strings.TrimPrefix(cookieHeader(b.cookies(base)), "Cookie: "))
}

// A cross-site page that starts many logins with long targets cannot fill the
// browser's Cookie header: targets over session.MaxReturnTo fall back to "/",
// and the attempt cookies together stay within session.AttemptBudget. Logout
// and login still work with the header near Caddy's 16 KB limit.
func TestTrustLoginsStartedCrossSiteCannotBloatTheCookieHeader(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	victim := g.newBrowser()
	// Targets just within session.MaxReturnTo (kept: the budget must hold
	// them) and past it (dropped for "/").
	kept := "/" + strings.Repeat("a", session.MaxReturnTo-3)
	long := "/" + strings.Repeat("b", 1500)
	nf := victim.noFollow()
	for i := range 8 {
		for _, u := range []string{
			g.base + "/.sgid/login?return_to=" + url.QueryEscape(fmt.Sprintf("%s%d", kept, i)),
			g.base + fmt.Sprintf("%s%d", long, i), // a navigation to a long path
		} {
			if resp, body := nf.get(u); resp.StatusCode != http.StatusFound {
				t.Fatalf("starting a login: %d %.200s", resp.StatusCode, body)
			}
		}
	}
	got := cookieBytes(victim, g.base)
	if got == 0 {
		t.Fatal("no attempt cookie was set: the test would prove nothing")
	}
	if got > session.AttemptBudget {
		t.Fatalf("after 16 logins with long targets the Cookie header is %d bytes, over the attempt budget %d", got, session.AttemptBudget)
	}

	// A login completes beside them, and lands on "/" for a target too long.
	resp, body := victim.get(g.base + "/.sgid/login?return_to=" + url.QueryEscape(long))
	if s := upstreamSaw(t, resp, body); s.Path != "/" {
		t.Fatalf("a %d-byte target landed on %q, want /", len(long), s.Path)
	}

	// The app's own cookies bring the header near the limit: logout and login
	// still answer, and leave the gateway's share within its bound.
	var app []string
	for i := 0; cookieBytes(victim, g.base)+len(strings.Join(app, "; ")) < 15*1024-200; i++ {
		app = append(app, fmt.Sprintf("app%02d=%s", i, strings.Repeat("v", 500)))
	}
	appCookies := "Cookie: " + strings.Join(app, "; ")
	if resp, body := victim.noFollow().get(g.base+"/.sgid/login?return_to=/again", appCookies); resp.StatusCode != http.StatusFound {
		t.Fatalf("/.sgid/login near the header limit: %d %.200s", resp.StatusCode, body)
	}
	if n := cookieBytes(victim, g.base); n > session.MaxCookieHeaderBytes {
		t.Fatalf("the gateway's cookies take %d bytes, over session.MaxCookieHeaderBytes %d", n, session.MaxCookieHeaderBytes)
	}
	if resp, body := victim.get(g.base+"/.sgid/logout", appCookies); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Logged out") {
		t.Fatalf("/.sgid/logout near the header limit: %d %.200s", resp.StatusCode, body)
	}
	if who := g.whoIs(victim); who != "" {
		t.Fatalf("still logged in as %s after logout", who)
	}
}

// A login whose forwarded fields would not fit the session's cookies fails
// with a page that names the cause, and writes no session: a session past the
// budget would make every later request, logout included, too large.
func TestTrustSessionTooLargeForItsCookiesFailsTheLoginClearly(t *testing.T) {
	g := childrenGateway(t, gatewayOptions{sgid: sgidtest.Start(t, sgidtest.Options{Persona: "nur-aisyah"})})
	b := g.newBrowser()
	cb := g.callbackURL(b, "/")
	resp, body := b.noFollow().get(cb)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "too large") || !strings.Contains(body, "fewer fields") {
		t.Fatalf("callback: %d %.400s, want 500 naming the size as the cause", resp.StatusCode, body)
	}
	if setsSession(resp) {
		t.Fatal("the failed login set a session cookie")
	}
	for _, p := range sgidtest.Personas() {
		if p.ID == "nur-aisyah" && strings.Contains(body, p.Data["myinfo.name"]) {
			t.Fatal("the error page holds personal data")
		}
	}
}

// /.sgid/userinfo is part of the site: a user the require rules refuse gets
// 403 JSON there too, and none of their fields.
func TestTrustUserinfoAppliesRequire(t *testing.T) {
	g := newGateway(t, gatewayOptions{directives: "require myinfo.is_age_above_18 false"})
	b := g.newBrowser()
	if resp, body := b.get(g.base + "/"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the site: %d %.200s, want 403 for an adult when only minors may pass", resp.StatusCode, body)
	}
	resp, body := b.api(http.MethodGet, g.base+"/.sgid/userinfo")
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("userinfo: %d %.200s: not JSON", resp.StatusCode, body)
	}
	if resp.StatusCode != http.StatusForbidden || got["error"] != "access_denied" || got["sub"] != "" || got["myinfo.name"] != "" {
		t.Fatalf("userinfo for a refused user: %d %v, want 403 access_denied without fields", resp.StatusCode, got)
	}
}

// request_header runs after sgid: it sees the identity placeholders, and a
// header it sets reaches the upstream (the gateway strips only what the client
// sent).
func TestTrustRequestHeaderRunsAfterSgid(t *testing.T) {
	g := newGateway(t, gatewayOptions{siteExtra: `request_header X-App-User "{http.auth.user.id}"
	request_header X-Sgid-Tenant acme`})
	resp, body := g.newBrowser().get(g.base+"/", "X-Sgid-Tenant: forged")
	s := upstreamSaw(t, resp, body)
	if sub := s.header("X-Sgid-Sub"); sub == "" || s.header("X-App-User") != sub {
		t.Errorf("request_header's {http.auth.user.id} = %q, want the sub %q", s.header("X-App-User"), sub)
	}
	if got := s.Headers["X-Sgid-Tenant"]; len(got) != 1 || got[0] != "acme" {
		t.Errorf("X-Sgid-Tenant reached the upstream as %q, want only the configured acme", got)
	}
}
