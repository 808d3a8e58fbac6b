package revocation

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// countingStorage is a real FileStorage that counts the entries loaded and
// the lists made through it: what a poll costs against a storage that bills
// per read (S3, Consul).
type countingStorage struct {
	certmagic.Storage
	loads, lists atomic.Int64
}

func (c *countingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if strings.Contains(key, revocationsDir+"/") {
		c.loads.Add(1)
	}
	return c.Storage.Load(ctx, key)
}

func (c *countingStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	if strings.HasSuffix(path, revocationsDir) {
		c.lists.Add(1)
	}
	return c.Storage.List(ctx, path, recursive)
}

// A poll lists the entries only when the marker another Add rewrote has
// changed, or listEvery has passed: a quiet cluster's polls cost one small
// load each, not a read of every entry's name.
func TestStoragePollListsOnlyWhenTheMarkerChanged(t *testing.T) {
	st := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	s := NewStorage(st, "sgid/site")
	clock := time.Now()
	s.(*storageStore).now = func() time.Time { return clock }
	other := NewStorage(st, "sgid/site") // another instance
	poll := func(step string, wantLists int64, wantEntries int) {
		t.Helper()
		st.lists.Store(0)
		got, err := s.Snapshot(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if n := st.lists.Load(); n != wantLists || len(got) != wantEntries {
			t.Fatalf("%s: %d lists and %d entries, want %d and %d", step, n, len(got), wantLists, wantEntries)
		}
	}
	poll("the first poll", 1, 0)
	poll("a poll with nothing new", 0, 0)
	if err := other.Add(ctxT(t), sessionEntry("theirs", time.Hour)); err != nil {
		t.Fatal(err)
	}
	poll("after another instance's add", 1, 1)
	poll("then nothing new", 0, 1)
	if err := s.Add(ctxT(t), sessionEntry("mine", time.Hour)); err != nil {
		t.Fatal(err)
	}
	poll("after its own add", 1, 2) // the marker changed: it cannot tell whose
	poll("and nothing new", 0, 2)
	clock = clock.Add(listEvery)
	poll("once listEvery has passed", 1, 2)
	if err := st.Delete(ctxT(t), "sgid/site"+changedKey); err != nil {
		t.Fatal(err)
	}
	poll("with the marker gone", 1, 2)
}

// A poll loads only the names it has not seen: another instance's new
// entries, once each; never what this instance wrote itself.
func TestStoragePollLoadsOnlyNewNames(t *testing.T) {
	st := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	s := NewStorage(st, "sgid/site")
	other := NewStorage(st, "sgid/site") // another instance
	for i := range 5 {
		if err := other.Add(ctxT(t), sessionEntry(fmt.Sprintf("s%d", i), time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		others, own int // entries added by the other instance and by this one before the poll
		wantLoads   int64
	}{{0, 0, 5}, {0, 0, 0}, {1, 0, 1}, {0, 0, 0}, {0, 3, 0}, {2, 2, 2}} {
		for i := range c.others {
			if err := other.Add(ctxT(t), sessionEntry(fmt.Sprintf("other%d-%d", c.wantLoads, i), time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range c.own {
			if err := s.Add(ctxT(t), sessionEntry(fmt.Sprintf("own%d-%d", c.wantLoads, i), time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		st.loads.Store(0)
		got, err := s.Snapshot(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		// The first poll also sweeps spent states, which loads nothing here.
		if n := st.loads.Load(); n != c.wantLoads {
			t.Fatalf("a poll after %d new entries of another instance and %d of its own made %d loads, want %d", c.others, c.own, n, c.wantLoads)
		}
		if len(got) == 0 {
			t.Fatal("the snapshot is empty")
		}
	}
	if got, _ := s.Snapshot(ctxT(t)); len(got) != 5+1+3+2+2 {
		t.Errorf("the snapshot holds %d entries, want every one added (13)", len(got))
	}
}

func TestStorageLeavesForeignAndDamagedKeysAlone(t *testing.T) {
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	s := NewStorage(fs, "sgid/site")
	good := sessionEntry("good", time.Hour)
	if err := s.Add(ctxT(t), good); err != nil {
		t.Fatal(err)
	}
	damaged, value := sessionEntry("damaged", time.Hour).encode()
	foreign := map[string][]byte{
		"sgid/site/revocations/README":     []byte("not an entry"),
		"sgid/site/revocations/" + damaged: value[:len(value)-3],
	}
	for k, v := range foreign {
		if err := fs.Store(ctxT(t), k, v); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Snapshot(ctxT(t))
	if err != nil || len(got) != 1 || got[0].Session != "good" {
		t.Fatalf("Snapshot() = %+v, %v; want only the good entry", got, err)
	}
	for k := range foreign {
		if !fs.Exists(ctxT(t), k) {
			t.Errorf("%s was deleted", k)
		}
	}
}

func TestStorageSweepsExpiredSpentStates(t *testing.T) {
	b := storageBackend(t)
	const site = "sgid/site"
	s := b.open(t, site)
	for _, c := range []struct {
		state string
		ttl   time.Duration
	}{{"short", 50 * time.Millisecond}, {"long", time.Hour}} {
		if _, err := s.Spend(ctxT(t), c.state, c.ttl); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(60 * time.Millisecond)
	if _, err := s.Snapshot(ctxT(t)); err != nil { // the first poll sweeps
		t.Fatal(err)
	}
	keys := b.keys(t, site)
	if want := site + spentDir + "/" + spentName("long"); len(keys) != 1 || keys[0] != want {
		t.Fatalf("keys after a sweep = %q, want only %s", keys, want)
	}
}
