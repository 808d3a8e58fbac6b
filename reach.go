package caddysgid

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
)

// A handler under a matcher that leaves out /.sgid/* (route /app/* { sgid
// ... }) provisions and serves /app/ fine, and every login then ends at a
// callback that never reaches it. checkReach finds that at provisioning, so
// caddy validate fails instead of the first user's login.
//
// It runs the site's requests for the endpoints a login needs through the
// matchers of every route around the handler, as Caddy has loaded them (a
// route's matchers are provisioned before its handlers). Matchers that depend
// only on the request's path, host, method and scheme are decided; any other
// (expression, header, query, remote_ip, vars...) can match at run time, so
// a route that needs one is taken to let the request through: the check
// refuses only configs that are certainly wrong.

// verdict is what a matcher says about a request known only in part.
type verdict int

const (
	unmatched verdict = iota
	undecided
	matched
)

// reachPaths are the paths a login needs to reach the handler: the redirect
// URI's (the callback) and the endpoints the gateway's pages link to.
func reachPaths(s *gateway.Site) []string {
	paths := []string{gateway.EndpointPrefix + "callback"}
	if u, err := url.Parse(s.RedirectURI()); err == nil && u.Path != "" && u.Path != paths[0] {
		paths = append([]string{u.Path}, paths...)
	}
	return append(paths, gateway.EndpointPrefix+"login", gateway.EndpointPrefix+"logout")
}

// checkReach returns an error naming the route that keeps the login's
// requests to site s from reaching the handler being provisioned in ctx, and
// nil when they reach it, when it cannot tell (the handler is in handle_errors
// or a named route, or a matcher is undecidable), or when they reach an sgid
// of the same site provisioned before it.
func checkReach(ctx caddy.Context, s *gateway.Site) error {
	routes, ok := enclosingRoutes(ctx)
	if !ok {
		return nil
	}
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	var blocked []string
	var by *caddyhttp.Route
	for _, p := range reachPaths(s) {
		req, err := http.NewRequest(http.MethodGet, s.Origin()+p, nil)
		if err != nil {
			return nil
		}
		req.RemoteAddr = "192.0.2.1:1"
		req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), discardWriter{}, srv)
		// Outermost first, as a request meets them.
		for _, r := range slices.Backward(routes) {
			if routeVerdict(r, req, s) == unmatched {
				blocked = append(blocked, p)
				if by == nil {
					by = r
				}
				break
			}
		}
	}
	key := reachedSite{srv, s.Origin()}
	if by == nil {
		// Another sgid of this site under a narrower matcher (one that only
		// adds a require for /admin/*) relies on this one for its endpoints.
		if _, dup := reachedSites.LoadOrStore(key, true); !dup {
			ctx.OnCancel(func() { reachedSites.Delete(key) })
		}
		return nil
	}
	if _, ok := reachedSites.Load(key); ok {
		return nil
	}
	return fmt.Errorf("the /.sgid/* endpoints do not reach sgid (%s would not): a route around it matches only %s; "+
		"put sgid in a route that also matches /.sgid/*, e.g. route { sgid ... }, or add /.sgid/* to that matcher",
		strings.Join(blocked, ", "), describeSets(by.MatcherSets))
}

// reachedSites holds, for each server of the configs loaded, the sites
// with an sgid their login's requests reach, as they are provisioned (in
// route order: a site's top-level sgid before those in its handle and route
// blocks). A config's entries go when it is unloaded.
var reachedSites sync.Map // reachedSite -> true

type reachedSite struct {
	srv    *caddyhttp.Server
	origin string
}

// enclosingRoutes are the routes around the handler being provisioned,
// innermost first; ok is false where they cannot be known.
func enclosingRoutes(ctx caddy.Context) (routes []*caddyhttp.Route, ok bool) {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil {
		return nil, false
	}
	lists := []caddyhttp.RouteList{}
	for _, m := range slices.Backward(ctx.Modules()) {
		if sr, ok := m.(*caddyhttp.Subroute); ok {
			lists = append(lists, sr.Routes)
		}
	}
	lists = append(lists, srv.Routes)
	for _, l := range lists {
		r := beingProvisioned(l)
		if r == nil {
			// Not in the primary routes (handle_errors, a named route):
			// what reaches the handler there is not a matter of matchers.
			return nil, false
		}
		routes = append(routes, r)
	}
	return routes, true
}

