package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"net/url"

	"github.com/sgidproxy/caddy-sgid/test/jwttest"
)

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifySaysWhyAnAssertionFails(t *testing.T) {
	gatewayKey, strangerKey := newECKey(t), newECKey(t)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &gatewayKey.PublicKey, KeyID: "gw", Algorithm: "ES256", Use: "sig"},
		}})
	}))
	defer jwks.Close()
	const iss = "http://127.0.0.1:8080"
	a := newLegacyApp([]string{iss}, jwks.URL, nil)
	now := time.Now()
	claims := func(change func(map[string]any)) map[string]any {
		c := map[string]any{"iss": iss, "aud": "127.0.0.1:8080", "sub": "s", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		if change != nil {
			change(c)
		}
		return c
	}
	for _, tc := range []struct {
		name  string
		token string
		want  string // "" = verified; else a part of the reason
	}{
		{"valid", jwttest.Sign(t, jose.ES256, gatewayKey, "gw", claims(nil)), ""},
		{"missing", "", "no X-Sgid-Assertion header"},
		{"garbage", "a.b.c", "not an ES256 JWT"},
		{"HS256", jwttest.Sign(t, jose.HS256, []byte(strings.Repeat("k", 32)), "gw", claims(nil)), "not an ES256 JWT"},
		{"unknown key", jwttest.Sign(t, jose.ES256, strangerKey, "other", claims(nil)), `key "other"`},
		{"wrong key, known kid", jwttest.Sign(t, jose.ES256, strangerKey, "gw", claims(nil)), "signature does not verify"},
		{"other issuer", jwttest.Sign(t, jose.ES256, gatewayKey, "gw", claims(func(c map[string]any) { c["iss"] = "http://evil.example" })), "is not the gateway"},
		{"other audience", jwttest.Sign(t, jose.ES256, gatewayKey, "gw", claims(func(c map[string]any) { c["aud"] = "127.0.0.1" })), "aud"},
		{"no exp", jwttest.Sign(t, jose.ES256, gatewayKey, "gw", claims(func(c map[string]any) { delete(c, "exp") })), "no exp"},
		{"expired", jwttest.Sign(t, jose.ES256, gatewayKey, "gw", claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.verify(tc.token, now)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("not verified: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("verified; want a failure mentioning %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("reason %q; want it to mention %q", err, tc.want)
			}
		})
	}
}

// The demo's form: the app's own CSRF token, per user, which a form the
// gateway kept across a login brings back; the app shows what it received.
func TestTheDemoFormChecksItsTokenAndShowsWhatItGot(t *testing.T) {
	app := newLegacyApp(nil, "http://127.0.0.1:1/.sgid/jwks.json", nil)
	post := func(token string) *httptest.ResponseRecorder {
		body := url.Values{"csrf_token": {token}, "subject": {"Lunch"}, "message": {"line one\r\nline two"}}.Encode()
		r := httptest.NewRequest(http.MethodPost, "/feedback", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Sgid-Sub", "sub-1")
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, r)
		return rec
	}
	if rec := post(formToken("sub-1")); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="sent"`) || !strings.Contains(rec.Body.String(), "line one\r\nline two") {
		t.Fatalf("the user's own token: %d %.300s", rec.Code, rec.Body)
	}
	if rec := post(formToken("sub-2")); rec.Code != http.StatusForbidden {
		t.Fatalf("another user's token: %d, want 403", rec.Code)
	}
}
