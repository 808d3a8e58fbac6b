package revocation

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// countingStorage is a real FileStorage that counts the loads made through
// it: what a poll costs against a storage that bills per read (S3, Consul).
type countingStorage struct {
	certmagic.Storage
	loads atomic.Int64
}

func (c *countingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	c.loads.Add(1)
	return c.Storage.Load(ctx, key)
}

func TestStoragePollLoadsOnlyNewNames(t *testing.T) {
	st := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	s := NewStorage(st, "sgid/site")
	for i := range 5 {
		if err := s.Add(ctxT(t), sessionEntry(fmt.Sprintf("s%d", i), time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		add       int // entries added before the poll
		wantLoads int64
	}{{0, 5}, {0, 0}, {1, 1}, {0, 0}} {
		for i := range c.add {
			if err := s.Add(ctxT(t), sessionEntry(fmt.Sprintf("new%d", i), time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		st.loads.Store(0)
		if _, err := s.Snapshot(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		// The first poll also sweeps spent states, which loads nothing here.
		if got := st.loads.Load(); got != c.wantLoads {
			t.Fatalf("a poll after %d new entries made %d loads, want %d", c.add, got, c.wantLoads)
		}
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
