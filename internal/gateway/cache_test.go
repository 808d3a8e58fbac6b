package gateway

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/session"
)

// TestCacheEntrySizeIsItsHeap checks entrySize against the heap that
// entries take, measured, from sessions of two short fields to the largest
// a cookie holds: the budget is only as good as the estimate. It may
// overstate (the cache then holds fewer), but not by much, and never
// understate by more than a little.
func TestCacheEntrySizeIsItsHeap(t *testing.T) {
	for _, extra := range []int{0, 200, 1000, 2400} {
		t.Run(fmt.Sprintf("extra_%d", extra), func(t *testing.T) {
			g := benchGateway(t)
			const n = 400 // the largest fill about 3 MiB, within the budget
			reqs := make([]*http.Request, n)
			for i := range reqs {
				reqs[i] = benchRequest(carriedCookie(t, g, i, strings.Repeat("x", extra)))
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for _, r := range reqs {
				if g.lookup(r) == nil {
					t.Fatal("a session was not accepted")
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			c := g.keys.Load().cache
			if len(c.m) != n {
				t.Fatalf("%d entries cached, want %d", len(c.m), n)
			}
			measured := int(after.HeapAlloc-before.HeapAlloc) / n
			estimated := c.bytes / n
			t.Logf("an entry: %d bytes on the heap, %d estimated", measured, estimated)
			if estimated < measured*9/10 || estimated > measured*13/10 {
				t.Errorf("entrySize says %d bytes an entry, the heap %d: outside -10%%..+30%%", estimated, measured)
			}
			runtime.KeepAlive(reqs)
		})
	}
}

// carriedCookie is the Cookie header of session i as the callback writes
// it, carrying its assertion; pad is added to its name field.
func carriedCookie(tb testing.TB, g *Gateway, i int, pad string) string {
	tb.Helper()
	d := &session.Data{Sub: fmt.Sprintf("sub-%07d", i), Fields: []session.Field{
		{Name: "myinfo.name", Value: fmt.Sprintf("USER %d", i) + pad},
		{Name: "myinfo.email", Value: fmt.Sprintf("user%d@example.com", i)},
	}}
	_, carried, err := g.signer().assertion(d, g.layout, g.site.origin, g.site.audience, time.Now(), g.assertTTL)
	if err != nil {
		tb.Fatal(err)
	}
	d.Carried = carried
	rec := httptest.NewRecorder()
	if err := g.codec().Write(rec, httptest.NewRequest(http.MethodGet, "http://app.example/", nil), d, false); err != nil {
		tb.Fatal(err)
	}
	return cookieHeader(rec)
}

// TestSessionCacheStaysWithinItsBudget fills a small cache with entries of
// mixed sizes: it never holds more than its budget, its count of bytes is
// the sum of what it holds, and a full cache evicts to make room.
func TestSessionCacheStaysWithinItsBudget(t *testing.T) {
	c := newSessionCache(100_000)
	for i := range 2000 {
		size := 1000 + (i%7)*900
		c.put([32]byte{byte(i), byte(i >> 8)}, &cacheEntry{size: size})
		sum := 0
		for _, e := range c.m {
			sum += e.size
		}
		if sum != c.bytes || c.bytes > c.budget {
			t.Fatalf("after %d puts: %d bytes counted, %d held, budget %d", i+1, c.bytes, sum, c.budget)
		}
		if _, ok := c.m[[32]byte{byte(i), byte(i >> 8)}]; !ok {
			t.Fatalf("put %d: the new entry is not cached", i)
		}
	}
	c.put([32]byte{1}, &cacheEntry{size: 5000}) // replaces key 1's entry
	c.remove([32]byte{2})
	sum := 0
	for _, e := range c.m {
		sum += e.size
	}
	if sum != c.bytes {
		t.Fatalf("after a replace and a remove: %d bytes counted, %d held", c.bytes, sum)
	}
}

// roundRobin serves passes rounds of n distinct sessions' requests, one each
// in turn, through c as lookup does (get, and put on a miss), with entries
// of two short fields' size; it returns the last pass's hits.
func roundRobin(c *sessionCache, n, passes int) (hits int) {
	for range passes {
		hits = 0
		for i := range n {
			key := sha256.Sum256(binary.LittleEndian.AppendUint64(nil, uint64(i)))
			if c.get(key) != nil {
				hits++
				continue
			}
			c.put(key, &cacheEntry{size: 1500})
			if c.bytes > c.maxBudget || c.budget > c.maxBudget || c.budget < c.minBudget {
				panic(fmt.Sprintf("the cache holds %d bytes with budget %d: outside %d..%d", c.bytes, c.budget, c.minBudget, c.maxBudget))
			}
		}
	}
	return hits
}

// TestSessionCacheBudgetFollowsTheLoad: a cache whose entries are evicted
// unused shrinks to its smallest budget, and grows back to its largest when
// the sessions would fit; a load that fits never shrinks it.
func TestSessionCacheBudgetFollowsTheLoad(t *testing.T) {
	c := newSessionCache(cacheBudget)
	if hits := roundRobin(c, 2000, 3); hits != 2000 || c.budget != cacheBudget {
		t.Fatalf("2,000 sessions: %d hits in the last pass, budget %d: want every one, and %d", hits, c.budget, cacheBudget)
	}
	roundRobin(c, 100_000, 2)
	if c.budget != minCacheBudget || c.bytes > minCacheBudget {
		t.Fatalf("100,000 sessions: budget %d holding %d bytes: want %d", c.budget, c.bytes, minCacheBudget)
	}
	if hits := roundRobin(c, 1000, 10); hits != 1000 {
		t.Fatalf("1,000 sessions after 100,000: %d hits in the tenth pass (budget %d): the budget did not grow back", hits, c.budget)
	}
	if hits := roundRobin(c, 2000, 4); hits != 2000 || c.budget != cacheBudget {
		t.Fatalf("2,000 sessions after 1,000: %d hits in the fourth pass, budget %d: want every one, and %d", hits, c.budget, cacheBudget)
	}
}

// TestGhostFilterRemembersRecentEvictions: the filter knows the last
// ghostGeneration keys added, and few others.
func TestGhostFilterRemembersRecentEvictions(t *testing.T) {
	var f ghostFilter
	key := func(i int) [32]byte { return sha256.Sum256(binary.LittleEndian.AppendUint64(nil, uint64(i))) }
	for i := range 3 * ghostGeneration {
		f.add(key(i))
	}
	for i := 2 * ghostGeneration; i < 3*ghostGeneration; i++ {
		if !f.has(key(i)) {
			t.Fatalf("key %d of the last generation is not remembered", i)
		}
	}
	false_ := 0
	const others = 100_000
	for i := range others {
		if f.has(key(-1 - i)) {
			false_++
		}
	}
	if false_ > others/20 {
		t.Fatalf("%d of %d keys never added are remembered: want under 5%%", false_, others)
	}
	t.Logf("false positives: %.2f%%", 100*float64(false_)/others)
}
