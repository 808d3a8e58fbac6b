package caddysgid_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	caddysgid "github.com/sgidproxy/caddy-sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// The examples/ directory is documentation that is tested: every Caddyfile there
// adapts cleanly and provisions, and every upstream verification snippet
// accepts a real assertion from a running gateway and rejects broken ones.

// exampleCaddyfiles are the integration patterns examples/ must show, one file
// each.
var exampleCaddyfiles = []string{
	"headers",
	"hs256",
	"multi-instance",
	"optional-login",
	"public-routes",
	"spa",
}

const setupHint = "run `bash examples/setup.sh` to install what the snippets in examples/verify/ need"

func TestExampleCaddyfilesAreTheListedPatterns(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("examples", "*.caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, strings.TrimSuffix(filepath.Base(f), ".caddyfile"))
	}
	if !slices.Equal(got, exampleCaddyfiles) {
		t.Errorf("examples/*.caddyfile: got %v, want %v", got, exampleCaddyfiles)
	}
}

func TestExampleCaddyfilesAdaptAndProvision(t *testing.T) {
	checks := map[string]func(t *testing.T, hs []caddysgid.Handler, cfg map[string]any){
		"headers": func(t *testing.T, hs []caddysgid.Handler, _ map[string]any) {
			if len(hs[0].Forward) == 0 || len(hs[0].Require) == 0 {
				t.Error("want forward and require rules")
			}
		},
		"hs256": func(t *testing.T, hs []caddysgid.Handler, _ map[string]any) {
			if hs[0].SigningSecret == "" || hs[0].Audience == "" {
				t.Error("want signing_secret and audience set")
			}
		},
		"multi-instance": func(t *testing.T, hs []caddysgid.Handler, cfg map[string]any) {
			if len(hs[0].SessionSecrets) == 0 || len(hs[0].SigningKeys) == 0 {
				t.Error("want session_secret and signing_key given explicitly")
			}
			if cfg["storage"] == nil {
				t.Error("want a storage global option")
			}
		},
		"optional-login": func(t *testing.T, hs []caddysgid.Handler, _ map[string]any) {
			if !hs[0].Anonymous {
				t.Error("want anonymous")
			}
		},
		"public-routes": func(t *testing.T, hs []caddysgid.Handler, _ map[string]any) {
			if len(hs) != 2 {
				t.Errorf("want the two sites' sgid handlers, got %d", len(hs))
			}
		},
		"spa": func(t *testing.T, hs []caddysgid.Handler, _ map[string]any) {
			if hs[0].Anonymous {
				t.Error("want the SPA's API gated, not anonymous")
			}
		},
	}
	for _, name := range exampleCaddyfiles {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("examples", name+".caddyfile"))
			if err != nil {
				t.Fatal(err)
			}
			adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, nil)
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			if len(warnings) > 0 {
				t.Errorf("adapting: want no warnings, got %+v", warnings)
			}
			var cfg map[string]any
			if err := json.Unmarshal(adapted, &cfg); err != nil {
				t.Fatal(err)
			}
			handlers := decodeSgidHandlers(t, cfg)
			if len(handlers) == 0 {
				t.Fatal("the adapted JSON has no sgid handler")
			}
			for _, h := range handlers {
				for _, s := range append([]string{h.ClientSecret, h.PrivateKey, h.SigningSecret}, append(h.SessionSecrets, h.SigningKeys...)...) {
					if s != "" && !secretPlaceholder.MatchString(s) {
						t.Errorf("secret %q is not an {env.*} or {file.*} placeholder", s)
					}
				}
			}
			checks[name](t, handlers, cfg)
			checkRoutesToAppPassSgid(t, cfg)
			checkSgidMatchersCoverReserved(t, cfg)
			provisionExample(t, adapted)
		})
	}
}

var (
	secretPlaceholder = regexp.MustCompile(`^\{(env|file)\.[^{}]+\}$`)
	envPlaceholder    = regexp.MustCompile(`\{env\.([A-Za-z0-9_]+)\}`)
	filePlaceholder   = regexp.MustCompile(`\{file\.(/etc/sgid/[^{}]+)\}`)
)

// decodeSgidHandlers returns every sgid handler in an adapted config, strictly
// decoded, in config order.
func decodeSgidHandlers(t *testing.T, cfg map[string]any) []caddysgid.Handler {
	t.Helper()
	var out []caddysgid.Handler
	walkHandlers(cfg, func(h map[string]any) {
		if h["handler"] != "sgid" {
			return
		}
		delete(h, "handler")
		raw, err := json.Marshal(h)
		h["handler"] = "sgid"
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var handler caddysgid.Handler
		if err := dec.Decode(&handler); err != nil {
			t.Fatalf("an sgid handler does not decode: %v", err)
		}
		out = append(out, handler)
	})
	return out
}

