package revocation

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// clock is a List's time, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func listAt(t0 time.Time) (*List, *clock) {
	c := &clock{t: t0}
	l := NewList()
	l.now = c.now
	return l, c
}

func TestRevoked(t *testing.T) {
	now := time.Now()
	l := NewList()
	for _, e := range []Entry{
		sessionEntry("logged-out", time.Hour),
		subEntry("leaver", now, time.Hour),
		subEntry("leaver", now.Add(-time.Hour), time.Hour), // an older sign-out changes nothing
		globalEntry(now.Add(-24*time.Hour), time.Hour),
	} {
		if err := l.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name    string
		session string
		sub     string
		created time.Time
		want    bool
	}{
		{"a logged-out session", "logged-out", "anyone", now, true},
		{"another session", "other", "anyone", now, false},
		{"a leaver's session from before the sign-out", "s", "leaver", now.Add(-time.Second), true},
		{"a leaver's session made at the sign-out", "s", "leaver", now, false},
		{"a leaver's session made after the sign-out", "s", "leaver", now.Add(time.Second), false},
		{"another user's session from before it", "s", "stayer", now.Add(-time.Second), false},
		{"any session from before the global cut-off", "s", "stayer", now.Add(-25 * time.Hour), true},
		{"an empty session id and sub", "", "", now, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := l.Revoked(c.session, c.sub, c.created); got != c.want {
				t.Fatalf("Revoked(%q, %q, %v) = %v, want %v", c.session, c.sub, c.created, got, c.want)
			}
		})
	}
}

func TestRevokedAllocatesNothing(t *testing.T) {
	l := fullList(t, 10_000)
	created := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		l.Revoked("session-not-revoked", "sub-17", created)
		l.Revoked("session-42", "sub-17", created)
	})
	if allocs != 0 {
		t.Fatalf("Revoked allocates %v times per call, want 0", allocs)
	}
}

func TestRevokedDoesNotWaitForWriters(t *testing.T) {
	l := fullList(t, 100)
	l.mu.Lock() // a writer in the middle of a Merge
	defer l.mu.Unlock()
	done := make(chan bool)
	go func() { done <- l.Revoked("session-42", "", time.Now()) }()
	select {
	case revoked := <-done:
		if !revoked {
			t.Fatal("Revoked = false for a held entry")
		}
	case <-time.After(time.Second):
		t.Fatal("Revoked waited for a writer")
	}
}

func TestAddRefusesInvalidAndIgnoresExpired(t *testing.T) {
	l := NewList()
	if err := l.Add(Entry{Session: "s"}); err == nil {
		t.Fatal("Add(no expiry) succeeded")
	}
	if err := l.Add(sessionEntry("gone", -time.Second)); err != nil || l.Len() != 0 {
		t.Fatalf("Add(expired) = %v with %d entries held; want nil and none", err, l.Len())
	}
}

func TestMergeAddsFromTheSnapshot(t *testing.T) {
	l := NewList()
	if !l.LastSync().IsZero() {
		t.Fatal("a new List says it has synced")
	}
	if missing := l.Merge([]Entry{sessionEntry("remote", time.Hour)}); len(missing) != 0 {
		t.Fatalf("Merge() missing = %+v, want none", missing)
	}
	if !l.Revoked("remote", "", time.Now()) || l.LastSync().IsZero() {
		t.Fatal("a merged entry does not revoke, or LastSync was not set")
	}
	if len(l.Local()) != 0 {
		t.Fatal("an entry from a snapshot counts as local")
	}
}

