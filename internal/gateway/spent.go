package gateway

import (
	"crypto/sha256"
	"sync"
	"time"
)

// maxSpentStates bounds the memory spent states take (about 60 bytes each, so
// a few MB). Only callbacks that carry a genuine attempt cookie are recorded,
// and each costs its sender a round trip to sgID; past the bound the oldest
// are forgotten first, and those are the ones closest to expiring anyway.
const maxSpentStates = 100_000

// spentStates remembers the states of the login attempts whose callback has
// run, until the attempt would have expired, so that a saved attempt cookie
// replayed with its callback URL makes no second session even against an IdP
// that accepts a code twice. It is per process: every handler in it shares one
// set, which survives config reloads (states are random, so handlers cannot
// collide). Across instances a replay needs the revocation store.
var spentStates = newSpentSet(maxSpentStates)

type spentSet struct {
	mu    sync.Mutex
	until map[[16]byte]time.Time // state digest: when it may be forgotten
	order [][16]byte             // insertion order, oldest first
	max   int
	now   func() time.Time
}

func newSpentSet(max int) *spentSet {
	return &spentSet{until: make(map[[16]byte]time.Time), max: max, now: time.Now}
}

// spend records state as used until ttl from now. It is false if state was
// already spent: the callback is a replay.
func (s *spentSet) spend(state string, ttl time.Duration) bool {
	sum := sha256.Sum256([]byte(state))
	var key [16]byte
	copy(key[:], sum[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if until, ok := s.until[key]; ok && now.Before(until) {
		return false
	}
	// Forget from the front what has expired, and the oldest when full.
	for len(s.order) > 0 {
		front := s.order[0]
		if until, ok := s.until[front]; ok && now.Before(until) && len(s.order) < s.max {
			break
		}
		delete(s.until, front)
		s.order = s.order[1:]
	}
	s.until[key] = now.Add(ttl)
	s.order = append(s.order, key)
	return true
}

func (s *spentSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.until)
}
