package caddysgid

import (
	"strings"
	"testing"
	"time"
)

// A ring of one untouched value is stored bare, as storage made before
// rotation holds it; a rotated ring is JSON; either reads back the same. A
// ring that does not decode, of another format or empty, is an error that
// never echoes the value.
func TestKeyRingStoredFormRoundTrips(t *testing.T) {
	secret := NewSessionSecret()
	bare, err := parseRing([]byte(secret + "\n"))
	if err != nil || len(bare.Keys) != 1 || bare.Keys[0].Value != secret {
		t.Fatalf("bare secret: %+v, %v", bare, err)
	}
	if got := string(bare.encode()); got != secret {
		t.Errorf("a ring of one untouched value encodes as %q, want the bare value", got)
	}
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	r := bare
	r.rotate(now, "second-"+secret, now.Add(time.Minute), time.Hour, false)
	v := r.encode()
	if !strings.Contains(string(v), ringFormat) {
		t.Fatalf("a rotated ring encodes as %s, want JSON with its format", v)
	}
	back, err := parseRing(v)
	if err != nil || len(back.Keys) != 2 || back.Keys[1].Value != "second-"+secret || !back.Keys[0].Expires.Equal(now.Add(time.Minute+time.Hour)) {
		t.Errorf("rotated ring read back as %+v, %v", back, err)
	}
	for _, bad := range []string{"", "  \n", `{"format":"sgid-key-ring-v1","keys":[]}`, `{"format":"other","keys":[{"value":"` + secret + `"}]}`, `{"keys": [` + secret} {
		if _, err := parseRing([]byte(bad)); err == nil {
			t.Errorf("parseRing(%q) took it", bad)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("parseRing's error echoes the secret: %v", err)
		}
	}
}

// at is the order the gateway uses (the first seals or signs, all open or
// are published): before its activation the new value comes second, after it
// first, and once the retired one expires it is alone; next is each of those
// moments in turn. A rotation drops what expired.
func TestKeyRingActivatesAndExpiresOnTime(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	r := keyRing{Keys: []ringKey{{Value: "old"}}}
	activate, overlap := t0.Add(20*time.Second), 30*time.Minute
	r.rotate(t0, "new", activate, overlap, false)
	for _, tt := range []struct {
		at   time.Time
		want string
		next time.Time
	}{
		{t0, "old new", activate},
		{activate.Add(-time.Nanosecond), "old new", activate},
		{activate, "new old", activate.Add(overlap)},
		{activate.Add(overlap), "new", time.Time{}},
	} {
		values, next := r.at(tt.at)
		if got := strings.Join(values, " "); got != tt.want || !next.Equal(tt.next) {
			t.Errorf("at %v: %q, next %v; want %q, next %v", tt.at.Sub(t0), got, next.Sub(t0), tt.want, tt.next.Sub(t0))
		}
	}
	// A second rotation while the first is pending: the pending one and the
	// old one both retire at the second's activation plus the overlap.
	r2 := r
	r2.Keys = append([]ringKey(nil), r.Keys...)
	second := t0.Add(40 * time.Second)
	r2.rotate(t0.Add(10*time.Second), "newer", second, overlap, false)
	if values, _ := r2.at(activate); strings.Join(values, " ") != "new newer old" {
		t.Errorf("between the two activations: %v, want new sealing, newer pending, old retired", values)
	}
	if values, _ := r2.at(second); strings.Join(values, " ") != "newer new old" {
		t.Errorf("after the second activation: %v", values)
	}
	// Rotating after the old one expired drops it from storage.
	r.rotate(activate.Add(overlap), "third", activate.Add(overlap+time.Minute), overlap, false)
	if len(r.Keys) != 2 || r.Keys[0].Value != "new" || r.Keys[1].Value != "third" {
		t.Errorf("after an expiry, a rotation keeps %+v; want new and third", r.Keys)
	}

	// Dropping the old ones (a compromise): at the activation the new value
	// is alone, even those an earlier rotation had retired for longer.
	r2.rotate(t0.Add(20*time.Second), "clean", t0.Add(time.Minute), overlap, true)
	if values, _ := r2.at(t0.Add(time.Minute - time.Nanosecond)); strings.Join(values, " ") != "newer clean new old" {
		t.Errorf("before a drop-old activation: %v, want everything, the new one pending", values)
	}
	if values, next := r2.at(t0.Add(time.Minute)); strings.Join(values, " ") != "clean" || !next.IsZero() {
		t.Errorf("at a drop-old activation: %v (next %v), want the new value alone", values, next)
	}
}
