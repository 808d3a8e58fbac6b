package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
			// Every matcher Caddy ships implements RequestMatcherWithError;
			// RequestMatcher alone is deprecated.
			m, isMatcher := mod.(caddyhttp.RequestMatcherWithError)
			if !isMatcher {
				t.Fatalf("matcher %s is a %T", name, mod)
			}
			ok, err := m.MatchWithError(req)
			if err != nil {
				t.Fatalf("matcher %s: %v", name, err)
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
