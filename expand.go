package caddysgid

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// placeholderValues are the values Provision expands, under the names its
// errors give them. A new field expanded in Provision belongs here too, so
// that checkPlaceholders names it with the others.
func (h *Handler) placeholderValues() [][2]string {
	vs := [][2]string{
		{"redirect_uri", h.RedirectURI},
		{"client_id", h.ClientID},
		{"client_secret", h.ClientSecret},
		{"private_key", h.PrivateKey},
		{"hostname", h.Hostname},
	}
	for i, s := range h.SessionSecrets {
		vs = append(vs, [2]string{fmt.Sprintf("session_secret #%d", i+1), s})
	}
	for i, s := range h.SigningKeys {
		vs = append(vs, [2]string{fmt.Sprintf("signing_key #%d", i+1), s})
	}
	return append(vs, [2]string{"signing_secret", h.SigningSecret}, [2]string{"revocation_store", h.RevocationStore})
}

// checkPlaceholders names, in one error, every placeholder of the handler's
// values that is unset, empty or unknown ({env.*} of a variable not set, a
// {file.*} that cannot be read): an operator fixing a deployment sees them all
// at once, not one per restart. Names only: a value that did expand may be a
// secret.
func (h *Handler) checkPlaceholders(repl *caddy.Replacer) error {
	var bad []string
	for _, v := range h.placeholderValues() {
		if !hasPlaceholder(v[1]) {
			continue
		}
		// ReplaceFunc hands every placeholder to f, an unknown one as nil.
		_, _ = repl.ReplaceFunc(v[1], func(key string, val any) (any, error) {
			if val == nil || caddy.ToString(val) == "" {
				bad = append(bad, v[0]+" {"+key+"}")
			}
			return val, nil
		})
	}
	switch len(bad) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s is empty or unset", bad[0])
	}
	return fmt.Errorf("%d placeholders are empty or unset: %s", len(bad), strings.Join(bad, ", "))
}

// keyPathHint is an error for a key value that is a file's path, not the
// key, with the placeholder that reads the file; nil for anything else. The
// path is in the message, so only a value that cannot be key text counts: a
// short one in the characters of a path that ends in a key file's extension,
// or starts as a path does and holds a '.' or no capital letter (base64 has
// no '.' and is mixed case; PEM holds spaces and dashes).
func keyPathHint(name, v string) error {
	if len(v) > 256 || strings.Contains(v, "-----") || !isPathText(v) {
		return nil
	}
	lower := strings.ToLower(v)
	keyFile := false
	for _, ext := range []string{".pem", ".key", ".der", ".p8"} {
		keyFile = keyFile || strings.HasSuffix(lower, ext)
	}
	startsAsPath := strings.HasPrefix(v, "/") || strings.HasPrefix(v, "./") || strings.HasPrefix(v, "../") ||
		strings.HasPrefix(v, "~/") || len(v) > 2 && v[1] == ':' && (v[2] == '\\' || v[2] == '/')
	if !keyFile && !(startsAsPath && (strings.Contains(v, ".") || lower == v)) {
		return nil
	}
	return fmt.Errorf("%s is the path %s, not the key's PEM text: write {file.%s} to read the file", name, v, v)
}

// isPathText reports whether s holds only the characters of a file path
// (no spaces, quotes, '+' or '=' of base64).
func isPathText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/\\._-~:", c) >= 0) {
			return false
		}
	}
	return s != ""
}
