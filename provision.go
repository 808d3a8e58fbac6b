package caddysgid

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
	"github.com/sgidproxy/caddy-sgid/revocation"
	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid"
)

// Provision expands placeholders, loads keys and builds the pipeline. It makes
// no call to sgID, so Caddy starts and reloads while sgID is unreachable.
func (h *Handler) Provision(ctx caddy.Context) error {
	cfg, err := h.resolve(ctx)
	if err != nil {
		return err
	}
	if h.gw, err = gateway.New(cfg); err != nil {
		if h.revocation != "" {
			_, _ = revocations.Delete(h.revocation)
			h.revocation = ""
		}
		return err
	}
	// Keys in storage follow rotations and losses while the config runs.
	poll := time.Duration(h.RevocationPoll)
	if poll <= 0 {
		poll = revocation.DefaultInterval
	}
	idle, assertTTL := h.gw.Lifetimes()
	base := gateway.Keys{SessionSecrets: cfg.SessionSecrets, SigningKeys: cfg.SigningKeys, SigningSecret: cfg.SigningSecret}
	h.watch = watchKeys(h.keys, h.gw, cfg.Site, base, h.keySources(), poll, idle, assertTTL)
	return nil
}

// resolve is what Provision needs Caddy for: placeholders expanded, the site
// from the enclosing route, keys from storage, the logger and the metrics.
// What it returns is all gateway.New needs; tests make one by hand.
func (h *Handler) resolve(ctx caddy.Context) (gateway.Config, error) {
	cfg := gateway.Config{Logger: ctx.Logger()}
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
		if all := h.checkPlaceholders(repl); all != nil {
			err = all // the others missing too, not one per restart
		}
		return cfg, err
	}
	if cfg.Site, err = gateway.NewSite(redirect, h.Audience, func() (string, error) { return routeOrigin(ctx) }); err != nil {
		return cfg, err
	}
	if err := checkReach(ctx, cfg.Site); err != nil {
		return cfg, err
	}
	if err := h.checkPlaceholders(repl); err != nil {
		return cfg, err
	}
	warnUnknownScopes(cfg.Logger, h.scopes())
	cfg.ErrorRoutes = errorRoutesCover(ctx, cfg.Site)
	if cfg.FormReplay, err = formReplayBytes(h.FormReplay); err != nil {
		return cfg, fmt.Errorf("form_replay: %w", err)
	}
	client := sgid.Config{Scopes: h.Scopes, Timeout: time.Duration(h.Timeout), ClockSkew: time.Duration(h.ClockSkew)}
	for _, v := range []struct {
		name string
		in   string
		out  *string
	}{
		{"client_id", h.ClientID, &client.ClientID},
		{"client_secret", h.ClientSecret, &client.ClientSecret},
		{"private_key", h.PrivateKey, &client.PrivateKey},
		{"hostname", h.Hostname, &client.Hostname},
	} {
		if *v.out, err = expand(v.name, v.in); err != nil {
			return cfg, err
		}
	}
	if err := keyPathHint("private_key", client.PrivateKey); err != nil {
		return cfg, err
	}
	cfg.Client = client
	issuer, err := sgid.Issuer(client.Hostname)
	if err != nil {
		return cfg, fmt.Errorf("sgid client: %w", err)
	}
	keys := &keyStore{storage: ctx.Storage(), ctx: ctx, issuer: issuer, clientID: client.ClientID}
	h.keys = keys
	if cfg.SessionSecrets, err = h.sessionSecrets(expand, keys); err != nil {
		return cfg, err
	}
	if cfg.SigningKeys, cfg.SigningSecret, err = h.signingKeys(expand, keys, cfg.Site); err != nil {
		return cfg, err
	}
	// Every key the handler holds is logged and exported (keyinfo.go), so
	// that instances that disagree show it at once.
	keys.report(cfg.Site, h.keySources(), cfg.SessionSecrets, cfg.SigningKeys)
	provisionMetrics(ctx, cfg.Logger)
	h.pipeline(&cfg)
	if err := h.openRevocations(ctx, expand, &cfg, issuer); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// pipeline sets what the gateway takes from the configuration as it is.
func (h *Handler) pipeline(cfg *gateway.Config) {
	cfg.SessionName = h.CookieName
	// Zero durations are the defaults of the session package and the gateway.
	cfg.Lifetime = time.Duration(h.SessionLifetime)
	cfg.IdleTimeout = time.Duration(h.IdleTimeout)
	cfg.AssertionLifetime = time.Duration(h.AssertionLifetime)
	cfg.Anonymous = h.Anonymous
	for _, f := range h.Forward {
		cfg.Forward = append(cfg.Forward, gateway.Forward{Field: f.Field, Header: f.header()})
	}
	for _, r := range h.Require {
		cfg.Require = append(cfg.Require, gateway.Requirement{Field: r.Field, Values: r.Values})
	}
}

func (h *Handler) sessionSecrets(expand func(string, string) (string, error), keys *keyStore) ([][]byte, error) {
	if len(h.SessionSecrets) == 0 {
		secrets, err := keys.sessionSecrets()
		if err != nil {
			return nil, fmt.Errorf("session secret from storage: %w", err)
		}
		return secrets, nil
	}
	var out [][]byte
	for i, s := range h.SessionSecrets {
		v, err := expand(fmt.Sprintf("session_secret #%d", i+1), s)
		if err != nil {
			return nil, err
		}
		if err := session.CheckSecret(fmt.Sprintf("session_secret #%d", i+1), v); err != nil {
			return nil, fmt.Errorf("%w (caddy sgid-keygen makes one)", err)
		}
		out = append(out, []byte(v))
	}
	return out, nil
}

// SessionBinding is what a site's cookies are bound to (session.Config.Binding):
// sgID's issuer URL, the client id and the site's origin. A program that mints
// cookies for a site, such as a load test, passes the same.
func SessionBinding(issuer, clientID, siteOrigin string) []string {
	return gateway.SessionBinding(issuer, clientID, siteOrigin)
}

// header is the header f is sent in: the one named, or the default for its
// field.
func (f Forward) header() string {
	if f.Header != "" {
		return f.Header
	}
	return gateway.DefaultHeader(f.Field)
}
