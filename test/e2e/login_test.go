package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// A login from start to end, the steps of one for other tests (callbackURL,
// assertRefused, whoIs), and the assertion the upstream gets.

// callbackURL starts a login for path in b and follows it through sgID's
// automatic consent, returning the callback URL sgID sent the browser back to,
// not yet visited. b keeps the login's attempt cookie.
func (g *gateway) callbackURL(b *browser, path string) string {
	g.t.Helper()
	nf := b.noFollow()
	resp, body := nf.get(g.base + path)
	if resp.StatusCode != http.StatusFound {
		g.t.Fatalf("starting a login at %s: %d %.200s", path, resp.StatusCode, body)
	}
	loc, err := g.sgid.Authorize(g.t.Context(), resp.Header.Get("Location"), "")
	if err != nil || !strings.Contains(loc, "/.sgid/callback?") {
		g.t.Fatalf("sgID's authorize: %q, %v; want a redirect to the callback", loc, err)
	}
	return loc
}

var errorRef = regexp.MustCompile(`Error reference: ([0-9a-f]{12})`)

// assertRefused checks a gateway error page: the status, the title, an error
// reference, and no session cookie set by the response.
func assertRefused(t *testing.T, what string, resp *http.Response, body string, status int, title string) {
	t.Helper()
	if resp.StatusCode != status || !strings.Contains(body, "<h1>"+title+"</h1>") {
		t.Errorf("%s: %d %.300s, want %d %q", what, resp.StatusCode, body, status, title)
	}
	if !errorRef.MatchString(body) {
		t.Errorf("%s: the page has no error reference", what)
	}
	if setsSession(resp) {
		t.Errorf("%s: the refused callback set a session cookie", what)
	}
}

// whoIs is the sub the gateway gives b's requests, or "" with no session.
func (g *gateway) whoIs(b *browser) string {
	g.t.Helper()
	resp, body := b.api(http.MethodGet, g.base+"/whoami")
	if resp.StatusCode == http.StatusUnauthorized {
		return ""
	}
	return upstreamSaw(g.t, resp, body).header("X-Sgid-Sub")
}

// jwks is the key set the site at base publishes, which must hold a key.
func (g *gateway) jwks(base string) jose.JSONWebKeySet {
	g.t.Helper()
	resp, body := g.newBrowser().api(http.MethodGet, base+"/.sgid/jwks.json")
	var set jose.JSONWebKeySet
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &set) != nil || len(set.Keys) == 0 {
		g.t.Fatalf("%s jwks: %d %.200s", base, resp.StatusCode, body)
	}
	return set
}

// parseAssertion parses an assertion signed with one of algs, or fails the
// test.
func parseAssertion(t *testing.T, token string, algs ...jose.SignatureAlgorithm) *jwt.JSONWebToken {
	t.Helper()
	tok, err := jwt.ParseSigned(token, algs)
	if err != nil {
		t.Fatalf("assertion %.40q: %v", token, err)
	}
	return tok
}

