package revocation

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// sweepEvery is how often a storage store looks for expired spent states.
// Finding them means loading each (their expiry is in the value, since their
// name must follow from the state alone), so it is not done on every poll.
const sweepEvery = time.Minute

// listEvery is how long a storage store may answer polls from what it last
// listed while the changed marker stays the same. Listing reads every entry's
// name (with 10,000 entries, about 110 ms of CPU on a local disk, and a paid
// request or more on S3-like storage); the marker is one small load. The full
// list still comes at this interval, so that entries that expired are
// deleted and a marker that was lost with its entries but not rewritten is
// noticed.
const listEvery = time.Minute

// storageStore keeps entries in a certmagic.Storage, the store a Caddy
// cluster already shares: one immutable key per entry, so that a poll lists
// names and loads only those it has not seen, and a marker every Add
// rewrites after its entry, so that a poll lists only when the marker
// changed (or listEvery has passed).
type storageStore struct {
	storage  certmagic.Storage
	dir      string // prefix + revocationsDir
	changed  string // prefix + changedKey
	spentDir string // prefix + spentDir
	keptDir  string // prefix + keptDir
	now      func() time.Time
	closed   atomic.Bool

	mu        sync.Mutex
	cache     map[nameKey]entryKey // by name; names are immutable, so never stale
	lastSweep time.Time
	lastList  time.Time // zero until the first list
	marker    []byte    // the changed marker as it was read before the last list; nil if absent
}

// NewStorage returns a Store kept in storage under prefix, which names the
// site (see Store). Caddy storage cannot signal, so Changes is nil and
// instances learn of each other's entries at their Syncer's Interval.
// Calls last as long as the storage takes: bound them with their context.
func NewStorage(storage certmagic.Storage, prefix string) Store {
	return &storageStore{
		storage:  storage,
		dir:      prefix + revocationsDir,
		changed:  prefix + changedKey,
		spentDir: prefix + spentDir,
		keptDir:  prefix + keptDir,
		now:      time.Now,
		cache:    make(map[nameKey]entryKey),
	}
}

func (s *storageStore) Add(ctx context.Context, e Entry) error {
	if s.closed.Load() {
		return fmt.Errorf("adding revocation: %w", ErrClosed)
	}
	if err := e.Validate(); err != nil {
		return err
	}
	if e.expired(s.now()) {
		return nil
	}
	name, value := e.encode()
	if err := s.storage.Store(ctx, s.dir+"/"+name, value); err != nil {
		return fmt.Errorf("storing revocation: %w", err)
	}
	// What this instance wrote it need not load back at the next poll.
	// After the entry: a poller that reads the new marker lists a storage
	// that holds the entry. Until the marker is written the entry is not
	// this store's either, so that a failed write leaves it missing from
	// this instance's snapshots, and the Syncer adds it again.
	if err := s.storage.Store(ctx, s.changed, []byte(rand.Text())); err != nil {
		return fmt.Errorf("marking revocations changed: %w", err)
	}
	if k, ok := parseName(name); ok {
		s.mu.Lock()
		s.cache[k] = e.key()
		s.mu.Unlock()
	}
	return nil
}

func (s *storageStore) Snapshot(ctx context.Context) ([]Entry, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("revocation snapshot: %w", ErrClosed)
	}
	// The marker is read before the list, so that an Add whose marker this
	// read missed changes it for the next poll.
	marker, err := s.storage.Load(ctx, s.changed)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("loading the revocations marker: %w", err)
	}
	now := s.now()
	s.mu.Lock()
	unchanged := !s.lastList.IsZero() && now.Sub(s.lastList) < listEvery && bytes.Equal(marker, s.marker) && (marker == nil) == (s.marker == nil)
	s.mu.Unlock()
	if unchanged {
		return s.cached(ctx, now), nil
	}
	keys, err := s.storage.List(ctx, s.dir, false)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listing revocations: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	listed := make(map[nameKey]struct{}, len(keys))
	var out []Entry
	for _, key := range keys {
		name := path.Base(key)
		nk, ok := parseName(name)
		if !ok {
			continue // not ours: leave it alone
		}
		if !now.Before(time.UnixMilli(nk.ms)) {
			// Whoever polls first deletes; a failure is retried next poll.
			_ = s.storage.Delete(ctx, key)
			continue
		}
		listed[nk] = struct{}{}
		k, ok := s.cache[nk]
		if !ok {
			value, err := s.storage.Load(ctx, key)
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since the list, by another poller
			}
			if err != nil {
				return nil, fmt.Errorf("loading revocation %s: %w", name, err)
			}
			e, err := decodeEntry(name, value)
			if err != nil {
				// Not cached: a value being written elsewhere may read
				// whole at the next poll.
				continue
			}
			k = e.key()
			s.cache[nk] = k
		}
		if !k.expired(now) {
			out = append(out, k.entry())
		}
	}
	for nk := range s.cache {
		if _, ok := listed[nk]; !ok {
			delete(s.cache, nk)
		}
	}
	s.lastList, s.marker = now, marker
	if now.Sub(s.lastSweep) >= sweepEvery {
		s.lastSweep = now
		s.sweep(ctx, s.spentDir, now)
		s.sweep(ctx, s.keptDir, now)
	}
	return out, nil
}

