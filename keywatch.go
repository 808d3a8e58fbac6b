package caddysgid

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
)

// Keys kept in Caddy's storage are rotated while every instance runs: an
// operator's rotation (rotateKey, through the admin API or caddy
// sgid-rotate) adds a value that becomes active later, and each handler's
// keyWatch reloads its keys from storage every revocation_poll, so every
// instance holds the new value before any seals or signs with it, and swaps
// it in at its activation time without a restart (gateway.SetKeys).
//
// The watch also heals storage that lost a key: the value it holds is given
// back, so that the next instance to start loads it instead of generating a
// new one; and a value another instance stored is taken up, so that
// instances that disagree agree again within one poll.

// keyWatch keeps one handler's storage keys current.
type keyWatch struct {
	keys *keyStore
	site *gateway.Site
	gw   *gateway.Gateway
	base gateway.Keys // the keys resolved at provisioning
	src  keySources
	poll time.Duration

	// What a rotation needs to know of the handler: how long a value must
	// stay after it is retired.
	idle, assertTTL time.Duration

	mu      sync.Mutex // one check at a time
	applied string     // the keys last given to the gateway, as fingerprints
	next    time.Time  // a value's activation or expiry: check then
	failing bool       // the last check failed: log once per outage

	poke chan struct{}
	stop chan struct{}
	done chan struct{}
}

// watches are the running keyWatches of the process, for rotateKey.
var watches sync.Map // *keyWatch → struct{}

// names are the storage names the watch follows.
func (w *keyWatch) names() []string {
	var out []string
	if w.src.sessionSecrets == "storage" {
		out = append(out, sessionSecretName)
	}
	if w.src.signingKeys == "storage" {
		out = append(out, signingKeyName(w.site))
	}
	return out
}

func (w *keyWatch) what(name string) string {
	if name == sessionSecretName {
		return secretWhat
	}
	return signingWhat(w.site)
}

// watchKeys starts the watch of a handler whose keys (some or all) are in
// storage; nil when none are.
func watchKeys(keys *keyStore, gw *gateway.Gateway, site *gateway.Site, base gateway.Keys, src keySources, poll, idle, assertTTL time.Duration) *keyWatch {
	w := &keyWatch{keys: keys, site: site, gw: gw, base: base, src: src, poll: poll, idle: idle, assertTTL: assertTTL,
		poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if len(w.names()) == 0 {
		return nil
	}
	w.applied = signature(base)
	w.next = w.nextEvent(keys.clock())
	watches.Store(w, struct{}{})
	go w.run()
	return w
}

// close stops the watch; it waits for a check under way.
func (w *keyWatch) close() {
	if w == nil {
		return
	}
	watches.Delete(w)
	close(w.stop)
	<-w.done
}

func (w *keyWatch) run() {
	defer close(w.done)
	for {
		wait := w.poll
		w.mu.Lock()
		if !w.next.IsZero() {
			wait = min(wait, max(time.Until(w.next), 0))
		}
		w.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-w.stop:
			t.Stop()
			return
		case <-w.poke:
		case <-t.C:
		}
		t.Stop()
		w.check()
	}
}

// wake makes the watch check now.
func (w *keyWatch) wake() {
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// check reloads the watched keys from storage and gives the gateway what
// they are now. A key that storage lost is given back; a read that fails
// keeps the keys the gateway has.
func (w *keyWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx, cancel := context.WithTimeout(w.keys.ctx, 10*time.Second)
	defer cancel()
	for _, name := range w.names() {
		v, err := w.keys.storage.Load(ctx, w.keys.prefix()+name)
		if errors.Is(err, fs.ErrNotExist) {
			v, err = w.keys.giveBack(ctx, name, w.what(name))
		}
		if err != nil {
			if !w.failing {
				w.keys.logger().Warn("sgid keys not reloaded from storage; keeping the ones this instance holds",
					zap.String("key", w.keys.prefix()+name), zap.Error(err))
			}
			w.failing = true
			return
		}
		if old := w.keys.raw[name]; string(old) != string(v) {
			w.keys.loaded(name, w.what(name), v)
		}
	}
	if w.failing {
		w.keys.logger().Info("sgid keys reloaded from storage again", zap.String("site", w.site.Origin()))
		w.failing = false
	}
	// One moment for both: with a later one for the next event, an activation
	// that passed in between would be neither in the keys nor waited for, and
	// would wait a poll.
	now := w.keys.clock()
	k, err := w.current(now)
	if err != nil {
		w.keys.logger().Warn("sgid keys in storage not usable; keeping the ones this instance holds", zap.String("site", w.site.Origin()), zap.Error(err))
		return
	}
	w.next = w.nextEvent(now)
	if sig := signature(k); sig != w.applied {
		if err := w.gw.SetKeys(k); err != nil {
			w.keys.logger().Warn("sgid keys not swapped", zap.String("site", w.site.Origin()), zap.Error(err))
			return
		}
		w.applied = sig
		w.keys.report(w.site, w.src, k.SessionSecrets, k.SigningKeys)
	}
}

// current is the handler's keys at this moment: the base, with what storage
// holds in place of the parts that come from it.
func (w *keyWatch) current(now time.Time) (gateway.Keys, error) {
	k := w.base
	for _, name := range w.names() {
		r, err := parseRing(w.keys.raw[name])
		if err != nil {
			return k, fmt.Errorf("%s%s: %w", w.keys.prefix(), name, err)
		}
		if name == sessionSecretName {
			k.SessionSecrets, err = secretsOf(r, now)
		} else {
			k.SigningKeys, err = signingKeysOf(r, now)
		}
		if err != nil {
			return k, err
		}
	}
	return k, nil
}

// nextEvent is the next activation or expiry among the watched rings after now.
func (w *keyWatch) nextEvent(now time.Time) time.Time {
	var next time.Time
	for _, name := range w.names() {
		r, err := parseRing(w.keys.raw[name])
		if err != nil {
			continue
		}
		if _, t := r.at(now); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// signature names a set of keys by fingerprints, in order: equal signatures
// are the same keys in the same roles.
func signature(k gateway.Keys) string {
	var b strings.Builder
	for _, s := range k.SessionSecrets {
		b.WriteString(fingerprint(s) + " ")
	}
	b.WriteString("|")
	for _, key := range k.SigningKeys {
		kid, _ := gateway.KeyID(&key.PublicKey)
		b.WriteString(kid + " ")
	}
	return b.String()
}

// giveBack stores again the value this instance holds for name, which
// storage says it does not hold: without it, the next instance to start would
// generate a new key and disagree with every running one. Under the key's
// lock, a value another instance stored meanwhile wins and is returned.
func (k *keyStore) giveBack(ctx context.Context, name, what string) ([]byte, error) {
	key := k.prefix() + name
	held := k.raw[name]
	if len(held) == 0 {
		return nil, fmt.Errorf("%s is not in storage, and this instance holds no copy", key)
	}
	if err := k.storage.Lock(ctx, key+".lock"); err != nil {
		return nil, fmt.Errorf("locking %s: %w", key, err)
	}
	defer k.storage.Unlock(context.WithoutCancel(ctx), key+".lock")
	switch v, err := k.storage.Load(ctx, key); {
	case err == nil:
		return v, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("loading %s again under its lock: %w", key, err)
	}
	if err := k.storage.Store(ctx, key, held); err != nil {
		return nil, fmt.Errorf("giving back %s: %w", key, err)
	}
	k.logger().Warn("storage lost "+what+"; stored again the copy this instance holds, so that instances starting later load it instead of generating a new one",
		zap.String("key", key))
	k.listInInventory(name)
	return held, nil
}
