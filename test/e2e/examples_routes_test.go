package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// What the examples' adapted routes must show: every way to the app passes an
// sgid handler, and every sgid handler sees its own callback.

func walkHandlers(v any, fn func(map[string]any)) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			walkHandlers(e, fn)
		}
	case map[string]any:
		if _, ok := v["handler"]; ok {
			fn(v)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			walkHandlers(v[k], fn)
		}
	}
}

// serverRoutes returns each HTTP server's route list.
func serverRoutes(t *testing.T, cfg map[string]any) [][]any {
	t.Helper()
	servers, _ := dig(cfg, "apps", "http", "servers").(map[string]any)
	if len(servers) == 0 {
		t.Fatal("the adapted config has no HTTP server")
	}
	var out [][]any
	for _, srv := range servers {
		routes, _ := srv.(map[string]any)["routes"].([]any)
		out = append(out, routes)
	}
	return out
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// checkRoutesToAppPassSgid pins down the rule the examples teach: a request can
// reach reverse_proxy only after an sgid handler ran for it, since only sgid
// deletes client-sent identity headers. Caddy runs the routes of a list in
// order; an sgid handler covers the rest of its own route, every later route of
// its list if it has no matcher, and the later routes with the same matcher
// if it has one.
func checkRoutesToAppPassSgid(t *testing.T, cfg map[string]any) {
	t.Helper()
	var walk func(routes []any, covered bool, where string)
	walk = func(routes []any, covered bool, where string) {
		coveredMatch := map[string]bool{}
		for i, r := range routes {
			route, _ := r.(map[string]any)
			m, _ := json.Marshal(route["match"])
			c := covered || coveredMatch["null"] || coveredMatch[string(m)]
			handlers, _ := route["handle"].([]any)
			for _, hv := range handlers {
				h, _ := hv.(map[string]any)
				switch h["handler"] {
				case "sgid":
					c = true
					if route["terminal"] != true {
						coveredMatch[string(m)] = true
					}
				case "subroute":
					sub, _ := h["routes"].([]any)
					walk(sub, c, fmt.Sprintf("%s/route %d", where, i))
				case "reverse_proxy":
					if !c {
						t.Errorf("%s/route %d (match %s) proxies to the app without passing sgid: client-sent identity headers would reach it", where, i, m)
					}
				}
			}
		}
	}
	for _, routes := range serverRoutes(t, cfg) {
		walk(routes, false, "")
	}
}

// checkSgidMatchersCoverReserved checks that every sgid handler sees its own
// callback: the matchers on the way to it (host aside) match /.sgid/callback.
func checkSgidMatchersCoverReserved(t *testing.T, cfg map[string]any) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	var walk func(routes []any, path []any)
	walk = func(routes []any, path []any) {
		for _, r := range routes {
			route, _ := r.(map[string]any)
			p := path
			if sets, ok := route["match"].([]any); ok {
				p = append(slices.Clip(path), sets)
			}
			handlers, _ := route["handle"].([]any)
			for _, hv := range handlers {
				h, _ := hv.(map[string]any)
				switch h["handler"] {
				case "sgid":
					for _, sets := range p {
						if !matchesAnySet(t, ctx, sets.([]any), "/.sgid/callback") {
							t.Errorf("an sgid handler behind the matcher %v does not see /.sgid/callback: its matcher must cover /.sgid/*", sets)
						}
					}
				case "subroute":
					sub, _ := h["routes"].([]any)
					walk(sub, p)
				}
			}
		}
	}
	for _, routes := range serverRoutes(t, cfg) {
		walk(routes, nil)
	}
}

// matchesAnySet tells whether a GET for path matches one of a route's matcher
// sets (each an AND of matchers), using Caddy's own matcher modules. Host
// matchers are left out: the request is for the site by construction.
func matchesAnySet(t *testing.T, ctx caddy.Context, sets []any, path string) bool {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	for _, s := range sets {
		all := true
		for name, raw := range s.(map[string]any) {
			if name == "host" {
				continue
			}
			rawJSON, err := json.Marshal(raw)
			if err != nil {
				t.Fatal(err)
			}
			mod, err := ctx.LoadModuleByID("http.matchers."+name, rawJSON)
			if err != nil {
				t.Fatalf("loading matcher %s: %v", name, err)
			}
			// Every matcher Caddy ships implements RequestMatcherWithError;
			// RequestMatcher alone is deprecated.
			m, isMatcher := mod.(caddyhttp.RequestMatcherWithError)
			if !isMatcher {
				t.Fatalf("matcher %s is a %T", name, mod)
			}
			ok, err := m.MatchWithError(req)
			if err != nil {
				t.Fatalf("matcher %s: %v", name, err)
			}
			all = all && ok
		}
		if all {
			return true
		}
	}
	return false
}
