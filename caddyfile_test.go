package caddysgid

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy/forwardauth"
)

var updateGolden = flag.Bool("update", false, "rewrite the Caddyfile adapt golden files in testdata/")

// goldenCases name the testdata/<name>.caddyfile and testdata/<name>.json pairs.
var goldenCases = []string{
	"minimal",
	"all_subdirectives",
	"signing_secret",
	"directive_order",
	"matcher",
}

// adaptCaddyfile runs Caddy's own Caddyfile adapter, the one `caddy adapt` uses.
func adaptCaddyfile(t *testing.T, body string) ([]byte, []caddyconfig.Warning, error) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("the caddyfile adapter is not registered")
	}
	return adapter.Adapt([]byte(body), nil)
}

// adaptFile adapts testdata/<name>.caddyfile, failing the test on an error or a
// warning, and returns the JSON indented with tabs.
func adaptFile(t *testing.T, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name+".caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := adaptCaddyfile(t, string(body))
	if err != nil {
		t.Fatalf("adapting %s.caddyfile: %v", name, err)
	}
	if len(warnings) > 0 {
		t.Errorf("adapting %s.caddyfile: want no warnings, got %+v", name, warnings)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "\t"); err != nil {
		t.Fatalf("indenting adapted JSON: %v", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

func TestCaddyfileAdaptsToGoldenJSON(t *testing.T) {
	for _, name := range goldenCases {
		t.Run(name, func(t *testing.T) {
			got := adaptFile(t, name)
			path := filepath.Join("testdata", name+".json")
			if *updateGolden {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestCaddyfileAdaptsToGoldenJSON -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("adapted %s.caddyfile differs from %s (rerun with -update if the change is intended)\n--- got\n%s\n--- want\n%s", name, path, got, want)
			}
		})
	}
}

// configHandlers returns every object in an adapted config that has a "handler"
// key, depth first, arrays in order and object keys sorted: the handlers of one
// route, and the routes of one list, come out in the order Caddy runs them.
func configHandlers(v any) []map[string]any {
	var out []map[string]any
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			out = append(out, configHandlers(e)...)
		}
	case map[string]any:
		if _, ok := v["handler"]; ok {
			out = append(out, v)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, configHandlers(v[k])...)
		}
	}
	return out
}

// adaptedHandlers adapts testdata/<name>.caddyfile and returns its handlers,
// in the order configHandlers gives.
func adaptedHandlers(t *testing.T, name string) []map[string]any {
	t.Helper()
	var cfg any
	if err := json.Unmarshal(adaptFile(t, name), &cfg); err != nil {
		t.Fatal(err)
	}
	return configHandlers(cfg)
}

// adaptedSgid adapts testdata/<name>.caddyfile and decodes its one sgid
// handler, strictly: a key that Handler does not have fails the test.
func adaptedSgid(t *testing.T, name string) Handler {
	t.Helper()
	var out []Handler
	for _, h := range adaptedHandlers(t, name) {
		if h["handler"] != "sgid" {
			continue
		}
		raw, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var withName struct {
			Handler
			Name string `json:"handler"`
		}
		if err := dec.Decode(&withName); err != nil {
			t.Fatalf("the sgid handler's JSON does not decode into Handler: %v", err)
		}
		out = append(out, withName.Handler)
	}
	if len(out) != 1 {
		t.Fatalf("%s.caddyfile: want one sgid handler, got %d", name, len(out))
	}
	return out[0]
}

var placeholderRE = regexp.MustCompile(`^\{(env|file)\.[^{}]+\}$`)

func TestAdaptKeepsSecretPlaceholdersLiteral(t *testing.T) {
	for _, name := range goldenCases {
		t.Run(name, func(t *testing.T) {
			h := adaptedSgid(t, name)
			if h.ClientSecret != "{env.SGID_CLIENT_SECRET}" {
				t.Errorf("client_secret: want the placeholder {env.SGID_CLIENT_SECRET} kept literally, got %q", h.ClientSecret)
			}
			if h.PrivateKey != "{file./etc/sgid/private.pem}" {
				t.Errorf("private_key: want the placeholder {file./etc/sgid/private.pem} kept literally, got %q", h.PrivateKey)
			}
			secrets := append([]string{h.ClientID, h.ClientSecret, h.PrivateKey, h.SigningSecret}, h.SessionSecrets...)
			secrets = append(secrets, h.SigningKeys...)
			for _, s := range secrets {
				if s != "" && !placeholderRE.MatchString(s) {
					t.Errorf("secret %q is not a single {env.*} or {file.*} placeholder", s)
				}
			}
		})
	}
}

