package caddysgid

import (
	"bytes"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"

	"github.com/sgidproxy/caddy-sgid/session"
)

// validateWithLines adapts a Caddyfile whose sgid block holds lines and
// provisions it the way `caddy validate` does. It fails the test if the handler
// made a secret of its own in storage instead of using the configured ones.
func validateWithLines(t *testing.T, lines string) {
	t.Helper()
	t.Setenv("SGID_KEYGEN_TEST_CLIENT_SECRET", "client-secret")
	body := `http://app.example {
	sgid {
		client_id keygen-test
		client_secret {env.SGID_KEYGEN_TEST_CLIENT_SECRET}
		private_key {env.SGID_TEST_PRIVATE_KEY}
` + lines + `
	}
}
`
	storage, err := validateCaddyfile(t, body)
	if err != nil {
		t.Fatalf("the handler refuses the generated values: %v\n%s", err, body)
	}
	if _, err := os.Stat(filepath.Join(storage, "sgid")); err == nil {
		t.Fatal("the handler generated keys of its own: the configured ones were not used")
	}
}

// checkSecretAndKey checks the values with the functions the handler uses.
func checkSecretAndKey(t *testing.T, secret, key string) {
	t.Helper()
	if secret != "" {
		if len(secret) < 32 || strings.ContainsAny(secret, " \t\n{}") {
			t.Errorf("secret %d characters or holds a character that needs quoting", len(secret))
		}
		if _, err := session.New(session.Config{Secrets: [][]byte{[]byte(secret)}}); err != nil {
			t.Errorf("the session codec refuses the secret: %v", err)
		}
	}
	if key != "" {
		if _, err := parseECKey(key); err != nil {
			t.Errorf("parseECKey refuses the key: %v", err)
		}
	}
}

func TestKeygenPrintsValuesAndCaddyfileLinesTheHandlerAccepts(t *testing.T) {
	var out bytes.Buffer
	if err := keygen(&out, keygenOptions{}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	var secret string
	var sgidLines []string
	inBlock := false
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "SGID_SESSION_SECRET="); ok {
			secret = v
		}
		if inBlock {
			if l, ok := strings.CutPrefix(line, "#\t"); ok {
				sgidLines = append(sgidLines, l)
			}
		}
		inBlock = inBlock || line == "# In the sgid block:"
	}
	block, _ := pem.Decode([]byte(text))
	if secret == "" || block == nil || len(sgidLines) != 2 {
		t.Fatalf("want a SGID_SESSION_SECRET= line, a PEM block and two Caddyfile lines:\n%s", text)
	}
	key := string(pem.EncodeToMemory(block))
	checkSecretAndKey(t, secret, key)

	// The printed lines, with the values where they say to put them.
	dir := t.TempDir()
	t.Setenv("SGID_SESSION_SECRET", secret)
	if err := os.WriteFile(filepath.Join(dir, keyFile), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := strings.ReplaceAll(strings.Join(sgidLines, "\n"), "/etc/caddy/sgid", dir)
	if !strings.Contains(lines, "session_secret {env.SGID_SESSION_SECRET}") || !strings.Contains(lines, "signing_key {file."+dir) {
		t.Fatalf("unexpected Caddyfile lines:\n%s", lines)
	}
	validateWithLines(t, lines)
}

func TestKeygenOutDirWritesPrivateFilesAndNeverReplacesThem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sgid")
	var out bytes.Buffer
	if err := keygen(&out, keygenOptions{outDir: dir}); err != nil {
		t.Fatal(err)
	}
	secret, key := readKeyFile(t, dir, secretFile), readKeyFile(t, dir, keyFile)
	checkSecretAndKey(t, strings.TrimSuffix(secret, "\n"), key)
	if strings.Contains(out.String(), strings.TrimSpace(secret)) || strings.Contains(out.String(), "PRIVATE KEY") {
		t.Error("--out-dir printed a secret")
	}
	var lines []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "\t") {
			lines = append(lines, line)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("want two Caddyfile lines:\n%s", out.String())
	}
	validateWithLines(t, strings.Join(lines, "\n"))

	// A second run must not replace either file, nor write the other one.
	for _, opts := range []keygenOptions{{outDir: dir}, {outDir: dir, keyOnly: true}} {
		if err := keygen(&bytes.Buffer{}, opts); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Errorf("%+v over existing files: error %v, want one saying the file exists", opts, err)
		}
	}
	if readKeyFile(t, dir, secretFile) != secret || readKeyFile(t, dir, keyFile) != key {
		t.Error("an existing file was replaced")
	}

	// --secret-only writes only the secret.
	only := t.TempDir()
	if err := keygen(&bytes.Buffer{}, keygenOptions{outDir: only, secretOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(only, keyFile)); err == nil {
		t.Error("--secret-only --out-dir wrote a key")
	}
	readKeyFile(t, only, secretFile)
}

// readKeyFile reads a file keygen wrote and checks that only its owner can.
func readKeyFile(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestKeygenOnlyFlagsPrintTheBareValue(t *testing.T) {
	var out bytes.Buffer
	if err := keygen(&out, keygenOptions{secretOnly: true}); err != nil {
		t.Fatal(err)
	}
	secret, ok := strings.CutSuffix(out.String(), "\n")
	if !ok || strings.Contains(secret, "\n") {
		t.Fatalf("--secret-only printed %q, want one line", out.String())
	}
	checkSecretAndKey(t, secret, "")

	out.Reset()
	if err := keygen(&out, keygenOptions{keyOnly: true}); err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(out.Bytes())
	if block == nil || !strings.HasPrefix(out.String(), "-----BEGIN PRIVATE KEY-----\n") || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("--key-only printed more than a PEM block:\n%s", out.String())
	}
	checkSecretAndKey(t, "", out.String())

	if err := keygen(&out, keygenOptions{secretOnly: true, keyOnly: true}); err == nil {
		t.Error("--secret-only with --key-only was accepted")
	}
}

func TestKeygenIsACaddyCommandWithItsFlags(t *testing.T) {
	cmd, ok := caddycmd.Commands()["sgid-keygen"]
	if !ok {
		t.Fatal("caddy sgid-keygen is not registered")
	}
	for _, name := range []string{"secret-only", "key-only", "out-dir"} {
		if cmd.Flags.Lookup(name) == nil {
			t.Errorf("flag --%s missing", name)
		}
		if !strings.Contains(cmd.Usage, "--"+name) || !strings.Contains(cmd.Long, "--"+name) {
			t.Errorf("--%s is not in the usage or help text", name)
		}
	}
}
