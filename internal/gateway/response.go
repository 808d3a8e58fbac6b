package gateway

import (
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// cacheGuard is the ResponseWriter the next handler gets for an authenticated
// request. It keeps the response out of shared caches, once, as the final
// status goes out (WriteHeader with 200 or more, the first Write, Flush or
// ReadFrom; a 1xx is not final):
//
//   - when the gateway set a cookie on it (a sliding refresh), the upstream's
//     Cache-Control is made private (see privateCacheControl): a shared cache
//     in front would otherwise hand one user's session to everyone who asks;
//   - otherwise, when the upstream said nothing about caching (neither
//     Cache-Control nor Expires), it gets Cache-Control: private, since a
//     shared cache may store such a response heuristically, and the page was
//     made for one user. What an upstream does say is its own choice.
//
// http.ResponseController, Push, Hijack (WebSockets) and deadlines reach the
// underlying writer through Unwrap.
type cacheGuard struct {
	caddyhttp.ResponseWriterWrapper
	cookie bool // the gateway sets a cookie on this response
	sealed bool
	value  [1]string // the Cache-Control line it adds, in this one allocation
}

func newCacheGuard(w http.ResponseWriter, setsCookie bool) *cacheGuard {
	return &cacheGuard{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, cookie: setsCookie}
}

// seal applies the rule to the header map, once. ServeHTTP calls it again
// after the next handler returns, for a response it never wrote: net/http
// sends that, and Caddy its error responses, with the same header map.
func (g *cacheGuard) seal() {
	if g.sealed {
		return
	}
	g.sealed = true
	hdr := g.ResponseWriter.Header()
	if g.cookie {
		hdr["Cache-Control"] = []string{privateCacheControl(hdr["Cache-Control"])}
		dropTargetedCacheControl(hdr)
		return
	}
	if len(hdr["Cache-Control"]) == 0 && len(hdr["Expires"]) == 0 {
		g.value[0] = "private"
		hdr["Cache-Control"] = g.value[:]
	}
}

func (g *cacheGuard) WriteHeader(status int) {
	if status < 100 || status >= 200 {
		g.seal()
	}
	g.ResponseWriter.WriteHeader(status)
}

func (g *cacheGuard) Write(b []byte) (int, error) {
	g.seal()
	return g.ResponseWriter.Write(b)
}

// ReadFrom seals first: the wrapped writer's ReadFrom sends the header itself.
func (g *cacheGuard) ReadFrom(src io.Reader) (int64, error) {
	g.seal()
	return g.ResponseWriterWrapper.ReadFrom(src)
}

// Flush sends the header if it has not gone yet, so it seals first; without
// Flush here http.ResponseController would reach past the guard through Unwrap.
func (g *cacheGuard) Flush() {
	_ = g.FlushError()
}

// FlushError is what http.ResponseController calls.
func (g *cacheGuard) FlushError() error {
	g.seal()
	return http.NewResponseController(g.ResponseWriter).Flush()
}

// privateCacheControl merges Cache-Control lines into one that no shared cache
// may store, for a response that carries the gateway's cookie: private is
// added (RFC 9111 §5.2.2.7: a shared cache MUST NOT store it) unless private
// or no-store is already there; public and s-maxage, which exist to let
// shared caches store, go; so does a qualified private="...", which lets a
// shared cache store the rest of the response. Everything else the upstream
// said (max-age, no-cache, must-revalidate, ...) stays: private rather than
// no-store keeps the browser's own cache and back/forward cache working on
// the one response in a few minutes that slides the idle window, and the user
// gains nothing from its not being stored on their own machine.
func privateCacheControl(lines []string) string {
	var kept []string
	closed := false
	for _, line := range lines {
		for _, d := range splitDirectives(line) {
			name, _, qualified := strings.Cut(d, "=")
			switch name = strings.ToLower(strings.TrimSpace(name)); {
			case name == "public", name == "s-maxage", name == "private" && qualified:
				continue
			case name == "private", name == "no-store":
				closed = true
			}
			kept = append(kept, d)
		}
	}
	if !closed {
		kept = append([]string{"private"}, kept...)
	}
	return strings.Join(kept, ", ")
}

// splitDirectives splits one Cache-Control line at the commas that are not
// inside a quoted string (no-cache="Set-Cookie, X-Foo"), trimmed, without
// empty elements.
func splitDirectives(line string) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	add := func(end int) {
		if d := strings.TrimSpace(line[start:end]); d != "" {
			out = append(out, d)
		}
		start = end + 1
	}
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			add(i)
		}
	}
	add(len(line))
	return out
}

// dropTargetedCacheControl deletes the cache-control fields that a CDN obeys
// instead of Cache-Control (RFC 9213: CDN-Cache-Control and vendor-specific
// ones such as Cloudflare-CDN-Cache-Control; Surrogate-Control), which would
// let it store the response private or not.
func dropTargetedCacheControl(hdr http.Header) {
	for name := range hdr {
		if n := strings.ToLower(name); strings.HasSuffix(n, "cdn-cache-control") || n == "surrogate-control" {
			delete(hdr, name)
		}
	}
}

// Interface guards
var (
	_ http.ResponseWriter = (*cacheGuard)(nil)
	_ http.Flusher        = (*cacheGuard)(nil)
	_ http.Pusher         = (*cacheGuard)(nil)
	_ io.ReaderFrom       = (*cacheGuard)(nil)
)
