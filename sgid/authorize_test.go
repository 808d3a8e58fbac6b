package sgid_test

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid"
)

func TestCodeChallengeIsBase64URLOfSHA256(t *testing.T) {
	// Computed independently with Python's hashlib and base64.urlsafe_b64encode.
	const verifier = "dBjftJeZ4CVP-mJ0kRy1mZ3aJhKTa0IdtEHOZsaxdCYi"
	const want = "UW_klW4l8l6e3jTuuHPN2T06pto9VIXEcAjXeB71Wb8"
	if got := sgid.CodeChallenge(verifier); got != want {
		t.Fatalf("CodeChallenge = %q, want %q", got, want)
	}
}

func TestNewAuthRequestIsFreshAndInThePKCEAlphabet(t *testing.T) {
	c := newOfflineClient(t)
	verifierRE := regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)
	seen := map[string]bool{}
	for range 500 {
		req, err := c.NewAuthRequest("")
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range map[string]string{"state": req.State, "nonce": req.Nonce, "verifier": req.CodeVerifier} {
			if !verifierRE.MatchString(v) {
				t.Fatalf("%s %q is not 43..128 chars of the PKCE alphabet", name, v)
			}
			if seen[v] {
				t.Fatalf("%s %q was generated twice", name, v)
			}
			seen[v] = true
		}
		if req.RedirectURI != "https://app.example.gov.sg/.sgid/callback" {
			t.Fatalf("redirect URI = %q, want the configured one", req.RedirectURI)
		}
	}
}

func TestAuthURLCarriesExactlyTheProtocolParameters(t *testing.T) {
	c := newOfflineClient(t)
	req, err := c.NewAuthRequest("https://other.example.gov.sg/cb?x=1")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(c.AuthURL(req))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != "https://api.id.gov.sg/v2/oauth/authorize" {
		t.Errorf("endpoint = %q", got)
	}
	want := map[string]string{
		"response_type":         "code",
		"client_id":             "client-1",
		"redirect_uri":          "https://other.example.gov.sg/cb?x=1",
		"scope":                 "openid myinfo.name myinfo.email",
		"nonce":                 req.Nonce,
		"state":                 req.State,
		"code_challenge":        sgid.CodeChallenge(req.CodeVerifier),
		"code_challenge_method": "S256",
	}
	q := u.Query()
	if len(q) != len(want) {
		t.Errorf("query has %d parameters, want %d: %v", len(q), len(want), q)
	}
	for k, v := range want {
		if got := q[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if strings.Contains(u.RawQuery, req.CodeVerifier) {
		t.Error("the authorization URL leaks the PKCE verifier")
	}
}

func TestIssuerIsTheHostnameOriginPlusV2(t *testing.T) {
	tests := []struct{ hostname, want string }{
		{"", "https://api.id.gov.sg/v2"},
		{"https://api.id.gov.sg", "https://api.id.gov.sg/v2"},
		{"https://api.id.gov.sg/", "https://api.id.gov.sg/v2"},
		{"https://API.id.gov.sg/some/path?q=1", "https://api.id.gov.sg/v2"},
		{"http://127.0.0.1:8443", "http://127.0.0.1:8443/v2"},
	}
	for _, tt := range tests {
		got, err := sgid.Issuer(tt.hostname)
		if err != nil || got != tt.want {
			t.Errorf("Issuer(%q) = %q, %v; want %q", tt.hostname, got, err, tt.want)
		}
	}
	for _, bad := range []string{"api.id.gov.sg", "ftp://api.id.gov.sg", "https://", "https://user:pw@api.id.gov.sg"} {
		if _, err := sgid.Issuer(bad); err == nil {
			t.Errorf("Issuer(%q) accepted a bad hostname", bad)
		}
	}
}

func TestCheckCallback(t *testing.T) {
	req := &sgid.AuthRequest{State: "the-state", Nonce: "n", CodeVerifier: "v"}
	tests := []struct {
		name    string
		query   string
		want    error
		wantErr string
	}{
		{"cancelled", "error=access_denied&error_description=User+cancelled&state=the-state", sgid.ErrAccessDenied, "access_denied"},
		{"other oauth error", "error=server_error&state=the-state", sgid.ErrOAuth, "server_error"},
		{"control characters sanitised", "error=x%0d%0ainjected&state=the-state", sgid.ErrOAuth, `x??injected`},
		{"state from another attempt", "code=c&state=other", sgid.ErrBadCallback, "state"},
		{"no state", "code=c", sgid.ErrBadCallback, "state"},
		{"two states", "code=c&state=the-state&state=the-state", sgid.ErrBadCallback, "state"},
		{"no code", "state=the-state", sgid.ErrBadCallback, "code"},
		{"two codes", "code=a&code=b&state=the-state", sgid.ErrBadCallback, "code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			_, err := sgid.CheckCallback(q, req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
	q, _ := url.ParseQuery("code=the-code&state=the-state")
	if code, err := sgid.CheckCallback(q, req); err != nil || code != "the-code" {
		t.Fatalf("CheckCallback = %q, %v; want the code", code, err)
	}
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	good := offlineConfig(t)
	tests := []struct {
		name   string
		mutate func(*sgid.Config)
		says   string
	}{
		{"no client id", func(c *sgid.Config) { c.ClientID = "" }, "client id"},
		{"no client secret", func(c *sgid.Config) { c.ClientSecret = "" }, "client secret"},
		{"bad key", func(c *sgid.Config) { c.PrivateKey = "nope" }, "private key format"},
		{"bad hostname", func(c *sgid.Config) { c.Hostname = "api.id.gov.sg" }, "hostname"},
		{"relative redirect", func(c *sgid.Config) { c.RedirectURI = "/.sgid/callback" }, "redirect URI"},
		{"scopes without openid", func(c *sgid.Config) { c.Scopes = []string{"myinfo.name"} }, "openid"},
		{"scope with a space", func(c *sgid.Config) { c.Scopes = []string{"openid", "myinfo.name myinfo.email"} }, "not a valid scope"},
		{"duplicate scope", func(c *sgid.Config) { c.Scopes = []string{"openid", "openid"} }, "twice"},
		{"huge skew", func(c *sgid.Config) { c.ClockSkew = 1 << 62 }, "clock skew"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			_, err := sgid.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("New error = %v, want one that says %q", err, tt.says)
			}
			if strings.Contains(err.Error(), good.ClientSecret) {
				t.Fatal("error echoes the client secret")
			}
		})
	}
	if _, err := sgid.New(good); err != nil {
		t.Fatalf("New(good) = %v", err)
	}
	cfg := good
	cfg.Scopes = []string{"openid", "myinfo.some_future_scope", "pocdex.new_thing"}
	if _, err := sgid.New(cfg); err != nil {
		t.Fatalf("unknown myinfo/pocdex scopes must pass through: %v", err)
	}
}