func walkHandlers(v any, fn func(map[string]any)) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			walkHandlers(e, fn)
		}
	case map[string]any:
		if _, ok := v["handler"]; ok {
			fn(v)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			walkHandlers(v[k], fn)
		}
	}
}

// serverRoutes returns each HTTP server's route list.
func serverRoutes(t *testing.T, cfg map[string]any) [][]any {
	t.Helper()
	servers, _ := dig(cfg, "apps", "http", "servers").(map[string]any)
	if len(servers) == 0 {
		t.Fatal("the adapted config has no HTTP server")
	}
	var out [][]any
	for _, srv := range servers {
		routes, _ := srv.(map[string]any)["routes"].([]any)
		out = append(out, routes)
	}
	return out
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// checkRoutesToAppPassSgid pins down the rule the examples teach: a request can
// reach reverse_proxy only after an sgid handler ran for it, since only sgid
// deletes client-sent identity headers. Caddy runs the routes of a list in
// order; an sgid handler covers the rest of its own route, every later route of
// its list if it has no matcher, and the later routes with the same matcher
// if it has one.
func checkRoutesToAppPassSgid(t *testing.T, cfg map[string]any) {
	t.Helper()
	var walk func(routes []any, covered bool, where string)
	walk = func(routes []any, covered bool, where string) {
		coveredMatch := map[string]bool{}
		for i, r := range routes {
			route, _ := r.(map[string]any)
			m, _ := json.Marshal(route["match"])
			c := covered || coveredMatch["null"] || coveredMatch[string(m)]
			handlers, _ := route["handle"].([]any)
			for _, hv := range handlers {
				h, _ := hv.(map[string]any)
				switch h["handler"] {
				case "sgid":
					c = true
					if route["terminal"] != true {
						coveredMatch[string(m)] = true
					}
				case "subroute":
					sub, _ := h["routes"].([]any)
					walk(sub, c, fmt.Sprintf("%s/route %d", where, i))
				case "reverse_proxy":
					if !c {
						t.Errorf("%s/route %d (match %s) proxies to the app without passing sgid: client-sent identity headers would reach it", where, i, m)
					}
				}
			}
		}
	}
	for _, routes := range serverRoutes(t, cfg) {
		walk(routes, false, "")
	}
}

// checkSgidMatchersCoverReserved checks that every sgid handler sees its own
// callback: the matchers on the way to it (host aside) match /.sgid/callback.
func checkSgidMatchersCoverReserved(t *testing.T, cfg map[string]any) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	var walk func(routes []any, path []any)
	walk = func(routes []any, path []any) {
		for _, r := range routes {
			route, _ := r.(map[string]any)
			p := path
			if sets, ok := route["match"].([]any); ok {
				p = append(slices.Clip(path), sets)
			}
			handlers, _ := route["handle"].([]any)
			for _, hv := range handlers {
				h, _ := hv.(map[string]any)
				switch h["handler"] {
				case "sgid":
					for _, sets := range p {
						if !matchesAnySet(t, ctx, sets.([]any), "/.sgid/callback") {
							t.Errorf("an sgid handler behind the matcher %v does not see /.sgid/callback: its matcher must cover /.sgid/*", sets)
						}
					}
				case "subroute":
					sub, _ := h["routes"].([]any)
					walk(sub, p)
				}
			}
		}
	}
	for _, routes := range serverRoutes(t, cfg) {
		walk(routes, nil)
	}
}

// matchesAnySet tells whether a GET for path matches one of a route's matcher
// sets (each an AND of matchers), using Caddy's own matcher modules. Host
// matchers are left out: the request is for the site by construction.
func matchesAnySet(t *testing.T, ctx caddy.Context, sets []any, path string) bool {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	for _, s := range sets {
		all := true
		for name, raw := range s.(map[string]any) {
			if name == "host" {
				continue
			}
			rawJSON, err := json.Marshal(raw)
			if err != nil {
				t.Fatal(err)
			}
			mod, err := ctx.LoadModuleByID("http.matchers."+name, rawJSON)
			if err != nil {
				t.Fatalf("loading matcher %s: %v", name, err)
			}
			var ok bool
			switch m := mod.(type) {
			case caddyhttp.RequestMatcherWithError:
				ok, err = m.MatchWithError(req)
				if err != nil {
					t.Fatalf("matcher %s: %v", name, err)
				}
			case caddyhttp.RequestMatcher:
				ok = m.Match(req)
			default:
				t.Fatalf("matcher %s is a %T", name, mod)
			}
			all = all && ok
		}
		if all {
			return true
		}
	}
	return false
}

