package revocation

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store keeps the entries of one site, shared by every instance that serves
// it. The caller gives each backend a key prefix that names the site; two
// prefixes never see each other's entries or spent states.
//
// The request path never calls a Store: a Syncer copies its entries into a
// List, which is what requests consult. Implementations are safe for
// concurrent use.
type Store interface {
	// Add keeps e until it expires. Adding an entry that is already there,
	// or one that has already expired, does nothing.
	Add(ctx context.Context, e Entry) error
	// Snapshot returns every live entry. Its cost is proportional to the
	// live entries, whatever the history: expired ones are dropped as it
	// meets them.
	Snapshot(ctx context.Context) ([]Entry, error)
	// Changes signals that another instance may have added something; a
	// receiver should take a Snapshot. Signals are coalesced: one may stand
	// for many adds. It is nil for a store that can only be polled, and it is
	// closed by Close.
	Changes() <-chan struct{}
	// Spend marks key (a login attempt's state) as used for ttl. It is true
	// the first time key is spent within ttl, on any instance, and false for
	// every later try within ttl: a replayed callback. Stores keep a digest
	// of key, never key itself.
	Spend(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
	// Keep holds value under key (a login attempt's) for ttl, for one Take:
	// the form a login interrupted, which the caller seals first. Keeping
	// under a key again replaces the value. Stores name it by a digest of
	// key, never key itself.
	Keep(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Take returns what was kept under key and removes it: of two instances
	// taking one key at once, exactly one gets it. ErrNotKept if nothing is
	// kept there, or it expired.
	Take(ctx context.Context, key string) ([]byte, error)
	// Close releases what the store holds. Every call after it fails with an
	// error wrapping ErrClosed; closing twice is not an error.
	Close() error
}

// ErrNotKept is Take's answer for a key with nothing kept under it.
var ErrNotKept = errors.New("nothing kept under that key")

// MaxKept is the most bytes Keep takes.
const MaxKept = 1 << 20

// ErrClosed is wrapped by the errors of a Store's methods after Close.
var ErrClosed = errors.New("revocation store closed")

// errBadTTL is returned by Spend for a ttl that cannot be kept: below a
// millisecond, Redis's unit.
var errBadTTL = errors.New("spend ttl under a millisecond")

// Key layout under a site's prefix, the same for every backend so that an
// operator finds the same names in storage and in Redis:
//
//	<prefix>/revocations/<expiry ms>-<digest>  one entry (storage: a key; Redis: a field of the hash <prefix>/revocations)
//	<prefix>/revocations/changes                Redis: the pub/sub channel Add publishes on
//	<prefix>/revocations.changed                storage: a random value each Add replaces, so a poll lists only when it changed
//	<prefix>/spent/<digest>                     one spent login state
//	<prefix>/kept/<digest>                      one kept form
const (
	revocationsDir = "/revocations"
	changesChannel = "/revocations/changes"
	changedKey     = "/revocations.changed"
	spentDir       = "/spent"
	keptDir        = "/kept"
)

// checkKeep is Keep's argument check, for both backends.
func checkKeep(key string, value []byte, ttl time.Duration) error {
	if key == "" {
		return errors.New("keeping under an empty key")
	}
	if len(value) > MaxKept {
		return fmt.Errorf("keeping %d bytes, at most %d", len(value), MaxKept)
	}
	if ttl < time.Millisecond {
		return fmt.Errorf("%w: %s", errBadTTL, ttl)
	}
	return nil
}

// checkSpend is the argument check both backends make, in one place.
func checkSpend(key string, ttl time.Duration) error {
	if key == "" {
		return errors.New("spending an empty login state")
	}
	if ttl < time.Millisecond {
		return fmt.Errorf("%w: %s", errBadTTL, ttl)
	}
	return nil
}
