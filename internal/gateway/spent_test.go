package gateway

import (
	"fmt"
	"testing"
	"time"
)

// A state is spent once, forgotten after its attempt would have expired, and
// the set never holds more than its bound.
func TestSpentStatesAreSingleUseExpireAndStayBounded(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := newSpentSet(3)
	s.now = func() time.Time { return now }
	if !s.spend("a", time.Minute) || s.spend("a", time.Minute) {
		t.Fatal("a state must be spendable exactly once")
	}
	now = now.Add(2 * time.Minute)
	if !s.spend("a", time.Minute) {
		t.Fatal("a state whose attempt has expired is not remembered")
	}
	for i := range 10 {
		s.spend(fmt.Sprint("s", i), time.Hour)
	}
	if n := s.len(); n > 3 {
		t.Fatalf("the set holds %d states, over its bound of 3", n)
	}
	if s.spend("s9", time.Hour) {
		t.Fatal("the newest state was forgotten before the oldest")
	}
}
