package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sgidproxy/caddy-sgid/revocation"
	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid"
)

// serveEndpoints answers the gateway's own endpoints under /.sgid/. Unknown
// paths there are 404s and never reach the upstream.
func (g *Gateway) serveEndpoints(w http.ResponseWriter, r *http.Request) error {
	// The callback's URL holds the code and state: no page here may pass it on
	// in a Referer.
	w.Header().Set("Referrer-Policy", "no-referrer")
	switch strings.TrimPrefix(r.URL.Path, EndpointPrefix) {
	case "callback":
		return g.callback(w, r)
	case "login":
		return g.startLogin(w, r, safeReturnTo(r.URL.Query().Get("return_to")), "")
	case "logout":
		return g.logout(w, r)
	case "userinfo":
		return g.userinfo(w, r)
	case "jwks.json":
		return g.jwks(w, r)
	}
	return g.fail(w, r, outNotFound, nil, "")
}

// challenge answers a request without a session: a browser navigation starts a
// login, and a browser's form submission (a navigation that is not a GET)
// keeps the form across it where it can (form.go) or gets a page; anything
// else (XHR, fetch, API clients) gets 401 with the URL that starts one, since
// a redirect to sgID is useless to a script.
//
// This is the one place that tells them apart: a gRPC call gets its
// UNAUTHENTICATED status (grpc.go), and a WebSocket handshake, which is never
// a page (wantsPage), the 401 JSON.
func (g *Gateway) challenge(w http.ResponseWriter, r *http.Request) error {
	returnTo := safeReturnTo(r.URL.RequestURI())
	if isGRPC(r) {
		w.Header().Set("Cache-Control", "no-store")
		return writeGRPCStatus(w, grpcCode(http.StatusUnauthorized), "login required")
	}
	if isNavigation(r) {
		return g.startLogin(w, r, returnTo, "")
	}
	if wantsPage(r) {
		return g.interrupted(w, r, returnTo)
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusUnauthorized, map[string]string{
		"error":     "login_required",
		"login_url": loginURL(returnTo),
	})
}

// isNavigation is a browser loading a page (wantsPage) with a method a login
// redirect can answer: a redirect to sgID and back cannot replay a POST.
func isNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && wantsPage(r)
}

// startLogin sends the browser to sgID with a fresh state, nonce and PKCE
// verifier, kept in this attempt's own cookie so several tabs can log in at once.
// form, when not empty, is an interrupted form the attempt keeps (form.go).
func (g *Gateway) startLogin(w http.ResponseWriter, r *http.Request, returnTo, form string) error {
	req, err := g.client.NewAuthRequest(g.site.redirect)
	if err != nil {
		return g.fail(w, r, outStartFailed, err, returnTo)
	}
	att := &session.Attempt{
		State: req.State, Nonce: req.Nonce, CodeVerifier: req.CodeVerifier,
		RedirectURI: req.RedirectURI, ReturnTo: returnTo,
	}
	status := http.StatusFound
	if form != "" {
		att.Form, status = form, http.StatusSeeOther // a GET to sgID after the POST
	}
	if err := g.codec().WriteAttempt(w, r, att, isSecure(r)); err != nil {
		return g.fail(w, r, outAttemptNotWritten, err, returnTo)
	}
	metrics.loginsStarted.Inc()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, g.client.AuthURL(req), status)
	return nil
}

// callback completes a login: the attempt cookie named by state, the code
// exchange, the ID token, the userinfo decryption; then a new session, the
// attempt cleared, and a 303 back to where the user was going.
func (g *Gateway) callback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	state := q.Get("state")
	att, err := g.codec().ReadAttempt(r, state)
	if err != nil {
		return g.fail(w, r, outNoAttempt, err, "/")
	}
	// An attempt is single-use, whatever happens next: its cookie is cleared,
	// and its state remembered, so that a saved copy of the cookie replayed
	// with this URL is refused even if sgID would accept the code again.
	g.codec().ClearAttempt(w, r, state, isSecure(r))
	if !g.spend(r, state) {
		return g.fail(w, r, outAttemptSpent, nil, "/")
	}
	started := time.Now()
	id, err := g.client.Callback(r.Context(), q, &sgid.AuthRequest{
		State: att.State, Nonce: att.Nonce, CodeVerifier: att.CodeVerifier, RedirectURI: att.RedirectURI,
	})
	if err != nil {
		return g.fail(w, r, callbackOutcome(err), err, att.ReturnTo)
	}
	d := &session.Data{Sub: id.Sub, Fields: g.keep(id.Data)}
	// The first assertion is signed now and carried in the cookie, so the
	// first request to the app needs no signature and rewrites no cookie.
	if _, carried, err := g.signer().assertion(d, g.layout, g.site.origin, g.site.audience, time.Now(), g.assertTTL); err == nil {
		d.Carried = carried
	}
	if err := g.writeSession(w, r, d); err != nil {
		if errors.Is(err, session.ErrTooLarge) {
			return g.fail(w, r, outSessionTooLarge, err, "")
		}
		return g.fail(w, r, outSessionNotWritten, err, att.ReturnTo)
	}
	metrics.loginsCompleted.Inc()
	g.auditLogin(id.Sub, time.Since(started))
	w.Header().Set("Cache-Control", "no-store")
	if f, ok := g.resumed(r, att, id.Sub); ok {
		return g.formPage(w, f) // the form the login interrupted, for the user to send again
	}
	http.Redirect(w, r, att.ReturnTo, http.StatusSeeOther)
	return nil
}

