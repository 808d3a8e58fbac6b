// Package caddysgid is a Caddy HTTP handler, http.handlers.sgid, that puts sgID
// login in front of applications that know nothing about OpenID Connect. It runs
// the sgID authorization-code flow, keeps the session in encrypted cookies, and
// hands the upstream the user's pairwise sub and chosen myinfo fields as headers
// plus one signed assertion. This package is the Caddy glue: configuration,
// Caddyfile, provisioning, keys in storage. The request pipeline lives in
// ./internal/gateway, the protocol in ./sgid and the cookie codec in ./session.
package caddysgid

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/sgidproxy/caddy-sgid/internal/gateway"
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
// (?return_to=/path), logout (?return_to=/path; ?relogin=/path logs out and
// starts a new login, "log in as someone else"; ?everywhere=1 asks to end
// every session of the user), userinfo (JSON for same-origin apps) and
// jwks.json (the assertion's public keys). Its failures are pages (each with
// its next action), JSON with stable codes, or gRPC statuses for gRPC calls,
// or, where the site has handle_errors, Caddy errors (caddyhttp.HandlerError)
// for it to render, with these placeholders besides Caddy's http.error.*:
//
//	{http.sgid.error.code}                         the outcome's stable code (the JSON "error")
//	{http.sgid.error.title}                        the page's heading
//	{http.sgid.error.action}, {...action_url}      the next action's text and URL, or empty
//	{http.sgid.error.action2}, {...action2_url}    a second action, or empty
//
// Loggers: http.handlers.sgid, and http.handlers.sgid.audit, one line per
// login completed or failed, access denied, session revoked (a logout, sign-out
// everywhere, an operator's revocation) and key rotated: the pairwise sub,
// never personal data.
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
	// scheme or port). Its path must end in /.sgid/callback, where the
	// handler takes the callback (a prefix is for a handle_path in front that
	// strips it). Default: the site's own scheme, host and port +
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
	// RevocationStore is where revocations (logouts, sign-outs everywhere,
	// an operator's) and spent login states are shared between instances:
	// "storage", Caddy's storage, or a Redis URL (redis:// or rediss://;
	// {env.*} and {file.*} work). Requests with a session are checked against
	// an in-memory copy and never wait on the store. Default: storage.
	RevocationStore string `json:"revocation_store,omitempty"`
	// RevocationPoll is the time between two full reloads of the revocation
	// store: with Caddy storage, how late an instance may learn of a
	// revocation made on another; with Redis, changes arrive within a second
	// and the reload makes up for a missed one. Keys kept in Caddy storage are
	// reloaded as often, which bounds how soon a rotation may take effect
	// (twice this). Default: 10s.
	RevocationPoll caddy.Duration `json:"revocation_poll,omitempty"`
	// FormReplay is the largest form body kept across a login: a form a
	// user sends from a page of this site after the session ended is kept,
	// sealed, with the login it starts, and offered back after it (same user
	// only) on a page whose button sends it again. "off", or a size: 1000,
	// 64KiB, 256KB (at most 1MiB less 16KiB). Default: 64KiB.
	FormReplay string `json:"form_replay,omitempty"`

	gw         *gateway.Gateway // the request pipeline, built by Provision
	revocation string           // the key of this site's revocations in the process's pool
	keys       *keyStore        // where the keys in storage are
	watch      *keyWatch        // follows them; nil when every key is in the config
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

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.sgid",
		New: func() caddy.Module { return new(Handler) },
	}
}

// ServeHTTP runs the request through the gateway (internal/gateway).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return h.gw.ServeHTTP(w, r, next)
}

// Cleanup lets go of what a replaced config held: idle connections to sgID would
// otherwise linger until their idle timeout after every reload.
func (h *Handler) Cleanup() error {
	h.watch.close()
	if h.gw != nil {
		h.gw.Close()
	}
	if h.revocation != "" {
		_, _ = revocations.Delete(h.revocation)
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
