package caddysgid

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
)

// faultyStorage is real file storage with faults injected: failLoad may fail
// the nth Load (from 1) of a key, and onLock runs once a lock is taken, as
// when another instance stores a key while this one waits for its lock.
type faultyStorage struct {
	certmagic.Storage
	failLoad func(key string, n int) error
	onLock   func(name string)

	mu    sync.Mutex
	loads map[string]int
}

func (s *faultyStorage) Load(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	if s.loads == nil {
		s.loads = map[string]int{}
	}
	s.loads[key]++
	n := s.loads[key]
	s.mu.Unlock()
	if s.failLoad != nil {
		if err := s.failLoad(key, n); err != nil {
			return nil, err
		}
	}
	return s.Storage.Load(ctx, key)
}

func (s *faultyStorage) Lock(ctx context.Context, name string) error {
	if err := s.Storage.Lock(ctx, name); err != nil {
		return err
	}
	if s.onLock != nil {
		s.onLock(name)
	}
	return nil
}

// errTransient is a storage read that failed for a reason other than a
// missing key: a timeout, a connection reset, a failover in progress.
var errTransient = errors.New("storage read timed out")

// A read under the lock that fails for another reason than a missing key
// fails provisioning and stores nothing: the other instance's key, made while
// this one waited for the lock, stays. The first read failing is the same.
func TestKeyStoreReadErrorGeneratesNothing(t *testing.T) {
	site, err := gateway.NewSite("https://app.example:8443/.sgid/callback", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	keyName := "assertion-" + digest(site.Origin(), site.Audience()) + ".key"
	for _, tt := range []struct {
		name     string
		key      string
		failRead int
		load     func(*keyStore) error
	}{
		{"session secret, read under the lock", "session.secret", 2, func(k *keyStore) error { _, err := k.sessionSecret(); return err }},
		{"signing key, read under the lock", keyName, 2, func(k *keyStore) error { _, err := k.signingKey(site); return err }},
		{"session secret, first read", "session.secret", 1, func(k *keyStore) error { _, err := k.sessionSecret(); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			files := &certmagic.FileStorage{Path: t.TempDir()}
			k := &keyStore{ctx: ctx, issuer: "https://id.example", clientID: "client"}
			key := k.prefix() + tt.key
			theirs := []byte("the value another instance stored")
			k.storage = &faultyStorage{Storage: files,
				onLock: func(name string) {
					if name == key+".lock" {
						if err := files.Store(ctx, key, theirs); err != nil {
							t.Error(err)
						}
					}
				},
				failLoad: func(name string, n int) error {
					if name == key && n == tt.failRead {
						return errTransient
					}
					return nil
				},
			}
			err := tt.load(k)
			if !errors.Is(err, errTransient) {
				t.Errorf("got error %v, want the read error", err)
			} else if tt.failRead == 2 && !strings.Contains(err.Error(), "not generating") {
				t.Errorf("the error does not say that nothing was generated: %v", err)
			}
			got, err := files.Load(ctx, key)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			if tt.failRead == 2 && !bytes.Equal(got, theirs) {
				t.Errorf("storage holds another value (%d bytes) after the failed read, want the other instance's kept", len(got))
			}
		})
	}
}
