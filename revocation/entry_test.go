package revocation

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	now := time.Now()
	later := now.Add(time.Hour)
	for _, c := range []struct {
		name  string
		entry Entry
		ok    bool
	}{
		{"a session", Entry{Session: "s1", Expires: later}, true},
		{"a session with its sub, for audit", Entry{Session: "s1", Sub: "u1", Expires: later, Reason: ReasonLogout}, true},
		{"a sub's sessions before a time", Entry{Sub: "u1", Before: now, Expires: later, Reason: ReasonEverywhere}, true},
		{"everyone's sessions before a time", Entry{Before: now, Expires: later, Reason: ReasonAdmin}, true},
		{"both a session and a before time", Entry{Session: "s1", Before: now, Expires: later}, false},
		{"neither", Entry{Sub: "u1", Expires: later}, false},
		{"no expiry", Entry{Session: "s1"}, false},
		{"expiry in seconds read as nanoseconds", Entry{Session: "s1", Expires: time.Unix(0, later.Unix())}, false},
		{"expiry not after before", Entry{Before: now, Expires: now}, false},
		{"before out of range", Entry{Before: time.Unix(1, 0), Expires: later}, false},
		{"a session id with a space", Entry{Session: "s 1", Expires: later}, false},
		{"a sub with a control byte", Entry{Sub: "u\x001", Before: now, Expires: later}, false},
		{"a session id too long", Entry{Session: strings.Repeat("s", MaxIDLength+1), Expires: later}, false},
		{"a session id at the limit", Entry{Session: strings.Repeat("s", MaxIDLength), Expires: later}, true},
		{"a reason that is free text", Entry{Session: "s1", Expires: later, Reason: "lost phone"}, false},
		{"a reason too long", Entry{Session: "s1", Expires: later, Reason: strings.Repeat("a", MaxReasonLength+1)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.entry.Validate()
			if c.ok && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !c.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestEncodeRoundTripsAndNamesByContent(t *testing.T) {
	before := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.FixedZone("SGT", 8*3600))
	e := Entry{Sub: "u1", Before: before, Expires: before.Add(12 * time.Hour), Reason: ReasonEverywhere}
	name, value := e.encode()
	got, err := decodeEntry(name, value)
	if err != nil {
		t.Fatalf("decodeEntry() = %v", err)
	}
	if got.Sub != e.Sub || !got.Before.Equal(e.Before) || !got.Expires.Equal(e.Expires) || got.Reason != e.Reason {
		t.Fatalf("decoded %+v, want %+v", got, e)
	}
	// The same instant in another zone, or with a monotonic reading, is the
	// same entry: instances in different zones must agree on names.
	utc := e
	utc.Before, utc.Expires = e.Before.UTC(), e.Expires.UTC()
	if n, _ := utc.encode(); n != name {
		t.Fatalf("name in UTC = %s, want %s", n, name)
	}
	other := e
	other.Reason = ReasonAdmin
	if n, _ := other.encode(); n == name {
		t.Fatal("two different entries share a name")
	}
}

func TestNameExpiryNeverEarlierThanTheEntry(t *testing.T) {
	expires := time.UnixMilli(1_900_000_000_000).Add(time.Nanosecond)
	name, _ := Entry{Session: "s1", Expires: expires}.encode()
	got, ok := nameExpiry(name)
	if !ok || got.Before(expires) {
		t.Fatalf("nameExpiry(%s) = %v, %v; want no earlier than %v", name, got, ok, expires)
	}
	for _, foreign := range []string{"README", "123", "123-abc", "x-0123456789abcdef0123456789abcdef", "changes"} {
		if _, ok := nameExpiry(foreign); ok {
			t.Errorf("nameExpiry(%q) accepted a name this package does not make", foreign)
		}
	}
}

func TestDecodeRefusesWhatDoesNotMatchItsName(t *testing.T) {
	e := Entry{Session: "s1", Expires: time.Now().Add(time.Hour)}
	name, value := e.encode()
	other, _ := Entry{Session: "s2", Expires: e.Expires}.encode()
	for _, c := range []struct {
		name  string
		key   string
		value string
	}{
		{"truncated", name, string(value[:len(value)/2])},
		{"another entry's value", other, string(value)},
		{"an invalid entry", name, `{"session":"s1","before":1,"expires":2}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := decodeEntry(c.key, []byte(c.value)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("decodeEntry() = %v, want ErrInvalid", err)
			}
		})
	}
}
