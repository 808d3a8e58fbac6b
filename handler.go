package caddysgid

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/session"
)

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
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.stripRequest(r)
	if r.URL.Path == reservedPrefix+"callback" {
		skipAccessLog(r) // its URL holds the code and the state, whatever the Host
	}
	if !h.site.serves(r.Host) {
		return h.misdirected(w, r)
	}
	if strings.HasPrefix(r.URL.Path, reservedPrefix) {
		return h.serveReserved(w, r)
	}
	e := h.lookup(r)
	if e == nil {
		if h.Anonymous {
			h.codec.StripCookies(r.Header)
			return next.ServeHTTP(w, r)
		}
		return h.challenge(w, r)
	}
	if !h.admitted(e.data) {
		return h.denied(w, r)
	}
	h.identify(r, e)
	refresh := h.codec.NeedsRefresh(e.data)
	if refresh {
		h.refresh(w, r, e)
	}
	h.codec.StripCookies(r.Header)
	g := newCacheGuard(w, refresh)
	err := serveQuietly(next, g, r) // logs.go: a client leaving logs no identity
	g.seal()
	return err
}

// lookup finds the request's session: from the cache by cookie fingerprint, or by
// decoding the cookie. Any failure is "no session".
func (h *Handler) lookup(r *http.Request) *cacheEntry {
	key, ok := h.codec.Fingerprint(r)
	if !ok {
		return nil
	}
	if e := h.cache.get(key); e != nil {
		if h.codec.Check(e.data) != nil {
			h.cache.remove(key)
			return nil
		}
		return e
	}
	d, err := h.codec.Read(r)
	if err != nil {
		if c := h.logger.Check(zap.DebugLevel, "session cookie not accepted"); c != nil {
			c.Write(zap.String("reason", err.Error()))
		}
		return nil
	}
	e := h.newEntry(d)
	h.cache.put(key, e)
	return e
}

func (h *Handler) newEntry(d *session.Data) *cacheEntry {
	e := &cacheEntry{data: d, headers: make([]headerValue, 0, len(h.forward)+1)}
	e.headers = append(e.headers, newHeaderValue(subHeader, d.Sub, userPlaceholderPrefix+"id"))
	for _, f := range h.forward {
		v, ok := fieldValue(d, f.field)
		if !ok {
			continue
		}
		e.headers = append(e.headers, newHeaderValue(f.header, v, userPlaceholderPrefix+f.field))
	}
	return e
}

func fieldValue(d *session.Data, field string) (string, bool) {
	if field == "sub" {
		return d.Sub, true
	}
	v, ok := d.Fields[field]
	return v, ok
}

// admitted applies the require rules.
func (h *Handler) admitted(d *session.Data) bool {
	for _, req := range h.Require {
		v, ok := fieldValue(d, req.Field)
		if !ok || !slices.Contains(req.Values, v) {
			return false
		}
	}
	return true
}

// denied answers a session the require rules refuse: 403, a page for a browser
// and JSON for a script.
func (h *Handler) denied(w http.ResponseWriter, r *http.Request) error {
	metrics.requireDenied.Inc()
	return h.fail(w, r, outDenied, nil, "")
}

// identify attaches the identity: headers for the upstream, placeholders for the
// rest of the Caddy config and the access log's user_id.
func (h *Handler) identify(r *http.Request, e *cacheEntry) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	// One backing array for every header's value slice; each is capped at one
	// element so that a later handler's append cannot reach its neighbour.
	values := make([]string, len(e.headers)+1)
	for i, hv := range e.headers {
		values[i] = hv.value
		r.Header[hv.name] = values[i : i+1 : i+1]
	}
	if repl != nil {
		// A provider, not a Set per field: reverse_proxy and the server Set
		// some two dozen values on every request, and three more entries push
		// the replacer's map past a growth step (measured with 26 others:
		// 1.3 µs and 2.3 KB more a request; the provider, 0.05 µs).
		repl.Map(e.placeholder)
	}
	if a := h.assertionFor(e); a != "" {
		values[len(e.headers)] = a
		r.Header[assertionHeader] = values[len(e.headers):]
	}
}

// assertionFor returns the session's signed assertion, re-signing only when the
// cached one is past half its lifetime: signing costs more CPU than proxying a
// request. Its iss and aud are the site's, fixed at provisioning: nothing in the
// request chooses them.
func (h *Handler) assertionFor(e *cacheEntry) string {
	now := time.Now()
	if a, ok := e.current(now); ok {
		return a
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if a, ok := e.current(now); ok { // another request signed it meanwhile
		return a
	}
	a, err := h.signer.assertion(e.data, h.forward, h.site.origin, h.site.audience, now, h.assertTTL)
	if err != nil {
		h.logger.Error("assertion not signed", zap.Error(err))
		return ""
	}
	e.signed.Store(&signedAssertion{token: a, renew: now.Add(h.assertTTL / 2)})
	return a
}

// refresh rewrites the session cookie to slide the idle window. The cached Data is
// shared by concurrent requests, so the codec gets a copy.
// The old cookie's cache entry stays until it expires or is evicted; the browser
// now sends the new cookie, which gets an entry of its own.
func (h *Handler) refresh(w http.ResponseWriter, r *http.Request, e *cacheEntry) {
	d := *e.data
	if err := h.codec.Write(w, r, &d, isSecure(r)); err != nil {
		h.logger.Warn("session not refreshed", zap.String("reason", err.Error()))
		return
	}
	metrics.sessionsRefreshed.Inc()
}

// encodeHeaderValue percent-encodes the bytes a header cannot carry exactly
// (controls, non-ASCII) and '%' itself, so decoding always gives the exact value.
func encodeHeaderValue(v string) string {
	n := 0
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f || c == '%' {
			n++
		}
	}
	if n == 0 {
		return v
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(v)+2*n)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c >= 0x7f || c == '%' {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func isSecure(r *http.Request) bool { return r.TLS != nil }
