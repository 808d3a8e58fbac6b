package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// sharedStorable tells whether a shared cache (a CDN, a corporate proxy) may
// store a response with this header (RFC 9111 §3, §5.2.2): not when it says
// no-store or an unqualified private.
func sharedStorable(h http.Header) bool {
	for _, line := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(line, ",") {
			switch strings.ToLower(strings.TrimSpace(d)) {
			case "no-store", "private":
				return false
			}
		}
	}
	return true
}

// cacheCases are upstream answers behind a session, and the Cache-Control the
// browser must get for each: plain on a request that leaves the session as it
// is, refreshed on one whose response slides the session cookie.
type cacheCase struct {
	path               string
	upstream           map[string]string
	plain, refreshed   string
	goneWhenRefreshed  []string // headers a refreshed response must not carry
	keptWhenRefreshed  []string // and those it keeps
	upstreamNotReached bool
}

var cacheCases = []cacheCase{
	{path: "/cache/public", upstream: map[string]string{"Cache-Control": "public, max-age=600"},
		plain: "public, max-age=600", refreshed: "private, max-age=600"},
	{path: "/cache/none", plain: "private", refreshed: "private"},
	{path: "/cache/expires", upstream: map[string]string{"Expires": "Wed, 21 Oct 2099 07:28:00 GMT"},
		plain: "", refreshed: "private", keptWhenRefreshed: []string{"Expires"}},
	{path: "/cache/cdn", upstream: map[string]string{"Cache-Control": "public, s-maxage=600, max-age=60",
		"CDN-Cache-Control": "max-age=600", "Surrogate-Control": "max-age=600"},
		plain: "public, s-maxage=600, max-age=60", refreshed: "private, max-age=60",
		goneWhenRefreshed: []string{"CDN-Cache-Control", "Surrogate-Control"}},
	{path: "/cache/qualified", upstream: map[string]string{"Cache-Control": `private="Set-Cookie", max-age=600`},
		plain: `private="Set-Cookie", max-age=600`, refreshed: "private, max-age=600"},
	{path: "/cache/no-store", upstream: map[string]string{"Cache-Control": "no-store"},
		plain: "no-store", refreshed: "no-store"},
	// reverse_proxy fails: Caddy answers 502 itself, with the header map the
	// refresh wrote its cookie into.
	{path: "/down/page", plain: "private", refreshed: "private", upstreamNotReached: true},
}

// TestTrustRefreshedSessionIsNeverSharedCacheable ages a session past the
// point where the gateway slides it, then fetches upstream answers that a
// shared cache would store: the response that carries the new session cookie
// must not be storable by one, whatever the upstream said, and an
// authenticated response the upstream said nothing about is private too.
func TestTrustRefreshedSessionIsNeverSharedCacheable(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range cacheCases {
			if c.path == r.URL.Path {
				for k, v := range c.upstream {
					w.Header().Set(k, v)
				}
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "for one user")
	}))
	t.Cleanup(up.Close)
	// idle_timeout 6s: the session is slid once it is 3s old (half the idle
	// window, the cap on how long the gateway waits), and lives until 6s.
	g := newGateway(t, gatewayOptions{
		directives: "idle_timeout 6s",
		siteExtra: fmt.Sprintf("route /cache/* {\n\t\treverse_proxy %s\n\t}\n\troute /down/* {\n\t\treverse_proxy 127.0.0.1:%d\n\t}",
			up.URL, freePort(t)),
	})
	const slideAfter = 3*time.Second + 200*time.Millisecond
	type pending struct {
		b        *browser
		loggedIn time.Time
	}
	var sessions []pending
	check := func(what string, c cacheCase, resp *http.Response, body string, want string, refreshed bool) {
		t.Helper()
		if c.upstreamNotReached {
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("%s %s: %d, want Caddy's 502", what, c.path, resp.StatusCode)
			}
		} else if resp.StatusCode != http.StatusOK || body != "for one user" {
			t.Fatalf("%s %s: %d %.200s, want the upstream's page", what, c.path, resp.StatusCode, body)
		}
		if setsSession(resp) != refreshed {
			t.Fatalf("%s %s: sets the session cookie: %v, want %v; the test's timing is off", what, c.path, setsSession(resp), refreshed)
		}
		if got := strings.Join(resp.Header.Values("Cache-Control"), ", "); got != want {
			t.Errorf("%s %s: Cache-Control %q, want %q", what, c.path, got, want)
		}
		if refreshed && sharedStorable(resp.Header) {
			t.Errorf("%s %s: a shared cache may store the response that carries the session cookie: %v", what, c.path, resp.Header)
		}
	}
	for _, c := range cacheCases {
		b := g.newBrowser()
		g.login(b, "/")
		sessions = append(sessions, pending{b, time.Now()})
		resp, body := b.get(g.base + c.path)
		check("without a refresh", c, resp, body, c.plain, false)
	}
	for i, c := range cacheCases {
		time.Sleep(time.Until(sessions[i].loggedIn.Add(slideAfter)))
		resp, body := sessions[i].b.get(g.base + c.path)
		check("refreshed", c, resp, body, c.refreshed, true)
		for _, h := range c.goneWhenRefreshed {
			if resp.Header.Get(h) != "" {
				t.Errorf("refreshed %s: %s: %s is still there: a CDN obeys it instead of Cache-Control", c.path, h, resp.Header.Get(h))
			}
		}
		for _, h := range c.keptWhenRefreshed {
			if resp.Header.Get(h) != c.upstream[h] {
				t.Errorf("refreshed %s: %s %q, want the upstream's %q", c.path, h, resp.Header.Get(h), c.upstream[h])
			}
		}
	}
}

// TestTrustGatewayCookiesAreNeverSharedCacheable follows every path on which
// the gateway sets or clears a cookie by itself (login start, sgID's return,
// a callback that fails after spending its attempt, logout): each response
// that carries a Set-Cookie must be one no shared cache may store.
func TestTrustGatewayCookiesAreNeverSharedCacheable(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	var withCookies []string
	visit := func(b *browser, what, rawURL string) *http.Response {
		t.Helper()
		resp, _ := b.noFollow().get(rawURL)
		if len(resp.Header.Values("Set-Cookie")) > 0 {
			withCookies = append(withCookies, what)
			if sharedStorable(resp.Header) {
				t.Errorf("%s: %d sets cookies and a shared cache may store it: Cache-Control %q",
					what, resp.StatusCode, resp.Header.Values("Cache-Control"))
			}
		}
		return resp
	}

	b := g.newBrowser()
	start := visit(b, "a page without a session", g.base+"/page")
	sgid := visit(b, "sgID's authorize", start.Header.Get("Location")) // not the gateway's; must set nothing
	done := visit(b, "the callback", sgid.Header.Get("Location"))
	if done.StatusCode != http.StatusSeeOther || !setsSession(done) {
		t.Fatalf("the callback: %d, want a 303 with the session", done.StatusCode)
	}
	visit(b, "/.sgid/login with a session", g.base+"/.sgid/login?return_to=/x")
	visit(b, "logout", g.base+"/.sgid/logout")

	failing := g.newBrowser()
	cb := g.callbackURL(failing, "/wanted")
	visit(failing, "a callback sgID refuses", strings.Replace(cb, "code=", "code=x", 1))

	want := []string{"a page without a session", "the callback", "/.sgid/login with a session", "logout", "a callback sgID refuses"}
	if !slices.Equal(withCookies, want) {
		t.Errorf("responses that set cookies: %q, want %q: the test no longer covers what it names", withCookies, want)
	}
}
