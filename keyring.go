package caddysgid

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sgidproxy/caddy-sgid/session"
)

// keyRing is what one key in storage holds: the session secret of an sgID
// client, or the assertion signing key of a site, with the values a rotation
// added before it and keeps for their overlap.
//
// A rotation (rotation.go) adds a value that becomes active later, once every
// instance has had time to load it: until then it opens sessions (or is
// published in the JWKS) but seals (signs) nothing, so no instance meets a
// cookie or assertion it cannot check. The value it replaces stays for its
// overlap, then expires. At any time the active value is the newest whose
// ActiveFrom has passed.
//
// A ring of one value that no rotation touched is stored as the bare value
// (the secret, or the key's PEM), as storage made before rotation existed
// holds it; anything else is JSON with ringFormat.
type keyRing struct {
	Format string    `json:"format"`
	Keys   []ringKey `json:"keys"`
}

type ringKey struct {
	Value      string    `json:"value"`                // the secret, or the key as PKCS#8 PEM
	ActiveFrom time.Time `json:"active_from,omitzero"` // seals or signs from then; zero: from the start
	Expires    time.Time `json:"expires,omitzero"`     // gone from then; zero: until a rotation retires it
}

const ringFormat = "sgid-key-ring-v1"

// parseRing reads what storage holds under a key's name: a ring, or a bare
// value (a ring of one). Errors never echo the value.
func parseRing(v []byte) (keyRing, error) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 {
		return keyRing{}, errors.New("empty")
	}
	if t[0] != '{' {
		return keyRing{Keys: []ringKey{{Value: string(t)}}}, nil
	}
	var r keyRing
	if err := json.Unmarshal(t, &r); err != nil {
		return keyRing{}, errors.New("not a key ring: the JSON does not decode")
	}
	if r.Format != ringFormat {
		return keyRing{}, fmt.Errorf("key ring format %q; this version reads %q", r.Format, ringFormat)
	}
	if len(r.Keys) == 0 {
		return keyRing{}, errors.New("the key ring holds no key")
	}
	return r, nil
}

// encode is what storage keeps: the bare value for a ring of one that no
// rotation touched, else the ring as JSON.
func (r keyRing) encode() []byte {
	if len(r.Keys) == 1 && r.Keys[0].ActiveFrom.IsZero() && r.Keys[0].Expires.IsZero() {
		return []byte(r.Keys[0].Value)
	}
	r.Format = ringFormat
	v, _ := json.MarshalIndent(r, "", "\t") // strings and times only: cannot fail
	return v
}

// at returns the ring's values in use at now, the active one first, then the
// ones not yet active, then the retired ones, newest first; next is the next
// time that changes (zero: not before another rotation).
func (r keyRing) at(now time.Time) (values []string, next time.Time) {
	var live []ringKey
	for _, k := range r.Keys {
		if !k.Expires.IsZero() && !now.Before(k.Expires) {
			continue
		}
		live = append(live, k)
		for _, t := range []time.Time{k.ActiveFrom, k.Expires} {
			if t.After(now) && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	if len(live) == 0 {
		return nil, next
	}
	// Newest first; the active one is the first whose time has come, or the
	// oldest of all if none has (a clock far behind the rotating instance's).
	slices.SortStableFunc(live, func(a, b ringKey) int { return b.ActiveFrom.Compare(a.ActiveFrom) })
	active := len(live) - 1
	for i, k := range live {
		if !k.ActiveFrom.After(now) {
			active = i
			break
		}
	}
	values = append(values, live[active].Value)
	for i, k := range live {
		if i != active {
			values = append(values, k.Value)
		}
	}
	return values, next
}

// rotate adds value, active from activeFrom, and retires every value no
// rotation retired yet: each expires overlap after activeFrom. With dropOld
// (a key thought compromised) every other value expires at activeFrom
// instead, those a rotation retired before included. Values that expired are
// dropped, so the ring stays as small as its overlaps.
func (r *keyRing) rotate(now time.Time, value string, activeFrom time.Time, overlap time.Duration, dropOld bool) {
	retire := activeFrom.Add(overlap)
	if dropOld {
		retire = activeFrom
	}
	kept := r.Keys[:0]
	for _, k := range r.Keys {
		if !k.Expires.IsZero() && !now.Before(k.Expires) {
			continue
		}
		if k.Expires.IsZero() || dropOld && k.Expires.After(retire) {
			k.Expires = retire
		}
		kept = append(kept, k)
	}
	r.Keys = append(kept, ringKey{Value: value, ActiveFrom: activeFrom})
}

// secretsOf is the session secrets a ring gives at now, the sealing one
// first.
func secretsOf(r keyRing, now time.Time) ([][]byte, error) {
	values, _ := r.at(now)
	if len(values) == 0 {
		return nil, errors.New("every session secret in the ring has expired")
	}
	out := make([][]byte, 0, len(values))
	for i, v := range values {
		if err := session.CheckSecret(fmt.Sprintf("stored session secret #%d", i+1), v); err != nil {
			return nil, err
		}
		out = append(out, []byte(v))
	}
	return out, nil
}

// signingKeysOf is the signing keys a ring gives at now, the signing one
// first.
func signingKeysOf(r keyRing, now time.Time) ([]*ecdsa.PrivateKey, error) {
	values, _ := r.at(now)
	if len(values) == 0 {
		return nil, errors.New("every signing key in the ring has expired")
	}
	out := make([]*ecdsa.PrivateKey, 0, len(values))
	for i, v := range values {
		k, err := parseECKey(v)
		if err != nil {
			return nil, fmt.Errorf("stored key #%d: %w", i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}
