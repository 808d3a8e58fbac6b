// Package revocation ends sessions that are otherwise stateless: a session
// lives in an encrypted cookie, so the only way to end it before it expires is
// to remember that it was ended. Entries (one session, one user's sessions
// before a time, everyone's sessions before a time) are kept in a Store that
// every instance of a site shares (Caddy storage or Redis) and mirrored in a
// List in each instance's memory, so the check made on every request is a map
// lookup that never waits on the network. A Syncer keeps the List in step
// with the Store.
//
// Revocations only ever end by expiry: an entry stops mattering once every
// session it revokes would have expired anyway, and that moment is part of
// the entry. Stores drop expired entries, so what they hold and what a sync
// costs stay proportional to live revocations, whatever the history.
//
// The package imports no Caddy (certmagic's Storage interface is not Caddy)
// and could serve any Go program.
package revocation

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Reasons an entry is made, for audit lines. A Reason is a short token, never
// free text, so that no personal data can ride along in it.
const (
	ReasonLogout     = "logout"     // the user logged out of one session
	ReasonEverywhere = "everywhere" // the user signed out everywhere
	ReasonAdmin      = "admin"      // an operator ended sessions
)

// Limits of an Entry's fields, checked by Validate. They bound what one entry
// costs in every instance's memory and in the store.
const (
	MaxIDLength     = 256 // Session and Sub, in bytes
	MaxReasonLength = 32
)

// ErrInvalid is wrapped by every error about an Entry that cannot be kept.
var ErrInvalid = errors.New("invalid revocation entry")

// Entry ends sessions. Exactly one of: Session (one session, by its id), or
// Before (every session created before Before: of Sub when Sub is set, else of
// everyone). A Session entry may carry the Sub it belonged to, for audit; it
// still revokes that one session only.
//
// Entries are values: two equal entries are one revocation, and adding one
// again changes nothing. Times are kept to the nanosecond.
type Entry struct {
	Session string    // a session id
	Sub     string    // a pairwise sgID sub
	Before  time.Time // sessions created before it are revoked (strictly before: one created at Before is not)
	Expires time.Time // the last moment a session this entry revokes could be valid; stores drop the entry after it
	Reason  string    // ReasonLogout, ReasonEverywhere, ReasonAdmin or another short token; never personal data
}

// Times outside these bounds are mistakes (a zero time, a unit error), and
// would not survive the wire format's nanoseconds since 1970.
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Validate reports why e cannot be kept, as an error wrapping ErrInvalid.
func (e Entry) Validate() error {
	switch {
	case e.Session != "" && !e.Before.IsZero():
		return fmt.Errorf("%w: both a session and a before time", ErrInvalid)
	case e.Session == "" && e.Before.IsZero():
		return fmt.Errorf("%w: neither a session nor a before time", ErrInvalid)
	case e.Expires.Before(minTime) || e.Expires.After(maxTime):
		return fmt.Errorf("%w: expiry %s out of range", ErrInvalid, e.Expires.UTC().Format(time.RFC3339))
	case !e.Before.IsZero() && (e.Before.Before(minTime) || e.Before.After(maxTime)):
		return fmt.Errorf("%w: before time %s out of range", ErrInvalid, e.Before.UTC().Format(time.RFC3339))
	case !e.Before.IsZero() && !e.Expires.After(e.Before):
		return fmt.Errorf("%w: expires no later than its before time", ErrInvalid)
	}
	if err := checkID("session id", e.Session); err != nil {
		return err
	}
	if err := checkID("sub", e.Sub); err != nil {
		return err
	}
	return checkReason(e.Reason)
}

// checkID keeps ids to visible ASCII: they end up in storage key values,
// Redis hashes and audit lines, where a control byte would do harm.
func checkID(what, s string) error {
	if len(s) > MaxIDLength {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, what, MaxIDLength)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("%w: %s holds a byte outside visible ASCII", ErrInvalid, what)
		}
	}
	return nil
}

func checkReason(s string) error {
	if len(s) > MaxReasonLength {
		return fmt.Errorf("%w: reason longer than %d bytes", ErrInvalid, MaxReasonLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return fmt.Errorf("%w: reason is not a lowercase token", ErrInvalid)
		}
	}
	return nil
}

// expired reports whether e no longer matters at now.
func (e Entry) expired(now time.Time) bool {
	return !now.Before(e.Expires)
}

// wireEntry is an Entry as stores keep it. Times are nanoseconds since 1970
// so that an entry's encoding, and so its name, is the same on every
// instance whatever the time zone or monotonic reading of its time.Time.
type wireEntry struct {
	Session string `json:"session,omitempty"`
	Sub     string `json:"sub,omitempty"`
	Before  int64  `json:"before,omitempty"`
	Expires int64  `json:"expires"`
	Reason  string `json:"reason,omitempty"`
}

