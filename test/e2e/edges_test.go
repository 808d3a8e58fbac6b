package e2e

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// sessionCookies are the session's cookies (chunks included) the jar holds for
// the gateway, without the login attempts'.
func (g *gateway) sessionCookies(b *browser) []*http.Cookie {
	g.t.Helper()
	var out []*http.Cookie
	for _, c := range b.client.Jar.Cookies(mustURL(g.t, g.base)) {
		if strings.Contains(c.Name, "sgid_session") && !strings.Contains(c.Name, "_login_") {
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
	b.client.Jar.SetCookies(mustURL(g.t, g.base), cookies)
	return b
}

func TestTamperedSessionCookieIsACleanRelogin(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	g.login(b, "/")
	good := g.sessionCookies(b)

	tamper := map[string]func(string) string{
		"bit flip in the middle": func(v string) string {
			i := len(v) / 2
			c := byte('A')
			if v[i] == 'A' {
				c = 'B'
			}
			return v[:i] + string(c) + v[i+1:]
		},
		"truncated":     func(v string) string { return v[:len(v)-5] },
		"empty":         func(string) string { return "" },
		"not base64":    func(string) string { return "%%%not-a-cookie%%%" },
		"doubled value": func(v string) string { return v + v },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			bad := make([]*http.Cookie, len(good))
			for i, c := range good {
				bad[i] = &http.Cookie{Name: c.Name, Value: c.Value}
			}
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

func TestCancelledLoginShowsTheCancelPage(t *testing.T) {
	srv := sgidtest.Start(t, sgidtest.Options{Chooser: true})
	g := newGateway(t, gatewayOptions{sgid: srv})
	b := g.newBrowser()

	resp, chooser := b.get(g.base + "/wanted?q=1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(chooser, "Continue as") {
		t.Fatalf("expected sgID's chooser page, got %d %.200s", resp.StatusCode, chooser)
	}
	// The person presses Cancel on the page the browser is on.
	cancel, err := srv.Cancel(t.Context(), resp.Request.URL.String())
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.get(cancel)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Login cancelled") {
		t.Fatalf("cancel: %d %.300s, want 403 with the cancel page", resp.StatusCode, body)
	}
	if !strings.Contains(body, "Error reference:") {
		t.Error("the cancel page has no error reference")
	}
	if want := "/.sgid/login?return_to=" + url.QueryEscape("/wanted?q=1"); !strings.Contains(html.UnescapeString(body), want) {
		t.Errorf("the cancel page does not offer to try again for the original URL (%s): %.400s", want, body)
	}
	// Cancelling spent the attempt: no session, and its cookie is gone.
	for _, c := range b.client.Jar.Cookies(mustURL(t, g.base)) {
		if strings.Contains(c.Name, "_login_") || c.Name == "sgid_session" {
			t.Errorf("cookie %s left after a cancelled login", c.Name)
		}
	}
	resp, _ = b.api(http.MethodGet, g.base+"/wanted")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after a cancelled login the API gets %d, want 401", resp.StatusCode)
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
	tok, err := jwt.ParseSigned(s.header("X-Sgid-Assertion"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil || claims.Issuer != g.base {
		t.Errorf("assertion iss = %q, want %q", claims.Issuer, g.base)
	}
}

func TestHS256AssertionVerifiesWithTheSharedSecret(t *testing.T) {
	const secret = "an-hs256-shared-secret-of-enough-length"
	g := newGateway(t, gatewayOptions{directives: "signing_secret " + secret + "\naudience legacy-app"})
	b := g.newBrowser()
	s := g.login(b, "/")

	raw := s.header("X-Sgid-Assertion")
	if _, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256}); err == nil {
		t.Error("an HS256 assertion parsed as ES256")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.Claims
	if err := tok.Claims([]byte("another-secret-of-enough-length-xxxxxx"), &claims); err == nil {
		t.Error("the assertion verified with the wrong secret")
	}
	var fields map[string]any
	if err := tok.Claims([]byte(secret), &claims, &fields); err != nil {
		t.Fatalf("the assertion does not verify with the shared secret: %v", err)
	}
	if err := claims.Validate(jwt.Expected{Issuer: g.base, AnyAudience: jwt.Audience{"legacy-app"}, Subject: s.header("X-Sgid-Sub")}); err != nil {
		t.Error(err)
	}
	if fields["myinfo.name"] != sgidtest.Personas()[0].Data["myinfo.name"] {
		t.Errorf("assertion myinfo.name = %v", fields["myinfo.name"])
	}
	resp, _ := b.api(http.MethodGet, g.base+"/.sgid/jwks.json")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("jwks.json with HS256: %d, want 404 (no public keys to publish)", resp.StatusCode)
	}
}

func TestGatewayPagesLeakNoRefererAndCannotBeFramed(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	resp, _ := b.get(g.base + "/.sgid/callback?code=c&state=s")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback without an attempt: %d, want 400", resp.StatusCode)
	}
	if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("callback page Referrer-Policy %q, want no-referrer", got)
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("error page can be framed: CSP %q, X-Frame-Options %q", resp.Header.Get("Content-Security-Policy"), resp.Header.Get("X-Frame-Options"))
	}
}
