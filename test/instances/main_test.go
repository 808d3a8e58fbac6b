package instances

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// caddyBin is cmd/caddy, built once for the package by TestMain.
var caddyBin string

func TestMain(m *testing.M) { os.Exit(Main(m, false, &caddyBin)) }

// fixture is one fake sgID, one app, and a directory for the Caddy processes
// of one test. It is used from the test's goroutine only.
type fixture struct {
	t       *testing.T
	idp     *sgidtest.Server
	app     *httptest.Server
	dir     string
	env     []string
	clients map[Site]*http.Client // one per instance, made by client
}

func newFixture(t *testing.T, env ...string) *fixture {
	t.Helper()
	idp := sgidtest.Start(t, sgidtest.Options{})
	app := Upstream()
	t.Cleanup(app.Close)
	return &fixture{t: t, idp: idp, app: app, dir: t.TempDir(), env: append(Env(idp), env...), clients: map[Site]*http.Client{}}
}

// site is a Site on a free port in front of the fixture's app, with its
// admin API on a free port if admin is set.
func (f *fixture) site(storage string, admin bool) Site {
	f.t.Helper()
	s, err := LocalSite(storage, f.app.URL, admin)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// publicHost is the host name of every cluster's site, as a load balancer in
// front of the instances would be named. It resolves nowhere, so a request
// that does not go through an instance's Site.Transport fails instead of
// reaching some instance by chance.
const publicHost = "app.test"

// cluster is one Site per storage directory, the instances of one cluster:
// each listens on its own loopback address (127.0.0.1, 127.0.0.2, ...) at one
// free port, and all serve the public site http://app.test:<port>.
func (f *fixture) cluster(storages ...string) []Site {
	f.t.Helper()
	addrs, err := FreeAddrs(len(storages))
	if err != nil {
		f.t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addrs[0])
	sites := make([]Site, len(storages))
	for i, storage := range storages {
		sites[i] = Site{Storage: storage, Addr: addrs[i], Public: net.JoinHostPort(publicHost, port),
			Upstream: strings.TrimPrefix(f.app.URL, "http://")}
	}
	return sites
}

// client is an HTTP client that reaches s's instance at s's public URL, kept
// for the test.
func (f *fixture) client(s Site) *http.Client {
	if c, ok := f.clients[s]; ok {
		return c
	}
	tr := s.Transport()
	f.t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	f.clients[s] = c
	return c
}

// issuer is the fake sgID's issuer, as the handler derives it from hostname.
func (f *fixture) issuer() string {
	f.t.Helper()
	iss, err := sgid.Issuer(f.idp.URL())
	if err != nil {
		f.t.Fatal(err)
	}
	return iss
}

// start runs a Caddy for s, stopped when the test ends. Its output is logged
// if the test fails.
func (f *fixture) start(name string, s Site) *Process {
	f.t.Helper()
	return StartForTest(f.t, caddyBin, f.dir, name, s, f.env)
}

// login logs a new browser in at s's instance and returns its session cookies and the
// sub the app saw, which must be the default persona's.
func (f *fixture) login(s Site) (cookie, sub string) {
	f.t.Helper()
	cookie, resp, err := Login(f.client(s).Transport, s.URL())
	if err != nil {
		f.t.Fatalf("login at %s (%s): %v", s.URL(), s.Addr, err)
	}
	sub = resp.Header.Get("X-Seen-X-Sgid-Sub")
	if want := sgidtest.PairwiseSub(f.idp.ClientID(), sgidtest.Personas()[0].ID); sub != want {
		f.t.Fatalf("login at %s (%s): the app saw sub %q, want %q", s.URL(), s.Addr, sub, want)
	}
	return cookie, sub
}

// get sends one GET for path at s's public URL to s's instance, as a script
// would (so no session is a 401, not a redirect), with the cookie header if
// any, and returns the response with its body read.
func (f *fixture) get(s Site, path, cookie string) (*http.Response, string) {
	f.t.Helper()
	resp, body, err := Request(f.client(s), http.MethodGet, s.URL()+path, "application/json", cookie)
	if err != nil {
		f.t.Fatalf("GET %s at %s: %v", path, s.Addr, err)
	}
	return resp, body
}

// verifyES256 checks a compact JWS against a JWK Set with the standard library
// only, as an app would, and returns its claims.
func verifyES256(token string, jwks []byte) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a compact JWS: %d parts", len(parts))
	}
	var header struct{ Alg, Kid string }
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, err
	}
	if header.Alg != "ES256" {
		return nil, fmt.Errorf("alg %q, want ES256", header.Alg)
	}
	var set struct {
		Keys []struct{ Kty, Crv, Kid, X, Y string }
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, fmt.Errorf("signature is not 64 bytes of base64url")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	for _, k := range set.Keys {
		if k.Kid != header.Kid || k.Kty != "EC" || k.Crv != "P-256" {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("jwks key %s: bad coordinates", k.Kid)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("jwks key %s: %w", k.Kid, err)
		}
		if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return nil, fmt.Errorf("signature does not verify with key %s", k.Kid)
		}
		var claims map[string]any
		if err := decodeSegment(parts[1], &claims); err != nil {
			return nil, err
		}
		if exp, _ := claims["exp"].(float64); time.Unix(int64(exp), 0).Before(time.Now()) {
			return nil, fmt.Errorf("assertion expired")
		}
		return claims, nil
	}
	return nil, fmt.Errorf("no key %q in the JWKS", header.Kid)
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("segment not base64url: %w", err)
	}
	return json.Unmarshal(b, v)
}

// storedKeys sorts the files the handler generated under storage: session
// secrets and assertion signing keys (sgid/<issuer and client>/session.secret
// and assertion-<site>.key), and anything else but the key inventory
// (keys.json). dirs is the set of sgid/<issuer and client> directories they
// are in.
func storedKeys(t *testing.T, storage string) (secrets, signing, other []string, dirs map[string]bool) {
	t.Helper()
	dirs = map[string]bool{}
	err := filepath.WalkDir(filepath.Join(storage, "sgid"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "revocations" || d.Name() == "spent") {
			return filepath.SkipDir // a site's revocation state, not keys
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(storage, path)
		dir, name := filepath.Dir(rel), filepath.Base(rel)
		dirs[dir] = true
		switch {
		case filepath.Dir(dir) != "sgid":
			other = append(other, rel)
		case name == "keys.json":
		case name == "session.secret":
			secrets = append(secrets, rel)
		case strings.HasPrefix(name, "assertion-") && strings.HasSuffix(name, ".key"):
			signing = append(signing, rel)
		default:
			other = append(other, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return secrets, signing, other, dirs
}

// checkStoredKeys fails the test unless storage holds what the handler
// generates for one issuer and client serving sites sites: one session secret
// and one signing key per site, in one directory.
func checkStoredKeys(t *testing.T, storage string, sites int) {
	t.Helper()
	secrets, signing, other, dirs := storedKeys(t, storage)
	if len(secrets) != 1 || len(signing) != sites || len(other) != 0 || len(dirs) != 1 {
		t.Errorf("storage holds session secrets %v, signing keys %v and %v; want one session secret and %d assertion-*.key, in one sgid/<issuer and client>/ directory",
			secrets, signing, other, sites)
	}
}
