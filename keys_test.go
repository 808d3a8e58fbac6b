package caddysgid

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

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

// testKeys is one test's issuer and client, site and file storage.
type testKeys struct {
	t       *testing.T
	ctx     caddy.Context
	storage *certmagic.FileStorage
	site    *gateway.Site
}

func newTestKeys(t *testing.T) *testKeys {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	site, err := gateway.NewSite("https://app.example:8443/.sgid/callback", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testKeys{t: t, ctx: ctx, storage: &certmagic.FileStorage{Path: t.TempDir()}, site: site}
}

// instance is a keyStore on the test's storage (or st, if given), as one
// instance's provisioning makes it, with what it remembers in held (a new
// process if nil) and its logs observed at INFO and above.
func (tk *testKeys) instance(held *heldKeys, st certmagic.Storage) (*keyStore, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	if held == nil {
		held = newHeldKeys()
	}
	if st == nil {
		st = tk.storage
	}
	return &keyStore{storage: st, ctx: tk.ctx, issuer: "https://id.example", clientID: "client",
		log: zap.New(core).Named("http.handlers.sgid"), held: held}, logs
}

// stored is the value under name in the test's storage, nil if none.
func (tk *testKeys) stored(k *keyStore, name string) []byte {
	tk.t.Helper()
	v, err := tk.storage.Load(tk.ctx, k.prefix()+name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		tk.t.Fatal(err)
	}
	return v
}

// both loads or makes the session secret and the site's signing key, as
// provisioning does, and returns the stored values.
func (tk *testKeys) both(k *keyStore) (secret, key []byte) {
	tk.t.Helper()
	if _, err := k.sessionSecrets(); err != nil {
		tk.t.Fatal(err)
	}
	if _, err := k.signingKeys(tk.site); err != nil {
		tk.t.Fatal(err)
	}
	return tk.stored(k, sessionSecretName), tk.stored(k, signingKeyName(tk.site))
}

// checkNoKeyMaterial fails the test if a log line holds any of values.
func checkNoKeyMaterial(t *testing.T, logs *observer.ObservedLogs, values ...[]byte) {
	t.Helper()
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(line, "PRIVATE KEY") {
			t.Errorf("a log line holds PEM key text: %s", line)
		}
		for _, v := range values {
			if s := strings.TrimSpace(string(v)); s != "" && strings.Contains(line, s) {
				t.Errorf("a log line holds a stored key: %s", line)
			}
		}
	}
}

