package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// The trust boundary (issue 11): a session, a login attempt or an assertion is
// valid only for the configuration and the site that made it.

// stagingIdP is a second fake sgID that knows the same client (id, secret and
// key) as prod: what an operator gets by copying the production block for a
// staging site pointed at a test IdP. Its users are other people.
func stagingIdP(t *testing.T, prod *sgidtest.Server) *sgidtest.Server {
	t.Helper()
	srv := sgidtest.Start(t, sgidtest.Options{
		Client:  sgidtest.Client{ID: prod.ClientID(), Secret: prod.ClientSecret(), PublicKey: &prod.ClientKey().PublicKey},
		Persona: sgidtest.Personas()[1].ID,
	})
	return srv
}

// A staging site on the same Caddy with the production client id but a test
// IdP makes sessions the production site does not accept, whether the keys are
// generated (kept in storage per issuer and client) or a session_secret is
// shared (the cookies are bound to issuer, client and site).
func TestTrustSessionsFromAnotherIdPOrSiteAreNoSession(t *testing.T) {
	for _, tt := range []struct {
		name, directives string
	}{
		{"generated keys", ""},
		{"shared session_secret", "session_secret " + strings.Repeat("s", 40)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			idp := newIdP(t)
			staging := stagingIdP(t, idp)
			stagingBase := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
			prod := newGateway(t, gatewayOptions{sgid: idp, directives: tt.directives,
				extraSites: site(stagingBase, "$UPSTREAM", sgidBlock(staging, tt.directives))})

			b := prod.newBrowser()
			resp, body := b.get(stagingBase + "/")
			s := upstreamSaw(t, resp, body)
			stagingSub := s.header("X-Sgid-Sub")
			if stagingSub == "" {
				t.Fatal("the staging site logged nobody in: the test would prove nothing")
			}
			// The browser's jar sends the staging cookie to production too:
			// cookies are per host, not per port.
			if got := prod.whoIs(b); got != "" {
				t.Fatalf("production accepted the staging IdP's session for %q", got)
			}
			if resp, body := b.api(http.MethodGet, prod.base+"/api"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("production answered the staging session with %d %.200s, want 401", resp.StatusCode, body)
			}
			// A real login on production still works beside it.
			resp, body = b.get(prod.base + "/")
			if got := upstreamSaw(t, resp, body).header("X-Sgid-Sub"); got == "" || got == stagingSub {
				t.Fatalf("production's own login gave sub %q", got)
			}
		})
	}
}

// Keys generated into storage are kept per issuer and client id.
func TestTrustGeneratedKeysAreKeptPerIssuerAndClient(t *testing.T) {
	idp := newIdP(t)
	staging := stagingIdP(t, idp)
	other := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	prod := newGateway(t, gatewayOptions{sgid: idp, extraSites: site(other, "$UPSTREAM", sgidBlock(staging, ""))})
	prod.login(prod.newBrowser(), "/")
	resp, body := prod.newBrowser().get(other + "/")
	upstreamSaw(t, resp, body)
	dirs, err := filepath.Glob(filepath.Join(prod.storage, "sgid", "*", "session.secret"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 2 {
		t.Fatalf("storage holds session secrets %v, want one per issuer and client (2)", dirs)
	}
	a, _ := os.ReadFile(dirs[0])
	b, _ := os.ReadFile(dirs[1])
	if string(a) == string(b) {
		t.Fatal("the two issuers' session secrets are the same")
	}
}

// A session written over HTTPS (a __Host- cookie) is no session on a plain-HTTP
// site that shares the secret, and the reverse.
func TestTrustHTTPSAndHTTPSitesSharingASecretDoNotShareSessions(t *testing.T) {
	secret := "session_secret " + strings.Repeat("x", 40)
	httpBase := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	idp := newIdP(t)
	g := newGateway(t, gatewayOptions{https: true, sgid: idp, directives: secret,
		extraSites: site(httpBase, "$UPSTREAM", sgidBlock(idp, secret))})

	secure := g.newBrowser()
	g.login(secure, "/")
	var hostCookie *http.Cookie
	for _, c := range secure.cookies(g.base) {
		if strings.HasPrefix(c.Name, "__Host-sgid_session") {
			hostCookie = c
		}
	}
	if hostCookie == nil {
		t.Fatal("no __Host- session cookie after an HTTPS login")
	}
	plain := g.newBrowser()
	for _, name := range []string{hostCookie.Name, strings.TrimPrefix(hostCookie.Name, "__Host-")} {
		if resp, body := plain.api(http.MethodGet, httpBase+"/api", "Cookie: "+name+"="+hostCookie.Value); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the HTTP site answered the HTTPS session (as %s) with %d %.200s, want 401", name, resp.StatusCode, body)
		}
	}

	// The reverse: a plain-HTTP session presented to the HTTPS site.
	resp, body := plain.get(httpBase + "/")
	upstreamSaw(t, resp, body)
	var plainCookie *http.Cookie
	for _, c := range plain.cookies(httpBase) {
		if c.Name == "sgid_session" {
			plainCookie = c
		}
	}
	if plainCookie == nil {
		t.Fatal("no session cookie after an HTTP login")
	}
	for _, name := range []string{"sgid_session", "__Host-sgid_session"} {
		if resp, body := g.newBrowser().api(http.MethodGet, g.base+"/api", "Cookie: "+name+"="+plainCookie.Value); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the HTTPS site answered the HTTP session (as %s) with %d %.200s, want 401", name, resp.StatusCode, body)
		}
	}
}

