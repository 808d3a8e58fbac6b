package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/certmagic"

	caddysgid "github.com/sgidproxy/caddy-sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// The examples/ directory is documentation that is tested: every Caddyfile there
// adapts cleanly and provisions, and every upstream verification snippet
// accepts a real assertion from a running gateway and rejects broken ones.

// exampleCaddyfiles are the integration patterns examples/ must show, one file
// each.
var exampleCaddyfiles = []string{
	"branded-pages",
	"headers",
	"hs256",
	"multi-instance",
	"optional-login",
	"public-routes",
	"spa",
}

// examplesDir is the repository's examples/, from this package's directory.
var examplesDir = filepath.Join("..", "..", "examples")

const setupHint = "run `bash examples/setup.sh` to install what the snippets in examples/verify/ need"

func TestExampleCaddyfilesAreTheListedPatterns(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.caddyfile"))
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
		"branded-pages": func(t *testing.T, _ []caddysgid.Handler, cfg map[string]any) {
			for _, srv := range dig(cfg, "apps", "http", "servers").(map[string]any) {
				if dig(srv, "errors", "routes") == nil {
					t.Error("want a handle_errors route")
				}
			}
		},
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
			body, err := os.ReadFile(filepath.Join(examplesDir, name+".caddyfile"))
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
