package revocation

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkRevoked is the per-request check with 10,000 live entries: a
// session that is not revoked (every request of a logged-in user walks all
// three lookups) and one that is.
//
//	go test -run '^$' -bench Revoked -benchmem ./revocation/
func BenchmarkRevoked(b *testing.B) {
	l := fullList(b, 10_000)
	created := time.Now()
	b.Run("not revoked", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if l.Revoked("session-not-revoked", "sub-0", created) {
				b.Fatal("revoked")
			}
		}
	})
	b.Run("revoked session", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !l.Revoked("session-4242", "sub-0", created) {
				b.Fatal("not revoked")
			}
		}
	})
	b.Run("not revoked, parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if l.Revoked("session-not-revoked", "sub-0", created) {
					b.Fatal("revoked")
				}
			}
		})
	})
}

// BenchmarkAdd is a logout's cost on an instance with 10,000 live entries:
// the view is copied, so it grows with the list, but it is paid once per
// ended session, never per request. The list is rebuilt every batch so that
// it stays near 10,000 entries however long the benchmark runs.
func BenchmarkAdd(b *testing.B) {
	const batch = 500
	entries := make([]Entry, batch)
	for i := range entries {
		entries[i] = sessionEntry(fmt.Sprintf("bench-%d", i), time.Hour)
	}
	var l *List
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i%batch == 0 {
			b.StopTimer()
			l = fullList(b, 10_000)
			b.StartTimer()
		}
		if err := l.Add(entries[i%batch]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMergeUnchanged is a poll that brings nothing new: the syncer's
// cost every revocation_poll with 10,000 live entries, whatever the request
// rate.
func BenchmarkMergeUnchanged(b *testing.B) {
	now := time.Now()
	entries := make([]Entry, 0, 10_000)
	for i := range 10_000 {
		if i%10 == 9 {
			entries = append(entries, subEntry(fmt.Sprintf("sub-%d", i), now, time.Hour))
		} else {
			entries = append(entries, sessionEntry(fmt.Sprintf("session-%d", i), time.Hour))
		}
	}
	l := NewList()
	l.Merge(entries)
	b.ReportAllocs()
	for b.Loop() {
		l.Merge(entries)
	}
	if l.Len() != len(entries) {
		b.Fatalf("%d entries, want %d", l.Len(), len(entries))
	}
}
