package revocation

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// syncHooks records what a Syncer reports.
type syncHooks struct {
	synced, failed, restored counter
	mu                       sync.Mutex
	lags                     []time.Duration
	errs                     []error
}

func (h *syncHooks) hooks() Hooks {
	return Hooks{
		Synced: func(n int, lag time.Duration) {
			h.synced.add(n, lag)
			h.mu.Lock()
			h.lags = append(h.lags, lag)
			h.mu.Unlock()
		},
		Failed: func(err error) {
			h.failed.err(err)
			h.mu.Lock()
			h.errs = append(h.errs, err)
			h.mu.Unlock()
		},
		Restored: func(n int) { h.restored.n.Add(int64(n)) },
	}
}

func (h *syncHooks) lastErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) == 0 {
		return nil
	}
	return h.errs[len(h.errs)-1]
}

// instance is one gateway instance's revocation state: a List kept in step
// with its own Store by a Syncer.
type instance struct {
	list   *List
	store  Store
	syncer *Syncer
	hooks  *syncHooks
}

func startInstance(t *testing.T, store Store, interval time.Duration) *instance {
	in := &instance{list: NewList(), store: store, hooks: &syncHooks{}}
	in.list.grace = 200 * time.Millisecond
	in.syncer = StartSyncer(in.list, store, SyncConfig{
		Interval: interval, Timeout: time.Second, Retry: 50 * time.Millisecond, Hooks: in.hooks.hooks(),
	})
	t.Cleanup(in.syncer.Stop)
	return in
}

func TestSyncerPicksUpAnotherInstancesAddWithinItsInterval(t *testing.T) {
	noLeak(t)
	b := storageBackend(t)
	writer := b.open(t, "sgid/site")
	in := startInstance(t, b.open(t, "sgid/site"), 100*time.Millisecond)
	eventually(t, time.Second, "first sync", func() bool { return !in.list.LastSync().IsZero() })
	e := sessionEntry("ended-elsewhere", time.Hour)
	if err := writer.Add(ctxT(t), e); err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	eventually(t, time.Second, "the other instance's revocation", func() bool {
		return in.list.Revoked(e.Session, "", time.Now())
	})
	if took := time.Since(added); took > 300*time.Millisecond {
		t.Errorf("took %s with a 100ms interval", took)
	}
	in.hooks.mu.Lock()
	defer in.hooks.mu.Unlock()
	if len(in.hooks.lags) < 2 || in.hooks.lags[1] <= 0 || in.hooks.lags[1] > time.Second {
		t.Errorf("Synced lags = %v, want the time between two syncs", in.hooks.lags)
	}
}

func TestSyncerAddRevokesHereEvenWhenTheStoreFails(t *testing.T) {
	noLeak(t)
	store := storageBackend(t).open(t, "sgid/site")
	in := startInstance(t, store, time.Hour)
	store.Close()
	e := sessionEntry("logout-during-outage", time.Hour)
	if err := in.syncer.Add(ctxT(t), e); !errors.Is(err, ErrClosed) {
		t.Fatalf("Syncer.Add on a failing store = %v, want its error", err)
	}
	if !in.list.Revoked(e.Session, "", time.Now()) {
		t.Fatal("the revocation did not take effect on this instance")
	}
	if err := in.syncer.Add(ctxT(t), Entry{Session: "no expiry"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Syncer.Add(invalid) = %v, want ErrInvalid", err)
	}
}

func TestSyncerRetriesAFailingStoreAndStaysStale(t *testing.T) {
	noLeak(t)
	store := storageBackend(t).open(t, "sgid/site")
	store.Close()
	in := startInstance(t, store, 400*time.Millisecond)
	time.Sleep(time.Second)
	// Retries at 0, 50, 150, 350 and 750 ms: the wait doubles, capped at
	// the interval, so an outage costs a few tries, not a busy loop.
	if n := in.hooks.failed.n.Load(); n < 3 || n > 8 {
		t.Fatalf("%d failed syncs in 1s, want a handful", n)
	}
	if err := in.hooks.lastErr(); !errors.Is(err, ErrClosed) {
		t.Fatalf("reported error = %v, want the store's", err)
	}
	if !in.list.LastSync().IsZero() || in.hooks.synced.n.Load() != 0 {
		t.Fatal("a List that never synced says it has")
	}
	if in.list.Revoked("any", "any", time.Now()) {
		t.Fatal("an empty stale List revokes")
	}
}

// Storage that loses its files (a volume replaced, a bucket emptied) is
// refilled from the instances' memory, whichever instance added an entry.
func TestSyncerGivesBackWhatStorageLost(t *testing.T) {
	noLeak(t)
	dir := t.TempDir()
	open := func() Store {
		s := NewStorage(&certmagic.FileStorage{Path: dir}, "sgid/site")
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := startInstance(t, open(), 100*time.Millisecond)
	b := startInstance(t, open(), 100*time.Millisecond)
	mine, theirs := sessionEntry("added-on-a", time.Hour), sessionEntry("added-on-b", time.Hour)
	if err := a.syncer.Add(ctxT(t), mine); err != nil {
		t.Fatal(err)
	}
	if err := b.syncer.Add(ctxT(t), theirs); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "both entries on both instances", func() bool {
		return a.list.Revoked(theirs.Session, "", time.Now()) && b.list.Revoked(mine.Session, "", time.Now())
	})

	if err := os.RemoveAll(filepath.Join(dir, "sgid")); err != nil {
		t.Fatal(err)
	}
	reader := open()
	eventually(t, 3*time.Second, "the lost entries back in storage", func() bool {
		got, err := reader.Snapshot(ctxT(t))
		return err == nil && len(got) == 2
	})
	// The hook follows the adds, so it may come a moment after the store has them.
	eventually(t, time.Second, "Restored reported", func() bool {
		return a.hooks.restored.n.Load()+b.hooks.restored.n.Load() >= 2
	})
	for _, in := range []*instance{a, b} {
		if !in.list.Revoked(mine.Session, "", time.Now()) || !in.list.Revoked(theirs.Session, "", time.Now()) {
			t.Fatal("an instance forgot a revocation while storage had lost it")
		}
	}
}

func TestSyncerStopEndsItsGoroutine(t *testing.T) {
	noLeak(t)
	in := startInstance(t, storageBackend(t).open(t, "sgid/site"), 10*time.Millisecond)
	eventually(t, time.Second, "a few syncs", func() bool { return in.hooks.synced.n.Load() > 3 })
	in.syncer.Stop()
	in.syncer.Stop() // twice is fine
	n := in.hooks.synced.n.Load()
	time.Sleep(50 * time.Millisecond)
	if in.hooks.synced.n.Load() != n {
		t.Fatal("the Syncer still syncs after Stop")
	}
}
