package sgid_test

import (
	"crypto/rsa"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

var (
	clientKeyOnce sync.Once
	clientKey     *rsa.PrivateKey
	clientKeyErr  error
)

// testClientKey is one client key for the whole test binary: RSA key generation
// under -race is slow.
func testClientKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	clientKeyOnce.Do(func() { clientKey, clientKeyErr = sgidtest.NewRSAKey() })
	if clientKeyErr != nil {
		t.Fatal(clientKeyErr)
	}
	return clientKey
}

func offlineConfig(t testing.TB) sgid.Config {
	return sgid.Config{
		ClientID:     "client-1",
		ClientSecret: "s3cr3t-s3cr3t-s3cr3t-s3cr3t-0123",
		PrivateKey:   sgidtest.EncodePKCS8(testClientKey(t)),
		RedirectURI:  "https://app.example.gov.sg/.sgid/callback",
		Scopes:       []string{"openid", "myinfo.name", "myinfo.email"},
	}
}

func newOfflineClient(t testing.TB) *sgid.Client {
	t.Helper()
	c, err := sgid.New(offlineConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newFakeSgID starts a fake sgID server registered for the shared test client key.
func newFakeSgID(t testing.TB, opts sgidtest.Options) *sgidtest.Server {
	t.Helper()
	if opts.Client.PublicKey == nil {
		opts.Client.PublicKey = &testClientKey(t).PublicKey
	}
	return sgidtest.Start(t, opts)
}

const testRedirectURI = "https://app.example.gov.sg/.sgid/callback"

// clientFor makes a client for srv; mutate may change the config first.
func clientFor(t testing.TB, srv *sgidtest.Server, scopes []string, mutate func(*sgid.Config)) *sgid.Client {
	t.Helper()
	cfg := sgid.Config{
		ClientID:            srv.ClientID(),
		ClientSecret:        srv.ClientSecret(),
		PrivateKey:          sgidtest.EncodePKCS8(testClientKey(t)),
		Hostname:            srv.URL(),
		RedirectURI:         testRedirectURI,
		Scopes:              scopes,
		Timeout:             5 * time.Second,
		JWKSRefreshInterval: time.Nanosecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := sgid.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// authorize plays the browser: it follows the authorization URL to the fake sgID
// (which consents automatically) and returns the callback query it redirects to.
// Unlike sgidtest's Server.Authorize it needs no *sgidtest.Server, so the
// benchmarks use it against the server in their child process.
func authorize(t testing.TB, c *sgid.Client, req *sgid.AuthRequest) url.Values {
	t.Helper()
	resp, err := noRedirects.Get(c.AuthURL(req))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) // so the connection is reused
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize answered %d, want a redirect", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

// startLogin begins a login attempt and plays the browser up to the callback: it
// returns the attempt and the callback query, for the test to redeem, or to change
// something before it does.
func startLogin(t testing.TB, c *sgid.Client) (*sgid.AuthRequest, url.Values) {
	t.Helper()
	req, err := c.NewAuthRequest("")
	if err != nil {
		t.Fatal(err)
	}
	return req, authorize(t, c, req)
}

// login runs a whole login against the fake server.
func login(t testing.TB, c *sgid.Client) (*sgid.Identity, error) {
	t.Helper()
	req, q := startLogin(t, c)
	return c.Callback(t.Context(), q, req)
}
