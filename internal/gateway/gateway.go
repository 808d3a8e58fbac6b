// Package gateway is the request pipeline of the sgid handler: everything that
// happens to a request, from stripping what a client may not send to the
// identity the upstream receives, with no configuration, storage or
// provisioning in it. The Caddy module (the repository's root package)
// resolves a configuration and calls New; tests call New the same way.
//
// A request's path, top to bottom: ServeHTTP (this file) strips the
// gateway's headers (strip.go), refuses another Host (site.go), serves
// /.sgid/ (endpoints.go), finds the session (identity.go), applies require,
// attaches the identity and the assertion (identity.go, assertion.go) and
// calls the next handler (quiet.go, response.go). Every way a request can end
// at the gateway instead of the app is a row of outcome.go.
//
// It uses Caddy's request-time contract only: the next caddyhttp.Handler,
// caddyhttp.HandlerError for handle_errors, the request's replacer and the
// log_skip variable.
package gateway

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/revocation"
	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid"
)

// Config is a resolved configuration: no placeholders, every key loaded.
type Config struct {
	// Client configures the sgID client; its RedirectURI is the Site's, and
	// its Observe defaults to the gateway's metrics.
	Client sgid.Config
	Site   *Site
	// ErrorRoutes: a handle_errors route covers the site, so failures go to
	// it as caddyhttp errors instead of the gateway's own pages.
	ErrorRoutes bool

	SessionName    string   // the cookies' base name; "" is the session package's
	SessionSecrets [][]byte // the first seals, every one opens
	Lifetime       time.Duration
	IdleTimeout    time.Duration

	SigningKeys       []*ecdsa.PrivateKey // ES256: the first signs, all are published
	SigningSecret     []byte              // HS256 instead, when set
	AssertionLifetime time.Duration

	// Revocations is the site's revocation list, checked on every request
	// with a session (in memory); Store shares logouts, sign-outs everywhere
	// and spent login states with every instance. Either may be nil: no
	// revocation, or this process only.
	Revocations *revocation.List
	Store       revocation.Store

	Forward   []Forward
	Require   []Requirement
	Anonymous bool // requests without a session pass, without identity

	// FormReplay is the largest form body kept across a login (form.go): 0
	// is DefaultFormReplay, and below 0 keeps none.
	FormReplay int64

	Logger *zap.Logger      // nil: no logs
	Now    func() time.Time // the codec's clock; nil is time.Now
}

// Forward passes one field to the upstream in Header (canonical form).
type Forward struct{ Field, Header string }

// Requirement admits a session only if Field has one of Values.
type Requirement struct {
	Field  string
	Values []string
}

// Defaults for the durations a Config leaves zero.
const (
	DefaultAssertionLifetime = 5 * time.Minute
	AttemptTTL               = 10 * time.Minute // how long a login may take, sgID's page included
)

// Gateway is the pipeline for one site: safe for concurrent use.
type Gateway struct {
	client      *sgid.Client
	keys        atomic.Pointer[keySet] // SetKeys swaps it
	codecConfig session.Config         // what every keySet's codec is made with, but the secrets
	site        *Site
	forward     []Forward
	slots       []headerSlot // the identity headers (identity.go)
	layout      claimLayout  // the assertion's claims, in order
	require     []Requirement
	owned       map[string]bool // header names the gateway owns, normalized
	revocations *revocation.List
	store       revocation.Store
	anonymous   bool
	errorRoutes bool
	formReplay  int64 // 0: forms are not kept
	assertTTL   time.Duration
	logger      *zap.Logger
}

// New builds the pipeline. It makes no call to sgID.
func New(cfg Config) (*Gateway, error) {
	if cfg.Site == nil {
		return nil, fmt.Errorf("gateway: no site")
	}
	g := &Gateway{
		site: cfg.Site, require: cfg.Require, revocations: cfg.Revocations, store: cfg.Store, anonymous: cfg.Anonymous, errorRoutes: cfg.ErrorRoutes,
		assertTTL: cfg.AssertionLifetime, logger: cfg.Logger,
	}
	if g.logger == nil {
		g.logger = zap.NewNop()
	}
	if g.assertTTL <= 0 {
		g.assertTTL = DefaultAssertionLifetime
	}
	switch {
	case cfg.FormReplay == 0:
		g.formReplay = DefaultFormReplay
	case cfg.FormReplay > MaxFormReplay:
		return nil, fmt.Errorf("gateway: form replay of %d bytes, at most %d", cfg.FormReplay, MaxFormReplay)
	case cfg.FormReplay > 0:
		g.formReplay = cfg.FormReplay
	}
	client := cfg.Client
	client.RedirectURI = cfg.Site.redirect
	if client.Observe == nil {
		client.Observe = metrics.observeSgidCall
	}
	var err error
	if g.client, err = sgid.New(client); err != nil {
		return nil, fmt.Errorf("sgid client: %w", err)
	}
	g.codecConfig = session.Config{
		// A cookie is valid only for the configuration that made it: another
		// IdP, client or site sharing the secret cannot make sessions here.
		Binding:     SessionBinding(g.client.IssuerURL(), client.ClientID, g.site.origin),
		Name:        cfg.SessionName,
		Lifetime:    cfg.Lifetime,
		IdleTimeout: cfg.IdleTimeout,
		AttemptTTL:  AttemptTTL,
		Now:         cfg.Now,
	}
	if err := g.SetKeys(Keys{SessionSecrets: cfg.SessionSecrets, SigningKeys: cfg.SigningKeys, SigningSecret: cfg.SigningSecret}); err != nil {
		return nil, err
	}
	g.owned = map[string]bool{NormalizeHeader(SubHeader): true, NormalizeHeader(AssertionHeader): true}
	for _, f := range cfg.Forward {
		f.Header = textproto.CanonicalMIMEHeaderKey(f.Header)
		g.forward = append(g.forward, f)
		g.owned[NormalizeHeader(f.Header)] = true
	}
	g.layout = newClaimLayout(g.forward)
	g.slots = newSlots(g.forward)
	return g, nil
}

