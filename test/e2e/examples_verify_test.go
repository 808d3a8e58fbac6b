package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sgidproxy/caddy-sgid/test/jwttest"
)

// snippet is one language's verification example, run as its command line:
// exit 0 with the claims as JSON on stdout, or exit 1 with "invalid assertion"
// on stderr.
type snippet struct {
	name    string
	command []string // the arguments follow
}

// exampleSnippets returns the four snippets ready to run, failing the test
// (never skipping it) when an interpreter or library is missing.
func exampleSnippets(t *testing.T) []snippet {
	t.Helper()
	goBin := filepath.Join(t.TempDir(), "verify")
	if out, err := exec.Command("go", "build", "-o", goBin, filepath.Join(examplesDir, "verify", "go")).CombinedOutput(); err != nil {
		t.Fatalf("building examples/verify/go: %v\n%s", err, out)
	}
	nodeDir := filepath.Join(examplesDir, "verify", "node")
	var missing []string
	probe := func(what string, name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v %s", what, err, bytes.TrimSpace(out)))
		}
	}
	probe("python3 with PyJWT and cryptography", "/usr/bin/python3", "-c", "import jwt, cryptography")
	probe("node", "node", "--version")
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "jose", "package.json")); err != nil {
		missing = append(missing, "the jose npm package in "+nodeDir+" (npm ci)")
	}
	probe("php with openssl", "php", "-r", `exit(function_exists("openssl_verify") && function_exists("hash_hmac") ? 0 : 1);`)
	if len(missing) > 0 {
		t.Fatalf("missing:\n\t%s\n%s", strings.Join(missing, "\n\t"), setupHint)
	}
	return []snippet{
		{"go", []string{goBin}},
		{"python", []string{"/usr/bin/python3", filepath.Join(examplesDir, "verify", "python", "verify.py")}},
		{"node", []string{"node", filepath.Join(nodeDir, "verify.mjs")}},
		{"php", []string{"php", filepath.Join(examplesDir, "verify", "php", "verify.php")}},
	}
}

// run runs the snippet with args and returns its exit code, stdout and stderr.
func (s snippet) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.command[0], append(slices.Clip(s.command[1:]), args...)...)
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("running %s: %v", s.name, err)
	return 0, "", ""
}

// verifyCase is one assertion handed to every snippet.
type verifyCase struct {
	name  string
	token string
	args  []string // the key source, --iss and --aud
	valid bool
}

