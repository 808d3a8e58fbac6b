package caddysgid

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid"
)

// serveReserved answers the gateway's own endpoints under /.sgid/. Unknown
// paths there are 404s and never reach the upstream.
func (h *Handler) serveReserved(w http.ResponseWriter, r *http.Request) error {
	// The callback's URL holds the code and state: no page here may pass it on
	// in a Referer.
	w.Header().Set("Referrer-Policy", "no-referrer")
	switch strings.TrimPrefix(r.URL.Path, reservedPrefix) {
	case "callback":
		return h.callback(w, r)
	case "login":
		return h.startLogin(w, r, safeReturnTo(r.URL.Query().Get("return_to")))
	case "logout":
		return h.logout(w, r)
	case "userinfo":
		return h.userinfo(w, r)
	case "jwks.json":
		return h.jwks(w, r)
	}
	return h.fail(w, r, failure{status: http.StatusNotFound, title: "Not found", message: "There is nothing here.", reason: "unknown reserved path"})
}

// challenge answers a request without a session: a browser navigation starts a
// login; anything else (XHR, fetch, API clients, non-GET) gets 401 with the URL
// that starts one, since a redirect to sgID is useless to a script.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request) error {
	returnTo := safeReturnTo(r.URL.RequestURI())
	if isNavigation(r) {
		return h.startLogin(w, r, returnTo)
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusUnauthorized, map[string]string{
		"error":     "login_required",
		"login_url": reservedPrefix + "login?return_to=" + url.QueryEscape(returnTo),
	})
}

// isNavigation tells a browser loading a page from a script's request.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// startLogin sends the browser to sgID with a fresh state, nonce and PKCE
// verifier, kept in this attempt's own cookie so several tabs can log in at once.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request, returnTo string) error {
	req, err := h.client.NewAuthRequest(h.site.redirect)
	if err != nil {
		metrics.loginFailed(reasonStartFailed)
		return h.fail(w, r, failure{status: http.StatusInternalServerError, title: "Login unavailable",
			message: "The login could not be started.", reason: "auth request", err: err})
	}
	att := &session.Attempt{
		State: req.State, Nonce: req.Nonce, CodeVerifier: req.CodeVerifier,
		RedirectURI: req.RedirectURI, ReturnTo: returnTo,
	}
	if err := h.codec.WriteAttempt(w, r, att, isSecure(r)); err != nil {
		metrics.loginFailed(reasonStartFailed)
		return h.fail(w, r, failure{status: http.StatusBadRequest, title: "Login unavailable",
			message: "The login could not be started.", reason: "attempt cookie", err: err})
	}
	metrics.loginsStarted.Inc()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.client.AuthURL(req), http.StatusFound)
	return nil
}

// callback completes a login: the attempt cookie named by state, the code
// exchange, the ID token, the userinfo decryption; then a new session, the
// attempt cleared, and a 303 back to where the user was going.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	state := q.Get("state")
	att, err := h.codec.ReadAttempt(r, state)
	if err != nil {
		metrics.loginFailed(reasonNoAttempt)
		return h.fail(w, r, failure{status: http.StatusBadRequest, title: "Login expired",
			message: "This login link has expired or was already used.", reason: "no login attempt for this state", err: err, retry: "/"})
	}
	// An attempt is single-use, whatever happens next: its cookie is cleared,
	// and its state remembered, so that a saved copy of the cookie replayed
	// with this URL is refused even if sgID would accept the code again.
	h.codec.ClearAttempt(w, r, state, isSecure(r))
	if !spentStates.spend(state, attemptTTL) {
		metrics.loginFailed(reasonNoAttempt)
		return h.fail(w, r, failure{status: http.StatusBadRequest, title: "Login expired",
			message: "This login link has expired or was already used.", reason: "login attempt already used", retry: "/"})
	}
	started := time.Now()
	id, err := h.client.Callback(r.Context(), q, &sgid.AuthRequest{
		State: att.State, Nonce: att.Nonce, CodeVerifier: att.CodeVerifier, RedirectURI: att.RedirectURI,
	})
	if err != nil {
		metrics.loginFailed(failureReason(err))
		return h.fail(w, r, loginFailure(err, att.ReturnTo))
	}
	d := &session.Data{Sub: id.Sub, Fields: h.keep(id.Data)}
	if err := h.codec.Write(w, r, d, isSecure(r)); err != nil {
		metrics.loginFailed(reasonSessionWrite)
		f := failure{status: http.StatusInternalServerError, title: "Login failed",
			message: "The session could not be saved.", reason: "session cookie", err: err, retry: att.ReturnTo}
		if errors.Is(err, session.ErrTooLarge) {
			// A session past the cookie budget would make every later request,
			// logout included, too large for the server: no session at all.
			f.message = "Your details from sgID are too large to keep in this site's session cookie. " +
				"The site's operator can forward fewer fields (README: session size)."
			f.reason, f.retry = "session too large for its cookies", ""
		}
		return h.fail(w, r, f)
	}
	metrics.loginsCompleted.Inc()
	h.logger.Info("login completed", zap.Duration("sgid_duration", time.Since(started)))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, att.ReturnTo, http.StatusSeeOther)
	return nil
}