func TestMergeKeepsWhatTheSnapshotLacks(t *testing.T) {
	t0 := time.Now()
	l, c := listAt(t0)
	local := Entry{Session: "logout-here", Expires: t0.Add(time.Hour)}
	remote := Entry{Session: "seen-once", Expires: t0.Add(time.Hour)}
	if err := l.Add(local); err != nil {
		t.Fatal(err)
	}
	l.Merge([]Entry{remote})

	// A snapshot read before the local add reached the store lacks it: it
	// stays, and is not yet reported lost.
	c.advance(Grace / 2)
	if missing := l.Merge(nil); len(missing) != 0 {
		t.Fatalf("Merge() within the grace = %+v, want nothing missing", missing)
	}
	for _, id := range []string{"logout-here", "seen-once"} {
		if !l.Revoked(id, "", t0) {
			t.Fatalf("%s was forgotten by a snapshot that lacked it", id)
		}
	}
	// Missing past the grace: the store lost them, or never got them.
	c.advance(Grace)
	missing := l.Merge(nil)
	if !slices.Equal(names(missing), names([]Entry{local, remote})) {
		t.Fatalf("Merge() past the grace: missing = %+v, want both", missing)
	}
	if !l.Revoked("logout-here", "", t0) || !l.Revoked("seen-once", "", t0) {
		t.Fatal("entries the store lost no longer revoke")
	}
	// Seen again: no longer missing.
	c.advance(Grace)
	if missing := l.Merge([]Entry{local, remote}); len(missing) != 0 {
		t.Fatalf("Merge() after the store has them again = %+v", missing)
	}
}

func TestMergeDropsExpiredAndDoesNotGiveBackNearExpiry(t *testing.T) {
	t0 := time.Now()
	l, c := listAt(t0)
	soon := Entry{Session: "soon", Expires: t0.Add(Grace + Grace/2)}
	if err := l.Add(soon); err != nil {
		t.Fatal(err)
	}
	c.advance(Grace + Grace/4)
	if missing := l.Merge(nil); len(missing) != 0 {
		t.Fatalf("Merge() gave back an entry within a grace of its expiry: %+v", missing)
	}
	c.advance(Grace)
	l.Merge(nil)
	if l.Len() != 0 || len(l.Local()) != 0 {
		t.Fatalf("an expired entry is still held (%d) or local (%d)", l.Len(), len(l.Local()))
	}
	if l.Revoked("soon", "", t0) {
		t.Fatal("an expired entry still revokes after a merge")
	}
}

func TestLocalListsOwnAdds(t *testing.T) {
	l := NewList()
	mine := sessionEntry("mine", time.Hour)
	theirs := sessionEntry("theirs", time.Hour)
	l.Merge([]Entry{theirs})
	if err := l.Add(mine); err != nil {
		t.Fatal(err)
	}
	if got := l.Local(); !slices.Equal(names(got), names([]Entry{mine})) {
		t.Fatalf("Local() = %+v, want only %+v", got, mine)
	}
	if err := l.Add(theirs); err != nil { // revoked here too, say by an operator
		t.Fatal(err)
	}
	if got := l.Local(); len(got) != 2 {
		t.Fatalf("Local() = %d entries after adding a seen one here, want 2", len(got))
	}
}

// Run with -race: readers never take a lock, writers replace the view.
func TestRevokedWhileWritersAddAndMerge(t *testing.T) {
	l := NewList()
	created := time.Now()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					l.Revoked("session-1", "sub-1", created)
				}
			}
		})
	}
	for i := range 200 {
		if err := l.Add(sessionEntry(fmt.Sprintf("session-%d", i), time.Hour)); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			l.Merge([]Entry{subEntry("sub-1", created.Add(time.Second), time.Hour)})
		}
	}
	close(stop)
	wg.Wait()
	if !l.Revoked("session-199", "", created) || !l.Revoked("x", "sub-1", created) {
		t.Fatal("writes were lost")
	}
}

// fullList holds n live entries, as a large site might: mostly logouts,
// some sign-outs everywhere, one operator cut-off.
func fullList(tb testing.TB, n int) *List {
	l := NewList()
	now := time.Now()
	var entries []Entry
	for i := range n {
		if i%10 == 9 {
			entries = append(entries, subEntry(fmt.Sprintf("sub-%d", i), now, time.Hour))
		} else {
			entries = append(entries, sessionEntry(fmt.Sprintf("session-%d", i), time.Hour))
		}
	}
	entries = append(entries, globalEntry(now.Add(-24*time.Hour), time.Hour))
	l.Merge(entries)
	if l.Len() != n+1 {
		tb.Fatalf("list holds %d entries, want %d", l.Len(), n+1)
	}
	return l
}
