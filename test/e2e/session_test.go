package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The session: its cookies (the helpers that read them are here), what a
// tampered one gets, and how long a session lives across idle time, secret
// rotation and reloads.

// sessionCookie tells a session's cookie (any chunk, __Host- or not) from a
// login attempt's, attemptCookie the other way round, by name.
func sessionCookie(name string) bool {
	return strings.Contains(name, "sgid_session") && !attemptCookie(name)
}

func attemptCookie(name string) bool { return strings.Contains(name, "_login_") }

// sessionCookies are the session's cookies (chunks included) the jar holds for
// the gateway, without the login attempts'.
func (g *gateway) sessionCookies(b *browser) []*http.Cookie {
	g.t.Helper()
	var out []*http.Cookie
	for _, c := range b.cookies(g.base) {
		if sessionCookie(c.Name) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		g.t.Fatal("no session cookie in the jar")
	}
	return out
}

// withCookies is a new browser holding only the given cookies for the gateway.
func (g *gateway) withCookies(cookies []*http.Cookie) *browser {
	b := g.newBrowser()
	b.setCookies(g.base, cookies...)
	return b
}

// setsSession tells whether a response sets (not deletes) a session cookie.
func setsSession(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if sessionCookie(c.Name) && c.MaxAge >= 0 && c.Value != "" {
			return true
		}
	}
	return false
}

// cookieHeader writes cookies as one Cookie header line, exactly as given.
func cookieHeader(cs []*http.Cookie) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Name + "=" + c.Value
	}
	return "Cookie: " + strings.Join(parts, "; ")
}

func clone(cs []*http.Cookie) []*http.Cookie {
	out := make([]*http.Cookie, len(cs))
	for i, c := range cs {
		out[i] = &http.Cookie{Name: c.Name, Value: c.Value}
	}
	return out
}

// changeAt puts another base64url character at s[i]: 'A', or 'B' where
// s[i] is 'A'.
func changeAt(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

func TestTamperedSessionCookieIsACleanRelogin(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	g.login(b, "/")
	good := g.sessionCookies(b)

	tamper := map[string]func(string) string{
		"bit flip in the middle": func(v string) string { return changeAt(v, len(v)/2) },
		"truncated":              func(v string) string { return v[:len(v)-5] },
		"empty":                  func(string) string { return "" },
		"not base64":             func(string) string { return "%%%not-a-cookie%%%" },
		"doubled value":          func(v string) string { return v + v },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			bad := clone(good)
			bad[0].Value = f(bad[0].Value)
			nb := g.withCookies(bad)

			resp, body := nb.noFollow().get(g.base + "/page")
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), g.sgid.URL()) {
				t.Fatalf("navigation with a tampered cookie: %d to %q, want 302 to sgID; body %.200s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			resp, body = nb.api(http.MethodGet, g.base+"/page")
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "login_url") {
				t.Fatalf("API call with a tampered cookie: %d %.200s, want 401 with login_url", resp.StatusCode, body)
			}
			// The re-login goes through and replaces the bad cookie.
			s := g.login(nb, "/after")
			if s.Path != "/after" || s.header("X-Sgid-Sub") == "" {
				t.Errorf("re-login after a tampered cookie: upstream saw %q with sub %q", s.Path, s.header("X-Sgid-Sub"))
			}
		})
	}
}

