// Package caddysgid is a Caddy HTTP handler, http.handlers.sgid, that puts sgID
// login in front of applications that know nothing about OpenID Connect. It runs
// the sgID authorization-code flow, keeps the session in encrypted cookies, and
// hands the upstream the user's pairwise sub and chosen myinfo fields as headers
// plus one signed assertion. This package is the Caddy glue; the protocol lives
// in ./sgid and the cookie codec in ./session.
package caddysgid

import (
	"errors"
	"fmt"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler logs users in with sgID and passes their identity to the next handler.
//
// Headers it sets on the request to the next handler (and deletes first when a
// client sends them, in any case, with '_' or '.' for '-', and in trailers):
//
//	X-Sgid-Sub           the user's pairwise sgID sub
//	X-Sgid-<Field>       each forwarded field (or the header named for it), percent-encoded
//	X-Sgid-Assertion     a JWT of the same, signed ES256 (or HS256), iss the site, aud the audience
//
// Placeholders, for the directives after it:
//
//	{http.auth.user.id}       the sub (the access log's user_id)
//	{http.auth.user.<field>}  each forwarded field, encoded as in its header
//
// Endpoints it serves under /.sgid/: callback (sgID's redirect), login
// (?return_to=/path), logout (?return_to=/path), userinfo (JSON for
// same-origin apps) and jwks.json (the assertion's public keys). Its failures
// are pages or JSON with stable codes, or, where the site has handle_errors,
// Caddy errors (caddyhttp.HandlerError) for it to render.
type Handler struct {
	// ClientID is the sgID client id. Required. Use {env.*} or {file.*} placeholders
	// to keep it out of the config.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is the sgID client secret. Required; give it as an {env.*} or
	// {file.*} placeholder so it never appears in the config.
	ClientSecret string `json:"client_secret,omitempty"`
	// PrivateKey is the client's RSA private key, PEM text (PKCS#8 or PKCS#1, real
	// or `\n`-escaped newlines), normally {file./path} or {env.VAR}. Required.
	PrivateKey string `json:"private_key,omitempty"`
	// Hostname is sgID's base URL; {env.*} and {file.*} placeholders work, as
	// for redirect_uri. Default: https://api.id.gov.sg.
	Hostname string `json:"hostname,omitempty"`
	// RedirectURI is the callback URL registered with sgID. Its origin is the
	// site: the assertion's iss, what the cookies are bound to, and the only Host
	// the handler serves. Required when the site does not name exactly one host
	// and port (a catch-all :443 or http:// address, several host names, a
	// wildcard, or Caddy behind a load balancer or port mapping that changes the
	// scheme or port). Default: the site's own scheme, host and port +
	// /.sgid/callback, fixed when the handler is provisioned.
	RedirectURI string `json:"redirect_uri,omitempty"`
	// Scopes requested from sgID; must include openid. Default: openid myinfo.name.
	Scopes []string `json:"scopes,omitempty"`
	// Forward lists the fields passed upstream, each as a header. X-Sgid-Sub always
	// carries the sub. Default: none.
	Forward []Forward `json:"forward,omitempty"`
	// Require lists rules a session must meet, or the request gets 403. Default: none.
	Require []Requirement `json:"require,omitempty"`
	// Anonymous lets requests without a session through, with no identity
	// headers, instead of starting a login. Default: false.
	Anonymous bool `json:"anonymous,omitempty"`
	// SessionSecrets encrypt and authenticate the cookies, each at least 32
	// characters; the first encrypts, every one decrypts (rotation). Default: a
	// random secret generated once and kept in Caddy's storage.
	SessionSecrets []string `json:"session_secrets,omitempty"`
	// SessionLifetime is the absolute session lifetime. Default: 12h.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`
	// IdleTimeout ends a session unused for this long. Default: 30m (or the
	// lifetime, if shorter).
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`
	// CookieName is the session cookie's base name; on HTTPS it gets the __Host-
	// prefix. Default: sgid_session.
	CookieName string `json:"cookie_name,omitempty"`
	// SigningKeys are ECDSA P-256 private keys, PEM: the first signs the assertion
	// (ES256); every one's public key is served at /.sgid/jwks.json, so an old key
	// can stay published while upstreams pick up a new one. Default: a key
	// generated once and kept in Caddy's storage.
	SigningKeys []string `json:"signing_keys,omitempty"`
	// SigningSecret switches the assertion to HS256 with this shared secret (at
	// least 32 characters), for upstreams that cannot fetch keys. Default: unset.
	SigningSecret string `json:"signing_secret,omitempty"`
	// Audience is the assertion's aud claim. Default: the site's host (with its
	// port unless it is the scheme's default), fixed at provisioning.
	Audience string `json:"audience,omitempty"`
	// AssertionLifetime is how long an assertion is valid. Default: 5m.
	AssertionLifetime caddy.Duration `json:"assertion_lifetime,omitempty"`
	// Timeout bounds each call to sgID. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// ClockSkew is the tolerance on ID token times. Default: 60s.
	ClockSkew caddy.Duration `json:"clock_skew,omitempty"`

	client  *sgid.Client
	codec   *session.Codec
	signer  *signer
	cache   *sessionCache
	forward []forwardRule
	owned   map[string]bool // header names the gateway owns, canonical with '-'
	logger  *zap.Logger
	site    *site
	// errorRoutes: a handle_errors route covers the site, so failures go to it
	// as caddyhttp errors instead of the gateway's own pages.
	errorRoutes bool
	lifetime    time.Duration
	idle        time.Duration
	assertTTL   time.Duration
}

// Forward passes one field to the upstream as a header.
type Forward struct {
	// Field is a scope name, e.g. myinfo.name, or "sub".
	Field string `json:"field"`
	// Header is the header name. Default: X-Sgid- + the field in title case with
	// dots and underscores as dashes (myinfo.name: X-Sgid-Myinfo-Name).
	Header string `json:"header,omitempty"`
}

// Requirement admits a session only if Field has one of Values.
type Requirement struct {
	// Field is a scope name, e.g. myinfo.is_age_above_18.
	Field string `json:"field"`
	// Values are the accepted values, compared exactly.
	Values []string `json:"values"`
}

type forwardRule struct {
	field, header string
}

const (
	defaultLifetime     = session.DefaultLifetime
	defaultIdle         = session.DefaultIdleTimeout
	defaultAssertionTTL = 5 * time.Minute
	attemptTTL          = 10 * time.Minute // how long a login may take, sgID's page included
	subHeader           = "X-Sgid-Sub"
	assertionHeader     = "X-Sgid-Assertion"
	ownedPrefix         = "x-sgid-"
	reservedPrefix      = "/.sgid/"
)

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.sgid",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision expands placeholders, parses keys and prepares the handler. It makes
// no call to sgID, so Caddy starts and reloads while sgID is unreachable.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	expand := func(name, v string) (string, error) {
		out, err := repl.ReplaceOrErr(v, true, true)
		if err != nil {
			// The error names the placeholder, never its value.
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return out, nil
	}
	// The site first: everything else is bound to it, and a site without one
	// fixed host is a mistake whatever the rest says.
	redirect, err := expand("redirect_uri", h.RedirectURI)
	if err != nil {
		return err
	}
	if h.site, err = newSite(redirect, h.Audience, func() (string, error) { return routeOrigin(ctx) }); err != nil {
		return err
	}
	h.errorRoutes = errorRoutesCover(ctx, h.site)
	clientID, err := expand("client_id", h.ClientID)
	if err != nil {
		return err
	}
	secret, err := expand("client_secret", h.ClientSecret)
	if err != nil {
		return err
	}
	key, err := expand("private_key", h.PrivateKey)
	if err != nil {
		return err
	}
	h.lifetime = durationOr(h.SessionLifetime, defaultLifetime)
	h.idle = durationOr(h.IdleTimeout, min(defaultIdle, h.lifetime))
	h.assertTTL = durationOr(h.AssertionLifetime, defaultAssertionTTL)
	hostname, err := expand("hostname", h.Hostname)
	if err != nil {
		return err
	}

	h.client, err = sgid.New(sgid.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		PrivateKey:   key,
		Hostname:     hostname,
		RedirectURI:  h.site.redirect,
		Scopes:       h.Scopes,
		Timeout:      time.Duration(h.Timeout),
		ClockSkew:    time.Duration(h.ClockSkew),
		Observe:      provisionMetrics(ctx, h.logger),
	})
	if err != nil {
		return fmt.Errorf("sgid client: %w", err)
	}

	keys := &keyStore{storage: ctx.Storage(), ctx: ctx, issuer: h.client.IssuerURL(), clientID: clientID}
	secrets, err := h.sessionSecrets(expand, keys)
	if err != nil {
		return err
	}
	h.codec, err = session.New(session.Config{
		// A cookie is valid only for the configuration that made it: another
		// IdP, client or site sharing the secret cannot make sessions here.
		Binding:     SessionBinding(h.client.IssuerURL(), clientID, h.site.origin),
		Name:        h.CookieName,
		Secrets:     secrets,
		Lifetime:    h.lifetime,
		IdleTimeout: h.idle,
		AttemptTTL:  attemptTTL,
	})
	if err != nil {
		return err // the session package's errors say "session: ..."
	}
	h.signer, err = h.newSigner(expand, keys)
	if err != nil {
		return err
	}
	h.buildForwarding()
	h.cache = newSessionCache(defaultCacheSize)
	return nil
}

func (h *Handler) sessionSecrets(expand func(string, string) (string, error), keys *keyStore) ([][]byte, error) {
	if len(h.SessionSecrets) == 0 {
		secret, err := keys.sessionSecret()
		if err != nil {
			return nil, fmt.Errorf("session secret from storage: %w", err)
		}
		return [][]byte{secret}, nil
	}
	var out [][]byte
	for i, s := range h.SessionSecrets {
		v, err := expand(fmt.Sprintf("session_secret #%d", i+1), s)
		if err != nil {
			return nil, err
		}
		if err := checkSecret(fmt.Sprintf("session_secret #%d", i+1), v); err != nil {
			return nil, fmt.Errorf("%w (caddy sgid-keygen makes one)", err)
		}
		out = append(out, []byte(v))
	}
	return out, nil
}

// SessionBinding is what a site's cookies are bound to (session.Config.Binding):
// sgID's issuer URL, the client id and the site's origin. A program that mints
// cookies for a site, such as a load test, passes the same; the origin is
// read as the handler reads it (case, the scheme's default port and any path
// do not matter).
func SessionBinding(issuer, clientID, siteOrigin string) []string {
	if u, err := url.Parse(siteOrigin); err == nil && u.Host != "" {
		siteOrigin = u.Scheme + "://" + canonicalHost(u.Host, u.Scheme == "https")
	}
	return []string{issuer, clientID, siteOrigin}
}

// buildForwarding fixes the header for each forwarded field and the set of header
// names the gateway owns, which are stripped from every client request.
func (h *Handler) buildForwarding() {
	h.owned = map[string]bool{normalizeHeader(subHeader): true, normalizeHeader(assertionHeader): true}
	h.forward = h.forward[:0]
	for _, f := range h.Forward {
		header := f.header()
		h.forward = append(h.forward, forwardRule{field: f.Field, header: textproto.CanonicalMIMEHeaderKey(header)})
		h.owned[normalizeHeader(header)] = true
	}
}

// header is the header f is sent in: the one named, or DefaultHeader's.
func (f Forward) header() string {
	if f.Header != "" {
		return f.Header
	}
	return DefaultHeader(f.Field)
}

// DefaultHeader is the header a forwarded field gets when none is named:
// X-Sgid- + the field with dots and underscores as dashes, in title case.
func DefaultHeader(field string) string {
	name := strings.NewReplacer(".", "-", "_", "-").Replace(field)
	return textproto.CanonicalMIMEHeaderKey("X-Sgid-" + name)
}

// normalizeHeader reads a header name the way CGI, PHP-FPM and friends do:
// case-insensitive, with '_', '.' and '-' the same (PHP maps '.' to '_' too).
func normalizeHeader(name string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
}

// configError is a Validate error about one subdirective, so the Caddyfile
// parser can name its line. For a repeatable subdirective (forward, require,
// session_secret), index is which of its values, in config order from 0.
type configError struct {
	subdirective string
	index        int
	err          error
}

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// invalid returns a *configError; format and args are fmt.Errorf's.
func invalid(subdirective string, index int, format string, args ...any) error {
	return &configError{subdirective: subdirective, index: index, err: fmt.Errorf(format, args...)}
}

// Validate checks the configuration: everything that can be known without
// expanding placeholders, so that mistakes fail `caddy adapt` and `caddy
// validate` with the subdirective named. An error that concerns one
// subdirective is a *configError (a missing one concerns none).
func (h *Handler) Validate() error {
	if h.ClientID == "" {
		return errors.New("client_id is required")
	}
	if h.ClientSecret == "" {
		return errors.New("client_secret is required")
	}
	if h.PrivateKey == "" {
		return errors.New("private_key is required")
	}
	if len(h.SigningKeys) > 0 && h.SigningSecret != "" {
		return invalid("signing_secret", 0, "signing_key and signing_secret are exclusive: choose ES256 or HS256")
	}
	scopes := h.Scopes
	if len(scopes) == 0 {
		scopes = sgid.DefaultScopes
	}
	if err := sgid.CheckScopes(scopes); err != nil {
		return invalid("scope", 0, "scope: %w", err)
	}
	inScope := func(field string) bool { return field == "sub" || slices.Contains(scopes, field) }
	seen := map[string]string{}
	for i, f := range h.Forward {
		if err := f.check(); err != nil {
			return invalid("forward", i, "forward: %w", err)
		}
		if !inScope(f.Field) {
			return invalid("forward", i, "forward %s: the field is not requested: add it to scope", f.Field)
		}
		header := f.header()
		n := normalizeHeader(header)
		if prev, dup := seen[n]; dup {
			return invalid("forward", i, "forward: header %s is used for both %s and %s", header, prev, f.Field)
		}
		seen[n] = f.Field
	}
	for i, r := range h.Require {
		if r.Field == "" || len(r.Values) == 0 {
			return invalid("require", i, "require: a field and at least one value are required")
		}
		if !inScope(r.Field) {
			return invalid("require", i, "require %s: the field is not requested, so no one would pass: add it to scope", r.Field)
		}
	}
	for _, d := range []struct {
		name      string
		value     caddy.Duration
		atLeast1s bool // a lifetime; the timeouts to sgID may be shorter
	}{
		{"session_lifetime", h.SessionLifetime, true},
		{"idle_timeout", h.IdleTimeout, true},
		{"assertion_lifetime", h.AssertionLifetime, true},
		{"timeout", h.Timeout, false},
		{"clock_skew", h.ClockSkew, false},
	} {
		switch {
		case d.value < 0:
			return invalid(d.name, 0, "durations must not be negative")
		case d.atLeast1s && d.value != 0 && time.Duration(d.value) < time.Second:
			return invalid(d.name, 0, "%s must be at least 1s", d.name)
		}
	}
	if h.ClockSkew > caddy.Duration(10*time.Minute) {
		return invalid("clock_skew", 0, "clock_skew must be at most 10m")
	}
	lifetime := durationOr(h.SessionLifetime, defaultLifetime)
	if h.IdleTimeout > 0 && time.Duration(h.IdleTimeout) > lifetime {
		return invalid("idle_timeout", 0, "idle_timeout %s is longer than the session lifetime %s", time.Duration(h.IdleTimeout), lifetime)
	}
	if h.CookieName != "" {
		if err := session.CheckName(h.CookieName); err != nil {
			return invalid("cookie_name", 0, "cookie_name %q: %w", h.CookieName, err)
		}
	}
	for i, s := range h.SessionSecrets {
		if err := checkSecret(fmt.Sprintf("session_secret #%d", i+1), s); !hasPlaceholder(s) && err != nil {
			return invalid("session_secret", i, "%w", err)
		}
	}
	if err := checkSecret("signing_secret", h.SigningSecret); h.SigningSecret != "" && !hasPlaceholder(h.SigningSecret) && err != nil {
		return invalid("signing_secret", 0, "%w", err)
	}
	return nil
}

// hasPlaceholder tells a value that is only known at provisioning ({env.*},
// {file.*}) from a literal one.
func hasPlaceholder(s string) bool { return strings.Contains(s, "{") }

// check tells a field and header that can work from one that cannot.
func (f Forward) check() error {
	if f.Field == "" {
		return errors.New("a field is required")
	}
	if f.Header == "" && f.Field == "sub" {
		return errors.New("sub is always sent as X-Sgid-Sub; name another header to copy it to")
	}
	header := f.header()
	if !validHeaderName(header) {
		return fmt.Errorf("%q is not a valid header name", header)
	}
	n := normalizeHeader(header)
	if n == normalizeHeader(subHeader) || n == normalizeHeader(assertionHeader) {
		return fmt.Errorf("header %s is reserved", header)
	}
	return nil
}

// validHeaderName is RFC 9110's token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// checkSecret is the one rule for a configured secret's length: the session
// codec's minimum, for session and HS256 signing secrets alike.
func checkSecret(name, v string) error {
	if len(v) < session.MinSecretLen {
		return fmt.Errorf("%s is %d characters; it must be at least %d", name, len(v), session.MinSecretLen)
	}
	return nil
}

func durationOr(d caddy.Duration, def time.Duration) time.Duration {
	if d > 0 {
		return time.Duration(d)
	}
	return def
}

// Cleanup lets go of what a replaced config held: idle connections to sgID would
// otherwise linger until their idle timeout after every reload.
func (h *Handler) Cleanup() error {
	if h.client != nil {
		h.client.CloseIdleConnections()
	}
	return nil
}

// Interface guards
var (
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
