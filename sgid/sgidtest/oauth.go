package sgidtest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// authorizeParams may each appear once (RFC 6749 section 3.1).
var authorizeParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method",
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// Until client_id and redirect_uri are known good, errors go on a page:
	// redirecting to an unchecked URI would make this an open redirector.
	for _, name := range []string{"client_id", "redirect_uri"} {
		if len(q[name]) > 1 {
			s.errorPage(w, http.StatusBadRequest, name+" is given more than once")
			return
		}
	}
	switch id := q.Get("client_id"); {
	case id == "":
		s.errorPage(w, http.StatusBadRequest, "client_id is missing")
		return
	case id != s.client.ID:
		s.errorPage(w, http.StatusBadRequest, "client_id is not a registered client")
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !s.redirectAllowed(redirectURI) {
		s.errorPage(w, http.StatusBadRequest, "redirect_uri is missing or not registered for this client")
		return
	}

	req := authRequest{
		clientID:    s.client.ID,
		redirectURI: redirectURI,
		state:       q.Get("state"),
		nonce:       q.Get("nonce"),
		challenge:   q.Get("code_challenge"),
	}
	fail := func(code, description string) {
		redirectError(w, r, req, code, description)
	}
	for _, name := range authorizeParams {
		if len(q[name]) > 1 {
			fail("invalid_request", name+" is given more than once")
			return
		}
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		fail("invalid_request", "response_type is missing")
		return
	default:
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	}
	scopes, errCode, description := s.parseScopes(q["scope"])
	if errCode != "" {
		fail(errCode, description)
		return
	}
	req.scopes = scopes
	if q.Get("code_challenge_method") != "S256" {
		fail("invalid_request", "code_challenge_method must be S256")
		return
	}
	if !validChallenge(req.challenge) {
		fail("invalid_request", "code_challenge must be base64url(SHA-256(code_verifier)) without padding")
		return
	}

	if h, ok := r.Header[consentHeader]; ok { // Authorize or Cancel, for the person
		q, _ := url.ParseQuery(h[0])
		c, ok := parseChoice(q)
		if !ok {
			s.errorPage(w, http.StatusBadRequest, "unknown persona")
			return
		}
		s.answer(w, r, req, c)
		return
	}
	_, _, persona, chooser := s.snapshot()
	if chooser {
		s.renderChooser(w, req, s.putPending(req))
		return
	}
	s.redirectWithCode(w, r, req, persona)
}

func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, ok := parseChoice(q)
	if !ok {
		s.errorPage(w, http.StatusBadRequest, "unknown persona")
		return
	}
	req, ok := s.takePending(q.Get("pending"))
	if !ok {
		s.errorPage(w, http.StatusBadRequest, "this login request has expired or was already answered; start the login again")
		return
	}
	s.answer(w, r, req, c)
}

func (s *Server) redirectWithCode(w http.ResponseWriter, r *http.Request, req authRequest, persona string) {
	params := url.Values{"code": {s.putCode(req, persona)}}
	if req.state != "" {
		params.Set("state", req.state)
	}
	http.Redirect(w, r, withQuery(req.redirectURI, params), http.StatusFound)
}

// redirectError sends an RFC 6749 section 4.1.2.1 error to a redirect_uri
// already checked against the client's registration.
func redirectError(w http.ResponseWriter, r *http.Request, req authRequest, code, description string) {
	params := url.Values{"error": {code}, "error_description": {description}}
	if req.state != "" {
		params.Set("state", req.state)
	}
	http.Redirect(w, r, withQuery(req.redirectURI, params), http.StatusFound)
}

// withQuery adds params to rawURL, keeping the query it already has.
func withQuery(rawURL string, params url.Values) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Unreachable: the redirect URI was parsed when it was checked.
		panic("sgidtest: unparsable redirect uri: " + err.Error())
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (s *Server) redirectAllowed(uri string) bool {
	if len(s.client.RedirectURIs) == 0 {
		return absoluteHTTPURL(uri)
	}
	return slices.Contains(s.client.RedirectURIs, uri)
}

// parseScopes returns the requested scopes, or an OAuth error code and
// description.
func (s *Server) parseScopes(values []string) (scopes []string, errCode, description string) {
	if len(values) == 0 || values[0] == "" {
		return nil, "invalid_request", "scope is missing"
	}
	for _, sc := range strings.Split(values[0], " ") {
		if sc == "" || slices.Contains(scopes, sc) {
			continue
		}
		if !s.allowedScopes[sc] {
			return nil, "invalid_scope", "scope " + sc + " is unknown or not allowed for this client"
		}
		scopes = append(scopes, sc)
	}
	if !slices.Contains(scopes, "openid") {
		return nil, "invalid_scope", "scope must include openid"
	}
	return scopes, "", ""
}

// validChallenge accepts exactly what S256 produces: 32 bytes as unpadded
// base64url, 43 characters.
func validChallenge(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// validVerifier checks RFC 7636 section 4.1: 43 to 128 unreserved characters.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, c := range []byte(v) {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// tokenParams may each appear once (RFC 6749 section 3.2).
var tokenParams = []string{"grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret"}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body is not a valid form")
		return
	}
	form := r.PostForm
	for _, name := range tokenParams {
		if len(form[name]) > 1 {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", name+" is given more than once")
			return
		}
	}
	if _, _, ok := r.BasicAuth(); ok {
		// RFC 6749 section 2.3: one authentication method per request, and
		// this client is registered for client_secret_post only.
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "use client_secret_post only, not HTTP Basic authentication")
		return
	}
	if form.Get("client_id") != s.client.ID ||
		subtle.ConstantTimeCompare([]byte(form.Get("client_secret")), []byte(s.client.Secret)) != 1 {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "grant_type is missing")
		return
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code is supported")
		return
	}

	code, ok := s.takeCode(form.Get("code"))
	invalidGrant := func(description string) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", description)
	}
	switch {
	case !ok:
		invalidGrant("the code is unknown or was already used")
		return
	case !s.now().Before(code.expires):
		invalidGrant("the code has expired")
		return
	case code.req.clientID != s.client.ID:
		invalidGrant("the code was issued to another client")
		return
	case form.Get("redirect_uri") != code.req.redirectURI:
		invalidGrant("redirect_uri does not match the authorization request")
		return
	case !validVerifier(form.Get("code_verifier")):
		invalidGrant("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")
		return
	}
	sum := sha256.Sum256([]byte(form.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != code.req.challenge {
		invalidGrant("code_verifier does not match code_challenge")
		return
	}

	accessToken := s.putToken(code.persona, code.req.scopes)
	idToken, err := s.idToken(code, accessToken)
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "sgidtest: "+err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": accessToken,
		"token_type":   "Bearer",
		"expires_in":   int(s.tokenTTL.Seconds()),
		"id_token":     idToken,
		"scope":        strings.Join(code.req.scopes, " "),
	})
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	iss := s.Issuer()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/oauth/authorize",
		"token_endpoint":                        iss + "/oauth/token",
		"userinfo_endpoint":                     iss + "/oauth/userinfo",
		"jwks_uri":                              iss + "/.well-known/jwks.json",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code"},
		"scopes_supported":                      Catalog(),
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
		"subject_types_supported":               []string{"pairwise"},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "sgidtest: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// writeOAuthError answers with an RFC 6749 section 5.2 error object.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
