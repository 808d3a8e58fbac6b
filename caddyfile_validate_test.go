package caddysgid

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"
	"github.com/caddyserver/certmagic"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// validateSgidConfig provisions a config that holds one sgid handler, through Caddy
// itself, without opening listeners: what `caddy validate` does. Storage is a
// temporary directory; caddy.DefaultStorage is fixed when the caddy package is
// initialised, so setting XDG_DATA_HOME here would be too late to keep the test
// away from $HOME. It returns the storage directory.
func validateSgidConfig(t *testing.T, handler map[string]any) (string, error) {
	t.Helper()
	dir := t.TempDir()
	handler["handler"] = "sgid"
	cfgJSON, err := json.Marshal(map[string]any{
		"admin":   map[string]any{"disabled": true},
		"storage": map[string]any{"module": "file_system", "root": dir},
		"apps": map[string]any{
			"http": map[string]any{
				"servers": map[string]any{
					"srv0": map[string]any{
						"listen": []string{"127.0.0.1:18080"},
						"routes": []any{map[string]any{"match": []any{map[string]any{"host": []string{"app.example"}}}, "handle": []any{handler}}},
					},
				},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	// Validating points CertMagic's default storage at the temporary directory.
	prev := certmagic.Default.Storage
	t.Cleanup(func() { certmagic.Default.Storage = prev })
	return dir, caddy.Validate(&cfg)
}

// validateCaddyfile adapts sites (a Caddyfile without global options) and
// provisions it as `caddy validate` does, with storage in a temporary
// directory and a client key in {env.SGID_TEST_PRIVATE_KEY}. It returns the
// storage directory; the error is the adapter's or the provisioning's.
func validateCaddyfile(t *testing.T, sites string) (string, error) {
	t.Helper()
	key, err := sgidtest.NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SGID_TEST_PRIVATE_KEY", sgidtest.EncodePKCS8(key))
	dir := t.TempDir()
	body := "{\n\tadmin off\n\tstorage file_system " + dir + "\n}\n" + sites
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return dir, err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatal(err)
	}
	prev := certmagic.Default.Storage
	t.Cleanup(func() { certmagic.Default.Storage = prev })
	return dir, caddy.Validate(&cfg)
}

func TestProvisionRejectsBadPrivateKeyWithoutEchoingIt(t *testing.T) {
	const marker = "SECRETKEYMATERIAL"
	tests := []struct {
		name string
		key  string
		want []string
	}{
		{"damaged PEM", "-----BEGIN PRIVATE KEY-----\n" + marker + "!!notbase64\n-----END PRIVATE KEY-----\n", []string{"private key", "format", "damaged"}},
		{"not PEM", marker + "-not-a-key", []string{"private key", "format", "not PEM"}},
		{"two PEM blocks", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n-----BEGIN PRIVATE KEY-----\n" + marker + "\n-----END PRIVATE KEY-----\n", []string{"private key", "format", "more than one PEM block"}},
		{"PEM that is not a key", "-----BEGIN PRIVATE KEY-----\nU0VDUkVUS0VZTUFURVJJQUw=\n-----END PRIVATE KEY-----\n", []string{"private key", "format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := validateSgidConfig(t, map[string]any{
				"client_id":       "test-client",
				"client_secret":   "test-secret",
				"private_key":     tt.key,
				"session_secrets": []string{strings.Repeat("s", 32)},
				"signing_secret":  strings.Repeat("h", 32),
			})
			if err == nil {
				t.Fatal("want a provisioning error for a bad private key, got none")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("want the error to contain %q, got %q", w, err)
				}
			}
			if strings.Contains(err.Error(), marker) || strings.Contains(err.Error(), "U0VDUkVU") {
				t.Errorf("the error echoes the key text: %q", err)
			}
		})
	}
}

func TestProvisionExpandsEnvPlaceholders(t *testing.T) {
	key, err := sgidtest.NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		handler    map[string]any
		env        map[string]string
		wantStored bool // the session secret and assertion key were made in storage
	}{
		{
			name: "secrets from the environment",
			handler: map[string]any{
				"client_id":       "{env.SGID_TEST_CLIENT_ID}",
				"client_secret":   "{env.SGID_TEST_CLIENT_SECRET}",
				"private_key":     "{env.SGID_TEST_PRIVATE_KEY}",
				"session_secrets": []string{"{env.SGID_TEST_SESSION_SECRET}"},
				"signing_secret":  "{env.SGID_TEST_SIGNING_SECRET}",
				"hostname":        "{env.SGID_TEST_HOSTNAME}",
				"redirect_uri":    "{env.SGID_TEST_REDIRECT_URI}",
			},
			env: map[string]string{
				"SGID_TEST_HOSTNAME":       "https://sgid.example",
				"SGID_TEST_REDIRECT_URI":   "https://app.example/.sgid/callback",
				"SGID_TEST_CLIENT_ID":      "test-client",
				"SGID_TEST_CLIENT_SECRET":  "test-secret",
				"SGID_TEST_PRIVATE_KEY":    sgidtest.EncodePKCS8(key),
				"SGID_TEST_SESSION_SECRET": strings.Repeat("s", 32),
				"SGID_TEST_SIGNING_SECRET": strings.Repeat("h", 32),
			},
		},
		{
			name: "key with escaped newlines, generated secrets kept in storage",
			handler: map[string]any{
				"client_id":     "test-client",
				"client_secret": "{env.SGID_TEST_CLIENT_SECRET}",
				"private_key":   "{env.SGID_TEST_PRIVATE_KEY}",
			},
			env: map[string]string{
				"SGID_TEST_CLIENT_SECRET": "test-secret",
				"SGID_TEST_PRIVATE_KEY":   strings.ReplaceAll(sgidtest.EncodePKCS1(key), "\n", `\n`),
			},
			wantStored: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			dir, err := validateSgidConfig(t, tt.handler)
			if err != nil {
				t.Fatalf("want the config to provision, got %v", err)
			}
			for _, name := range []string{"session.secret", "assertion-*.key"} {
				stored, err := filepath.Glob(filepath.Join(dir, "sgid", "*", name))
				if err != nil {
					t.Fatal(err)
				}
				if got := len(stored) == 1; got != tt.wantStored {
					t.Errorf("%s in storage: want %v, got %v", name, tt.wantStored, stored)
				}
			}
		})
	}
}

