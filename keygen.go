package caddysgid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

func init() {
	fl := flag.NewFlagSet("sgid-keygen", flag.ExitOnError)
	fl.Bool("secret-only", false, "Print only a session secret, bare, for a pipe")
	fl.Bool("key-only", false, "Print only a signing key, PEM, for a pipe")
	fl.String("out-dir", "", "Write "+secretFile+" and "+keyFile+" (mode 0600) into this directory instead of printing them")
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "sgid-keygen",
		Usage: "[--secret-only | --key-only] [--out-dir <dir>]",
		Short: "Generates a session secret and an assertion signing key for the sgid handler",
		Long: `
Generates the two secrets of the sgid handler: a session secret (session_secret,
43 characters, encrypts the session cookies) and an ECDSA P-256 private key
(signing_key, PEM, signs the X-Sgid-Assertion header with ES256).

Without them the handler generates both once and keeps them in Caddy's storage,
which is enough for instances that share storage (caddy sgid-rotate rotates
them there). Give them in the config when instances do not share storage.

By default both are printed with comments on how to store them and the
Caddyfile lines that use them. Keep them out of the Caddyfile itself: store
them in files or environment variables and use {file.*} or {env.*}
placeholders, which Caddy expands at startup ({$VAR} is expanded by
'caddy adapt' and would put the secret in the JSON config).

--secret-only, --key-only
    Print only that value, with no comments, e.g.
    caddy sgid-keygen --key-only > assertion.pem

--out-dir <dir>
    Write ` + secretFile + ` and ` + keyFile + ` into <dir> (created 0700 if
    missing) with mode 0600, and print the Caddyfile lines. Existing files are
    never replaced: a new secret logs everyone out, and a new key fails
    assertions until upstreams fetch it.
`,
		Flags: fl,
		Func:  cmdKeygen,
	})
}

// The file names --out-dir writes.
const (
	secretFile = "session.secret"
	keyFile    = "assertion.pem"
)

type keygenOptions struct {
	secretOnly, keyOnly bool
	outDir              string
}

func cmdKeygen(fl caddycmd.Flags) (int, error) {
	opts := keygenOptions{
		secretOnly: fl.Bool("secret-only"),
		keyOnly:    fl.Bool("key-only"),
		outDir:     fl.String("out-dir"),
	}
	if err := keygen(os.Stdout, opts); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	return caddy.ExitCodeSuccess, nil
}

// keygen makes the secrets opts asks for and prints them to w, or writes them
// into opts.outDir and prints how to use them.
func keygen(w io.Writer, opts keygenOptions) error {
	if opts.secretOnly && opts.keyOnly {
		return errors.New("--secret-only and --key-only exclude each other; give neither for both")
	}
	wantSecret, wantKey := !opts.keyOnly, !opts.secretOnly
	var secret, key string
	if wantSecret {
		secret = NewSessionSecret()
	}
	if wantKey {
		var err error
		if key, err = NewSigningKeyPEM(); err != nil {
			return fmt.Errorf("generating the signing key: %w", err)
		}
	}

	if opts.outDir != "" {
		return writeKeyFiles(w, opts.outDir, secret, key)
	}
	if opts.secretOnly {
		_, err := fmt.Fprintln(w, secret)
		return err
	}
	if opts.keyOnly {
		_, err := io.WriteString(w, key)
		return err
	}
	_, err := fmt.Fprintf(w, `# Made by caddy sgid-keygen. Both values are secrets: keep them out of the
# Caddyfile and out of version control. Store each in a file only Caddy's user
# can read, or in an environment variable, and name it with a {file.*} or {env.*}
# placeholder ({$VAR} would put the value in 'caddy adapt' output).
# 'caddy sgid-keygen --out-dir /etc/caddy/sgid' writes both files with mode 0600.

# session_secret: encrypts and authenticates the session cookies. Every instance
# behind one load balancer needs the same one. To rotate, put the new secret
# first and keep the old one after it until the sessions it made have expired.
SGID_SESSION_SECRET=%s

# signing_key: signs the X-Sgid-Assertion header (ES256, P-256); upstreams get the
# public key from /.sgid/jwks.json. Save this block as a file, e.g.
# /etc/caddy/sgid/%s. To rotate, put the new key first and keep
# the old one after it for as long as upstreams cache the JWKS.
%s
# In the sgid block:
#	session_secret {env.SGID_SESSION_SECRET}
#	signing_key {file./etc/caddy/sgid/%s}
# A secret in a file ({file.*}) and a key in a variable ({env.*}, with real or
# \n-escaped newlines) work too.
`, secret, keyFile, key, keyFile)
	return err
}

// writeKeyFiles writes the secret and key that are not empty into dir, mode 0600,
// refusing to replace a file, and prints the Caddyfile lines that read them.
func writeKeyFiles(w io.Writer, dir, secret, key string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	files := []struct{ name, directive, content string }{
		{secretFile, "session_secret", secret},
		{keyFile, "signing_key", key},
	}
	// Check both before writing either, so a refusal leaves nothing half done.
	for _, f := range files {
		if f.content == "" {
			continue
		}
		path := filepath.Join(abs, f.name)
		switch _, err := os.Lstat(path); {
		case err == nil:
			return fmt.Errorf("%s exists; not replacing it: move it away first", path)
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	var lines string
	for _, f := range files {
		if f.content == "" {
			continue
		}
		path := filepath.Join(abs, f.name)
		if err := writeNewFile(path, f.content); err != nil {
			return err
		}
		lines += fmt.Sprintf("\t%s {file.%s}\n", f.directive, path)
	}
	_, err = fmt.Fprintf(w, "# Wrote mode 0600 files into %s; make them readable by the user Caddy runs as.\n# In the sgid block:\n%s", abs, lines)
	return err
}

// writeNewFile creates path with mode 0600; it fails if path exists. A secret
// ends with a newline, which {file.*} drops.
func writeNewFile(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if len(content) > 0 && content[len(content)-1] != '\n' {
		content += "\n"
	}
	if _, err := io.WriteString(f, content); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// NewSessionSecret returns a random session secret: 32 bytes, base64url (43
// characters).
func NewSessionSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NewSigningKeyPEM returns a new ECDSA P-256 private key as PKCS#8 PEM.
func NewSigningKeyPEM() (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}
