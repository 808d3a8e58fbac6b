package gateway

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/sgidproxy/caddy-sgid/session"
	"go.uber.org/zap"
)

// defaultCacheSize bounds the decoded-session cache: at about 1 KB an entry
// (session, encoded headers, assertion) it holds a few MB at most.
const defaultCacheSize = 4096

// cacheEntry is a decoded session with everything derived from it that is the
// same on every request: the encoded header values and the signed assertion.
type cacheEntry struct {
	data    *session.Data // read-only once cached
	headers []headerValue // sub first, then the forwarded fields

	// signed is the current assertion, read without a lock on every request;
	// mu serialises re-signing, so that concurrent requests sign once.
	signed atomic.Pointer[signedAssertion]
	mu     sync.Mutex
}

// signedAssertion is one signed assertion and when to replace it.
type signedAssertion struct {
	token   string
	renew   time.Time // when to sign a new one: half way through its lifetime
	carried string    // what the session cookie carries to rebuild it (session.Data.Carried)
}

// current returns the assertion if it is not due for renewal.
func (e *cacheEntry) current(now time.Time) (string, bool) {
	if a := e.signed.Load(); a != nil && now.Before(a.renew) {
		return a.token, true
	}
	return "", false
}

type headerValue struct {
	name, value string
	placeholder string // http.auth.user.<field>
	boxed       any    // value, boxed once for the replacer instead of on every request
}

// placeholder provides this session's http.auth.user.* placeholders to the
// request's replacer: id (the sub) and each forwarded field, header-encoded. A
// value another handler Set on the replacer comes first.
func (e *cacheEntry) placeholder(key string) (any, bool) {
	if !strings.HasPrefix(key, userPlaceholderPrefix) {
		return nil, false
	}
	for _, hv := range e.headers {
		if hv.placeholder == key {
			return hv.boxed, true
		}
	}
	return nil, false
}

func newHeaderValue(name, raw, placeholder string) headerValue {
	v := encodeHeaderValue(raw)
	return headerValue{name: name, value: v, placeholder: placeholder, boxed: v}
}

// sessionCache maps a session cookie's fingerprint to its decoded entry, so an
// authenticated request costs a hash and a map lookup instead of a decryption
// and a signature. Eviction is arbitrary (Go's map order) when full: cheap, and
// an evicted session only costs one decode.
type sessionCache struct {
	mu  sync.RWMutex
	m   map[[32]byte]*cacheEntry
	max int
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{m: make(map[[32]byte]*cacheEntry, max), max: max}
}

func (c *sessionCache) get(key [32]byte) *cacheEntry {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	return e
}

func (c *sessionCache) put(key [32]byte, e *cacheEntry) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			if len(c.m) < c.max*7/8 {
				break
			}
		}
	}
	c.m[key] = e
	c.mu.Unlock()
}

func (c *sessionCache) remove(key [32]byte) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// lookup finds the request's session: from the cache by cookie fingerprint, or by
// decoding the cookie, and never one that has been revoked (checked on every
// request, cached or not). Any failure is "no session".
func (g *Gateway) lookup(r *http.Request) *cacheEntry {
	ks := g.keys.Load() // one codec and its cache, whatever a key swap does meanwhile
	key, ok := ks.codec.Fingerprint(r)
	if !ok {
		return nil
	}
	if e := ks.cache.get(key); e != nil {
		if ks.codec.Check(e.data) != nil || g.isRevoked(e.data) {
			ks.cache.remove(key)
			return nil
		}
		return e
	}
	d, err := ks.codec.Read(r)
	if err != nil {
		if c := g.logger.Check(zap.DebugLevel, "session cookie not accepted"); c != nil {
			c.Write(zap.String("reason", err.Error()))
		}
		return nil
	}
	if g.isRevoked(d) {
		return nil // not cached: revoked cookies are few, and the check is cheap
	}
	e := g.newEntry(d)
	ks.cache.put(key, e)
	return e
}

func (g *Gateway) newEntry(d *session.Data) *cacheEntry {
	e := &cacheEntry{data: d, headers: make([]headerValue, 0, len(g.forward)+1)}
	// The assertion the cookie carries, if it is this signer's and still
	// current: a session's first request on this instance, or after its
	// entry was evicted, then needs no signature.
	if token, iat, ok := g.signer().fromCarried(d, g.layout, g.site.origin, g.site.audience, g.assertTTL); ok {
		e.signed.Store(&signedAssertion{token: token, renew: iat.Add(g.assertTTL / 2), carried: d.Carried})
	}
	e.headers = append(e.headers, newHeaderValue(SubHeader, d.Sub, userPlaceholderPrefix+"id"))
	for _, f := range g.forward {
		v, ok := fieldValue(d, f.Field)
		if !ok {
			continue
		}
		e.headers = append(e.headers, newHeaderValue(f.Header, v, userPlaceholderPrefix+f.Field))
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

// identify attaches the identity: headers for the upstream, placeholders for the
// rest of the Caddy config and the access log's user_id. resigned reports a
// new signature, which the session cookie should now carry.
func (g *Gateway) identify(r *http.Request, e *cacheEntry) (resigned bool) {
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
	a, resigned := g.assertionFor(e)
	if a != "" {
		values[len(e.headers)] = a
		r.Header[AssertionHeader] = values[len(e.headers):]
	}
	return resigned
}

// assertionFor returns the session's signed assertion, re-signing only when the
// cached one is past half its lifetime: signing costs more CPU than proxying a
// request. Its iss and aud are the site's, fixed at provisioning: nothing in the
// request chooses them.
func (g *Gateway) assertionFor(e *cacheEntry) (token string, resigned bool) {
	now := time.Now()
	if a, ok := e.current(now); ok {
		return a, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if a, ok := e.current(now); ok { // another request signed it meanwhile
		return a, false
	}
	a, carried, err := g.signer().assertion(e.data, g.layout, g.site.origin, g.site.audience, now, g.assertTTL)
	if err != nil {
		g.logger.Error("assertion not signed", zap.Error(err))
		return "", false
	}
	e.signed.Store(&signedAssertion{token: a, renew: now.Add(g.assertTTL / 2), carried: carried})
	return a, true
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
