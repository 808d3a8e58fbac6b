package caddysgid

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
)

// errNoFixedSite is the provisioning error for a site that does not name one
// host and port; the message says how to fix it.
var errNoFixedSite = errors.New("set redirect_uri (and audience, if the app expects another) to the URL this gateway is for")

// routeOrigin finds the origin of the site the handler is being provisioned in:
// the one host that the innermost enclosing route with a host matcher matches,
// and the one port the server listens on, https when the server has TLS. Caddy
// provisions routes in order, and a route's handlers are loaded (and its raw
// handler JSON cleared) only after they are provisioned, so the route being
// provisioned is the first one whose handlers are still raw.
func routeOrigin(ctx caddy.Context) (string, error) {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil {
		return "", fmt.Errorf("sgid is not inside an HTTP server: %w", errNoFixedSite)
	}
	// Innermost first: a host matcher on a nested route narrows the server's.
	var lists []caddyhttp.RouteList
	for _, m := range slices.Backward(ctx.Modules()) {
		if sr, ok := m.(*caddyhttp.Subroute); ok {
			lists = append(lists, sr.Routes)
		}
	}
	lists = append(lists, srv.Routes)
	if srv.Errors != nil {
		lists = append(lists, srv.Errors.Routes)
	}
	var hosts []string
	found := false
	for _, routes := range lists {
		r := beingProvisioned(routes)
		if r == nil {
			continue
		}
		hs, ok := routeHosts(r)
		if ok {
			hosts, found = hs, true
			break
		}
	}
	if !found {
		return "", fmt.Errorf("the site matches no host name (a catch-all address such as :443 or http://): %w", errNoFixedSite)
	}
	if len(hosts) != 1 {
		return "", fmt.Errorf("the site serves %d host names (%s), not one: %w", len(hosts), strings.Join(hosts, ", "), errNoFixedSite)
	}
	host := hosts[0]
	if strings.ContainsAny(host, "*{}") {
		return "", fmt.Errorf("the site's host %q is a pattern, not one host name: %w", host, errNoFixedSite)
	}
	port, err := listenPort(srv.Listen)
	if err != nil {
		return "", err
	}
	scheme := "http"
	if srv.TLSConnPolicies != nil {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// beingProvisioned is the route of routes whose handlers are loading now.
func beingProvisioned(routes caddyhttp.RouteList) *caddyhttp.Route {
	for i := range routes {
		if routes[i].HandlersRaw != nil {
			return &routes[i]
		}
	}
	return nil
}

// routeHosts lists the host names a route's host matchers accept; ok is false
// when no matcher set of the route constrains the host.
func routeHosts(r *caddyhttp.Route) (hosts []string, ok bool) {
	for _, set := range r.MatcherSets {
		constrained := false
		for _, m := range set {
			var mh caddyhttp.MatchHost
			switch v := m.(type) {
			case caddyhttp.MatchHost:
				mh = v
			case *caddyhttp.MatchHost:
				mh = *v
			default:
				continue
			}
			constrained = true
			for _, h := range mh {
				if h = strings.ToLower(h); !slices.Contains(hosts, h) {
					hosts = append(hosts, h)
				}
			}
		}
		if !constrained {
			// One matcher set without a host matcher lets any host through.
			return nil, false
		}
	}
	return hosts, len(r.MatcherSets) > 0
}

// listenPort is the one port a server listens on.
func listenPort(listen []string) (int, error) {
	port := 0
	for _, l := range listen {
		addr, err := caddy.ParseNetworkAddress(l)
		if err != nil {
			return 0, fmt.Errorf("reading the server's listen address %q: %w", l, err)
		}
		if addr.StartPort != addr.EndPort || (port != 0 && int(addr.StartPort) != port) {
			return 0, fmt.Errorf("the site listens on more than one port: %w", errNoFixedSite)
		}
		port = int(addr.StartPort)
	}
	if port == 0 {
		return 0, fmt.Errorf("the server's listen port is unknown: %w", errNoFixedSite)
	}
	return port, nil
}

// errorRoutesCover reports whether the server has a handle_errors route for
// this site: one whose host matcher names the site's host, or that matches any
// host. Caddy gives an error that no error route matches an empty body, so the
// gateway returns its failures as errors only where such a route exists, and
// writes its own pages everywhere else (another site on the same server may
// have handle_errors of its own).
func errorRoutesCover(ctx caddy.Context, s *gateway.Site) bool {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil || srv.Errors == nil {
		return false
	}
	host := s.Host()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	for i := range srv.Errors.Routes {
		// The error routes' matchers are loaded after the primary routes'
		// handlers (this one among them): read them from the raw config.
		hosts, constrained := rawRouteHosts(srv.Errors.Routes[i].MatcherSetsRaw)
		if !constrained || slices.Contains(hosts, host) {
			return true
		}
	}
	return false
}

// rawRouteHosts is routeHosts for matcher sets not loaded yet.
func rawRouteHosts(sets caddyhttp.RawMatcherSets) (hosts []string, ok bool) {
	for _, set := range sets {
		raw, has := set["host"]
		if !has {
			return nil, false
		}
		var hs []string
		if json.Unmarshal(raw, &hs) != nil {
			return nil, false
		}
		for _, h := range hs {
			if h = strings.ToLower(h); !slices.Contains(hosts, h) {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts, len(sets) > 0
}