// A read under the lock that fails for another reason than a missing key
// fails provisioning and stores nothing: the other instance's key, made while
// this one waited for the lock, stays. The first read failing is the same.
func TestKeyStoreReadErrorGeneratesNothing(t *testing.T) {
	tk := newTestKeys(t)
	for _, tt := range []struct {
		name     string
		key      string
		failRead int
		load     func(*keyStore) error
	}{
		{"session secret, read under the lock", sessionSecretName, 2, func(k *keyStore) error { _, err := k.sessionSecrets(); return err }},
		{"signing key, read under the lock", signingKeyName(tk.site), 2, func(k *keyStore) error { _, err := k.signingKeys(tk.site); return err }},
		{"session secret, first read", sessionSecretName, 1, func(k *keyStore) error { _, err := k.sessionSecrets(); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tk := newTestKeys(t)
			k, logs := tk.instance(nil, nil)
			key := k.prefix() + tt.key
			theirs := []byte("the value another instance stored")
			k.storage = &faultyStorage{Storage: tk.storage,
				onLock: func(name string) {
					if name == key+".lock" {
						if err := tk.storage.Store(tk.ctx, key, theirs); err != nil {
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
			if got := tk.stored(k, tt.key); tt.failRead == 2 && !bytes.Equal(got, theirs) {
				t.Errorf("storage holds another value (%d bytes) after the failed read, want the other instance's kept", len(got))
			}
			if inv := tk.stored(k, inventoryName); inv != nil {
				t.Errorf("a failed read wrote the inventory: %s", inv)
			}
			if n := logs.FilterMessageSnippet("generat").Len(); n != 0 {
				t.Errorf("%d log lines about generating, want none", n)
			}
		})
	}
}

// Generating a key that storage held before is a WARN naming the key, what is
// generated and why it is known to have existed; a first start, or a new
// site's key next to existing ones, is not. Generating goes ahead either way.
func TestKeyStoreInventoryWarnsWhenGeneratingAKeyStorageHeldBefore(t *testing.T) {
	for _, tt := range []struct {
		name string
		// before prepares the storage (and held, the process's memory) with an
		// earlier instance, and returns the key name the next one generates
		before func(tk *testKeys, held *heldKeys) string
		// faulty, if set, is the storage the next instance sees
		faulty     func(tk *testKeys, k *keyStore) certmagic.Storage
		sameHeld   bool   // the next instance is the same process
		wantReason string // in the WARN's reason; "" for no WARN
	}{
		{
			name:   "first start",
			before: func(tk *testKeys, held *heldKeys) string { return sessionSecretName },
		},
		{
			name: "session secret deleted, the inventory lists it",
			before: func(tk *testKeys, held *heldKeys) string {
				k, _ := tk.instance(held, nil)
				tk.both(k)
				tk.delete(k, sessionSecretName)
				return sessionSecretName
			},
			wantReason: "inventory (keys.json) lists it",
		},
		{
			name: "signing key deleted, the inventory lists it",
			before: func(tk *testKeys, held *heldKeys) string {
				k, _ := tk.instance(held, nil)
				tk.both(k)
				tk.delete(k, signingKeyName(tk.site))
				return signingKeyName(tk.site)
			},
			wantReason: "inventory (keys.json) lists it",
		},
		{
			name: "storage from before the inventory: a signing key and no session secret",
			before: func(tk *testKeys, held *heldKeys) string {
				k, _ := tk.instance(held, nil)
				tk.both(k)
				tk.delete(k, sessionSecretName)
				tk.delete(k, inventoryName)
				return sessionSecretName
			},
			wantReason: "other keys of this issuer and client (" + "assertion-",
		},
		{
			name: "storage wiped whole, inventory too, under a running process",
			before: func(tk *testKeys, held *heldKeys) string {
				k, _ := tk.instance(held, nil)
				tk.both(k)
				tk.delete(k, sessionSecretName)
				tk.delete(k, signingKeyName(tk.site))
				tk.delete(k, inventoryName)
				return sessionSecretName
			},
			sameHeld:   true,
			wantReason: "this process held it before",
		},
		{
			name: "the inventory cannot be read",
			before: func(tk *testKeys, held *heldKeys) string {
				k, _ := tk.instance(held, nil)
				tk.both(k)
				tk.delete(k, sessionSecretName)
				return sessionSecretName
			},
			faulty: func(tk *testKeys, k *keyStore) certmagic.Storage {
				return &faultyStorage{Storage: tk.storage, failLoad: func(key string, n int) error {
					if key == k.prefix()+inventoryName {
						return errTransient
					}
					return nil
				}}
			},
			wantReason: "inventory cannot be read",
		},
		{
			name: "a new site next to an existing one",
			before: func(tk *testKeys, held *heldKeys) string {
				k, _ := tk.instance(held, nil)
				tk.both(k)
				other, err := gateway.NewSite("https://other.example/.sgid/callback", "", nil)
				if err != nil {
					tk.t.Fatal(err)
				}
				tk.site = other
				return signingKeyName(other)
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tk := newTestKeys(t)
			held := newHeldKeys()
			name := tt.before(tk, held)
			next := newHeldKeys()
			if tt.sameHeld {
				next = held
			}
			k, logs := tk.instance(next, nil)
			if tt.faulty != nil {
				k.storage = tt.faulty(tk, k)
			}
			old := tk.stored(k, name)
			secret, key := tk.both(k)

			if got := tk.stored(k, name); got == nil || bytes.Equal(got, old) {
				t.Fatalf("%s was not generated", name)
			}
			warns := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("generating a new sgid key").
				FilterField(zap.String("key", k.prefix()+name)).All()
			if tt.wantReason == "" {
				if len(warns) != 0 {
					t.Errorf("WARN %q (%v), want none", warns[0].Message, warns[0].ContextMap())
				}
				if logs.FilterLevelExact(zapcore.InfoLevel).FilterMessageSnippet("generating").Len() == 0 {
					t.Error("no INFO line about the key generated")
				}
			} else {
				if len(warns) != 1 {
					t.Fatalf("%d WARNs about generating %s, want 1; logs: %v", len(warns), name, logs.All())
				}
				f := warns[0].ContextMap()
				if !strings.Contains(fmt.Sprint(f["generating"]), "the ") ||
					!strings.Contains(fmt.Sprint(f["reason"]), tt.wantReason) {
					t.Errorf("WARN fields %v; want what is generated, and a reason with %q", f, tt.wantReason)
				}
			}
			if inv := string(tk.stored(k, inventoryName)); tt.faulty == nil && !strings.Contains(inv, `"`+name+`"`) {
				t.Errorf("the inventory %s does not list %s", inv, name)
			}
			checkNoKeyMaterial(t, logs, secret, key, old)
		})
	}
}

func (tk *testKeys) delete(k *keyStore, name string) {
	tk.t.Helper()
	if err := tk.storage.Delete(tk.ctx, k.prefix()+name); err != nil {
		tk.t.Fatal(err)
	}
}

// An instance that reloads after another one replaced a key it held (the
// other generated it anew after a loss) takes the new one with a WARN: its
// users' sessions made under the old one just ended.
func TestKeyStoreWarnsWhenAKeyItHeldWasReplacedInStorage(t *testing.T) {
	tk := newTestKeys(t)
	held := newHeldKeys()
	a, _ := tk.instance(held, nil)
	tk.both(a)
	tk.delete(a, sessionSecretName)
	b, _ := tk.instance(nil, nil) // another process generates a new one
	tk.both(b)

	again, logs := tk.instance(held, nil) // the first process reloads
	secret, key := tk.both(again)
	warns := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("not the one this process held").All()
	if len(warns) != 1 || warns[0].ContextMap()["key"] != again.prefix()+sessionSecretName {
		t.Errorf("WARNs %v, want one naming %s", warns, again.prefix()+sessionSecretName)
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("%d WARNs, want 1 (the signing key did not change): %v", n, logs.All())
	}
	checkNoKeyMaterial(t, logs, secret, key)
}

// Storage made before the inventory existed gets one on the next start, so a
// later loss is noticed; loading keys already listed writes nothing.
func TestKeyStoreInventoryIsCompletedForStorageMadeBeforeIt(t *testing.T) {
	tk := newTestKeys(t)
	k, _ := tk.instance(nil, nil)
	tk.both(k)
	tk.delete(k, inventoryName)

	again, logs := tk.instance(nil, nil)
	tk.both(again)
	inv := string(tk.stored(again, inventoryName))
	want := fmt.Sprintf(`{"keys":[%q,%q]}`, signingKeyName(tk.site), sessionSecretName)
	if inv != want {
		t.Errorf("inventory %s, want %s", inv, want)
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 0 {
		t.Errorf("loading existing keys logged %d WARNs: %v", n, logs.All())
	}
	if names := slices.Sorted(slices.Values(mustList(t, tk, again))); !slices.Equal(names, []string{signingKeyName(tk.site), inventoryName, sessionSecretName}) {
		t.Errorf("storage holds %v", names)
	}
}

func mustList(t *testing.T, tk *testKeys, k *keyStore) []string {
	t.Helper()
	keys, err := tk.storage.List(tk.ctx, strings.TrimSuffix(k.prefix(), "/"), false)
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range keys {
		keys[i] = strings.TrimPrefix(key, k.prefix())
	}
	return keys
}
