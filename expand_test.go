package caddysgid

import (
	"encoding/pem"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

func TestKeyPathHintOnlyForWhatCannotBeAKey(t *testing.T) {
	key, err := sgidtest.NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	pemText := sgidtest.EncodePKCS8(key)
	block, _ := pem.Decode([]byte(pemText))
	base64Body := strings.Join(strings.Split(strings.TrimSpace(strings.SplitN(pemText, "\n", 2)[1]), "\n")[:2], "")
	for _, tt := range []struct {
		name, value string
		path        bool
	}{
		{"absolute path", "/etc/sgid/private.pem", true},
		{"absolute path without an extension", "/run/secrets/sgid", true},
		{"relative path", "./keys/sgid.key", true},
		{"parent path", "../sgid.pem", true},
		{"home path", "~/sgid/private.pem", true},
		{"file name", "private.pem", true},
		{"Windows path", `C:\sgid\private.pem`, true},
		{"PEM text", pemText, false},
		{"PEM with escaped newlines", strings.ReplaceAll(pemText, "\n", `\n`), false},
		{"base64 without armour", base64Body, false},
		{"base64 starting with a slash", "/" + base64Body, false},
		{"the DER bytes", string(block.Bytes), false},
		{"a JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", false},
		{"a short base64 secret after a slash", "/Zm9vYmFyYmF6cXV4", false},
		{"a word", "SECRETKEYMATERIAL-not-a-key", false},
		{"a placeholder", "{file./etc/sgid/private.pem}", false},
		{"empty", "", false},
	} {
		err := keyPathHint("private_key", tt.value)
		if (err != nil) != tt.path {
			t.Errorf("%s: keyPathHint = %v, want a path: %t", tt.name, err, tt.path)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "{file."+tt.value+"}") {
			t.Errorf("%s: want the hint to give {file.%s}, got %q", tt.name, tt.value, err)
		}
	}
}

// A path read from an environment variable gets the same hint as a literal
// one (which Validate catches at adapt time, with its line).
func TestProvisionSaysAPrivateKeyFromTheEnvironmentIsAPath(t *testing.T) {
	t.Setenv("SGID_TEST_KEY", "/run/secrets/sgid.pem")
	_, err := validateSgidConfig(t, map[string]any{
		"client_id":     "test-client",
		"client_secret": "test-secret",
		"private_key":   "{env.SGID_TEST_KEY}",
	})
	want := "private_key is the path /run/secrets/sgid.pem, not the key's PEM text: write {file./run/secrets/sgid.pem} to read the file"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("want an error containing %q, got %v", want, err)
	}
}

// Every placeholder that is unset or empty is named in one error, by the
// field it is in and its name, never with the value of one that is set.
func TestProvisionNamesEveryEmptyPlaceholderAtOnce(t *testing.T) {
	const secret = "a-secret-value-that-must-not-show"
	t.Setenv("SGID_TEST_SET", secret)
	t.Setenv("SGID_TEST_EMPTY", "")
	tests := []struct {
		name    string
		handler map[string]any
		want    []string
	}{
		{
			name: "three fields",
			handler: map[string]any{
				"client_id":       "test-client",
				"client_secret":   "{env.SGID_TEST_UNSET_1}",
				"private_key":     "{env.SGID_TEST_UNSET_2}",
				"session_secrets": []string{"{env.SGID_TEST_SET}{env.SGID_TEST_SET}", "{env.SGID_TEST_SET}{env.SGID_TEST_EMPTY}"},
			},
			want: []string{"3 placeholders are empty or unset: client_secret {env.SGID_TEST_UNSET_1}, private_key {env.SGID_TEST_UNSET_2}, session_secret #2 {env.SGID_TEST_EMPTY}"},
		},
		{
			name: "the redirect_uri among them",
			handler: map[string]any{
				"client_id":     "{env.SGID_TEST_UNSET_1}",
				"client_secret": "test-secret",
				"private_key":   "{env.SGID_TEST_UNSET_2}",
				"redirect_uri":  "{env.SGID_TEST_UNSET_3}",
			},
			want: []string{"redirect_uri {env.SGID_TEST_UNSET_3}, client_id {env.SGID_TEST_UNSET_1}, private_key {env.SGID_TEST_UNSET_2}"},
		},
		{
			name: "one",
			handler: map[string]any{
				"client_id":      "test-client",
				"client_secret":  "test-secret",
				"private_key":    "{env.SGID_TEST_SET}",
				"signing_secret": "{env.SGID_TEST_UNSET_1}",
			},
			want: []string{"signing_secret {env.SGID_TEST_UNSET_1} is empty or unset"},
		},
		{
			name: "a file that cannot be read",
			handler: map[string]any{
				"client_id":     "test-client",
				"client_secret": "{file./nonexistent/sgid/secret}",
				"private_key":   "{env.SGID_TEST_UNSET_1}",
			},
			want: []string{"2 placeholders are empty or unset: client_secret {file./nonexistent/sgid/secret}, private_key {env.SGID_TEST_UNSET_1}"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := validateSgidConfig(t, tt.handler)
			if err == nil {
				t.Fatal("want an error naming the empty placeholders, got none")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("want the error to contain %q, got %q", w, err)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error holds the value of a placeholder that is set: %q", err)
			}
		})
	}
}
