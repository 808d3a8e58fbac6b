package session

import (
	"encoding/binary"
	"time"
)

// The sealed payloads are a small hand-written binary format rather than JSON or gob:
// decoding is a handful of varint reads and substrings of one string, so a Read
// allocates for the payload once, whatever the number of fields, and values need no
// escaping however much UTF-8 or how many newlines they hold.
//
//	session: tagSession, varint created, varint refreshed, string id, string sub,
//	         uvarint count, count × (string name, string value)
//	         [tagCarrying instead: the same, then string carried]
//	attempt: tagAttempt, varint created, string state, string nonce,
//	         string code verifier, string redirect URI, string return-to
//	         [tagAttemptForm instead: the same, then string form]
//
// Times are Unix seconds; a string is a uvarint length and its bytes. The tag names
// the type and the format version: a future format takes a new tag, and a cookie of
// a format this code does not know is ErrInvalid, which only means logging in again.
//
// 0x52 added the session id; a 0x51 session (no id, so no way to revoke it
// alone) is ErrInvalid. 0x53 is a 0x52 session with Carried after it; a session
// with nothing carried is still written as 0x52, which every release since the
// id reads. 0x62 is a 0x61 attempt with Form after it; likewise an attempt
// without one is still 0x61.
const (
	tagSession     byte = 0x52
	tagCarrying    byte = 0x53
	tagAttempt     byte = 0x61
	tagAttemptForm byte = 0x62
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// marshalSession encodes d. Times keep whole seconds.
func marshalSession(d *Data) []byte {
	size := 1 + 2*binary.MaxVarintLen64 + 2*binary.MaxVarintLen32 + len(d.ID) + len(d.Sub) + binary.MaxVarintLen32
	for _, f := range d.Fields {
		size += 2*binary.MaxVarintLen32 + len(f.Name) + len(f.Value)
	}
	size += binary.MaxVarintLen32 + len(d.Carried)
	b := make([]byte, 0, size)
	if d.Carried != "" {
		b = append(b, tagCarrying)
	} else {
		b = append(b, tagSession)
	}
	b = binary.AppendVarint(b, d.Created.Unix())
	b = binary.AppendVarint(b, d.Refreshed.Unix())
	b = appendString(b, d.ID)
	b = appendString(b, d.Sub)
	b = binary.AppendUvarint(b, uint64(len(d.Fields)))
	for _, f := range d.Fields {
		b = appendString(b, f.Name)
		b = appendString(b, f.Value)
	}
	if d.Carried != "" {
		b = appendString(b, d.Carried)
	}
	return b
}

// marshalAttempt encodes a. Created keeps whole seconds.
func marshalAttempt(a *Attempt) []byte {
	size := 1 + binary.MaxVarintLen64 + 6*binary.MaxVarintLen32 +
		len(a.State) + len(a.Nonce) + len(a.CodeVerifier) + len(a.RedirectURI) + len(a.ReturnTo) + len(a.Form)
	b := make([]byte, 0, size)
	if a.Form != "" {
		b = append(b, tagAttemptForm)
	} else {
		b = append(b, tagAttempt)
	}
	b = binary.AppendVarint(b, a.Created.Unix())
	for _, s := range [...]string{a.State, a.Nonce, a.CodeVerifier, a.RedirectURI, a.ReturnTo} {
		b = appendString(b, s)
	}
	if a.Form != "" {
		b = appendString(b, a.Form)
	}
	return b
}

// decoder reads a payload. It never panics: any overrun sets bad and returns zero
// values, and callers check bad once at the end.
type decoder struct {
	b   []byte
	s   string // b as one string: every decoded string is a substring of it
	off int
	bad bool
}

func newDecoder(b []byte) *decoder {
	return &decoder{b: b, s: string(b)}
}

func (d *decoder) byte() byte {
	if d.bad || d.off >= len(d.b) {
		d.bad = true
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *decoder) time() time.Time {
	if d.bad {
		return time.Time{}
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.bad = true
		return time.Time{}
	}
	d.off += n
	return time.Unix(v, 0)
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)-d.off) {
		d.bad = true
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

// done reports whether the whole payload was read without error: trailing bytes are
// as wrong as missing ones.
func (d *decoder) done() bool {
	return !d.bad && d.off == len(d.b)
}

func unmarshalSession(b []byte) (*Data, bool) {
	d := newDecoder(b)
	tag := d.byte()
	if tag != tagSession && tag != tagCarrying {
		return nil, false
	}
	s := &Data{Created: d.time(), Refreshed: d.time(), ID: d.string(), Sub: d.string()}
	n := d.uvarint()
	// Each field takes at least two bytes, so a count the payload cannot hold is
	// refused before it sizes the slice.
	if d.bad || n > uint64(len(b)-d.off)/2 {
		return nil, false
	}
	if n > 0 {
		s.Fields = make([]Field, 0, n)
	}
	for range n {
		s.Fields = append(s.Fields, Field{Name: d.string(), Value: d.string()})
	}
	if d.bad || duplicateField(s.Fields) {
		return nil, false
	}
	if tag == tagCarrying {
		if s.Carried = d.string(); s.Carried == "" {
			return nil, false // written only when there is something to carry
		}
	}
	if !d.done() {
		return nil, false
	}
	return s, true
}

func unmarshalAttempt(b []byte) (*Attempt, bool) {
	d := newDecoder(b)
	tag := d.byte()
	if tag != tagAttempt && tag != tagAttemptForm {
		return nil, false
	}
	a := &Attempt{Created: d.time()}
	a.State, a.Nonce, a.CodeVerifier = d.string(), d.string(), d.string()
	a.RedirectURI, a.ReturnTo = d.string(), d.string()
	if tag == tagAttemptForm {
		if a.Form = d.string(); a.Form == "" || len(a.Form) > MaxAttemptForm {
			return nil, false
		}
	}
	if !d.done() {
		return nil, false
	}
	return a, true
}