// keep is data minimisation: only the fields the configuration uses are kept in
// the session.
func (h *Handler) keep(data map[string]string) map[string]string {
	out := make(map[string]string, len(h.forward)+len(h.Require))
	for _, f := range h.forward {
		if v, ok := data[f.field]; ok {
			out[f.field] = v
		}
	}
	for _, req := range h.Require {
		if v, ok := data[req.Field]; ok {
			out[req.Field] = v
		}
	}
	return out
}

// loginFailure maps a client error to what the user sees.
func loginFailure(err error, returnTo string) failure {
	f := failure{err: err, retry: returnTo}
	code, onCallback := callbackError(err)
	switch {
	case errors.Is(err, sgid.ErrAccessDenied):
		f.status, f.title, f.message, f.reason = http.StatusForbidden, "Login cancelled", "The login was cancelled.", "cancelled"
	case onCallback && !sgidDown(code):
		f.status, f.title, f.message, f.reason = http.StatusBadRequest, "Login failed", "sgID did not complete the login.", "error on the callback"
	case errors.Is(err, sgid.ErrUnavailable), onCallback:
		f.status, f.title, f.message, f.reason = http.StatusBadGateway, "sgID unavailable", "sgID could not be reached. Please try again in a moment.", "sgid unavailable"
	case errors.Is(err, sgid.ErrInvalidGrant), errors.Is(err, sgid.ErrBadCallback):
		f.status, f.title, f.message, f.reason = http.StatusBadRequest, "Login expired", "This login has expired or was already used.", "invalid grant or callback"
	default:
		f.status, f.title, f.message, f.reason = http.StatusBadGateway, "Login failed", "sgID's answer could not be verified.", "login failed"
	}
	return f
}

// callbackError is the error= code the callback carried, if it did. sgID's
// server_error and temporarily_unavailable mean it is down; any other code came
// with the browser and is a bad request, not a bad gateway.
func callbackError(err error) (code string, ok bool) {
	var oe *sgid.OAuthError
	if errors.As(err, &oe) && oe.Endpoint == "authorize" {
		return oe.Code, true
	}
	return "", false
}

func sgidDown(code string) bool { return code == "server_error" || code == "temporarily_unavailable" }

// logout ends the session and goes to return_to, or shows a page: sending the
// user back into the site would only start a new login.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	if key, ok := h.codec.Fingerprint(r); ok {
		h.cache.remove(key)
	}
	h.codec.Clear(w, r, isSecure(r))
	w.Header().Set("Cache-Control", "no-store")
	if rt := r.URL.Query().Get("return_to"); rt != "" {
		http.Redirect(w, r, safeReturnTo(rt), http.StatusSeeOther)
		return nil
	}
	if !wantsHTML(r) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return writePage(w, http.StatusOK, page{Title: "Logged out", Message: "You have logged out.", Link: reservedPrefix + "login", LinkText: "Log in again"})
}

// userinfo is the identity as JSON, for same-origin single-page apps. A user
// the require rules refuse is refused here too: the endpoint is part of the
// site.
func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	e := h.lookup(r)
	if e == nil {
		return writeJSON(w, http.StatusUnauthorized, map[string]string{
			"error": "login_required", "login_url": reservedPrefix + "login",
		})
	}
	if !h.admitted(e.data) {
		return h.denied(w, r)
	}
	out := map[string]string{"sub": e.data.Sub}
	for _, f := range h.forward {
		if v, ok := fieldValue(e.data, f.field); ok {
			out[f.field] = v
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// jwks publishes the assertion's public keys. HS256 has none to publish.
func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) error {
	if h.signer.jwks == nil {
		return h.fail(w, r, failure{status: http.StatusNotFound, title: "Not found",
			message: "The assertion is signed with a shared secret; there are no public keys.", reason: "jwks with hs256"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(h.signer.jwks)
	return err
}

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
		if strings.HasPrefix(path.Clean(p)+"/", reservedPrefix) {
			return "/"
		}
	}
	return raw
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
