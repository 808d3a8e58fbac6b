package gateway

import (
	"net/url"
	"path"
	"strings"

	"github.com/sgidproxy/caddy-sgid/session"
)

// safeReturnTo keeps a post-login target only if it is a path on this site:
// "/..." but not "//host" or "/\host" (which browsers read as another host), no
// scheme, no control characters, and not a reserved path (which would loop).
func safeReturnTo(raw string) string {
	// A longer target falls back to "/": it is kept in the login attempt's
	// cookie, and a cross-site page can start several logins with targets of
	// its choosing; long ones would fill the browser's Cookie header past the
	// server's limit and lock the user out (session.AttemptBudget).
	if raw == "" || raw[0] != '/' || len(raw) > session.MaxReturnTo {
		return "/"
	}
	if len(raw) > 1 && (raw[1] == '/' || raw[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] < 0x20 || raw[i] == 0x7f || raw[i] == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	// Dot segments count: a browser resolves them ("/a/../.sgid/logout", and
	// "/a/%2e%2e/.sgid/logout" too, hence the decoded path), and http.Redirect
	// cleans the raw text before '?', any '#' in it included.
	rawPath, _, _ := strings.Cut(raw, "?")
	for _, p := range [2]string{u.Path, rawPath} {
		if strings.HasPrefix(path.Clean(p)+"/", EndpointPrefix) {
			return "/"
		}
	}
	return raw
}
