package revocation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStorageConformance and TestRedisConformance run one suite against each
// backend: what the gateway relies on holds whichever store a site uses.
func TestStorageConformance(t *testing.T) {
	t.Parallel()
	testStore(t, storageBackend(t))
}

func TestRedisConformance(t *testing.T) {
	t.Parallel()
	b, _ := redisBackend(t)
	testStore(t, b)
}

// siteOf gives each subtest a site of its own, so they run in parallel on one
// backend, and shows that prefixes keep sites apart.
func siteOf(t *testing.T) string {
	sum := sha256.Sum256([]byte(t.Name()))
	return "sgid/" + hex.EncodeToString(sum[:6])
}

func testStore(t *testing.T, b backend) {
	t.Run("an entry added on one instance is in another's snapshot", func(t *testing.T) {
		t.Parallel()
		site := siteOf(t)
		a, other := b.open(t, site), b.open(t, site)
		now := time.Now()
		want := []Entry{
			sessionEntry("session-1", time.Hour),
			subEntry("sub-1", now, time.Hour),
			globalEntry(now.Add(-time.Minute), time.Hour),
		}
		for _, e := range want {
			if err := a.Add(ctxT(t), e); err != nil {
				t.Fatalf("Add(%+v) = %v", e, err)
			}
		}
		got, err := other.Snapshot(ctxT(t))
		if err != nil {
			t.Fatalf("Snapshot() = %v", err)
		}
		if !slices.Equal(names(got), names(want)) {
			t.Fatalf("Snapshot() = %+v, want %+v", got, want)
		}
		for _, g := range got {
			i := slices.IndexFunc(want, func(w Entry) bool { return w.Session == g.Session && w.Sub == g.Sub })
			if w := want[i]; !g.Before.Equal(w.Before) || !g.Expires.Equal(w.Expires) || g.Reason != w.Reason {
				t.Errorf("entry came back as %+v, want %+v", g, w)
			}
		}
	})

	t.Run("an entry added twice is kept once", func(t *testing.T) {
		t.Parallel()
		site := siteOf(t)
		a, other := b.open(t, site), b.open(t, site)
		e := sessionEntry("twice", time.Hour)
		for _, s := range []Store{a, a, other} {
			if err := s.Add(ctxT(t), e); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := a.Snapshot(ctxT(t)); err != nil || len(got) != 1 {
			t.Fatalf("Snapshot() = %d entries, %v; want 1", len(got), err)
		}
		if n := revocationKeys(t, b, site); n != 1 {
			t.Fatalf("backend holds %d entries, want 1", n)
		}
	})

	t.Run("an expired entry leaves snapshots and the backend", func(t *testing.T) {
		t.Parallel()
		site := siteOf(t)
		s := b.open(t, site)
		short, long := sessionEntry("short", time.Second), sessionEntry("long", time.Hour)
		for _, e := range []Entry{short, long} {
			if err := s.Add(ctxT(t), e); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := s.Snapshot(ctxT(t)); len(got) != 2 {
			t.Fatalf("Snapshot() before expiry = %d entries, want 2", len(got))
		}
		time.Sleep(time.Until(short.Expires) + 10*time.Millisecond)
		got, err := s.Snapshot(ctxT(t))
		if err != nil || !slices.Equal(names(got), names([]Entry{long})) {
			t.Fatalf("Snapshot() after expiry = %+v, %v; want only %+v", got, err, long)
		}
		if n := revocationKeys(t, b, site); n != 1 {
			t.Fatalf("backend holds %d entries after a snapshot, want 1", n)
		}
	})

	t.Run("an expired history costs nothing", func(t *testing.T) {
		t.Parallel()
		site := siteOf(t)
		s := b.open(t, site)
		// Long enough to add them all on a loaded machine (storage writes
		// are synced files), short enough to wait for.
		expires := time.Now().Add(4 * time.Second)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < 1000; i += 8 {
					e := Entry{Session: fmt.Sprintf("old-%d", i), Expires: expires, Reason: ReasonLogout}
					if err := s.Add(ctxT(t), e); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		for i := range 10 {
			if err := s.Add(ctxT(t), sessionEntry(fmt.Sprintf("live-%d", i), time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(expires) {
			t.Fatal("adding took longer than the history's lifetime: the test shows nothing")
		}
		if got, _ := s.Snapshot(ctxT(t)); len(got) != 1010 {
			t.Fatalf("Snapshot() before expiry = %d entries, want 1010", len(got))
		}
		time.Sleep(time.Until(expires) + 10*time.Millisecond)
		for range 2 {
			if got, err := s.Snapshot(ctxT(t)); err != nil || len(got) != 10 {
				t.Fatalf("Snapshot() after expiry = %d entries, %v; want 10", len(got), err)
			}
			if n := revocationKeys(t, b, site); n != 10 {
				t.Fatalf("backend holds %d entries, want the 10 live ones", n)
			}
		}
	})

	t.Run("adding an expired entry stores nothing", func(t *testing.T) {
		t.Parallel()
		site := siteOf(t)
		s := b.open(t, site)
		if err := s.Add(ctxT(t), sessionEntry("gone", -time.Second)); err != nil {
			t.Fatalf("Add(expired) = %v", err)
		}
		if n := len(b.keys(t, site)); n != 0 {
			t.Fatalf("backend holds %d keys, want none", n)
		}
	})

	t.Run("invalid entries are refused", func(t *testing.T) {
		t.Parallel()
		s := b.open(t, siteOf(t))
		now := time.Now()
		for _, e := range []Entry{
			{Session: "s", Before: now, Expires: now.Add(time.Hour)},
			{Expires: now.Add(time.Hour)},
			{Session: "s"},
			{Session: "bad\nid", Expires: now.Add(time.Hour)},
			{Session: "s", Expires: now.Add(time.Hour), Reason: "Jane Tan's phone"},
		} {
			if err := s.Add(ctxT(t), e); !errors.Is(err, ErrInvalid) {
				t.Errorf("Add(%+v) = %v, want ErrInvalid", e, err)
			}
		}
	})

	t.Run("an empty site's snapshot is empty", func(t *testing.T) {
		t.Parallel()
		if got, err := b.open(t, siteOf(t)).Snapshot(ctxT(t)); err != nil || len(got) != 0 {
			t.Fatalf("Snapshot() = %+v, %v; want none, nil", got, err)
		}
	})

	t.Run("a state is spent once within its ttl, and again after it", func(t *testing.T) {
		t.Parallel()
		site := siteOf(t)
		a, other := b.open(t, site), b.open(t, site)
		const ttl = time.Second
		var spent time.Time // no earlier than the ttl's start, wherever the store takes it
		for i, c := range []struct {
			s    Store
			want bool
		}{{a, true}, {a, false}, {other, false}} {
			if got, err := c.s.Spend(ctxT(t), "state-1", ttl); err != nil || got != c.want {
				t.Fatalf("Spend #%d = %v, %v; want %v", i+1, got, err, c.want)
			}
			if i == 0 {
				spent = time.Now()
			}
		}
		if time.Since(spent) >= ttl {
			t.Fatal("spending took longer than the ttl: the test shows nothing")
		}
		time.Sleep(time.Until(spent.Add(ttl)) + 20*time.Millisecond)
		if got, err := other.Spend(ctxT(t), "state-1", ttl); err != nil || !got {
			t.Fatalf("Spend after the ttl = %v, %v; want true", got, err)
		}
		if _, err := a.Spend(ctxT(t), "state-2", 0); err == nil {
			t.Fatal("Spend with a zero ttl succeeded")
		}
	})

	t.Run("a kept value is taken once, on any instance, within its ttl", func(t *testing.T) {
		t.Parallel()
		site := siteOf(t)
		a, other := b.open(t, site), b.open(t, site)
		value := []byte("sealed\nform\x00bytes")
		if err := a.Keep(ctxT(t), "state-1", value, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := other.Take(ctxT(t), "state-1"); err != nil || string(got) != string(value) {
			t.Fatalf("Take on another instance = %q, %v; want %q", got, err, value)
		}
		for _, s := range []Store{a, other} {
			if got, err := s.Take(ctxT(t), "state-1"); !errors.Is(err, ErrNotKept) {
				t.Fatalf("a second Take = %q, %v; want ErrNotKept", got, err)
			}
		}
		if _, err := a.Take(ctxT(t), "never-kept"); !errors.Is(err, ErrNotKept) {
			t.Fatalf("Take of a key never kept: %v, want ErrNotKept", err)
		}
		// Expired: gone, whether or not the backend has dropped it yet.
		if err := a.Keep(ctxT(t), "state-2", value, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if got, err := other.Take(ctxT(t), "state-2"); !errors.Is(err, ErrNotKept) {
			t.Fatalf("Take after the ttl = %q, %v; want ErrNotKept", got, err)
		}
		if err := a.Keep(ctxT(t), "state-3", make([]byte, MaxKept+1), time.Minute); err == nil {
			t.Fatal("Keep of more than MaxKept succeeded")
		}
		if err := a.Keep(ctxT(t), "state-3", value, 0); err == nil {
			t.Fatal("Keep with a zero ttl succeeded")
		}
	})

	t.Run("of two instances taking one kept value at once exactly one gets it", func(t *testing.T) {
		t.Parallel()
		site := siteOf(t)
		instances := []Store{b.open(t, site), b.open(t, site)}
		for round := range 5 {
			key := fmt.Sprintf("race-%d", round)
			if err := instances[0].Keep(ctxT(t), key, []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			var got atomic.Int32
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					v, err := instances[i%2].Take(ctxT(t), key)
					switch {
					case err == nil && string(v) == "v":
						got.Add(1)
					case !errors.Is(err, ErrNotKept):
						t.Errorf("Take: %v", err)
					}
				})
			}
			wg.Wait()
			if n := got.Load(); n != 1 {
				t.Fatalf("round %d: %d of 4 concurrent takes got the value, want 1", round, n)
			}
		}
	})

	t.Run("of two instances spending one state at once exactly one wins", func(t *testing.T) {
		t.Parallel()
		site := siteOf(t)
		instances := []Store{b.open(t, site), b.open(t, site)}
		states := []string{"race-1", "race-2", "race-3"}
		wins := make([]int, len(states))
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{}) // all at once, not one after another
		for i, state := range states {
			for _, s := range instances {
				wg.Go(func() {
					<-start
					first, err := s.Spend(ctxT(t), state, time.Minute)
					if err != nil {
						t.Errorf("Spend(%s) = %v", state, err)
					}
					if first {
						mu.Lock()
						wins[i]++
						mu.Unlock()
					}
				})
			}
		}
		close(start)
		wg.Wait()
		for i, n := range wins {
			if n != 1 {
				t.Errorf("%s: %d instances won, want exactly 1", states[i], n)
			}
		}
	})

	t.Run("spent states and kept values are named by digests", func(t *testing.T) {
		t.Parallel()
		site := siteOf(t)
		const state = "a-state-that-could-be-replayed"
		if _, err := b.open(t, site).Spend(ctxT(t), state, time.Minute); err != nil {
			t.Fatal(err)
		}
		keys := b.keys(t, site)
		if len(keys) != 1 || !strings.HasPrefix(keys[0], site+spentDir+"/") {
			t.Fatalf("keys = %q, want one under %s", keys, site+spentDir)
		}
		if strings.Contains(keys[0], state) {
			t.Fatalf("key %q holds the state itself", keys[0])
		}
		// A kept form is named by the digest of its key too.
		if err := b.open(t, site).Keep(ctxT(t), state, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		keys = slices.DeleteFunc(b.keys(t, site), func(k string) bool { return strings.HasPrefix(k, site+spentDir+"/") })
		if len(keys) != 1 || !strings.HasPrefix(keys[0], site+keptDir+"/") || strings.Contains(keys[0], state) {
			t.Fatalf("keys = %q, want one under %s named by a digest", keys, site+keptDir)
		}
	})

	t.Run("prefixes keep sites apart", func(t *testing.T) {
		t.Parallel()
		one, two := b.open(t, siteOf(t)+"/one"), b.open(t, siteOf(t)+"/two")
		if err := one.Add(ctxT(t), sessionEntry("of-site-one", time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, err := two.Snapshot(ctxT(t)); err != nil || len(got) != 0 {
			t.Fatalf("the other site's Snapshot() = %+v, %v; want none", got, err)
		}
		for _, s := range []Store{one, two} {
			if first, err := s.Spend(ctxT(t), "same-state", time.Minute); err != nil || !first {
				t.Fatalf("Spend on each site = %v, %v; want true on both", first, err)
			}
		}
	})

	t.Run("changes reach another instance within a second", func(t *testing.T) {
		t.Parallel()
		site := siteOf(t)
		a, other := b.open(t, site), b.open(t, site)
		if !b.signals {
			if a.Changes() != nil {
				t.Fatal("Changes() is not nil for a store that cannot signal")
			}
			return
		}
		// A (re)subscription signals once, since messages may have been
		// missed: wait for it on both, so what follows is the add's.
		for _, s := range []Store{a, other} {
			select {
			case <-s.Changes():
			case <-time.After(2 * time.Second):
				t.Fatal("no signal for the first subscription")
			}
		}
		if err := a.Add(ctxT(t), sessionEntry("signalled", time.Hour)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-other.Changes():
		case <-time.After(time.Second):
			t.Fatal("the other instance had no signal within 1s of an add")
		}
		select {
		case <-a.Changes():
			t.Fatal("the adding instance was signalled of its own add")
		case <-time.After(200 * time.Millisecond):
		}
	})

	t.Run("a closed store errors cleanly", func(t *testing.T) {
		t.Parallel()
		s := b.open(t, siteOf(t))
		if err := s.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		if err := s.Add(ctxT(t), sessionEntry("late", time.Hour)); !errors.Is(err, ErrClosed) {
			t.Errorf("Add after Close = %v, want ErrClosed", err)
		}
		if _, err := s.Snapshot(ctxT(t)); !errors.Is(err, ErrClosed) {
			t.Errorf("Snapshot after Close = %v, want ErrClosed", err)
		}
		if _, err := s.Spend(ctxT(t), "late", time.Minute); !errors.Is(err, ErrClosed) {
			t.Errorf("Spend after Close = %v, want ErrClosed", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close() = %v, want nil", err)
		}
		if ch := s.Changes(); ch != nil {
			for range ch { // a signal may be pending; then it must be closed
			}
		}
	})
}
