package caddysgid

import (
	"crypto/ecdsa"
	"fmt"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid"
)

// Provision expands placeholders, loads keys and builds the handler. It makes
// no call to sgID, so Caddy starts and reloads while sgID is unreachable.
func (h *Handler) Provision(ctx caddy.Context) error {
	res, err := h.resolve(ctx)
	if err != nil {
		return err
	}
	return h.build(res)
}

// resolved is a configuration with every placeholder expanded, the site fixed
// and every key loaded or generated: what build turns into a working handler.
// Tests make one by hand and call build, exactly as Provision does.
type resolved struct {
	clientID, clientSecret, privateKey, hostname string
	site                                         *site
	errorRoutes                                  bool // see Handler.errorRoutes
	sessionSecrets                               [][]byte
	signingKeys                                  []*ecdsa.PrivateKey // ES256; nil with signingSecret
	signingSecret                                []byte              // HS256
	logger                                       *zap.Logger
	observe                                      func(endpoint string, d time.Duration, err error)
	now                                          func() time.Time // the codec's clock; nil is time.Now
}

// resolve is Provision's part that needs Caddy: placeholders, the site from
// the enclosing route, keys from storage, the logger and the metrics.
func (h *Handler) resolve(ctx caddy.Context) (resolved, error) {
	res := resolved{logger: ctx.Logger()}
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
		return res, err
	}
	if res.site, err = newSite(redirect, h.Audience, func() (string, error) { return routeOrigin(ctx) }); err != nil {
		return res, err
	}
	res.errorRoutes = errorRoutesCover(ctx, res.site)
	for _, v := range []struct {
		name string
		in   string
		out  *string
	}{
		{"client_id", h.ClientID, &res.clientID},
		{"client_secret", h.ClientSecret, &res.clientSecret},
		{"private_key", h.PrivateKey, &res.privateKey},
		{"hostname", h.Hostname, &res.hostname},
	} {
		if *v.out, err = expand(v.name, v.in); err != nil {
			return res, err
		}
	}
	issuer, err := sgid.Issuer(res.hostname)
	if err != nil {
		return res, fmt.Errorf("sgid client: %w", err)
	}
	keys := &keyStore{storage: ctx.Storage(), ctx: ctx, issuer: issuer, clientID: res.clientID}
	if res.sessionSecrets, err = h.sessionSecrets(expand, keys); err != nil {
		return res, err
	}
	if res.signingKeys, res.signingSecret, err = h.signingKeys(expand, keys, res.site); err != nil {
		return res, err
	}
	res.observe = provisionMetrics(ctx, res.logger)
	return res, nil
}

// build makes the handler from a resolved configuration: everything Provision
// does that needs no Caddy.
func (h *Handler) build(res resolved) error {
	h.logger, h.site, h.errorRoutes = res.logger, res.site, res.errorRoutes
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	h.lifetime = durationOr(h.SessionLifetime, defaultLifetime)
	h.idle = durationOr(h.IdleTimeout, min(defaultIdle, h.lifetime))
	h.assertTTL = durationOr(h.AssertionLifetime, defaultAssertionTTL)
	var err error
	h.client, err = sgid.New(sgid.Config{
		ClientID:     res.clientID,
		ClientSecret: res.clientSecret,
		PrivateKey:   res.privateKey,
		Hostname:     res.hostname,
		RedirectURI:  h.site.redirect,
		Scopes:       h.Scopes,
		Timeout:      time.Duration(h.Timeout),
		ClockSkew:    time.Duration(h.ClockSkew),
		Observe:      res.observe,
	})
	if err != nil {
		return fmt.Errorf("sgid client: %w", err)
	}
	h.codec, err = session.New(session.Config{
		// A cookie is valid only for the configuration that made it: another
		// IdP, client or site sharing the secret cannot make sessions here.
		Binding:     SessionBinding(h.client.IssuerURL(), res.clientID, h.site.origin),
		Name:        h.CookieName,
		Secrets:     res.sessionSecrets,
		Lifetime:    h.lifetime,
		IdleTimeout: h.idle,
		AttemptTTL:  attemptTTL,
		Now:         res.now,
	})
	if err != nil {
		return err // the session package's errors say "session: ..."
	}
	if h.signer, err = newSigner(res.signingKeys, res.signingSecret); err != nil {
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