// provisionExample does what `caddy validate` does with an example, with test
// values for its {env.*} placeholders, its {file./etc/sgid/...} files made in a
// temporary directory, the admin endpoint off and storage in a temporary
// directory. A placeholder the test has no value for fails the test: an
// example must not need a secret the README does not describe.
func provisionExample(t *testing.T, adapted []byte) {
	t.Helper()
	rsaKey, err := sgidtest.NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range envPlaceholder.FindAllSubmatch(adapted, -1) {
		name := string(m[1])
		var v string
		switch {
		case strings.HasSuffix(name, "_CLIENT_ID"):
			v = "example-client"
		case strings.HasSuffix(name, "_PRIVATE_KEY"):
			v = sgidtest.EncodePKCS8(rsaKey)
		case strings.Contains(name, "SIGNING_KEY"):
			v = newECKeyPEM(t)
		case strings.Contains(name, "SECRET"):
			v = caddysgid.NewSessionSecret()
		default:
			t.Fatalf("no test value for {env.%s}", name)
		}
		t.Setenv(name, v)
	}
	dir := tempDir(t)
	for _, m := range filePlaceholder.FindAllSubmatch(adapted, -1) {
		base := filepath.Base(string(m[1]))
		var v string
		switch {
		case base == "private.pem":
			v = sgidtest.EncodePKCS8(rsaKey)
		case strings.HasPrefix(base, "assertion") && strings.HasSuffix(base, ".pem"):
			v = newECKeyPEM(t)
		case strings.HasSuffix(base, ".secret"):
			v = caddysgid.NewSessionSecret() + "\n" // as `openssl rand -base64 48 > file` leaves it
		default:
			t.Fatalf("no test content for {file.%s}", m[1])
		}
		if err := os.WriteFile(filepath.Join(dir, base), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if bytes.Contains(bytes.ReplaceAll(adapted, []byte("{file./etc/sgid/"), nil), []byte("{file.")) {
		t.Fatal("a {file.*} placeholder outside /etc/sgid/: give the test content for it")
	}
	adapted = bytes.ReplaceAll(adapted, []byte("{file./etc/sgid/"), []byte("{file."+dir+"/"))

	var cfgMap map[string]any
	if err := json.Unmarshal(adapted, &cfgMap); err != nil {
		t.Fatal(err)
	}
	cfgMap["admin"] = map[string]any{"disabled": true}
	cfgMap["storage"] = map[string]any{"module": "file_system", "root": tempDir(t)}
	cfgJSON, err := json.Marshal(cfgMap)
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	// Provisioning the tls app points CertMagic's default storage elsewhere.
	prev := certmagic.Default.Storage
	defer func() { certmagic.Default.Storage = prev }()
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("provisioning (caddy validate): %v", err)
	}
}

func newECKeyPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

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
	if out, err := exec.Command("go", "build", "-o", goBin, "./examples/verify/go").CombinedOutput(); err != nil {
		t.Fatalf("building examples/verify/go: %v\n%s", err, out)
	}
	nodeDir := filepath.Join("examples", "verify", "node")
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
		{"python", []string{"/usr/bin/python3", filepath.Join("examples", "verify", "python", "verify.py")}},
		{"node", []string{"node", filepath.Join(nodeDir, "verify.mjs")}},
		{"php", []string{"php", filepath.Join("examples", "verify", "php", "verify.php")}},
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
	i := dot + 1 + (len(token)-dot-1)/2
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

// algNone is the token's claims under "alg": "none", with no signature.
func algNone(token string) string {
	parts := strings.Split(token, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
}

// signHS256 makes a token with go-jose, for claims the gateway never issues
// (expired, missing exp).
func signHS256(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExampleVerifiersCheckES256Assertion(t *testing.T) {
	snippets := exampleSnippets(t)
	g := newGateway(t, gatewayOptions{})
	token, sub, name := loginForAssertion(t, g)
	iss, aud := g.base, "127.0.0.1" // the default aud is the request's host
	es256 := func(iss, aud string) []string {
		return []string{"--jwks", g.base + "/.sgid/jwks.json", "--iss", iss, "--aud", aud}
	}
	now := time.Now()
	hs256Token := signHS256(t, strings.Repeat("k", 32), map[string]any{
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
		{"made here, valid", signHS256(t, secret, claims(now, now.Add(time.Minute))), hs256(secret, iss, aud), true},
		{"expired", signHS256(t, secret, claims(now.Add(-10*time.Minute), now.Add(-5*time.Minute))), hs256(secret, iss, aud), false},
		{"no exp", signHS256(t, secret, claims(now, time.Time{})), hs256(secret, iss, aud), false},
	}, map[string]string{"sub": sub, "iss": iss, "aud": aud, "myinfo.name": name})
}
