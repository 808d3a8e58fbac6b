package caddysgid

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
)

// What a rotation waits and keeps, beyond what the handlers' settings say.
const (
	// jwksMaxAge is the Cache-Control max-age of /.sgid/jwks.json: a new
	// signing key is published at least this long before it signs, so that
	// an app holding the JWKS from before the rotation never meets an
	// unknown kid.
	jwksMaxAge = 5 * time.Minute
)

// rotationTarget is one key in storage and the watches of this process that
// hold it.
type rotationTarget struct {
	kind    string // kindSessionSecret or kindSigningKey
	keys    *keyStore
	name    string
	watches []*keyWatch
}

// activateIn is how long after a rotation its value becomes active: twice
// the longest poll of the watches that hold it, so that every instance has
// loaded it first even if one poll fails, and for a signing key at least the
// JWKS max-age.
func (t *rotationTarget) activateIn() time.Duration {
	var poll time.Duration
	for _, w := range t.watches {
		poll = max(poll, w.poll)
	}
	d := 2*poll + time.Second
	if t.kind == kindSigningKey {
		d = max(d, jwksMaxAge)
	}
	return d
}

// overlap is how long a retired value stays after the new one is active:
// for a session secret, as long as a cookie it sealed can live without a
// request (the next request reseals under the new one: session.Codec's
// NeedsRefresh) or a login attempt can take; for a signing key, as long as
// an assertion it signed is valid. Both add two polls, for an instance that
// swaps late.
func (t *rotationTarget) overlap() time.Duration {
	var d, poll time.Duration
	for _, w := range t.watches {
		poll = max(poll, w.poll)
		if t.kind == kindSessionSecret {
			d = max(d, w.idle, gateway.AttemptTTL)
		} else {
			d = max(d, w.assertTTL)
		}
	}
	return d + 2*poll
}

func (t *rotationTarget) sites() []string {
	var out []string
	for _, w := range t.watches {
		if !slices.Contains(out, w.site.Origin()) {
			out = append(out, w.site.Origin())
		}
	}
	return out
}

// rotationTargets are the keys in storage of the sgid sites of this process
// that site (an origin; "" for all) and kind ("" for both) select.
func rotationTargets(site, kind string) []*rotationTarget {
	var out []*rotationTarget
	byKey := map[string]*rotationTarget{}
	watches.Range(func(v, _ any) bool {
		w := v.(*keyWatch)
		if site != "" && !sameOrigin(site, w.site.Origin()) {
			return true
		}
		for _, name := range w.names() {
			k := kindSessionSecret
			if name != sessionSecretName {
				k = kindSigningKey
			}
			if kind != "" && kind != k {
				continue
			}
			id := storageID(w.keys.storage) + " " + w.keys.prefix() + name
			t := byKey[id]
			if t == nil {
				t = &rotationTarget{kind: k, keys: w.keys, name: name}
				byKey[id] = t
				out = append(out, t)
			}
			t.watches = append(t.watches, w)
		}
		return true
	})
	slices.SortFunc(out, func(a, b *rotationTarget) int {
		return strings.Compare(a.keys.prefix()+a.name, b.keys.prefix()+b.name)
	})
	return out
}

// RotatedKey is one key a rotation changed.
type RotatedKey struct {
	Kind       string        `json:"kind"`  // session_secret or signing_key
	Key        string        `json:"key"`   // its name in storage
	Sites      []string      `json:"sites"` // the sites of this instance that use it
	ID         string        `json:"id"`    // the new value: a fingerprint, or the kid
	ActiveFrom time.Time     `json:"active_from"`
	Retiring   []RetiringKey `json:"retiring"` // the values it replaces
}

// RetiringKey is a value a rotation retired, kept until Expires.
type RetiringKey struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// rotate adds a new value to t's key in storage, active activateIn from now
// (zero: t.activateIn()), under the key's lock, and has this instance's
// watches load it at once. dropOld ends the old values at the activation
// instead of keeping them for their overlap: everyone is logged out then.
func (t *rotationTarget) rotate(ctx context.Context, activateIn time.Duration, dropOld bool) (RotatedKey, error) {
	k := t.keys
	key := k.prefix() + t.name
	out := RotatedKey{Kind: t.kind, Key: key, Sites: t.sites()}
	value, err := newValue(t.kind)
	if err != nil {
		return out, err
	}
	if activateIn <= 0 {
		activateIn = t.activateIn()
	}
	if err := k.storage.Lock(ctx, key+".lock"); err != nil {
		return out, fmt.Errorf("locking %s: %w", key, err)
	}
	defer k.storage.Unlock(context.WithoutCancel(ctx), key+".lock")
	v, err := k.storage.Load(ctx, key)
	if err != nil {
		return out, fmt.Errorf("loading %s: %w", key, err)
	}
	r, err := parseRing(v)
	if err != nil {
		return out, fmt.Errorf("%s: %w", key, err)
	}
	now := k.clock()
	out.ActiveFrom = now.Add(activateIn)
	r.rotate(now, value, out.ActiveFrom, t.overlap(), dropOld)
	for _, rk := range r.Keys[:len(r.Keys)-1] {
		out.Retiring = append(out.Retiring, RetiringKey{ID: valueID(t.kind, rk.Value), Expires: rk.Expires})
	}
	out.ID = valueID(t.kind, value)
	if err := k.storage.Store(ctx, key, r.encode()); err != nil {
		return out, fmt.Errorf("storing %s: %w", key, err)
	}
	for _, w := range t.watches {
		w.wake()
	}
	return out, nil
}

// newValue makes a new session secret or signing key.
func newValue(kind string) (string, error) {
	if kind == kindSessionSecret {
		return NewSessionSecret(), nil
	}
	return NewSigningKeyPEM()
}

// valueID names a value as the logs and caddy_sgid_key_info do.
func valueID(kind, v string) string {
	if kind == kindSessionSecret {
		return fingerprint([]byte(v))
	}
	key, err := parseECKey(v)
	if err != nil {
		return "unparsable"
	}
	kid, _ := gateway.KeyID(&key.PublicKey)
	return kid
}

// storageID names a storage for the process's pools: two configs share a
// pool entry only if they share the storage.
func storageID(storage any) string {
	return digest(fmt.Sprintf("%T %+v", storage, storage))
}