func TestLoginForwardsIdentityHeadersAndAVerifiableAssertion(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	s := g.login(b, "/app/page?x=1&y=two%20words")

	if s.Path != "/app/page?x=1&y=two%20words" {
		t.Errorf("upstream got %q after login, want the original URL with its query", s.Path)
	}
	persona := sgidtest.Personas()[0]
	wantSub := g.subOf(persona.ID)
	if got := s.header("X-Sgid-Sub"); got != wantSub {
		t.Errorf("X-Sgid-Sub = %q, want %q", got, wantSub)
	}
	if got, err := url.PathUnescape(s.header("X-Sgid-Myinfo-Name")); err != nil || got != persona.Data["myinfo.name"] {
		t.Errorf("X-Sgid-Myinfo-Name decodes to %q, want %q", got, persona.Data["myinfo.name"])
	}
	if got, _ := url.PathUnescape(s.header("X-Email")); got != persona.Data["myinfo.email"] {
		t.Errorf("X-Email = %q, want %q", got, persona.Data["myinfo.email"])
	}
	if s.hasHeader("X-Sgid-Myinfo-Is-Age-Above-18") {
		t.Error("a field that is not forwarded reached the upstream")
	}

	// The assertion verifies against the gateway's published keys.
	set := g.jwks(g.base)
	tok := parseAssertion(t, s.header("X-Sgid-Assertion"), jose.ES256)
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("assertion kid %q not in the JWKS", tok.Headers[0].KeyID)
	}
	var std jwt.Claims
	var fields map[string]any
	if err := tok.Claims(keys[0].Key, &std, &fields); err != nil {
		t.Fatalf("assertion does not verify: %v", err)
	}
	if err := std.Validate(jwt.Expected{Issuer: g.base, AnyAudience: jwt.Audience{mustURL(t, g.base).Host}, Subject: wantSub}); err != nil {
		t.Errorf("assertion claims: %v", err)
	}
	if fields["myinfo.name"] != persona.Data["myinfo.name"] {
		t.Errorf("assertion myinfo.name = %v", fields["myinfo.name"])
	}
	if _, ok := fields["myinfo.is_age_above_18"]; ok {
		t.Error("assertion carries a field that is not forwarded")
	}

	// A second request rides the session: no new login at sgID.
	before := g.sgid.Requests(sgidtest.EndpointToken)
	s2 := g.login(b, "/other")
	if g.sgid.Requests(sgidtest.EndpointToken) != before || s2.header("X-Sgid-Sub") != wantSub {
		t.Error("the second request did not use the session")
	}
}

func TestUnauthenticatedBrowserIsRedirectedAndAPIGets401(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser().noFollow()

	resp, _ := b.get(g.base + "/app?q=1")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("browser navigation: %d, want 302", resp.StatusCode)
	}
	loc := mustURL(t, resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), g.sgid.Issuer()+"/oauth/authorize?") {
		t.Fatalf("redirected to %s, not sgID's authorize endpoint", loc)
	}
	if loc.Query().Get("redirect_uri") != g.base+"/.sgid/callback" {
		t.Errorf("redirect_uri = %q", loc.Query().Get("redirect_uri"))
	}

	for _, tc := range []struct {
		name, method string
		headers      []string
	}{
		{"fetch GET", http.MethodGet, []string{"Sec-Fetch-Mode: cors"}},
		{"xhr GET", http.MethodGet, []string{"X-Requested-With: XMLHttpRequest", "Accept: text/html"}},
		{"POST", http.MethodPost, nil},
		{"plain API GET", http.MethodGet, nil},
	} {
		resp, body := b.api(tc.method, g.base+"/api/items?page=2", tc.headers...)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", tc.name, resp.StatusCode)
			continue
		}
		var out map[string]string
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Errorf("%s: body is not JSON: %.200s", tc.name, body)
			continue
		}
		if out["login_url"] != "/.sgid/login?return_to=%2Fapi%2Fitems%3Fpage%3D2" {
			t.Errorf("%s: login_url = %q", tc.name, out["login_url"])
		}
	}
}

func TestSeveralTabsLoggingInAtOnceAllSucceed(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	nf := b.noFollow()
	// Three tabs start a login each before any finishes.
	var authURLs []string
	for _, path := range []string{"/tab1", "/tab2", "/tab3"} {
		resp, _ := nf.get(g.base + path)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		authURLs = append(authURLs, resp.Header.Get("Location"))
	}
	// They finish in reverse order; every one lands where it started.
	for i := len(authURLs) - 1; i >= 0; i-- {
		resp, body := b.get(authURLs[i])
		s := upstreamSaw(t, resp, body)
		if want := []string{"/tab1", "/tab2", "/tab3"}[i]; s.Path != want {
			t.Errorf("tab %d landed on %q, want %q", i+1, s.Path, want)
		}
		if s.header("X-Sgid-Sub") == "" {
			t.Errorf("tab %d: no identity", i+1)
		}
	}
}

