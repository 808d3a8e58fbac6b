package revocation

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/internal/redistest"
)

// The faults of the issue, against a real redis-server: down at start,
// killed while running, back empty, and stuck (paused).

// fast is how long a call to a Redis that is down may take: the store's own
// bound (one dial plus one round trip at DefaultRedisTimeout), with room for
// a loaded test machine.
const fast = 3 * DefaultRedisTimeout

func TestRedisDownAtStart(t *testing.T) {
	noLeak(t)
	srv := redistest.Start(t)
	srv.Kill()
	store := openRedis(t, srv, "sgid/site")

	start := time.Now()
	err := store.Add(ctxT(t), sessionEntry("s", time.Hour))
	if err == nil || errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "redis") {
		t.Fatalf("Add with Redis down = %v, want an error that says redis", err)
	}
	if _, err := store.Snapshot(ctxT(t)); err == nil {
		t.Fatal("Snapshot with Redis down succeeded")
	}
	if took := time.Since(start); took > 2*fast {
		t.Fatalf("two calls with Redis down took %s", took)
	}

	// The instance starts and serves: its List is usable, stale, and takes
	// a logout made during the outage.
	in := startInstance(t, store, time.Hour) // Changes alone must bring it up to date
	logout := sessionEntry("logout-during-outage", time.Hour)
	if err := in.syncer.Add(ctxT(t), logout); err == nil {
		t.Fatal("Syncer.Add with Redis down reported no error")
	}
	eventually(t, 2*time.Second, "failed syncs reported", func() bool { return in.hooks.failed.n.Load() >= 2 })
	if !in.list.LastSync().IsZero() || !in.list.Revoked(logout.Session, "", time.Now()) {
		t.Fatal("the List is not stale, or lost the logout made during the outage")
	}

	srv.Restart()
	other := openRedis(t, srv, "sgid/site")
	remote := sessionEntry("after-recovery", time.Hour)
	if err := other.Add(ctxT(t), remote); err != nil {
		t.Fatal(err)
	}
	// The subscriber retries at most every 2s, and its resubscription
	// signals the Syncer, whose own retry wait has grown by then.
	eventually(t, 5*time.Second, "the Syncer catching up", func() bool {
		return !in.list.LastSync().IsZero() && in.list.Revoked(remote.Session, "", time.Now())
	})
	eventually(t, 3*time.Second, "the outage's logout given to the store", func() bool {
		got, err := other.Snapshot(ctxT(t))
		return err == nil && len(got) == 2
	})
}

func TestRedisKilledWhileSyncing(t *testing.T) {
	noLeak(t)
	srv := redistest.Start(t)
	in := startInstance(t, openRedis(t, srv, "sgid/site"), 200*time.Millisecond)
	e := sessionEntry("revoked-before-the-crash", time.Hour)
	if err := in.syncer.Add(ctxT(t), e); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "a sync with the entry", func() bool { return in.hooks.synced.n.Load() >= 2 })

	srv.Kill()
	failed := in.hooks.failed.n.Load()
	eventually(t, 3*time.Second, "errors reported", func() bool { return in.hooks.failed.n.Load() >= failed+2 })
	synced := in.list.LastSync()
	start := time.Now()
	for range 1000 {
		if !in.list.Revoked(e.Session, "", time.Now()) {
			t.Fatal("the List forgot an entry while Redis was down")
		}
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Fatalf("1000 checks took %s with Redis down", took)
	}
	time.Sleep(300 * time.Millisecond)
	if !in.list.LastSync().Equal(synced) {
		t.Fatal("LastSync moved while Redis was down")
	}
}

// Redis restarted without persistence comes back empty. Running instances
// keep every entry and give them back, so the store heals by itself, a new
// instance learns them, and the subscription is back: a new add reaches
// the other instance through Changes.
func TestRedisBackEmpty(t *testing.T) {
	noLeak(t)
	srv := redistest.Start(t)
	// An hour between full snapshots: only Changes signals can make the
	// instances sync within this test.
	a := startInstance(t, openRedis(t, srv, "sgid/site"), time.Hour)
	b := startInstance(t, openRedis(t, srv, "sgid/site"), time.Hour)
	onA, onB := sessionEntry("logout-on-a", time.Hour), subEntry("leaver-on-b", time.Now(), time.Hour)
	if err := a.syncer.Add(ctxT(t), onA); err != nil {
		t.Fatal(err)
	}
	if err := b.syncer.Add(ctxT(t), onB); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "both entries on both instances", func() bool {
		return a.list.Len() == 2 && b.list.Len() == 2
	})

	srv.Restart()
	reader := openRedis(t, srv, "sgid/site")
	eventually(t, 5*time.Second, "the store given its entries back", func() bool {
		got, err := reader.Snapshot(ctxT(t))
		return err == nil && len(got) == 2
	})
	eventually(t, time.Second, "Restored reported", func() bool {
		return a.hooks.restored.n.Load()+b.hooks.restored.n.Load() >= 2
	})
	c := startInstance(t, openRedis(t, srv, "sgid/site"), time.Hour)
	eventually(t, 2*time.Second, "a new instance learning them", func() bool { return c.list.Len() == 2 })

	after := sessionEntry("logout-after-the-restart", time.Hour)
	if err := a.syncer.Add(ctxT(t), after); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "a change after the restart reaching b", func() bool {
		return b.list.Revoked(after.Session, "", time.Now())
	})
}

// A Redis that accepts connections but answers nothing (stuck, or behind a
// stalled network) bounds every call, and never a Revoked.
func TestRedisStuck(t *testing.T) {
	noLeak(t)
	srv := redistest.Start(t)
	store := openRedis(t, srv, "sgid/site")
	in := startInstance(t, store, 100*time.Millisecond)
	e := sessionEntry("revoked", time.Hour)
	if err := in.syncer.Add(ctxT(t), e); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	if _, err := store.Snapshot(ctxT(t)); err == nil {
		t.Fatal("Snapshot from a stuck Redis succeeded")
	}
	if took := time.Since(start); took > 2*fast {
		t.Fatalf("Snapshot from a stuck Redis took %s", took)
	}
	eventually(t, 3*time.Second, "errors reported", func() bool { return in.hooks.failed.n.Load() >= 2 })
	if !in.list.Revoked(e.Session, "", time.Now()) {
		t.Fatal("the List forgot an entry while Redis was stuck")
	}
	srv.Resume()
	synced := in.hooks.synced.n.Load()
	eventually(t, 3*time.Second, "syncing again", func() bool { return in.hooks.synced.n.Load() > synced })
}
