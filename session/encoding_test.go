package session

import (
	"encoding/binary"
	"testing"
	"time"
)

func TestPayloadRoundTrip(t *testing.T) {
	d := &Data{
		ID:        NewID(),
		Sub:       "u=1",
		Fields:    []Field{{Name: "a", Value: "x\ny\x00z"}, {Name: "b", Value: bigValue(5000)}, {Name: "", Value: ""}},
		Created:   time.Unix(1_772_000_000, 0),
		Refreshed: time.Unix(1_772_000_600, 0),
	}
	got, ok := unmarshalSession(marshalSession(d))
	if !ok || !sameData(got, d) {
		t.Errorf("session payload round trip: ok=%v, equal=%v", ok, ok && sameData(got, d))
	}
	a := &Attempt{State: "s", Nonce: "n", CodeVerifier: "v", RedirectURI: "r", ReturnTo: "/?a=b", Created: time.Unix(-5, 0)}
	if got, ok := unmarshalAttempt(marshalAttempt(a)); !ok || *got != *a {
		t.Errorf("attempt payload round trip = %+v, %v; want %+v", got, ok, a)
	}
}

// What a session carries for its caller round-trips under the 0x53 tag; a
// session carrying nothing is still written as 0x52, which the release
// before Carried reads; a 0x53 payload carrying an empty value, which Write
// never makes, is refused.
func TestCarriedRoundTripsAndNothingCarriedKeepsTheOldTag(t *testing.T) {
	d := typicalData()
	plain := marshalSession(d)
	if plain[0] != 0x52 {
		t.Errorf("a session carrying nothing has tag %#x, want 0x52", plain[0])
	}
	d.Carried = "sig\x00\xff" + bigValue(80)
	carrying := marshalSession(d)
	if carrying[0] != 0x53 {
		t.Errorf("a session carrying a value has tag %#x, want 0x53", carrying[0])
	}
	if got, ok := unmarshalSession(carrying); !ok || !sameData(got, d) {
		t.Errorf("carrying round trip: ok=%v", ok)
	}
	empty := append(append([]byte{0x53}, plain[1:]...), 0) // a zero-length carried string
	if _, ok := unmarshalSession(empty); ok {
		t.Error("a 0x53 payload carrying an empty value was read")
	}
	if _, ok := unmarshalSession(append([]byte{0x53}, plain[1:]...)); ok {
		t.Error("a 0x53 payload without its carried value was read")
	}
}

func TestUnmarshalRejectsMalformedPayloads(t *testing.T) {
	session := marshalSession(typicalData())
	attempt := marshalAttempt(newAttempt("s"))
	dup := appendString([]byte{tagSession, 0, 0}, "id")
	dup = appendString(dup, "sub")
	dup = binary.AppendUvarint(dup, 2)
	dup = appendString(appendString(dup, "k"), "v1")
	dup = appendString(appendString(dup, "k"), "v2")
	hugeCount := binary.AppendUvarint(appendString(appendString([]byte{tagSession, 0, 0}, "id"), "sub"), 1<<40)
	// The format before session ids: no id, tag 0x51.
	beforeIDs := binary.AppendUvarint(appendString([]byte{0x51, 0, 0}, "sub"), 0)

	type malformed struct {
		name    string
		payload []byte
		session bool // decode as a session, else as an attempt
	}
	tests := []malformed{
		{"empty", nil, true},
		{"trailing byte", append(session[:len(session):len(session)], 0), true},
		{"attempt read as session", attempt, true},
		{"session read as attempt", session, false},
		{"duplicate field", dup, true},
		{"a session from before ids", beforeIDs, true},
		{"field count past the payload", hugeCount, true},
		{"string length past the payload", []byte{tagAttempt, 0, 0xff, 0xff, 0x03, 'x'}, false},
		{"overlong varint", append([]byte{tagSession}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), true},
	}
	// Every truncation of a valid payload, too.
	for n := range len(session) {
		tests = append(tests, malformed{"truncated session", session[:n], true})
	}
	for n := range len(attempt) {
		tests = append(tests, malformed{"truncated attempt", attempt[:n], false})
	}
	for _, tt := range tests {
		var ok bool
		if tt.session {
			_, ok = unmarshalSession(tt.payload)
		} else {
			_, ok = unmarshalAttempt(tt.payload)
		}
		if ok {
			t.Errorf("%s (%d bytes): accepted", tt.name, len(tt.payload))
		}
	}
}

// FuzzUnmarshal checks that no payload makes the decoders panic, and that whatever
// they accept survives another round trip unchanged.
func FuzzUnmarshal(f *testing.F) {
	f.Add(marshalSession(typicalData()))
	f.Add(marshalAttempt(newAttempt("s")))
	f.Add([]byte{tagSession, 0, 0, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, ok := unmarshalSession(b); ok {
			if again, ok := unmarshalSession(marshalSession(d)); !ok || !sameData(again, d) {
				t.Errorf("session %x does not survive a round trip", b)
			}
		}
		if a, ok := unmarshalAttempt(b); ok {
			if again, ok := unmarshalAttempt(marshalAttempt(a)); !ok || *again != *a {
				t.Errorf("attempt %x does not survive a round trip", b)
			}
		}
	})
}