// Close lets go of idle connections to sgID, which would otherwise linger
// until their idle timeout after every reload.
func (g *Gateway) Close() { g.client.CloseIdleConnections() }

// ServeHTTP strips client-supplied identity headers (and the same names in
// trailers and Connection tokens), refuses a Host that is not the site's, serves
// the reserved /.sgid/ endpoints, and lets a request with a valid session
// through with the user's identity attached. Without a session a browser is sent
// to sgID, an API client gets 401, and in anonymous mode the request passes
// without identity. Whatever passes on has the gateway's own cookies removed:
// the upstream gets the identity, never the credential. An authenticated
// response is kept out of shared caches when it refreshes the cookie or says
// nothing about caching, and a client leaving mid-response puts no identity in
// Caddy's logs.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.ProtoMajor >= 2 { // a goroutine of its own: stack.go
		primeStack()
	}
	g.stripRequest(r)
	if r.URL.Path == EndpointPrefix+"callback" {
		skipAccessLog(r) // its URL holds the code and the state, whatever the Host
	}
	if !g.site.serves(r.Host) {
		return g.misdirected(w, r)
	}
	if strings.HasPrefix(r.URL.Path, EndpointPrefix) {
		return g.serveEndpoints(w, r)
	}
	e := g.lookup(r)
	if e == nil {
		if g.anonymous {
			g.codec().StripCookies(r.Header)
			return next.ServeHTTP(w, r)
		}
		return g.challenge(w, r)
	}
	if !g.admitted(e.data) {
		return g.denied(w, r, e.data)
	}
	// A new signature is written into the cookie too, so that the session's
	// next cache miss, here or on another instance, needs none.
	resigned := g.identify(r, e)
	refresh := g.codec().NeedsRefresh(e.data) || resigned
	if refresh {
		g.refresh(w, r, e)
	}
	g.codec().StripCookies(r.Header)
	guard := newCacheGuard(w, refresh)
	err := serveQuietly(next, guard, r) // quiet.go: a client leaving logs no identity
	guard.seal()
	return err
}

// admitted applies the require rules.
func (g *Gateway) admitted(d *session.Data) bool {
	for _, req := range g.require {
		v, ok := fieldValue(d, req.Field)
		if !ok || !slices.Contains(req.Values, v) {
			return false
		}
	}
	return true
}

// denied answers a session the require rules refuse: 403, a page for a browser
// (to log out, or in as someone else, back to this page) and JSON for a script.
func (g *Gateway) denied(w http.ResponseWriter, r *http.Request, d *session.Data) error {
	metrics.requireDenied.Inc()
	return g.failFor(w, r, outDenied, nil, r.URL.RequestURI(), d.Sub)
}

// refresh rewrites the session cookie to slide the idle window. The cached Data is
// shared by concurrent requests, so the codec gets a copy.
// The old cookie's cache entry stays until it expires or is evicted; the browser
// now sends the new cookie, which gets an entry of its own.
func (g *Gateway) refresh(w http.ResponseWriter, r *http.Request, e *cacheEntry) {
	d := *e.data
	if a := e.signed.Load(); a != nil {
		d.Carried = a.carried
	}
	if err := g.writeSession(w, r, &d); err != nil {
		g.logger.Warn("session not refreshed", zap.String("reason", err.Error()))
		return
	}
	metrics.sessionsRefreshed.Inc()
}

// writeSession writes d's cookies. A session too large to carry its
// assertion as well is written without it: its cache misses sign again.
func (g *Gateway) writeSession(w http.ResponseWriter, r *http.Request, d *session.Data) error {
	err := g.codec().Write(w, r, d, isSecure(r))
	if errors.Is(err, session.ErrTooLarge) && d.Carried != "" {
		d.Carried = ""
		err = g.codec().Write(w, r, d, isSecure(r))
	}
	return err
}

func isSecure(r *http.Request) bool { return r.TLS != nil }
