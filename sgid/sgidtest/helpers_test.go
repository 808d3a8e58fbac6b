package sgidtest

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The tests speak plain HTTP and use go-jose directly, like any relying
// party would, rather than the sgid client package: the fake must be
// checked independently of the code it exists to test.

const testRedirect = "https://app.test/callback"

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var httpClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       20 * time.Second,
}

type pkcePair struct{ verifier, challenge string }

func newPKCE() pkcePair {
	v := randomToken(32)
	sum := sha256.Sum256([]byte(v))
	return pkcePair{verifier: v, challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

func authorizeQuery(s *Server, scope string, p pkcePair) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {s.ClientID()},
		"redirect_uri":          {testRedirect},
		"scope":                 {scope},
		"state":                 {"state-123"},
		"nonce":                 {"nonce-456"},
		"code_challenge":        {p.challenge},
		"code_challenge_method": {"S256"},
	}
}

// result is a response with its body read.
type result struct {
	*http.Response
	body []byte
}

func get(t testing.TB, rawURL string, header http.Header) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) result {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", req.URL.Path, err)
	}
	return result{resp, body}
}

func authorize(t testing.TB, s *Server, q url.Values) result {
	t.Helper()
	return get(t, s.Issuer()+"/oauth/authorize?"+q.Encode(), nil)
}

// redirectQuery returns the query of a 302's Location, failing otherwise.
func redirectQuery(t testing.TB, resp result) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302; body: %s", resp.StatusCode, resp.body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("bad Location: %v", err)
	}
	return loc.Query()
}

func getCode(t testing.TB, s *Server, q url.Values) string {
	t.Helper()
	rq := redirectQuery(t, authorize(t, s, q))
	if rq.Get("code") == "" || rq.Get("state") != q.Get("state") {
		t.Fatalf("redirect query %v: want a code and state %q", rq, q.Get("state"))
	}
	return rq.Get("code")
}

func tokenForm(s *Server, code string, p pkcePair) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {testRedirect},
		"code_verifier": {p.verifier},
		"client_id":     {s.ClientID()},
		"client_secret": {s.ClientSecret()},
	}
}

func postToken(t testing.TB, s *Server, form url.Values) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.Issuer()+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	IDToken     string `json:"id_token"`
	Scope       string `json:"scope"`
}

// login runs authorize and token like a relying party and returns the
// token response.
func login(t testing.TB, s *Server, scope string) tokenResponse {
	t.Helper()
	p := newPKCE()
	code := getCode(t, s, authorizeQuery(s, scope, p))
	resp := postToken(t, s, tokenForm(s, code, p))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: status %d: %s", resp.StatusCode, resp.body)
	}
	var tr tokenResponse
	mustUnmarshal(t, resp.body, &tr)
	return tr
}

type userInfo struct {
	Sub  string            `json:"sub"`
	Key  *string           `json:"key"`
	Data map[string]string `json:"data"`
}

func fetchUserInfo(t testing.TB, s *Server, accessToken string) userInfo {
	t.Helper()
	resp := get(t, s.Issuer()+"/oauth/userinfo", http.Header{"Authorization": {"Bearer " + accessToken}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: status %d: %s", resp.StatusCode, resp.body)
	}
	var ui userInfo
	mustUnmarshal(t, resp.body, &ui)
	return ui
}

// The algorithm family SGID-PROTOCOL.md tells a client to accept.
var (
	keyAlgs     = []jose.KeyAlgorithm{jose.RSA_OAEP, jose.RSA_OAEP_256}
	dataAlgs    = []jose.KeyAlgorithm{jose.DIRECT, jose.A128GCMKW, jose.A192GCMKW, jose.A256GCMKW, jose.A128KW, jose.A192KW, jose.A256KW}
	contentEncs = []jose.ContentEncryption{jose.A128GCM, jose.A192GCM, jose.A256GCM, jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512}
)

// decryptBlockKey opens the userinfo "key".
func decryptBlockKey(keyJWE string, priv *rsa.PrivateKey) (*jose.JSONWebKey, *jose.JSONWebEncryption, error) {
	obj, err := jose.ParseEncryptedCompact(keyJWE, keyAlgs, contentEncs)
	if err != nil {
		return nil, nil, err
	}
	plain, err := obj.Decrypt(priv)
	if err != nil {
		return nil, obj, err
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(plain); err != nil {
		return nil, obj, err
	}
	return &jwk, obj, nil
}

func decryptField(value string, blockKey *jose.JSONWebKey) (string, error) {
	obj, err := jose.ParseEncryptedCompact(value, dataAlgs, contentEncs)
	if err != nil {
		return "", err
	}
	plain, err := obj.Decrypt(blockKey.Key)
	return string(plain), err
}

// decryptUserInfo decrypts every data field, failing the test on any error.
func decryptUserInfo(t testing.TB, ui userInfo, priv *rsa.PrivateKey) map[string]string {
	t.Helper()
	if ui.Key == nil {
		t.Fatal("userinfo has no key")
	}
	jwk, _, err := decryptBlockKey(*ui.Key, priv)
	if err != nil {
		t.Fatalf("decrypting key: %v", err)
	}
	out := make(map[string]string, len(ui.Data))
	for field, v := range ui.Data {
		if out[field], err = decryptField(v, jwk); err != nil {
			t.Fatalf("decrypting %s: %v", field, err)
		}
	}
	return out
}

// verifyIDToken checks the signature against the server's JWKS and returns
// the claims.
func verifyIDToken(t testing.TB, s *Server, idToken string) (map[string]any, error) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(idToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	set := fetchJWKS(t, s)
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		return nil, errNoKey
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	mustUnmarshal(t, payload, &claims)
	return claims, nil
}

type testError string

func (e testError) Error() string { return string(e) }

const errNoKey = testError("kid not in jwks")

func fetchJWKS(t testing.TB, s *Server) jose.JSONWebKeySet {
	t.Helper()
	resp := get(t, s.Issuer()+"/.well-known/jwks.json", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks: status %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	mustUnmarshal(t, resp.body, &set)
	return set
}

// unverifiedClaims decodes a JWT payload without checking anything.
func unverifiedClaims(t testing.TB, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("decoding part %d: %v", i, err)
		}
		mustUnmarshal(t, b, dst)
	}
	return header, claims
}

func mustUnmarshal(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding %.200q: %v", data, err)
	}
}
