package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// What reaches the upstream: the identity the gateway sets, never one a
// client sent, and never the gateway's own cookies.

// spoofHeaders are identity headers a client might send itself, in the case and
// separator variants CGI-style upstreams fold together.
var spoofHeaders = []string{
	"X-Sgid-Sub: attacker",
	"x-sgid-sub: attacker2",
	"X-SGID-MYINFO-NAME: Mallory",
	"X-Sgid-Assertion: forged.jwt.value",
	"X-Sgid-Anything-Else: forged",
	"X-Email: mallory@example.com",
	"x-email: mallory2@example.com",
	"X_Email: mallory3@example.com",
	"X_Sgid_Sub: attacker3",
	"x_sgid-myinfo_name: Mallory2",
}

// assertNoSpoof fails if any spoofed value reached the upstream.
func assertNoSpoof(t *testing.T, where string, s seen) {
	t.Helper()
	for name, values := range s.Headers {
		for _, v := range values {
			for _, bad := range []string{"attacker", "Mallory", "mallory", "forged"} {
				if strings.Contains(v, bad) {
					t.Errorf("%s: spoofed header reached the upstream: %s: %s", where, name, v)
				}
			}
		}
	}
}

func TestSpoofedIdentityHeadersNeverReachTheUpstream(t *testing.T) {
	// The server accepts underscore header names, as a PHP or CGI deployment
	// would need, so the gateway itself must drop them.
	opts := gatewayOptions{globalExtra: `servers {
		expected_underscore_headers X_Email X_Sgid_Sub x_sgid-myinfo_name
	}`}

	t.Run("authenticated", func(t *testing.T) {
		g := newGateway(t, opts)
		b := g.newBrowser()
		g.login(b, "/")
		resp, body := b.get(g.base+"/page", spoofHeaders...)
		s := upstreamSaw(t, resp, body)
		assertNoSpoof(t, "authenticated", s)
		if s.header("X-Sgid-Sub") == "" {
			t.Error("the real identity is missing")
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		o := opts
		o.directives = "anonymous"
		g := newGateway(t, o)
		resp, body := g.newBrowser().get(g.base+"/public", spoofHeaders...)
		s := upstreamSaw(t, resp, body)
		assertNoSpoof(t, "anonymous", s)
		if s.hasHeader("X-Sgid-Sub") {
			t.Error("an anonymous request carries X-Sgid-Sub")
		}
	})
	t.Run("unauthenticated and reserved paths answer without the upstream", func(t *testing.T) {
		g := newGateway(t, opts)
		b := g.newBrowser().noFollow()
		for _, path := range []string{"/page", "/.sgid/userinfo", "/.sgid/nothing", "/.sgid/callback?state=x&code=y"} {
			resp, body := b.api(http.MethodGet, g.base+path, spoofHeaders...)
			if resp.StatusCode == http.StatusOK || strings.Contains(body, `"headers"`) {
				t.Errorf("%s: reached the upstream (%d)", path, resp.StatusCode)
			}
			for _, bad := range []string{"attacker", "Mallory", "mallory"} {
				if strings.Contains(body, bad) {
					t.Errorf("%s: the response echoes a spoofed header", path)
				}
			}
		}
	})
}

// The upstream gets the identity, never the credential: the session cookie and
// any login attempt's cookie are removed from what it receives, while the app's
// own cookies pass as they were.
func TestUpstreamNeverSeesTheGatewaysCookies(t *testing.T) {
	check := func(t *testing.T, s seen, wantIdentity bool) {
		t.Helper()
		cookie := strings.Join(s.Headers["Cookie"], "; ")
		if cookie != "app_pref=dark" {
			t.Errorf("the upstream's Cookie header is %q, want only the app's app_pref=dark", cookie)
		}
		if got := s.header("X-Sgid-Sub") != ""; got != wantIdentity {
			t.Errorf("identity at the upstream: %v, want %v", got, wantIdentity)
		}
	}
	for _, anonymous := range []bool{false, true} {
		name := map[bool]string{false: "login required", true: "anonymous"}[anonymous]
		t.Run(name, func(t *testing.T) {
			o := gatewayOptions{}
			if anonymous {
				o.directives = "anonymous"
			}
			g := newGateway(t, o)
			b := g.newBrowser()
			b.setCookies(g.base, &http.Cookie{Name: "app_pref", Value: "dark"})
			if anonymous {
				resp, body := b.get(g.base + "/")
				check(t, upstreamSaw(t, resp, body), false)
				// A stale session cookie is not passed on either.
				b.setCookies(g.base, &http.Cookie{Name: "sgid_session", Value: "1.stale"})
				resp, body = b.get(g.base + "/")
				check(t, upstreamSaw(t, resp, body), false)
			}
			// Another tab's login in flight leaves its attempt cookie in the jar.
			resp, _ := b.noFollow().get(g.base + "/.sgid/login?return_to=/other-tab")
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d, want a redirect to sgID", resp.StatusCode)
			}
			resp, body := b.get(g.base + "/.sgid/login")
			s := upstreamSaw(t, resp, body)
			if !strings.Contains(cookieNames(b, g.base), "_login_") || !strings.Contains(cookieNames(b, g.base), "sgid_session") {
				t.Fatalf("the browser holds %s: the test needs a session and an attempt cookie", cookieNames(b, g.base))
			}
			check(t, s, true)
		})
	}
}

func cookieNames(b *browser, base string) string {
	var names []string
	for _, c := range b.cookies(base) {
		names = append(names, c.Name)
	}
	return strings.Join(names, " ")
}
