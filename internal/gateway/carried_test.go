package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/go-jose/go-jose/v4"

	"github.com/sgidproxy/caddy-sgid/session"
)

// What a session carries rebuilds exactly the token that was signed, which
// verifies against the JWKS; anything that would make the signer sign other
// bytes (another key, another lifetime or site, changed fields, a damaged
// carried value) rebuilds nothing, so a rebuilt token is never one the
// gateway did not sign. Without the digest check each of these would yield a
// token with a signature that does not match it.
func TestCarriedAssertionRebuildsTheSignedTokenOrNothing(t *testing.T) {
	g := benchGateway(t)
	d := &session.Data{Sub: "sub-1", Fields: []session.Field{{Name: "myinfo.name", Value: "TAN \"AH\" KOW\\\n\u2028"}, {Name: "myinfo.email", Value: "t@example.com"}}}
	iat := time.Now().Add(-time.Minute).Truncate(time.Second)
	token, carried, err := g.signer().assertion(d, g.layout, g.site.origin, g.site.audience, iat, g.assertTTL)
	if err != nil {
		t.Fatal(err)
	}
	d.Carried = carried
	got, gotIat, ok := g.signer().fromCarried(d, g.layout, g.site.origin, g.site.audience, g.assertTTL)
	if !ok || got != token || !gotIat.Equal(iat) {
		t.Fatalf("fromCarried = %q, %v, %v; want the signed token, issued at %v", got, gotIat, ok, iat)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(g.signer().jwks, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(got, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(set.Keys[0].Key)
	if err != nil {
		t.Fatalf("the rebuilt token does not verify: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil || c["myinfo.name"] != d.Fields[0].Value || c["sub"] != "sub-1" {
		t.Errorf("claims %s (%v), want the session's fields exactly", payload, err)
	}

	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rotated, err := newSigner([]*ecdsa.PrivateKey{otherKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := *d
	changed.Fields = []session.Field{{Name: "myinfo.name", Value: "SOMEONE ELSE"}, {Name: "myinfo.email", Value: "t@example.com"}}
	damaged := *d
	damaged.Carried = carried[:len(carried)-1] + string(carried[len(carried)-1]^1)
	for _, tt := range []struct {
		name     string
		s        *signer
		d        *session.Data
		aud      string
		ttl      time.Duration
		forward  []Forward
		wantNone bool
	}{
		{"another key", rotated, d, g.site.audience, g.assertTTL, g.forward, true},
		{"another lifetime", g.signer(), d, g.site.audience, 2 * g.assertTTL, g.forward, true},
		{"another audience", g.signer(), d, "other.example", g.assertTTL, g.forward, true},
		{"changed fields", g.signer(), &changed, g.site.audience, g.assertTTL, g.forward, true},
		{"fewer forwarded fields", g.signer(), d, g.site.audience, g.assertTTL, g.forward[:1], true},
		{"a damaged signature", g.signer(), &damaged, g.site.audience, g.assertTTL, g.forward, true},
		{"nothing carried", g.signer(), &session.Data{Sub: "sub-1"}, g.site.audience, g.assertTTL, g.forward, true},
	} {
		if got, _, ok := tt.s.fromCarried(tt.d, newClaimLayout(tt.forward), g.site.origin, tt.aud, tt.ttl); ok {
			t.Errorf("%s: rebuilt %q", tt.name, got)
		}
	}
}

// A session whose cookie carries its assertion costs no signature and no
// cookie rewrite on a cache miss; one that carries none (a cookie from the
// release before, or a key rotated since) is signed once and its cookie
// rewritten to carry the new one, so its next miss costs nothing.
func TestCacheMissWithACarriedAssertionSignsNothing(t *testing.T) {
	g := benchGateway(t)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	serve := func(cookie string) (assertion string, set []*http.Cookie) {
		t.Helper()
		g.keys.Load().cache.clear() // every request a cache miss
		r := benchRequest(cookie)
		w := httptest.NewRecorder()
		if err := g.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		return r.Header.Get(AssertionHeader), w.Result().Cookies()
	}
	d := &session.Data{Sub: "sub-1", Fields: []session.Field{{Name: "myinfo.name", Value: "TAN AH KOW"}}}
	old := sealed(t, g, d.Sub) // carries nothing
	first, set := serve(old)
	if first == "" || len(set) == 0 {
		t.Fatalf("a session carrying nothing: assertion %q, Set-Cookie %v; want a signed one and the cookie rewritten", first, set)
	}
	rewritten := setCookieHeader(set)
	again, set := serve(rewritten)
	if again != first || len(set) != 0 {
		t.Errorf("the rewritten cookie's cache miss: same assertion %v, Set-Cookie %v; want the carried token and no rewrite", again == first, set)
	}
	// After a key rotation the carried token is not this signer's: signed
	// anew, with the new key, and carried again.
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	secrets := [][]byte{[]byte(strings.Repeat("s", 32))} // testConfig's
	if err := g.SetKeys(Keys{SessionSecrets: secrets, SigningKeys: []*ecdsa.PrivateKey{newKey}}); err != nil {
		t.Fatal(err)
	}
	after, set := serve(rewritten)
	newKid, _ := KeyID(&newKey.PublicKey)
	jws, err := jose.ParseSignedCompact(after, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || jws.Signatures[0].Header.KeyID != newKid || len(set) == 0 {
		t.Errorf("after a key rotation: kid %v (%v), Set-Cookie %v; want the new key's and the cookie rewritten", jws, err, set)
	}
}

// setCookieHeader is the Cookie header a browser sends back for cookies.
func setCookieHeader(cookies []*http.Cookie) string {
	rec := httptest.NewRecorder()
	for _, c := range cookies {
		http.SetCookie(rec, c)
	}
	return cookieHeader(rec)
}

// The hand-written claims are JSON that any parser reads back to exactly
// the session's values (invalid UTF-8 as U+FFFD, as encoding/json writes
// it), with the registered claims never replaced by a forwarded field.
func TestClaimsAreExactJSON(t *testing.T) {
	values := []string{"", "plain", `quote " backslash \ slash /`, "\x00\x01\x1f\x7f tab\tnewline\n", "TAN AH KOW 陈 \u2028\u2029 <&>", "bad \xff\xfe utf-8", "🙂"}
	for _, v := range values {
		d := &session.Data{Sub: "s" + v, Fields: []session.Field{{Name: "myinfo.name", Value: v}, {Name: "sub", Value: "not the sub"}}}
		fields := []Forward{{Field: "myinfo.name"}, {Field: "sub"}, {Field: "myinfo.missing"}}
		b := claims(d, newClaimLayout(fields), "https://iss.example", "aud"+v, time.Unix(1_800_000_000, 0), 5*time.Minute)
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("claims for %q are not JSON: %s: %v", v, b, err)
		}
		want, _ := json.Marshal(map[string]any{"myinfo.name": v, "sub": "s" + v, "iss": "https://iss.example", "aud": "aud" + v, "iat": 1_800_000_000, "exp": 1_800_000_300})
		var wantMap map[string]any
		_ = json.Unmarshal(want, &wantMap)
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(wantMap)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("claims for %q read back as %s, want %s", v, gotJSON, wantJSON)
		}
	}
}

// A session whose fields leave no room for its assertion is written without
// it, never refused for it: its cache misses sign again, as before.
func TestASessionAtTheSizeLimitIsWrittenWithoutItsAssertion(t *testing.T) {
	g := benchGateway(t)
	// Fields as large as a session may be, less what carrying would add.
	d := &session.Data{Sub: "sub-1", Fields: []session.Field{{Name: "myinfo.name", Value: strings.Repeat("n", session.MaxSessionData-80)}}}
	for len(d.Fields[0].Value) > 0 {
		rec := httptest.NewRecorder()
		probe := *d
		if g.codec().Write(rec, httptest.NewRequest(http.MethodGet, "http://app.example/", nil), &probe, false) == nil {
			break
		}
		d.Fields[0].Value = d.Fields[0].Value[1:]
	}
	_, carried, err := g.signer().assertion(d, g.layout, g.site.origin, g.site.audience, time.Now(), g.assertTTL)
	if err != nil {
		t.Fatal(err)
	}
	d.Carried = carried
	rec := httptest.NewRecorder()
	if err := g.writeSession(rec, httptest.NewRequest(http.MethodGet, "http://app.example/", nil), d); err != nil {
		t.Fatalf("a session that fits without its assertion was refused: %v", err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
	r.Header.Set("Cookie", cookieHeader(rec))
	got, err := g.codec().Read(r)
	if err != nil || got.Carried != "" || !slices.Equal(got.Fields, d.Fields) {
		t.Errorf("read back: %v, carried %d bytes; want the fields and nothing carried", err, len(got.Carried))
	}
}
