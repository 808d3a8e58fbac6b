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

	"github.com/sgidproxy/caddy-sgid/revocation"
)

func init() {
	caddy.RegisterModule(adminAPI{})
	fl := flag.NewFlagSet("sgid-revoke", flag.ExitOnError)
	fl.String("sub", "", "End every session of this pairwise sub (as in X-Sgid-Sub)")
	fl.String("before", "", "End sessions created before this time (RFC 3339; default now). Without --sub: everyone's")
	fl.String("site", "", "Only this site (its origin, e.g. https://app.example.gov.sg); default every sgid site")
	fl.String("address", "", "The admin API's address; default Caddy's (localhost:2019)")
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
// /sgid/sites lists the sites whose revocations this process holds.
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
	}
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
		caddy.Log().Named("http.handlers.sgid").Info("sessions revoked", zap.String("event", e.Reason), zap.String("site", st.site),
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
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, "", "")
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	body, _ := json.Marshal(req)
	resp, err := caddycmd.AdminAPIRequest(addr, http.MethodPost, "/sgid/revoke", nil, strings.NewReader(string(body)))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(os.Stdout, resp.Body)
	return caddy.ExitCodeSuccess, nil
}

// Interface guards
var _ caddy.AdminRouter = adminAPI{}