// On a site that answers several host names, a client that chooses the Host
// gets no assertion for it and starts no login: 421. The assertion's iss and
// aud are the configured site's, whatever Host a request names.
func TestTrustHostTheSiteDoesNotServeIsMisdirected(t *testing.T) {
	port := freePort(t)
	idp := newIdP(t)
	// One site block for two host names, fixed to one of them by redirect_uri.
	g := newGateway(t, gatewayOptions{sgid: idp, httpPort: port, noSgIDBlock: true,
		extraSites: site(fmt.Sprintf("http://localhost:%d, http://127.0.0.2:%d", port, port), "$UPSTREAM",
			sgidBlock(idp, "redirect_uri http://localhost:"+fmt.Sprint(port)+"/.sgid/callback"))})
	b := g.newBrowser()
	site := fmt.Sprintf("http://localhost:%d", port)
	resp, body := b.get(site + "/")
	s := upstreamSaw(t, resp, body)
	if s.header("X-Sgid-Sub") == "" {
		t.Fatal("no login on the configured host: the test would prove nothing")
	}
	claims := assertionClaims(t, s.header("X-Sgid-Assertion"))
	if claims["iss"] != site || claims["aud"] != fmt.Sprintf("localhost:%d", port) {
		t.Fatalf("assertion iss %v aud %v, want %s and localhost:%d", claims["iss"], claims["aud"], site, port)
	}
	cookie := cookieHeaderFor(t, b, site)

	// The same cookie, and no cookie, with the other host name the site
	// block answers: Host is the client's to choose.
	for _, host := range []string{fmt.Sprintf("127.0.0.2:%d", port), fmt.Sprintf("LOCALHOST:%d", port+1)} {
		for _, c := range []string{cookie, ""} {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.2:%d/", port), nil)
			if strings.HasPrefix(host, "LOCALHOST") {
				req.URL.Host = fmt.Sprintf("localhost:%d", port)
			}
			req.Host = host
			req.Header.Set("Accept", "text/html")
			if c != "" {
				req.Header.Set("Cookie", c)
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			var body strings.Builder
			buf := make([]byte, 4096)
			n, _ := resp.Body.Read(buf)
			body.Write(buf[:n])
			resp.Body.Close()
			if resp.StatusCode != http.StatusMisdirectedRequest {
				t.Errorf("Host %s (cookie %t): %d %.200s, want 421", host, c != "", resp.StatusCode, body.String())
			}
			if strings.Contains(body.String(), "X-Sgid-Assertion") || resp.Header.Get("Location") != "" || len(resp.Cookies()) > 0 {
				t.Errorf("Host %s (cookie %t): the refusal reached the upstream, redirected or set a cookie", host, c != "")
			}
		}
	}
}

// newIdP is a fake sgID for one test.
func newIdP(t *testing.T) *sgidtest.Server {
	t.Helper()
	srv := sgidtest.Start(t, sgidtest.Options{})
	return srv
}

// cookieHeaderFor is the Cookie header b's jar sends to base.
func cookieHeaderFor(t *testing.T, b *browser, base string) string {
	t.Helper()
	cs := b.cookies(base)
	if len(cs) == 0 {
		t.Fatalf("the browser holds no cookie for %s", base)
	}
	return cookieHeader(cs)
}

// assertionClaims reads an assertion's claims without verifying it.
func assertionClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	tok := parseAssertion(t, token, jose.ES256, jose.HS256)
	var claims map[string]any
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// Two sites of one client on one Caddy each have their own generated signing
// key: an assertion minted by one does not verify against the other's JWKS.
func TestTrustEachSiteHasItsOwnSigningKey(t *testing.T) {
	other := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	idp := newIdP(t)
	g := newGateway(t, gatewayOptions{sgid: idp, extraSites: site(other, "$UPSTREAM", sgidBlock(idp, ""))})
	resp, body := g.newBrowser().get(other + "/")
	s := upstreamSaw(t, resp, body)
	token := s.header("X-Sgid-Assertion")
	mine, theirs := g.jwks(other), g.jwks(g.base)
	if mine.Keys[0].KeyID == theirs.Keys[0].KeyID {
		t.Fatal("both sites publish the same signing key")
	}
	tok := parseAssertion(t, token, jose.ES256)
	var claims map[string]any
	if err := tok.Claims(mine.Keys[0].Key, &claims); err != nil {
		t.Fatalf("the assertion does not verify with its own site's key: %v", err)
	}
	if err := tok.Claims(theirs.Keys[0].Key, &claims); err == nil {
		t.Fatal("one site's assertion verifies with the other site's key")
	}
}