// routeVerdict: a route matches when any of its matcher sets does, and a
// set when all of its matchers do.
func routeVerdict(r *caddyhttp.Route, req *http.Request, s *gateway.Site) verdict {
	if len(r.MatcherSets) == 0 {
		return matched
	}
	return setsVerdict(r.MatcherSets, req, s)
}

func setsVerdict(sets []caddyhttp.MatcherSet, req *http.Request, s *gateway.Site) verdict {
	v := unmatched
	for _, set := range sets {
		sv := matched
		for _, m := range set {
			sv = min(sv, matcherVerdict(m, req, s))
		}
		v = max(v, sv)
	}
	return v
}

// matcherVerdict decides the matchers that read only what a request to the
// site's endpoint is known to have.
func matcherVerdict(m any, req *http.Request, s *gateway.Site) verdict {
	switch v := m.(type) {
	case *caddyhttp.MatchNot:
		return notVerdict(v.MatcherSets, req, s)
	case caddyhttp.MatchNot:
		return notVerdict(v.MatcherSets, req, s)
	case *caddyhttp.MatchProtocol:
		return protocolVerdict(string(*v), s)
	case caddyhttp.MatchProtocol:
		return protocolVerdict(string(v), s)
	}
	mod, ok := m.(caddy.Module)
	if !ok {
		return undecided
	}
	switch caddy.GetModuleName(mod) {
	case "path", "path_regexp", "host", "method":
	default:
		return undecided
	}
	mw, ok := m.(caddyhttp.RequestMatcherWithError)
	if !ok {
		return undecided
	}
	hit, err := mw.MatchWithError(req)
	switch {
	case err != nil:
		return undecided
	case hit:
		return matched
	}
	return unmatched
}

// protocolVerdict: of the protocols, only the site's scheme is known (not h2
// or h3, nor grpc).
func protocolVerdict(p string, s *gateway.Site) verdict {
	if p != "http" && p != "https" {
		return undecided
	}
	if (p == "https") == strings.HasPrefix(s.Origin(), "https://") {
		return matched
	}
	return unmatched
}

func notVerdict(sets []caddyhttp.MatcherSet, req *http.Request, s *gateway.Site) verdict {
	if len(sets) == 0 {
		return undecided
	}
	switch setsVerdict(sets, req, s) {
	case matched:
		return unmatched
	case unmatched:
		return matched
	}
	return undecided
}

// describeSets says what matcher sets match, for the error: "path /app/*",
// "path /a/* and method POST", "host a.example or not path /x".
func describeSets(sets []caddyhttp.MatcherSet) string {
	var ors []string
	for _, set := range sets {
		var ands []string
		for _, m := range set {
			ands = append(ands, describeMatcher(m))
		}
		slices.Sort(ands) // a set comes from a map: one order for one config
		ors = append(ors, strings.Join(ands, " and "))
	}
	return strings.Join(ors, " or ")
}

func describeMatcher(m any) string {
	switch v := m.(type) {
	case *caddyhttp.MatchNot:
		return "not (" + describeSets(v.MatcherSets) + ")"
	case caddyhttp.MatchNot:
		return "not (" + describeSets(v.MatcherSets) + ")"
	case *caddyhttp.MatchPath:
		return "path " + strings.Join(*v, " ")
	case caddyhttp.MatchPath:
		return "path " + strings.Join(v, " ")
	case *caddyhttp.MatchHost:
		return "host " + strings.Join(*v, " ")
	case caddyhttp.MatchHost:
		return "host " + strings.Join(v, " ")
	case *caddyhttp.MatchMethod:
		return "method " + strings.Join(*v, " ")
	case caddyhttp.MatchMethod:
		return "method " + strings.Join(v, " ")
	case *caddyhttp.MatchPathRE:
		return "path_regexp " + v.Pattern
	case caddyhttp.MatchPathRE:
		return "path_regexp " + v.Pattern
	}
	if mod, ok := m.(caddy.Module); ok {
		return caddy.GetModuleName(mod)
	}
	return fmt.Sprintf("%T", m)
}

// discardWriter is the response writer of a request that is only matched.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}
