package revocation

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The entries tests use. Expiry is relative to now, since stores drop what
// has expired by the wall clock.
func sessionEntry(id string, ttl time.Duration) Entry {
	return Entry{Session: id, Sub: "sub-of-" + id, Expires: time.Now().Add(ttl), Reason: ReasonLogout}
}

func subEntry(sub string, before time.Time, ttl time.Duration) Entry {
	return Entry{Sub: sub, Before: before, Expires: time.Now().Add(ttl), Reason: ReasonEverywhere}
}

func globalEntry(before time.Time, ttl time.Duration) Entry {
	return Entry{Before: before, Expires: time.Now().Add(ttl), Reason: ReasonAdmin}
}

// names returns the sorted names of entries: equal sets of entries have equal
// names, whatever their time zones or monotonic readings.
func names(entries []Entry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		n, _ := e.encode()
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// eventually polls cond every 10 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// counter is a hook that counts, safe to read from the test goroutine.
type counter struct{ n atomic.Int64 }

func (c *counter) add(int, time.Duration) { c.n.Add(1) }
func (c *counter) err(error)              { c.n.Add(1) }

// noLeak fails the test if goroutines running this package's code are still
// there a moment after the test's own cleanups: a Syncer or a store that
// does not stop its goroutine.
func noLeak(t *testing.T) {
	t.Cleanup(func() {
		var stacks string
		for range 200 {
			buf := make([]byte, 1<<20)
			stacks = string(buf[:runtime.Stack(buf, true)])
			if ours(stacks) == "" {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("goroutines left running:\n%s", ours(stacks))
	})
}

// ours returns the goroutines whose stacks hold a function of this package
// other than the test's own.
func ours(stacks string) string {
	var out []string
	for g := range strings.SplitSeq(stacks, "\n\n") {
		if strings.Contains(g, "caddy-sgid/revocation.(*") && !strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "noLeak") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
