package caddysgid

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
	"github.com/sgidproxy/caddy-sgid/revocation"
)

func init() {
	caddy.RegisterModule(adminAPI{})
	fl := flag.NewFlagSet("sgid-revoke", flag.ExitOnError)
	fl.String("sub", "", "End every session of this pairwise sub (as in X-Sgid-Sub)")
	fl.String("before", "", "End sessions created before this time (RFC 3339; default now). Without --sub: everyone's")
	fl.String("site", "", "Only this site (its origin, e.g. https://app.example.gov.sg); default every sgid site")
	fl.String("address", "", "The admin API's address; default Caddy's (localhost:2019)")
	rotate := flag.NewFlagSet("sgid-rotate", flag.ExitOnError)
	rotate.String("kind", "", "session_secret or signing_key; default both")
	rotate.String("site", "", "Only this site's keys (its origin); default every sgid site's")
	rotate.String("activate-in", "", "When the new values seal and sign (e.g. 30s); default twice revocation_poll, and at least 5m for a signing key")
	rotate.Bool("drop-old", false, "End the old values at the activation instead of after their overlap (a compromised key): logs everyone out then")
	rotate.String("address", "", "The admin API's address; default Caddy's (localhost:2019)")
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "sgid-rotate",
		Usage: "[--kind session_secret|signing_key] [--site <origin>] [--activate-in <duration>] [--drop-old] [--address <admin>]",
		Short: "Rotates the sgid handler's keys kept in Caddy storage, on every instance, through a running Caddy",
		Long: `
Adds a new session secret or assertion signing key in front of the ones in
Caddy's storage, through the admin API of a running Caddy (POST /sgid/rotate).
Every instance that shares the storage loads it within revocation_poll, and it
seals cookies (signs assertions) only from its activation time, so no
instance meets a cookie or assertion it cannot check. The value it replaces
stays for its overlap: a session secret for the idle timeout (the next request
moves a session to the new one), a signing key for the assertion lifetime.
Nobody is logged out. Keys given in the config are rotated in the config.

For a key thought compromised, --drop-old ends the old values at the
activation instead: every session sealed (assertion signed) with them ends
then. Deleting the key from storage does not work while instances run: they
give back the copy they hold.

    caddy sgid-rotate
    caddy sgid-rotate --kind signing_key --site https://app.example.gov.sg --activate-in 1h
`,
		Flags: rotate,
		Func:  cmdRotate,
	})
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "sgid-revoke",
		Usage: "(--sub <sub> [--before <time>] | --before <time>) [--site <origin>] [--address <admin>]",
		Short: "Ends sessions of the sgid handler on every instance, through a running Caddy",
		Long: `
Ends sessions through the admin API of a running Caddy (POST /sgid/revoke): every
session of one user (--sub, the pairwise sub the app receives as X-Sgid-Sub), or
every session created before a time (--before, RFC 3339), of that user or, without
--sub, of everyone. The revocation reaches every instance that shares the site's
revocation store (Caddy storage: within revocation_poll; Redis: within a second),
and lasts until the sessions it ends would have expired.

    caddy sgid-revoke --sub rnzyh5vlriz2ueviqawlj5bqz7ozxako
    caddy sgid-revoke --before 2026-12-01T09:00:00+08:00 --site https://app.example.gov.sg
`,
		Flags: fl,
		Func:  cmdRevoke,
	})
}

// adminAPI is the admin route /sgid/: POST /sgid/revoke ends sessions, GET
// /sgid/sites lists the sites whose revocations this process holds, POST
// /sgid/rotate rotates the keys kept in Caddy storage (rotation.go).
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.sgid",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the admin routes.
func (a adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/sgid/revoke", Handler: caddy.AdminHandlerFunc(a.revoke)},
		{Pattern: "/sgid/sites", Handler: caddy.AdminHandlerFunc(a.sites)},
		{Pattern: "/sgid/rotate", Handler: caddy.AdminHandlerFunc(a.rotate)},
	}
}

// RotateRequest is the body of POST /sgid/rotate.
type RotateRequest struct {
	Kind string `json:"kind,omitempty"` // session_secret or signing_key; default both
	Site string `json:"site,omitempty"` // only this site's keys (its origin); default every site's
	// ActivateIn is when the new values seal and sign, as a Go duration;
	// default twice revocation_poll, and for a signing key at least the
	// JWKS's max-age (5m).
	ActivateIn string `json:"activate_in,omitempty"`
	// DropOld ends the old values at the activation instead of keeping them
	// for their overlap, for a key thought compromised: every session (or
	// assertion) made with them ends then.
	DropOld bool `json:"drop_old,omitempty"`
}

