package gateway

import (
	"encoding/binary"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/sgidproxy/caddy-sgid/session"
	"go.uber.org/zap"
)

// cacheBudget bounds the decoded-session cache by the memory its entries
// hold, estimated from what each one keeps (entrySize), not by their number:
// a session may hold up to session.MaxSessionData bytes of fields, and its
// assertion carries them again, so a count would let large sessions hold
// five times as much. 4 MiB is about 3,600 sessions of two short fields
// (1.15 KB each with their assertion) and 550 of the largest.
const cacheBudget = 4 << 20

// entryOverhead is what an entry holds apart from its strings' bytes (the
// structs, the session's fields slice, the cache's slot), and entrySize adds
// a tenth for allocation size classes: both fitted to the heap an entry takes,
// which TestCacheEntrySizeIsItsHeap measures.
const entryOverhead = 500

// cacheEntry is a decoded session with everything derived from it that is the
// same on every request: the encoded header values and the signed assertion.
type cacheEntry struct {
	data *session.Data // read-only once cached
	// The header values, one per g.slots (the sub, then each forwarded
	// field), encoded and boxed once for the replacer; nil where the session
	// lacks the field.
	slots  []headerSlot
	values []any
	size   int         // entrySize, for the cache's budget
	hit    atomic.Bool // served from the cache at least once: its budget's evidence

	// signed is the current assertion, read without a lock on every request;
	// mu serialises re-signing, so that concurrent requests sign once.
	signed atomic.Pointer[signedAssertion]
	mu     sync.Mutex
	// carried is the assertion rebuilt from the cookie, if any, which signed
	// first points to: held in the entry so that a cache miss allocates it
	// with the entry.
	carried signedAssertion
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

// headerSlot is one identity header of the configuration: made once at New,
// shared by every entry.
type headerSlot struct {
	field       string // "sub" or the scope name
	name        string // the header
	placeholder string // http.auth.user.id or http.auth.user.<field>
}

// newSlots is the sub's slot, then one per forwarded field, in order.
func newSlots(forward []Forward) []headerSlot {
	slots := []headerSlot{{field: "sub", name: SubHeader, placeholder: userPlaceholderPrefix + "id"}}
	for _, f := range forward {
		slots = append(slots, headerSlot{field: f.Field, name: f.Header, placeholder: userPlaceholderPrefix + f.Field})
	}
	return slots
}

// placeholder provides this session's http.auth.user.* placeholders to the
// request's replacer: id (the sub) and each forwarded field, header-encoded. A
// value another handler Set on the replacer comes first.
func (e *cacheEntry) placeholder(key string) (any, bool) {
	if !strings.HasPrefix(key, userPlaceholderPrefix) {
		return nil, false
	}
	for i, s := range e.slots {
		if s.placeholder == key && e.values[i] != nil {
			return e.values[i], true
		}
	}
	return nil, false
}

// entrySize estimates the heap e holds: the overhead, and its strings'
// bytes, the assertion's included, plus a tenth.
func entrySize(e *cacheEntry) int {
	d := e.data
	n := len(d.ID) + len(d.Sub) + len(d.Carried)
	for _, f := range d.Fields {
		n += len(f.Name) + len(f.Value)
	}
	for i, v := range e.values {
		if v != nil && v.(string) != fieldOrSub(d, e.slots[i].field) {
			n += len(v.(string)) // encoded: a copy of its own
		}
	}
	if a := e.signed.Load(); a != nil {
		n += len(a.token)
	} else {
		n += 2*n + 300 // signed on its first request: about what a carried one takes
	}
	return entryOverhead + n*11/10
}

// sessionCache maps a session cookie's fingerprint to its decoded entry, so an
// authenticated request costs a hash and a map lookup instead of a decryption
// and a signature. Its entries hold at most budget bytes (entrySize).
// Eviction is arbitrary (Go's map order) when full: cheap, and an evicted
// session only costs one decode.
//
// The budget adapts between minCacheBudget and cacheBudget. Holding entries
// that are evicted before anyone asks for them again costs the process more
// than it saves (CONTRIBUTING.md: on a site whose users are far more than the
// cache holds, no cache at all was 3 to 7 µs a request cheaper than 4 MiB),
// so the budget halves while nearly every evicted entry was never hit. It
// doubles again while misses find sessions evicted not long before (the
// ghosts), which a larger cache would have kept.
type sessionCache struct {
	mu     sync.RWMutex
	m      map[[32]byte]*cacheEntry
	bytes  int // the entries' sizes
	budget int // between minBudget and maxBudget
	// The bounds, cacheBudget and minCacheBudget but for tests.
	minBudget, maxBudget int

	// Over each window of adaptWindow puts: evictions, those of entries
	// never hit, and puts whose key was a ghost.
	puts, evicted, unhit, ghostHits int
	ghosts                          ghostFilter
}

// minCacheBudget is the smallest budget, about 230 sessions of two short
// fields: a site's users are rarely all strangers to each other's timing, and
// a user's page and its assets come within a few requests.
const minCacheBudget = 256 << 10

// adaptWindow is how many puts (cache misses) the budget's evidence covers
// before it may change: enough that the fractions below are not noise, few
// enough that a change of load is followed within seconds.
const adaptWindow = 1024

func newSessionCache(budget int) *sessionCache {
	return &sessionCache{m: make(map[[32]byte]*cacheEntry), budget: budget, minBudget: min(minCacheBudget, budget), maxBudget: budget}
}

func (c *sessionCache) get(key [32]byte) *cacheEntry {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	if e != nil && !e.hit.Load() {
		e.hit.Store(true) // written once: later hits only read it
	}
	return e
}

// put adds e, first evicting to seven eighths of the budget if e would not
// fit, so that a full cache evicts in batches rather than on every miss.
func (c *sessionCache) put(key [32]byte, e *cacheEntry) {
	c.mu.Lock()
	if old, ok := c.m[key]; ok {
		c.bytes -= old.size
		delete(c.m, key)
	}
	if c.ghosts.has(key) {
		c.ghostHits++
	}
	if c.bytes+e.size > c.budget {
		c.evictTo(c.budget*7/8 - e.size)
	}
	c.m[key] = e
	c.bytes += e.size
	if c.puts++; c.puts == adaptWindow {
		c.adapt()
	}
	c.mu.Unlock()
}

// evictTo evicts entries, in map order, until they hold at most limit bytes,
// noting each as a ghost and whether it was ever hit.
func (c *sessionCache) evictTo(limit int) {
	for k, old := range c.m {
		if c.bytes <= limit {
			return
		}
		delete(c.m, k)
		c.bytes -= old.size
		c.evicted++
		if !old.hit.Load() {
			c.unhit++
		}
		c.ghosts.add(k)
	}
}

// adapt ends a window: the budget doubles if an eighth of its misses were
// ghosts (a cache twice the size would have held some of them), or halves if
// seven eighths of its evictions were of entries never hit. A halved cache
// is evicted to its new budget and moved to a map of its size, since a Go map
// never gives back the room it grew to.
func (c *sessionCache) adapt() {
	switch {
	case c.ghostHits*8 >= c.puts && c.budget < c.maxBudget:
		c.budget = min(2*c.budget, c.maxBudget)
	case c.evicted > 0 && c.unhit*8 >= c.evicted*7 && c.budget > c.minBudget:
		c.budget = max(c.budget/2, c.minBudget)
		c.evictTo(c.budget * 7 / 8)
		m := make(map[[32]byte]*cacheEntry, len(c.m))
		maps.Copy(m, c.m)
		c.m = m
	}
	c.puts, c.evicted, c.unhit, c.ghostHits = 0, 0, 0, 0
}

func (c *sessionCache) remove(key [32]byte) {
	c.mu.Lock()
	if old, ok := c.m[key]; ok {
		c.bytes -= old.size
		delete(c.m, key)
	}
	c.mu.Unlock()
}

// clear empties the cache (tests and benchmarks: every request a miss).
func (c *sessionCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.bytes = 0
	c.mu.Unlock()
}

// ghostFilter remembers, approximately, the keys of the last ghostGeneration
// to 2*ghostGeneration evictions: two Bloom filters of two probes each, the
// older cleared and reused when the newer is full. Pointer-free, 8 KiB, so
// the collector never looks inside. The probes are bits of the key, an HMAC:
// false positives (about 3% with both full) only make a shrunken cache grow
// sooner.
type ghostFilter struct {
	gen   [2][ghostBits / 64]uint64
	cur   int // the generation being added to
	added int // keys in gen[cur]
}

// ghostGeneration is about the sessions the largest budget holds: a ghost hit
// is then a session a cache between the current one and the largest could
// have kept.
const (
	ghostGeneration = 2048
	ghostBits       = 1 << 15
)

func ghostProbes(key [32]byte) (uint32, uint32) {
	return binary.LittleEndian.Uint32(key[0:]) % ghostBits, binary.LittleEndian.Uint32(key[4:]) % ghostBits
}

func (f *ghostFilter) add(key [32]byte) {
	if f.added == ghostGeneration {
		f.cur ^= 1
		clear(f.gen[f.cur][:])
		f.added = 0
	}
	a, b := ghostProbes(key)
	g := &f.gen[f.cur]
	g[a/64] |= 1 << (a % 64)
	g[b/64] |= 1 << (b % 64)
	f.added++
}

func (f *ghostFilter) has(key [32]byte) bool {
	a, b := ghostProbes(key)
	for i := range f.gen {
		g := &f.gen[i]
		if g[a/64]&(1<<(a%64)) != 0 && g[b/64]&(1<<(b%64)) != 0 {
			return true
		}
	}
	return false
}

// lookup finds the request's session: from the cache by cookie fingerprint, or by
// decoding the cookie, and never one that has been revoked (checked on every
// request, cached or not). Any failure is "no session".
func (g *Gateway) lookup(r *http.Request) *cacheEntry {
	ks := g.keys.Load()    // one codec and its cache, whatever a key swap does meanwhile
	var ck session.Cookies // scanned once: a miss reads what the fingerprint hashed
	ks.codec.Scan(r, &ck)
	key, ok := ks.codec.FingerprintScanned(&ck)
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
	d, err := ks.codec.ReadScanned(&ck)
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
	e := &cacheEntry{data: d, slots: g.slots, values: make([]any, len(g.slots))}
	// The assertion the cookie carries, if it is this signer's and still
	// current: a session's first request on this instance, or after its
	// entry was evicted, then needs no signature.
	if token, iat, ok := g.signer().fromCarried(d, g.layout, g.site.origin, g.site.audience, g.assertTTL); ok {
		e.carried = signedAssertion{token: token, renew: iat.Add(g.assertTTL / 2), carried: d.Carried}
		e.signed.Store(&e.carried)
	}
	for i, s := range g.slots {
		if v, ok := fieldValue(d, s.field); ok {
			e.values[i] = encodeHeaderValue(v)
		}
	}
	e.size = entrySize(e)
	return e
}

func fieldValue(d *session.Data, field string) (string, bool) {
	if field == "sub" {
		return d.Sub, true
	}
	return d.Field(field)
}

// fieldOrSub is fieldValue's value alone.
func fieldOrSub(d *session.Data, field string) string {
	v, _ := fieldValue(d, field)
	return v
}

// identify attaches the identity: headers for the upstream, placeholders for the
// rest of the Caddy config and the access log's user_id. resigned reports a
// new signature, which the session cookie should now carry.
func (g *Gateway) identify(r *http.Request, e *cacheEntry) (resigned bool) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	// One backing array for every header's value slice; each is capped at one
	// element so that a later handler's append cannot reach its neighbour.
	values := make([]string, len(e.values)+1)
	for i, v := range e.values {
		if v == nil {
			continue
		}
		values[i] = v.(string)
		r.Header[e.slots[i].name] = values[i : i+1 : i+1]
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
		values[len(e.values)] = a
		r.Header[AssertionHeader] = values[len(e.values):]
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