func TestPostLoginTargetsAreSameOriginOnly(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	for _, target := range []string{
		"//evil.example/x", "/\\evil.example", "https://evil.example/", "http:evil.example",
		"/%0d%0aLocation:%20https://evil.example", "javascript:alert(1)", "/.sgid/login",
	} {
		b := g.newBrowser()
		resp, body := b.get(g.base + "/.sgid/login?return_to=" + url.QueryEscape(target))
		s := upstreamSaw(t, resp, body)
		if resp.Request.URL.Host != mustURL(t, g.base).Host {
			t.Errorf("return_to %q took the browser to %s", target, resp.Request.URL)
		}
		if s.Path != "/" && !strings.HasPrefix(s.Path, "/%0d%0a") && !strings.HasPrefix(s.Path, "/%0D%0A") {
			t.Errorf("return_to %q landed on %q, want /", target, s.Path)
		}
	}
	b := g.newBrowser()
	s := g.login(b, "/.sgid/login?return_to="+url.QueryEscape("/deep/link?a=1&b=2"))
	if s.Path != "/deep/link?a=1&b=2" {
		t.Errorf("a same-origin return_to landed on %q", s.Path)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	g.login(b, "/")
	if got := g.apiStatus(b); got != http.StatusOK {
		t.Fatalf("before logout: %d", got)
	}
	resp, body := b.get(g.base + "/.sgid/logout")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "logged out") {
		t.Fatalf("logout: %d %.200s", resp.StatusCode, body)
	}
	if got := g.apiStatus(b); got != http.StatusUnauthorized {
		t.Fatalf("after logout: %d, want 401", got)
	}
}

func TestRequireRulesDenyWith403(t *testing.T) {
	g := newGateway(t, gatewayOptions{directives: "require myinfo.is_age_above_18 false"})
	b := g.newBrowser()
	resp, body := b.get(g.base + "/adults-only")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403; %.200s", resp.StatusCode, body)
	}
	if strings.Contains(body, sgidtest.Personas()[0].Data["myinfo.name"]) {
		t.Fatal("the 403 page shows personal data")
	}
	g2 := newGateway(t, gatewayOptions{directives: "require myinfo.is_age_above_18 true"})
	g2.login(g2.newBrowser(), "/adults-only")
}

func TestUserinfoEndpointServesTheForwardedFields(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	resp, _ := b.api(http.MethodGet, g.base+"/.sgid/userinfo")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a session: %d, want 401", resp.StatusCode)
	}
	g.login(b, "/")
	resp, body := b.api(http.MethodGet, g.base+"/.sgid/userinfo")
	var out map[string]string
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("userinfo: %d %.200s", resp.StatusCode, body)
	}
	p := sgidtest.Personas()[0]
	if out["myinfo.name"] != p.Data["myinfo.name"] || out["sub"] == "" {
		t.Errorf("userinfo = %v", out)
	}
	if _, ok := out["myinfo.is_age_above_18"]; ok {
		t.Error("userinfo carries a field that is not forwarded")
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
	tok := parseAssertion(t, raw, jose.HS256)
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

// Later directives read the identity from placeholders: http.auth.user.id is the
// sub and http.auth.user.<field> each forwarded field, as the headers carry them.
func TestIdentityPlaceholdersReachLaterDirectives(t *testing.T) {
	g := newGateway(t, gatewayOptions{siteExtra: `header {
		defer
		X-Who "{http.auth.user.id}"
		X-Who-Name "{http.auth.user.myinfo.name}"
		X-Unknown "{http.auth.user.myinfo.mobile_number}"
	}`})
	persona := sgidtest.Personas()[0]
	resp, body := g.newBrowser().get(g.base + "/")
	upstreamSaw(t, resp, body)
	if got, want := resp.Header.Get("X-Who"), g.subOf(persona.ID); got != want {
		t.Errorf("{http.auth.user.id} = %q, want the sub %q", got, want)
	}
	if got, want := resp.Header.Get("X-Who-Name"), persona.Data["myinfo.name"]; got != want {
		t.Errorf("{http.auth.user.myinfo.name} = %q, want %q", got, want)
	}
	// Caddy leaves an unknown placeholder as written.
	if got := resp.Header.Get("X-Unknown"); got != "{http.auth.user.myinfo.mobile_number}" {
		t.Errorf("a field not forwarded has a placeholder value %q", got)
	}
}