func TestHTTPSCookiesAreHostPrefixedAndSecure(t *testing.T) {
	g := newGateway(t, gatewayOptions{https: true})
	b := g.newBrowser()
	var setCookies []string
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if r := req.Response; r != nil && r.Request.URL.Host == mustURL(t, g.base).Host {
			setCookies = append(setCookies, r.Header.Values("Set-Cookie")...)
		}
		return nil
	}
	s := g.login(b, "/secure")
	if s.header("X-Sgid-Sub") == "" {
		t.Fatal("no identity after an HTTPS login")
	}
	if len(setCookies) < 2 {
		t.Fatalf("saw %d Set-Cookie headers from the gateway, want the attempt and the session", len(setCookies))
	}
	var session bool
	for _, sc := range setCookies {
		c, err := http.ParseSetCookie(sc)
		if err != nil {
			t.Fatalf("Set-Cookie %.60s: %v", sc, err)
		}
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly {
			t.Errorf("cookie %s: secure=%v path=%q domain=%q httponly=%v, want __Host-, Secure, Path=/, no Domain, HttpOnly",
				c.Name, c.Secure, c.Path, c.Domain, c.HttpOnly)
		}
		session = session || c.Name == "__Host-sgid_session"
	}
	if !session {
		t.Error("no __Host-sgid_session cookie was set")
	}
	tok := parseAssertion(t, s.header("X-Sgid-Assertion"), jose.ES256)
	var claims jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil || claims.Issuer != g.base {
		t.Errorf("assertion iss = %q, want %q", claims.Issuer, g.base)
	}
}

func TestIdleTimeoutEndsASession(t *testing.T) {
	g := newGateway(t, gatewayOptions{directives: "idle_timeout 1s\nsession_lifetime 1h"})
	b := g.newBrowser()
	g.login(b, "/")
	time.Sleep(2100 * time.Millisecond)
	if got := g.apiStatus(b); got != http.StatusUnauthorized {
		t.Fatalf("after the idle timeout: %d, want 401", got)
	}
}

func TestAbsoluteLifetimeEndsAnActiveSession(t *testing.T) {
	g := newGateway(t, gatewayOptions{directives: "idle_timeout 1s\nsession_lifetime 2s"})
	b := g.newBrowser()
	g.login(b, "/")
	deadline := time.Now().Add(5 * time.Second)
	var status int
	for time.Now().Before(deadline) {
		status = g.apiStatus(b)
		if status == http.StatusUnauthorized {
			break
		}
		time.Sleep(300 * time.Millisecond) // active: well inside the idle window
	}
	if status != http.StatusUnauthorized {
		t.Fatal("a session kept active outlived its absolute lifetime")
	}
}

func TestSecretRotationKeepsUsersLoggedIn(t *testing.T) {
	const s1 = "first-secret-first-secret-first-secret"
	const s2 = "second-secret-second-secret-second-secret"
	g := newGateway(t, gatewayOptions{directives: "session_secret " + s1})
	b, unseen := g.newBrowser(), g.newBrowser()
	g.login(b, "/")
	g.login(unseen, "/")
	reload := func(secrets string) {
		newGateway(t, g.sameSite(gatewayOptions{directives: "session_secret " + secrets}))
	}
	reload(s2 + " " + s1)
	if got := g.apiStatus(b); got != http.StatusOK {
		t.Fatalf("after adding a new secret in front: %d, want 200", got)
	}
	reload(s2)
	// The request during the overlap resealed b's session under the new secret;
	// the user not seen then still holds a cookie only the removed secret opens.
	if got := g.apiStatus(b); got != http.StatusOK {
		t.Errorf("a user seen while both secrets were listed, after the old one was removed: %d, want 200", got)
	}
	if got := g.apiStatus(unseen); got != http.StatusUnauthorized {
		t.Errorf("a cookie only the removed secret opens: %d, want 401", got)
	}
}

func TestGeneratedKeysSurviveAReload(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	g.login(b, "/")
	newGateway(t, g.sameSite(gatewayOptions{directives: "audience reloaded"}))
	if got := g.apiStatus(b); got != http.StatusOK {
		t.Fatalf("after a reload with the same storage: %d, want 200", got)
	}
	// A new storage means new keys: the old cookie is no session there.
	newGateway(t, g.sameSite(gatewayOptions{storage: tempDir(t)}))
	if got := g.apiStatus(b); got != http.StatusUnauthorized {
		t.Fatalf("with other storage: %d, want 401", got)
	}
}
