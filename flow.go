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
	return h.fail(w, r, outNotFound, nil, "")
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

// isNavigation is a browser loading a page (wantsPage) with a method a login
// redirect can answer: a redirect to sgID and back cannot replay a POST.
func isNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && wantsPage(r)
}

// startLogin sends the browser to sgID with a fresh state, nonce and PKCE
// verifier, kept in this attempt's own cookie so several tabs can log in at once.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request, returnTo string) error {
	req, err := h.client.NewAuthRequest(h.site.redirect)
	if err != nil {
		return h.fail(w, r, outStartFailed, err, "")
	}
	att := &session.Attempt{
		State: req.State, Nonce: req.Nonce, CodeVerifier: req.CodeVerifier,
		RedirectURI: req.RedirectURI, ReturnTo: returnTo,
	}
	if err := h.codec.WriteAttempt(w, r, att, isSecure(r)); err != nil {
		return h.fail(w, r, outAttemptNotWritten, err, "")
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
		return h.fail(w, r, outNoAttempt, err, "/")
	}
	// An attempt is single-use, whatever happens next: its cookie is cleared,
	// and its state remembered, so that a saved copy of the cookie replayed
	// with this URL is refused even if sgID would accept the code again.
	h.codec.ClearAttempt(w, r, state, isSecure(r))
	if !spentStates.spend(state, attemptTTL) {
		return h.fail(w, r, outAttemptSpent, nil, "/")
	}
	started := time.Now()
	id, err := h.client.Callback(r.Context(), q, &sgid.AuthRequest{
		State: att.State, Nonce: att.Nonce, CodeVerifier: att.CodeVerifier, RedirectURI: att.RedirectURI,
	})
	if err != nil {
		return h.fail(w, r, callbackOutcome(err), err, att.ReturnTo)
	}
	d := &session.Data{Sub: id.Sub, Fields: h.keep(id.Data)}
	if err := h.codec.Write(w, r, d, isSecure(r)); err != nil {
		if errors.Is(err, session.ErrTooLarge) {
			return h.fail(w, r, outSessionTooLarge, err, "")
		}
		return h.fail(w, r, outSessionNotWritten, err, att.ReturnTo)
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
	if !wantsPage(r) {
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
		return h.fail(w, r, outNoPublicKeys, nil, "")
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