// cached is the snapshot of what the last list found, and what this
// instance added since, without what has expired; expired entries are
// deleted from storage as a list would delete them.
func (s *storageStore) cached(ctx context.Context, now time.Time) []Entry {
	s.mu.Lock()
	out := make([]Entry, 0, len(s.cache))
	var expired []nameKey
	for nk, k := range s.cache {
		if !now.Before(time.UnixMilli(nk.ms)) {
			expired = append(expired, nk)
			delete(s.cache, nk)
			continue
		}
		if !k.expired(now) {
			out = append(out, k.entry())
		}
	}
	s.mu.Unlock()
	for _, nk := range expired {
		// Whoever polls first deletes; a failure is retried at the next list.
		_ = s.storage.Delete(ctx, s.dir+"/"+nk.name())
	}
	return out
}

func (s *storageStore) Changes() <-chan struct{} { return nil }

// Spend holds the storage's lock for the state's key around a load and a
// store, so that of two instances spending one state at once exactly one
// sees it unspent. The lock is per state: logins of different users never
// wait on each other.
func (s *storageStore) Spend(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if s.closed.Load() {
		return false, fmt.Errorf("spending login state: %w", ErrClosed)
	}
	if err := checkSpend(key, ttl); err != nil {
		return false, err
	}
	k := s.spentDir + "/" + spentName(key)
	if err := s.storage.Lock(ctx, k); err != nil {
		return false, fmt.Errorf("locking spent login state: %w", err)
	}
	defer func() {
		// Unlock even when ctx is done: a lock left behind stalls the
		// next spender of this state until the storage deems it stale.
		_ = s.storage.Unlock(context.WithoutCancel(ctx), k)
	}()
	now := s.now()
	value, err := s.storage.Load(ctx, k)
	switch {
	case err == nil:
		if until, ok := parseSpent(value); ok && now.Before(until) {
			return false, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("loading spent login state: %w", err)
	}
	until := strconv.FormatInt(now.Add(ttl).UnixMilli(), 10)
	if err := s.storage.Store(ctx, k, []byte(until)); err != nil {
		return false, fmt.Errorf("storing spent login state: %w", err)
	}
	return true, nil
}

// sweep deletes the spent states or kept forms in dir past their ttl. Errors
// are ignored: the next sweep tries again, and a leftover only costs its bytes.
func (s *storageStore) sweep(ctx context.Context, dir string, now time.Time) {
	keys, err := s.storage.List(ctx, dir, false)
	if err != nil {
		return
	}
	for _, key := range keys {
		if value, err := s.storage.Load(ctx, key); err != nil || !spentExpired(value, now) {
			continue
		}
		// Check again under Spend's (or Take's) lock: the state may have
		// been spent anew since the load, and deleting that would allow a
		// replay.
		if s.storage.Lock(ctx, key) != nil {
			continue
		}
		if value, err := s.storage.Load(ctx, key); err == nil && spentExpired(value, now) {
			_ = s.storage.Delete(ctx, key)
		}
		_ = s.storage.Unlock(context.WithoutCancel(ctx), key)
	}
}

// Keep stores the expiry (Unix ms), a newline, then value: one key, so a
// sweep reads the expiry as it does a spent state's.
func (s *storageStore) Keep(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.closed.Load() {
		return fmt.Errorf("keeping a form: %w", ErrClosed)
	}
	if err := checkKeep(key, value, ttl); err != nil {
		return err
	}
	b := strconv.AppendInt(nil, s.now().Add(ttl).UnixMilli(), 10)
	b = append(append(b, '\n'), value...)
	if err := s.storage.Store(ctx, s.keptDir+"/"+spentName(key), b); err != nil {
		return fmt.Errorf("storing a kept form: %w", err)
	}
	return nil
}

// Take holds the key's lock around the load and the delete, so that of two
// instances taking at once one gets the value and the other ErrNotKept.
func (s *storageStore) Take(ctx context.Context, key string) ([]byte, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("taking a kept form: %w", ErrClosed)
	}
	if key == "" {
		return nil, ErrNotKept
	}
	k := s.keptDir + "/" + spentName(key)
	if err := s.storage.Lock(ctx, k); err != nil {
		return nil, fmt.Errorf("locking a kept form: %w", err)
	}
	defer func() { _ = s.storage.Unlock(context.WithoutCancel(ctx), k) }()
	b, err := s.storage.Load(ctx, k)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotKept
	}
	if err != nil {
		return nil, fmt.Errorf("loading a kept form: %w", err)
	}
	if err := s.storage.Delete(ctx, k); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("deleting a kept form: %w", err)
	}
	expiry, value, ok := bytes.Cut(b, []byte("\n"))
	if until, good := parseSpent(expiry); !ok || !good || !s.now().Before(until) {
		return nil, ErrNotKept
	}
	return value, nil
}

func spentExpired(value []byte, now time.Time) bool {
	until, ok := parseSpent(value)
	return ok && !now.Before(until)
}

func parseSpent(value []byte) (time.Time, bool) {
	ms, err := strconv.ParseInt(string(value), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

func (s *storageStore) Close() error {
	s.closed.Store(true)
	return nil
}