func runVerifyCases(t *testing.T, snippets []snippet, cases []verifyCase, wantClaims map[string]string) {
	t.Helper()
	for _, s := range snippets {
		for _, c := range cases {
			t.Run(s.name+"/"+c.name, func(t *testing.T) {
				code, stdout, stderr := s.run(t, append(slices.Clip(c.args), c.token)...)
				if !c.valid {
					if code != 1 || !strings.Contains(stderr, "invalid assertion") {
						t.Errorf("want exit 1 with \"invalid assertion\" on stderr, got exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
					}
					t.Logf("rejected: %s", strings.TrimSpace(stderr))
					return
				}
				if code != 0 {
					t.Fatalf("want the assertion accepted, got exit %d\nstderr: %s", code, stderr)
				}
				var claims map[string]any
				if err := json.Unmarshal([]byte(stdout), &claims); err != nil {
					t.Fatalf("stdout is not the claims as JSON: %v\n%s", err, stdout)
				}
				for k, want := range wantClaims {
					if got, _ := claims[k].(string); got != want {
						t.Errorf("claim %s: got %q, want %q", k, claims[k], want)
					}
				}
			})
		}
	}
}

// loginForAssertion logs in through the gateway and returns what the upstream
// saw: the assertion, the sub and the forwarded name, decoded.
func loginForAssertion(t *testing.T, g *gateway) (token, sub, name string) {
	t.Helper()
	s := g.login(g.newBrowser(), "/")
	token, sub = s.header("X-Sgid-Assertion"), s.header("X-Sgid-Sub")
	if token == "" || sub == "" {
		t.Fatalf("the upstream got no assertion or sub: %v", s.Headers)
	}
	name, err := url.PathUnescape(s.header("X-Sgid-Myinfo-Name"))
	if err != nil || name == "" {
		t.Fatalf("X-Sgid-Myinfo-Name %q: %v", s.header("X-Sgid-Myinfo-Name"), err)
	}
	return token, sub, name
}

// forgePayload keeps a token's header and signature and changes its sub: what an
// attacker who can set headers but has no key would send.
func forgePayload(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["sub"] = "someone-else"
	forged, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(forged)
	return strings.Join(parts, ".")
}

// flipSignature changes one character in the middle of the signature (the last
// character may carry only padding bits).
func flipSignature(token string) string {
	dot := strings.LastIndexByte(token, '.')
	return changeAt(token, dot+1+(len(token)-dot-1)/2)
}

// algNone is the token's claims under "alg": "none", with no signature.
func algNone(token string) string {
	parts := strings.Split(token, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
}

func TestExampleVerifiersCheckES256Assertion(t *testing.T) {
	snippets := exampleSnippets(t)
	g := newGateway(t, gatewayOptions{})
	token, sub, name := loginForAssertion(t, g)
	iss, aud := g.base, mustURL(t, g.base).Host // the default aud is the site's host and port
	es256 := func(iss, aud string) []string {
		return []string{"--jwks", g.base + "/.sgid/jwks.json", "--iss", iss, "--aud", aud}
	}
	now := time.Now()
	hs256Token := jwttest.Sign(t, jose.HS256, []byte(strings.Repeat("k", 32)), "", map[string]any{
		"iss": iss, "aud": aud, "sub": sub, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	})
	runVerifyCases(t, snippets, []verifyCase{
		{"valid", token, es256(iss, aud), true},
		{"forged payload", forgePayload(t, token), es256(iss, aud), false},
		{"flipped signature", flipSignature(token), es256(iss, aud), false},
		{"wrong audience", token, es256(iss, "other.example"), false},
		{"wrong issuer", token, es256("https://other.example", aud), false},
		{"alg none", algNone(token), es256(iss, aud), false},
		{"HS256 where ES256 is expected", hs256Token, es256(iss, aud), false},
	}, map[string]string{"sub": sub, "iss": iss, "aud": aud, "myinfo.name": name})
}

func TestExampleVerifiersCheckHS256Assertion(t *testing.T) {
	snippets := exampleSnippets(t)
	const secret = "example-signing-secret-0123456789abcdef"
	g := newGateway(t, gatewayOptions{directives: "signing_secret " + secret + "\naudience legacy-app"})
	token, sub, name := loginForAssertion(t, g)
	iss, aud := g.base, "legacy-app"
	hs256 := func(secret, iss, aud string) []string {
		return []string{"--secret", secret, "--iss", iss, "--aud", aud}
	}
	now := time.Now()
	claims := func(iat, exp time.Time) map[string]any {
		c := map[string]any{"iss": iss, "aud": aud, "sub": sub, "iat": iat.Unix(), "myinfo.name": name}
		if !exp.IsZero() {
			c["exp"] = exp.Unix()
		}
		return c
	}
	runVerifyCases(t, snippets, []verifyCase{
		{"valid", token, hs256(secret, iss, aud), true},
		{"forged payload", forgePayload(t, token), hs256(secret, iss, aud), false},
		{"flipped signature", flipSignature(token), hs256(secret, iss, aud), false},
		{"wrong audience", token, hs256(secret, iss, "127.0.0.1"), false},
		{"wrong issuer", token, hs256(secret, "https://other.example", aud), false},
		{"wrong secret", token, hs256(strings.Repeat("x", len(secret)), iss, aud), false},
		{"alg none", algNone(token), hs256(secret, iss, aud), false},
		// Tokens the gateway would not issue, signed with the right secret; the
		// first shows that the others fail for their claims, not their making.
		{"made here, valid", jwttest.Sign(t, jose.HS256, []byte(secret), "", claims(now, now.Add(time.Minute))), hs256(secret, iss, aud), true},
		{"expired", jwttest.Sign(t, jose.HS256, []byte(secret), "", claims(now.Add(-10*time.Minute), now.Add(-5*time.Minute))), hs256(secret, iss, aud), false},
		{"no exp", jwttest.Sign(t, jose.HS256, []byte(secret), "", claims(now, time.Time{})), hs256(secret, iss, aud), false},
	}, map[string]string{"sub": sub, "iss": iss, "aud": aud, "myinfo.name": name})
}