// keep is data minimisation: only the fields the configuration uses are kept in
// the session.
func (g *Gateway) keep(data map[string]string) []session.Field {
	out := make([]session.Field, 0, len(g.forward)+len(g.require))
	add := func(name string) {
		if v, ok := data[name]; ok && !slices.ContainsFunc(out, func(f session.Field) bool { return f.Name == name }) {
			out = append(out, session.Field{Name: name, Value: v})
		}
	}
	for _, f := range g.forward {
		add(f.Field)
	}
	for _, req := range g.require {
		add(req.Field)
	}
	return out
}

// logout ends the session, here and on every instance (a saved copy of the
// cookie is no session anywhere), and goes to return_to, or shows a page:
// sending the user back into the site would only start a new login. With
// ?everywhere=1 it ends every session of the user for this site, but only
// from a same-origin POST: a GET shows the page that sends one, so that no
// other site can sign a user out everywhere. With ?relogin=<path> ("Log in
// as someone else") it then starts a new login that returns to path, by the
// same rule as return_to: another site that links to it gains nothing a link
// to /.sgid/logout and one to /.sgid/login do not already give it.
func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) error {
	everywhere := r.URL.Query().Get("everywhere") == "1"
	w.Header().Set("Cache-Control", "no-store")
	if everywhere && r.Method != http.MethodPost {
		return writePage(w, http.StatusOK, page{Title: "Log out everywhere",
			Message:    "This ends your sessions on this site in every browser and device.",
			FormAction: EndpointPrefix + "logout?everywhere=1", FormButton: "Log out everywhere"})
	}
	if everywhere && !g.sameOrigin(r) {
		return g.fail(w, r, outCrossSiteEverywhere, nil, "")
	}
	e := g.lookup(r)
	if e != nil {
		entry := revocation.Entry{Session: e.data.ID, Sub: e.data.Sub, Expires: g.codec().End(e.data), Reason: revocation.ReasonLogout}
		if everywhere {
			// Every session of this sub made until now, whichever browser
			// holds it; a login after this one is a new session.
			now := time.Now()
			entry = revocation.Entry{Sub: e.data.Sub, Before: now, Expires: now.Add(g.codec().Lifetime()), Reason: revocation.ReasonEverywhere}
		}
		g.revoke(r.Context(), entry)
	}
	ks := g.keys.Load()
	if key, ok := ks.codec.Fingerprint(r); ok {
		ks.cache.remove(key)
	}
	g.codec().Clear(w, r, isSecure(r))
	if q := r.URL.Query(); q.Has(reloginParam) {
		return g.startLogin(w, r, safeReturnTo(q.Get(reloginParam)), "")
	}
	if rt := r.URL.Query().Get("return_to"); rt != "" {
		http.Redirect(w, r, safeReturnTo(rt), http.StatusSeeOther)
		return nil
	}
	if !wantsPage(r) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	msg := "You have logged out."
	if everywhere && e != nil { // without a session there is no user to sign out elsewhere
		msg = "You have logged out of this site everywhere."
	}
	return writePage(w, http.StatusOK, page{Title: "Logged out", Message: msg, Links: []pageLink{{EndpointPrefix + "login", "Log in again"}}})
}

// userinfo is the identity as JSON, for same-origin single-page apps. A user
// the require rules refuse is refused here too: the endpoint is part of the
// site.
func (g *Gateway) userinfo(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	e := g.lookup(r)
	if e == nil {
		return writeJSON(w, http.StatusUnauthorized, map[string]string{
			"error": "login_required", "login_url": EndpointPrefix + "login",
		})
	}
	if !g.admitted(e.data) {
		return g.denied(w, r, e.data)
	}
	out := map[string]string{"sub": e.data.Sub}
	for _, f := range g.forward {
		if v, ok := fieldValue(e.data, f.Field); ok {
			out[f.Field] = v
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// jwks publishes the assertion's public keys. HS256 has none to publish.
func (g *Gateway) jwks(w http.ResponseWriter, r *http.Request) error {
	if g.signer().jwks == nil {
		return g.fail(w, r, outNoPublicKeys, nil, "")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(g.signer().jwks)
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
