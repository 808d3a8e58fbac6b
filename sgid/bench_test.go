package sgid_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// BenchmarkCallback is the client side of one login: code exchange, ID token
// verification, userinfo fetch and the two-layer decryption. The fake sgID server
// runs in a child process, so ns/op is the login's wall time through loopback and
// cpu-ns/op is this process's CPU time per login: the client's own cost, to be
// compared with BenchmarkRSADecrypt. The browser's trip to the authorize endpoint
// is not timed.
func BenchmarkCallback(b *testing.B) {
	for _, profile := range []string{"sdk", "observed"} {
		b.Run(profile, func(b *testing.B) {
			info := startBenchServer(b, profile)
			c, err := sgid.New(sgid.Config{
				ClientID:     info.ClientID,
				ClientSecret: info.ClientSecret,
				PrivateKey:   sgidtest.EncodePKCS8(testClientKey(b)),
				Hostname:     info.URL,
				RedirectURI:  testRedirectURI,
				Scopes:       []string{"openid", "myinfo.name", "myinfo.email", "myinfo.mobile_number"},
			})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := login(b, c); err != nil { // warm the JWKS cache and connections
				b.Fatal(err)
			}
			// Authorize every login up front, untimed, so the timed loop is
			// nothing but callbacks and no timer toggling disturbs it.
			type pending struct {
				req   *sgid.AuthRequest
				query url.Values
			}
			logins := make([]pending, b.N)
			for i := range logins {
				logins[i].req, logins[i].query = startLogin(b, c)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpuBefore := processCPU()
			for i := range b.N {
				if _, err := c.Callback(b.Context(), logins[i].query, logins[i].req); err != nil {
					b.Fatal(err)
				}
			}
			cpu := processCPU() - cpuBefore
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
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

// BenchmarkLoopbackRoundTrip is one keep-alive HTTP GET to the child-process fake
// server (its discovery document): the floor under each of the two sgID calls a
// login makes, so BenchmarkCallback's cpu-ns/op can be read as one RSA decryption
// plus two of these plus the client's own parsing and verification.
func BenchmarkLoopbackRoundTrip(b *testing.B) {
	info := startBenchServer(b, "sdk")
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	target := info.URL + "/v2/.well-known/openid-configuration"
	get := func() {
		resp, err := client.Get(target)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	get()
	b.ReportAllocs()
	b.ResetTimer()
	cpuBefore := processCPU()
	for range b.N {
		get()
	}
	cpu := processCPU() - cpuBefore
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}