func TestProvisionRejectsEmptyEnvPlaceholderNamingIt(t *testing.T) {
	key, err := sgidtest.NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SGID_TEST_PRIVATE_KEY", sgidtest.EncodePKCS8(key))
	t.Setenv("SGID_TEST_UNSET_SECRET", "")
	_, err = validateSgidConfig(t, map[string]any{
		"client_id":       "test-client",
		"client_secret":   "{env.SGID_TEST_UNSET_SECRET}",
		"private_key":     "{env.SGID_TEST_PRIVATE_KEY}",
		"session_secrets": []string{strings.Repeat("s", 32)},
		"signing_secret":  strings.Repeat("h", 32),
	})
	if err == nil {
		t.Fatal("want an error for an empty client_secret placeholder, got none")
	}
	for _, w := range []string{"client_secret", "{env.SGID_TEST_UNSET_SECRET}"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("want the error to contain %q, got %q", w, err)
		}
	}
}

func TestProvisionRejectsBadURLsFromPlaceholders(t *testing.T) {
	key, err := sgidtest.NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SGID_TEST_PRIVATE_KEY", sgidtest.EncodePKCS8(key))
	for field, value := range map[string]string{"hostname": "api.id.gov.sg", "redirect_uri": "/.sgid/callback"} {
		t.Run(field, func(t *testing.T) {
			t.Setenv("SGID_TEST_URL", value)
			_, err := validateSgidConfig(t, map[string]any{
				"client_id":       "test-client",
				"client_secret":   "test-secret",
				"private_key":     "{env.SGID_TEST_PRIVATE_KEY}",
				"session_secrets": []string{strings.Repeat("s", 32)},
				"signing_secret":  strings.Repeat("h", 32),
				field:             "{env.SGID_TEST_URL}",
			})
			if err == nil || !strings.Contains(err.Error(), field) {
				t.Errorf("%s %q from the environment: want an error naming %s, got %v", field, value, field, err)
			}
		})
	}
}

// TestValidateJSONErrorsNameNoLine pins Validate's messages for JSON configs,
// where there is no Caddyfile line to give: the message ends the error. (Caddy
// provisions before it validates, so these are mistakes Provision lets by.)
func TestValidateJSONErrorsNameNoLine(t *testing.T) {
	key, err := sgidtest.NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		set  map[string]any
		want string
	}{
		{"forward not in scope", map[string]any{"forward": []any{map[string]any{"field": "myinfo.email"}}}, "forward myinfo.email: the field is not requested: add it to scope"},
		{"two forwards onto one header", map[string]any{"forward": []any{map[string]any{"field": "myinfo.name", "header": "X-Person"}, map[string]any{"field": "sub", "header": "x-person"}}}, "forward: header x-person is used for both myinfo.name and sub"},
		{"second require not in scope", map[string]any{"require": []any{map[string]any{"field": "myinfo.name", "values": []string{"Tan"}}, map[string]any{"field": "myinfo.email", "values": []string{"a@b"}}}}, "require myinfo.email: the field is not requested, so no one would pass: add it to scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := map[string]any{
				"client_id":     "test-client",
				"client_secret": "test-secret",
				"private_key":   sgidtest.EncodePKCS8(key),
			}
			maps.Copy(handler, tt.set)
			_, err := validateSgidConfig(t, handler)
			if err == nil || !strings.HasSuffix(err.Error(), ": "+tt.want) {
				t.Errorf("want an error ending %q, got %v", ": "+tt.want, err)
			}
		})
	}
}