func TestAdaptSetsEveryHandlerField(t *testing.T) {
	// signing_key and signing_secret are exclusive, so two files cover every field.
	set := map[string]bool{}
	for _, name := range []string{"all_subdirectives", "signing_secret"} {
		for _, h := range adaptedHandlers(t, name) {
			if h["handler"] == "sgid" {
				for k := range h {
					set[k] = true
				}
			}
		}
	}
	typ := reflect.TypeFor[Handler]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !set[key] {
			t.Errorf("Handler.%s (%s) is set by no subdirective in all_subdirectives.caddyfile or signing_secret.caddyfile", f.Name, key)
		}
	}
}

func TestAdaptDecodesEverySubdirective(t *testing.T) {
	h := adaptedSgid(t, "all_subdirectives")
	want := Handler{
		ClientID:     "{env.SGID_CLIENT_ID}",
		ClientSecret: "{env.SGID_CLIENT_SECRET}",
		PrivateKey:   "{file./etc/sgid/private.pem}",
		Hostname:     "https://api.id.gov.sg",
		RedirectURI:  "https://app.example.gov.sg/.sgid/callback",
		Scopes:       []string{"openid", "myinfo.name", "myinfo.email", "myinfo.residentialstatus", "myinfo.is_age_above_18"},
		Forward:      []Forward{{Field: "myinfo.name"}, {Field: "myinfo.email", Header: "X-User-Email"}},
		Require: []Requirement{
			{Field: "myinfo.is_age_above_18", Values: []string{"true"}},
			{Field: "myinfo.residentialstatus", Values: []string{"CITIZEN", "PR"}},
		},
		Anonymous: true,
		SessionSecrets: []string{
			"{env.SGID_SESSION_SECRET}",
			"{env.SGID_SESSION_SECRET_PREVIOUS}",
			"{file./etc/sgid/session-oldest.secret}",
		},
		SessionLifetime:   caddy.Duration(8 * time.Hour),
		IdleTimeout:       caddy.Duration(20 * time.Minute),
		CookieName:        "app_session",
		SigningKeys:       []string{"{file./etc/sgid/assertion.pem}", "{file./etc/sgid/assertion-previous.pem}"},
		Audience:          "https://app.internal",
		AssertionLifetime: caddy.Duration(2 * time.Minute),
		Timeout:           caddy.Duration(5 * time.Second),
		ClockSkew:         caddy.Duration(30 * time.Second),
		RevocationStore:   "{env.SGID_REDIS_URL}",
		RevocationPoll:    caddy.Duration(5 * time.Second),
		FormReplay:        "256KiB",
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("all_subdirectives.caddyfile adapted to\n%+v\nwant\n%+v", h, want)
	}
}

func TestAdaptOrdersSgidAfterForwardAuthBeforeOtherHandlers(t *testing.T) {
	// Name each handler by the directive that made it: forward_auth adapts to a
	// reverse_proxy that handles the response itself.
	var order []string
	for _, h := range adaptedHandlers(t, "directive_order") {
		name := h["handler"].(string)
		switch {
		case name == "reverse_proxy" && h["handle_response"] != nil:
			name = "forward_auth"
		case name == "headers":
			name = "request_header"
		case name == "static_response":
			name = "respond"
		}
		order = append(order, name)
	}
	index := func(name string) int {
		t.Helper()
		i := slices.Index(order, name)
		if i < 0 {
			t.Fatalf("no %s handler in the adapted config; handlers in order: %v", name, order)
		}
		return i
	}
	sgid := index("sgid")
	if forwardAuth := index("forward_auth"); forwardAuth > sgid {
		t.Errorf("sgid runs before forward_auth; handlers in order: %v", order)
	}
	for _, later := range []string{"request_header", "respond", "reverse_proxy"} {
		if index(later) < sgid {
			t.Errorf("sgid runs after %s; handlers in order: %v", later, order)
		}
	}
}
