package caddysgid

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sgidproxy/caddy-sgid/session"
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
	token string
	renew time.Time // when to sign a new one: half way through its lifetime
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

const userPlaceholderPrefix = "http.auth.user."

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