// encode returns the stored form of a valid entry and its name.
// entryKey identifies an entry in memory as its name does in a store, and
// costs no encoding: two entries with the same key encode alike.
type entryKey struct {
	session, sub, reason string
	before, expires      int64 // unix nanoseconds; before 0 when zero
}

// entry is the Entry k is the key of, its times in UTC.
func (k entryKey) entry() Entry {
	e := Entry{Session: k.session, Sub: k.sub, Reason: k.reason, Expires: time.Unix(0, k.expires).UTC()}
	if k.before != 0 {
		e.Before = time.Unix(0, k.before).UTC()
	}
	return e
}

// expired is Entry.expired, without making the Entry.
func (k entryKey) expired(now time.Time) bool { return now.UnixNano() >= k.expires }

func (e Entry) key() entryKey {
	k := entryKey{session: e.Session, sub: e.Sub, reason: e.Reason, expires: e.Expires.UnixNano()}
	if !e.Before.IsZero() {
		k.before = e.Before.UnixNano()
	}
	return k
}

func (e Entry) encode() (name string, value []byte) {
	w := wireEntry{Session: e.Session, Sub: e.Sub, Expires: e.Expires.UnixNano(), Reason: e.Reason}
	if !e.Before.IsZero() {
		w.Before = e.Before.UnixNano()
	}
	value, err := json.Marshal(w)
	if err != nil {
		panic("revocation: encoding an entry: " + err.Error()) // strings and ints always encode
	}
	return entryName(e.Expires, value), value
}

// entryName names an entry by its expiry and a digest of its encoding. The
// expiry first lets a store drop an expired entry by its name alone, without
// loading it; the digest makes names immutable (a name always holds the same
// entry), so a poll loads only names it has not seen, and makes adding an
// entry twice write the same name. 128 bits of SHA-256 cannot collide by chance.
func entryName(expires time.Time, value []byte) string {
	sum := sha256.Sum256(value)
	ms := expires.UnixMilli()
	if expires.After(time.UnixMilli(ms)) {
		ms++ // round up: a name never says an entry expired before it did
	}
	return strconv.FormatInt(ms, 10) + "-" + hex.EncodeToString(sum[:16])
}

// nameKey is an entry's name in 24 bytes: what a store that holds many
// entries keys them by.
type nameKey struct {
	ms     int64 // the expiry, unix milliseconds
	digest [16]byte
}

// parseName reads an entry's name back. It is false for a name this package
// did not make, which stores leave alone.
func parseName(name string) (nameKey, bool) {
	ms, digest, ok := strings.Cut(name, "-")
	var k nameKey
	if !ok || len(digest) != 2*len(k.digest) {
		return k, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n <= 0 {
		return k, false
	}
	if _, err := hex.Decode(k.digest[:], []byte(digest)); err != nil {
		return k, false
	}
	k.ms = n
	return k, true
}

// name is the entry name k was parsed from.
func (k nameKey) name() string {
	return strconv.FormatInt(k.ms, 10) + "-" + hex.EncodeToString(k.digest[:])
}

// nameExpiry reads the expiry back from an entry's name. It is false for a
// name this package did not make, which stores leave alone.
func nameExpiry(name string) (time.Time, bool) {
	k, ok := parseName(name)
	return time.UnixMilli(k.ms), ok
}

// decodeEntry parses a stored entry and checks it against its name, so a
// truncated or tampered value is refused instead of revoking the wrong thing.
func decodeEntry(name string, value []byte) (Entry, error) {
	var w wireEntry
	if err := json.Unmarshal(value, &w); err != nil {
		return Entry{}, fmt.Errorf("%w: stored entry %s: %w", ErrInvalid, name, err)
	}
	e := Entry{Session: w.Session, Sub: w.Sub, Expires: time.Unix(0, w.Expires).UTC(), Reason: w.Reason}
	if w.Before != 0 {
		e.Before = time.Unix(0, w.Before).UTC()
	}
	if err := e.Validate(); err != nil {
		return Entry{}, fmt.Errorf("stored entry %s: %w", name, err)
	}
	if got, _ := e.encode(); got != name {
		return Entry{}, fmt.Errorf("%w: stored entry %s does not match its name", ErrInvalid, name)
	}
	return e, nil
}

// spentName names a spent login state by a digest, so that no store holds a
// state that could still be presented, and any state fits a key.
func spentName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}
