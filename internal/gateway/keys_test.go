package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/go-jose/go-jose/v4"

	"github.com/sgidproxy/caddy-sgid/session"
)

// A key swap while requests run: a session sealed before it still opens when
// its secret is kept behind the new one, new cookies are sealed with the new
// first secret, the JWKS publishes the new keys and assertions carry the new
// first key's kid at once (the cache of signed assertions goes with the old
// set), and a secret dropped from the set opens nothing, cached or not. Run
// with -race: requests and swaps run concurrently.
func TestSetKeysSwapsWhileServing(t *testing.T) {
	cfg := testConfig(t, "http://app.example/.sgid/callback")
	g := newTestGateway(t, cfg)
	oldSecret, newSecret := cfg.SessionSecrets[0], []byte(strings.Repeat("n", 32))
	oldKey := cfg.SigningKeys[0]
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cookie := sealed(t, g, "sub-old")
	kidOf := func(assertion string) string {
		t.Helper()
		tok, err := jose.ParseSignedCompact(assertion, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("assertion %q: %v", assertion, err)
		}
		return tok.Signatures[0].Header.KeyID
	}
	oldKid, _ := KeyID(&oldKey.PublicKey)
	newKid, _ := KeyID(&newKey.PublicKey)
	if got := kidOf(serveWith(t, g, cookie)); got != oldKid {
		t.Fatalf("before the swap the assertion's kid is %s, want %s", got, oldKid)
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if serveWith(t, g, cookie) == "" {
					t.Error("a request during the swaps lost its session")
					return
				}
			}
		})
	}
	for i := range 50 {
		k := Keys{SessionSecrets: [][]byte{oldSecret, newSecret}, SigningKeys: []*ecdsa.PrivateKey{oldKey, newKey}}
		if i%2 == 1 {
			k = Keys{SessionSecrets: [][]byte{newSecret, oldSecret}, SigningKeys: []*ecdsa.PrivateKey{newKey, oldKey}}
		}
		if err := g.SetKeys(k); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()

	// The last swap put the new ones first.
	if got := kidOf(serveWith(t, g, cookie)); got != newKid {
		t.Errorf("after the swap the assertion's kid is %s, want the new key's %s", got, newKid)
	}
	var set struct{ Keys []struct{ Kid string } }
	rec := httptest.NewRecorder()
	if err := g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://app.example/.sgid/jwks.json", nil), nil); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil || len(set.Keys) != 2 || set.Keys[0].Kid != newKid || set.Keys[1].Kid != oldKid {
		t.Errorf("JWKS after the swap: %s (%v); want the new kid then the old", rec.Body, err)
	}
	onlyNew, err := session.New(session.Config{Binding: g.codecConfig.Binding, Secrets: [][]byte{newSecret}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
	r.Header.Set("Cookie", sealed(t, g, "sub-new"))
	if _, err := onlyNew.Read(r); err != nil {
		t.Errorf("a cookie sealed after the swap does not open with the new secret alone: %v", err)
	}

	// The old secret dropped: the old cookie, served from the cache a moment
	// ago, opens nothing.
	if err := g.SetKeys(Keys{SessionSecrets: [][]byte{newSecret}, SigningKeys: []*ecdsa.PrivateKey{newKey}}); err != nil {
		t.Fatal(err)
	}
	if a := serveWith(t, g, cookie); a != "" {
		t.Error("a cookie sealed only with a dropped secret still has a session")
	}
	if err := g.SetKeys(Keys{SigningKeys: []*ecdsa.PrivateKey{newKey}}); err == nil {
		t.Error("SetKeys took a set without a session secret")
	}
}

// sealed is the Cookie header of a session for sub, sealed by g's codec.
func sealed(t *testing.T, g *Gateway, sub string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := g.codec().Write(rec, httptest.NewRequest(http.MethodGet, "http://app.example/", nil), &session.Data{Sub: sub}, false); err != nil {
		t.Fatal(err)
	}
	return cookieHeader(rec)
}

// serveWith sends a request with cookie through g and returns the assertion
// the app got; "" when the request did not reach the app with a session.
func serveWith(t *testing.T, g *Gateway, cookie string) string {
	ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	r := httptest.NewRequest(http.MethodGet, "http://app.example/page", nil).WithContext(ctx)
	r.Header.Set("Cookie", cookie)
	r.Header.Set("Accept", "application/json")
	var got string
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		got = r.Header.Get(AssertionHeader)
		return nil
	})
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Error(err)
	}
	return got
}