func (adminAPI) rotate(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed: POST")}
	}
	var req RotateRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("decoding the request: %v", err)}
	}
	if req.Kind != "" && req.Kind != kindSessionSecret && req.Kind != kindSigningKey {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("kind: want %s or %s, or none for both", kindSessionSecret, kindSigningKey)}
	}
	var activateIn time.Duration
	if req.ActivateIn != "" {
		d, err := caddy.ParseDuration(req.ActivateIn)
		if err != nil || d <= 0 {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New("activate_in: want a positive duration, e.g. 30s or 10m")}
		}
		activateIn = d
	}
	targets := rotationTargets(req.Site, req.Kind)
	if len(targets) == 0 {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("no sgid site matches with keys in Caddy storage: " +
			"keys given in the config (session_secret, signing_key) are rotated there, by putting the new one first")}
	}
	var done []RotatedKey
	for _, t := range targets {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		rk, err := t.rotate(ctx, activateIn, req.DropOld)
		cancel()
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("rotating %s: %v (rotated before it: %d)", rk.Key, err, len(done))}
		}
		done = append(done, rk)
		retiring := make([]string, 0, len(rk.Retiring))
		for _, x := range rk.Retiring {
			retiring = append(retiring, x.ID+" until "+x.Expires.Format(time.RFC3339))
		}
		auditLog().Info("sgid key rotated", zap.String("event", "rotation"), zap.String("kind", rk.Kind),
			zap.String("key", rk.Key), zap.Strings("sites", rk.Sites), zap.String("id", rk.ID), zap.Time("active_from", rk.ActiveFrom),
			zap.Strings("retiring", retiring), zap.Bool("drop_old", req.DropOld))
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{"rotated": done})
}

// RevokeRequest is the body of POST /sgid/revoke: Sub, Before, or both.
type RevokeRequest struct {
	Sub    string    `json:"sub,omitempty"`   // every session of this pairwise sub
	Before time.Time `json:"before,omitzero"` // sessions created before it; default now with sub, required without
	Site   string    `json:"site,omitempty"`  // only this site's origin; default every site
}

// RevokedSite is one site a revocation was made for.
type RevokedSite struct {
	Site   string `json:"site"`
	Shared bool   `json:"shared"` // the store took it; false: held on this instance, shared when the store answers
}

func (adminAPI) revoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed: POST")}
	}
	var req RevokeRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("decoding the request: %v", err)}
	}
	if req.Sub == "" && req.Before.IsZero() {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New("give sub, before, or both: ending everyone's sessions needs an explicit before")}
	}
	now := time.Now()
	if req.Before.IsZero() {
		req.Before = now
	}
	if req.Before.After(now) {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New("before is in the future: it would end sessions not made yet")}
	}
	var done []RevokedSite
	var errs []error
	revocations.Range(func(_, v any) bool {
		st := v.(*revocationState)
		if req.Site != "" && !sameOrigin(req.Site, st.site) {
			return true
		}
		e := revocation.Entry{Sub: req.Sub, Before: req.Before, Expires: req.Before.Add(st.lifetime()), Reason: revocation.ReasonAdmin}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		err := st.revoke(ctx, e)
		if errors.Is(err, revocation.ErrInvalid) {
			errs = append(errs, err)
			return false
		}
		done = append(done, RevokedSite{Site: st.site, Shared: err == nil})
		auditLog().Info("sessions revoked", zap.String("event", e.Reason), zap.String("site", st.site),
			zap.String("sub", e.Sub), zap.Time("before", e.Before), zap.Time("until", e.Expires), zap.Bool("shared", err == nil))
		return true
	})
	if len(errs) > 0 {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errs[0]}
	}
	if len(done) == 0 {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("no sgid site matches")}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{"revoked": done})
}

// SiteInfo is one site in GET /sgid/sites.
type SiteInfo struct {
	Site        string    `json:"site"`
	Store       string    `json:"store"` // storage or redis
	Revocations int       `json:"revocations"`
	LastSync    time.Time `json:"last_sync,omitzero"` // zero: never reached the store
}

func (adminAPI) sites(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed: GET")}
	}
	var out []SiteInfo
	revocations.Range(func(_, v any) bool {
		st := v.(*revocationState)
		out = append(out, SiteInfo{Site: st.site, Store: st.kind, Revocations: st.list.Len(), LastSync: st.list.LastSync()})
		return true
	})
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

// auditLog is the audit logger for what operators do through the admin API
// (revocations, key rotations): the same logger the handler's own audit
// lines use, so one log config routes them all.
func auditLog() *zap.Logger {
	return caddy.Log().Named("http.handlers.sgid").Named(gateway.AuditLogger)
}

func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}

func cmdRevoke(fl caddycmd.Flags) (int, error) {
	req := RevokeRequest{Sub: fl.String("sub"), Site: fl.String("site")}
	if b := fl.String("before"); b != "" {
		t, err := time.Parse(time.RFC3339, b)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("--before: want RFC 3339, e.g. 2026-12-01T09:00:00+08:00: %v", err)
		}
		req.Before = t
	}
	if req.Sub == "" && req.Before.IsZero() {
		return caddy.ExitCodeFailedStartup, errors.New("give --sub, --before, or both")
	}
	return postAdmin(fl.String("address"), "/sgid/revoke", req)
}

func cmdRotate(fl caddycmd.Flags) (int, error) {
	req := RotateRequest{Kind: fl.String("kind"), Site: fl.String("site"), ActivateIn: fl.String("activate-in"), DropOld: fl.Bool("drop-old")}
	return postAdmin(fl.String("address"), "/sgid/rotate", req)
}

// postAdmin sends body as JSON to a running Caddy's admin API at path and
// prints the answer.
func postAdmin(address, path string, body any) (int, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(address, nil, "", "")
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	b, _ := json.Marshal(body)
	resp, err := caddycmd.AdminAPIRequest(addr, http.MethodPost, path, nil, strings.NewReader(string(b)))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(os.Stdout, resp.Body)
	return caddy.ExitCodeSuccess, nil
}

// Interface guards
var _ caddy.AdminRouter = adminAPI{}
