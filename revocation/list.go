package revocation

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// Grace is how long an entry the List holds may be missing from snapshots
// before Merge reports it as lost. An entry added here a moment ago may not
// have reached the store when a snapshot was read; one missing for longer
// was never stored (the store was down) or was lost (Redis back empty), and
// should be added again.
const Grace = 5 * time.Second

// List is one instance's copy of a site's revocations, the state every
// request is checked against. Revoked is lock-free and allocation-free: it
// reads an immutable view through an atomic pointer, which writers replace
// whole. Writers (Add, Merge) are serialised and copy the view, which is
// cheap next to how rarely sessions are ended.
//
// A List never forgets an entry before it expires, not even when a snapshot
// lacks it: revocations end only by expiry, so a missing entry means the
// store lost it (a Redis restart without persistence, a flush, a failover to
// an empty replica) or has not got it yet, and forgetting it would make a
// logged-out cookie valid again. Merge returns such entries so that a caller
// (the Syncer) can add them back, which heals the store from any instance
// that still runs. The price: un-revoking by deleting from the store takes a
// restart of every instance, and nothing in this design needs that.
//
// The zero List is not usable; call NewList.
type List struct {
	view   atomic.Pointer[view]
	synced atomic.Int64 // unix nanoseconds of the last Merge; 0 before the first

	mu     sync.Mutex
	held   map[entryKey]held // the entries, each rebuilt from its key (entryKey.entry)
	merges uint64            // Merges so far
	now    func() time.Time
	grace  time.Duration
}

// view is what Revoked reads. It is never modified once published.
type view struct {
	sessions map[string]struct{}  // revoked session ids
	subs     map[string]time.Time // sub: the latest Before of that sub's entries
	before   time.Time            // the latest Before of every-user entries
}

// held is what the List keeps of an entry beside its key: small, held by
// value, since an instance may hold tens of thousands of entries.
type held struct {
	since int64  // unix nanoseconds: when this List first held the entry, or last saw it in a snapshot
	seen  uint64 // the last Merge whose snapshot held it
	local bool   // added through Add on this instance
}

// NewList returns an empty List. Until its first Merge it knows only local
// adds; LastSync tells a caller so.
func NewList() *List {
	l := &List{held: make(map[entryKey]held), now: time.Now, grace: Grace}
	l.view.Store(&view{})
	return l
}

// Revoked reports whether the session with this id, of this sub, created at
// created, has been ended. An empty id or sub matches no id or sub entry.
// Created is compared with Before at the precision the caller keeps it: a
// caller that stores created in whole seconds should make Before whole
// seconds too (rounded up), or a session made in the same second as a
// sign-out would be ended with the old ones.
func (l *List) Revoked(sessionID, sub string, created time.Time) bool {
	v := l.view.Load()
	if _, ok := v.sessions[sessionID]; ok {
		return true
	}
	if created.Before(v.before) {
		return true
	}
	b, ok := v.subs[sub]
	return ok && created.Before(b)
}

// Add applies e on this instance at once, before any store has it, so that a
// logout takes effect here without waiting on a round trip. Entries added
// here are Local until they expire. Adding an expired entry does nothing.
func (l *List) Add(e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	now := l.now()
	if e.expired(now) {
		return nil
	}
	k := e.key()
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.held[k]; ok {
		h.local = true
		l.held[k] = h
		return nil
	}
	l.held[k] = held{since: now.UnixNano(), local: true}
	old := l.view.Load()
	v := &view{sessions: old.sessions, subs: old.subs, before: old.before}
	switch {
	case e.Session != "":
		v.sessions = maps.Clone(old.sessions)
		if v.sessions == nil {
			v.sessions = make(map[string]struct{}, 1)
		}
		v.sessions[e.Session] = struct{}{}
	case e.Sub != "":
		if e.Before.After(old.subs[e.Sub]) {
			v.subs = maps.Clone(old.subs)
			if v.subs == nil {
				v.subs = make(map[string]time.Time, 1)
			}
			v.subs[e.Sub] = e.Before
		}
	default:
		if e.Before.After(v.before) {
			v.before = e.Before
		}
	}
	l.view.Store(v)
	return nil
}

// Merge applies a full snapshot of the store. Entries it holds that the List
// lacks are added; expired entries are dropped; entries the List holds that
// the snapshot lacks are kept (see List), and those that have been missing
// for longer than Grace, and will not expire within it, are returned: the
// store should be given them again. Invalid entries in the snapshot are
// skipped.
func (l *List) Merge(snapshot []Entry) (missing []Entry) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.merges++       // what the snapshot holds is marked with this merge's number
	changed := false // a poll that brings nothing new publishes no new view
	for _, e := range snapshot {
		if e.Validate() != nil || e.expired(now) {
			continue
		}
		k := e.key()
		h, ok := l.held[k]
		if !ok {
			changed = true
		}
		h.since, h.seen = now.UnixNano(), l.merges
		l.held[k] = h
	}
	for k, h := range l.held {
		if k.expired(now) {
			delete(l.held, k)
			changed = true
			continue
		}
		if h.seen == l.merges {
			continue
		}
		// Near its expiry, stores whose clocks run ahead drop an entry
		// first; giving it back would only be dropped again.
		if now.Sub(time.Unix(0, h.since)) >= l.grace && time.Unix(0, k.expires).Sub(now) > l.grace {
			missing = append(missing, k.entry())
		}
	}
	if changed {
		l.rebuild()
	}
	l.synced.Store(now.UnixNano())
	return missing
}

// rebuild publishes a view of l.held. It must be called with l.mu held.
func (l *List) rebuild() {
	v := &view{sessions: make(map[string]struct{}), subs: make(map[string]time.Time)}
	for k := range l.held {
		e := k.entry()
		switch {
		case e.Session != "":
			v.sessions[e.Session] = struct{}{}
		case e.Sub != "":
			if e.Before.After(v.subs[e.Sub]) {
				v.subs[e.Sub] = e.Before
			}
		default:
			if e.Before.After(v.before) {
				v.before = e.Before
			}
		}
	}
	l.view.Store(v)
}

// Len is the number of entries the List holds, expired ones included until
// the next Merge drops them (an expired entry revokes nothing that is still
// valid, so keeping it a little longer is harmless).
func (l *List) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// Local returns the entries added through Add on this instance that have not
// expired, whether or not the store has them: what an instance can give back
// to a store that lost its data.
func (l *List) Local() []Entry {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Entry
	for k, h := range l.held {
		if h.local && !k.expired(now) {
			out = append(out, k.entry())
		}
	}
	return out
}

// LastSync is when the List last merged a full snapshot; zero before the
// first. A List that has never synced knows only what was added locally: it
// is stale, and a caller should say so (a readiness check, a log line) while
// still serving from it.
func (l *List) LastSync() time.Time {
	n := l.synced.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
