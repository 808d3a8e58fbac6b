package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// testConfig is what Provision would resolve for a site at redirectURI with
// fresh keys, a client id "c" and no sgID to call: tests change what they
// need and call New with it, exactly as Provision does.
func testConfig(tb testing.TB, redirectURI string) Config {
	tb.Helper()
	key, err := sgidtest.NewRSAKey()
	if err != nil {
		tb.Fatal(err)
	}
	signKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	site, err := NewSite(redirectURI, "", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return Config{
		Client:         sgid.Config{ClientID: "c", ClientSecret: "s", PrivateKey: sgidtest.EncodePKCS8(key)},
		Site:           site,
		SessionSecrets: [][]byte{[]byte(strings.Repeat("s", 32))},
		SigningKeys:    []*ecdsa.PrivateKey{signKey},
	}
}

// newTestGateway is New(cfg), failing the test on an error.
func newTestGateway(tb testing.TB, cfg Config) *Gateway {
	tb.Helper()
	g, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// withForward is a gateway for http://app.example that forwards fields.
func withForward(tb testing.TB, forward ...Forward) *Gateway {
	tb.Helper()
	cfg := testConfig(tb, "http://app.example/.sgid/callback")
	cfg.Forward = forward
	return newTestGateway(tb, cfg)
}

// cookieHeader is the Cookie header a browser would send back for rec's
// Set-Cookie lines.
func cookieHeader(rec *httptest.ResponseRecorder) string {
	var parts []string
	for _, c := range rec.Result().Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}
