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

// loginURL starts a login that returns to returnTo: the pages' "Try again",
// the JSON's login_url.
func loginURL(returnTo string) string {
	return EndpointPrefix + "login?return_to=" + url.QueryEscape(safeReturnTo(returnTo))
}

// switchURL logs out and then starts a login that returns to returnTo: "Log
// in as someone else". The reserved path cannot be a logout's return_to
// (safeReturnTo), hence a parameter of its own (logout, endpoints.go), whose
// target obeys the same rule.
func switchURL(returnTo string) string {
	return EndpointPrefix + "logout?" + reloginParam + "=" + url.QueryEscape(safeReturnTo(returnTo))
}

// reloginParam is logout's parameter that starts a new login after it, and
// where that login returns.
const reloginParam = "relogin"
