package sgid_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// BenchmarkCallback is the client side of one login: code exchange, ID token
// verification, userinfo fetch and the two-layer decryption, against the
// in-process fake server. The browser's trip to the authorize endpoint is not
// timed. server-ns/op is the fake server's own handler time inside the timed part
// (mostly signing the ID token, which a real sgID does on its own machine);
// client-ns/op is ns/op less that. Compare client-ns/op with BenchmarkRSADecrypt.
func BenchmarkCallback(b *testing.B) {
	for _, profile := range []struct {
		name string
		p    sgidtest.Profile
	}{{"sdk", sgidtest.ProfileSDK}, {"observed", sgidtest.ProfileObserved}} {
		b.Run(profile.name, func(b *testing.B) {
			srv := newFakeSgID(b, sgidtest.Options{Profile: profile.p})
			c := clientFor(b, srv, []string{"openid", "myinfo.name", "myinfo.email", "myinfo.mobile_number"}, nil)
			if _, err := login(b, c); err != nil { // warm the JWKS cache and connections
				b.Fatal(err)
			}
			var server time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				req, err := c.NewAuthRequest("")
				if err != nil {
					b.Fatal(err)
				}
				q := authorizeInProcess(b, srv, c, req)
				before := srv.HandlerTime()
				b.StartTimer()
				if _, err := c.Callback(b.Context(), q, req); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				server += srv.HandlerTime() - before
				b.StartTimer()
			}
			perOp := float64(server.Nanoseconds()) / float64(b.N)
			b.ReportMetric(perOp, "server-ns/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)-perOp, "client-ns/op")
		})
	}
}

// authorizeInProcess runs the authorize step through the server's handler without
// a network round trip, so the untimed part of BenchmarkCallback stays cheap.
func authorizeInProcess(b *testing.B, srv *sgidtest.Server, c *sgid.Client, req *sgid.AuthRequest) url.Values {
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.AuthURL(req), nil))
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || rec.Code/100 != 3 {
		b.Fatalf("authorize: %d %v", rec.Code, err)
	}
	return loc.Query()
}

// BenchmarkRSADecrypt is one RSA-2048 OAEP (SHA-256) decryption: the private-key
// operation a login cannot avoid, and the yardstick for BenchmarkCallback.
func BenchmarkRSADecrypt(b *testing.B) {
	key := testClientKey(b)
	blockKey := make([]byte, 32)
	rand.Read(blockKey)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &key.PublicKey, blockKey, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rsa.DecryptOAEP(sha256.New(), nil, key, ct, nil); err != nil {
			b.Fatal(err)
		}
	}
}
