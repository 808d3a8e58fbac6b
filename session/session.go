package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Data is one logged-in user's session: only what the gateway forwards is kept.
type Data struct {
	// ID names this session, the same from login to its end, so that it can
	// be revoked alone: IDLen random bytes, base64url. Write makes one when
	// it is empty.
	ID  string
	Sub string // pairwise sgID subject
	// Fields are the configured fields, each name at most once, in the order
	// written (Write refuses a name twice). Values may hold any UTF-8,
	// newlines included; the whole session encodes to at most MaxSessionData
	// bytes (about 3.9 KB of names and values). A slice, not a map: a decoded
	// session of two fields then takes one small allocation for them, not a
	// map's two (about 500 bytes), on every request its cookie is decoded.
	Fields []Field
	// Created is the login time, in whole seconds: the absolute lifetime runs from
	// here.
	Created time.Time
	// Refreshed is when the cookie was last written, in whole seconds: the idle
	// timeout runs from here.
	Refreshed time.Time
	// Carried is an opaque value the caller keeps with the session, sealed
	// like the rest: the gateway keeps its signed assertion's signature there,
	// so that a request whose decoded session is no longer cached needs no new
	// signature. It counts toward MaxSessionData.
	Carried string

	// oldSecret: Read opened the cookie with a secret other than the first, so
	// NeedsRefresh asks for it to be resealed before that secret is removed.
	oldSecret bool
}

// Field is one of a session's fields: a scope name and its value.
type Field struct {
	Name, Value string
}

// Field returns the value of the field named name.
func (d *Data) Field(name string) (string, bool) {
	for _, f := range d.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// duplicateField reports whether a name appears twice in fields.
func duplicateField(fields []Field) bool {
	for i, f := range fields {
		for _, g := range fields[:i] {
			if g.Name == f.Name {
				return true
			}
		}
	}
	return false
}

// Read returns the request's session. Every error means "no session" and matches one
// of ErrNoCookie, ErrInvalid, ErrExpired or ErrIdle.
//
// Read needs no secure flag: the transport picks the name form, strictly. Over TLS
// only the "__Host-" form is read: a plain-named cookie there could have been set by
// a sibling subdomain (cookie tossing), or by a plain-HTTP site sharing the secrets.
// Over plain HTTP only the plain form is read: a browser sends __Host- cookies only
// over HTTPS, so one arriving over plain HTTP was replayed by a client, from a
// session made for the HTTPS site. The MAC binds the full name, so a value written
// under one form cannot be presented under the other either.
//
// Chunks beyond the count sealed into the first one are ignored rather than refused:
// they are what two overlapping logins in two tabs leave behind, they cannot change
// what is read, and the next Write deletes them.
func (c *Codec) Read(r *http.Request) (*Data, error) {
	var k Cookies
	c.Scan(r, &k)
	return c.ReadScanned(&k)
}

// Cookies are the session cookies of one request, scanned once (Scan) for
// both FingerprintScanned and ReadScanned: a cache keyed by the fingerprint
// reads the cookies only on a miss, and need not scan the Cookie header again.
type Cookies struct {
	k    carried
	form int // the name form the request's transport reads
}

// Scan collects r's session cookies into k, which callers keep on their stack.
func (c *Codec) Scan(r *http.Request, k *Cookies) {
	c.scan(r, &k.k)
	k.form = formOf(r.TLS != nil)
}

// ReadScanned is Read of the request k was scanned from.
func (c *Codec) ReadScanned(k *Cookies) (*Data, error) {
	d, which, err := c.decodeScanned(k)
	if err != nil {
		return nil, err
	}
	if err := c.Check(d); err != nil {
		return nil, err
	}
	d.oldSecret = which > 0
	return d, nil
}

// Subject is the sub of the session cookie the request carries, authenticated
// as Read does, whether or not the session is still alive: who a request made
// after the idle timeout came from. ok is false without a session cookie that
// opens.
func (c *Codec) Subject(r *http.Request) (sub string, ok bool) {
	d, _, err := c.decode(r)
	if err != nil {
		return "", false
	}
	return d.Sub, true
}

// decode is the session the request's cookies hold, alive or not, and which
// secret opened it.
func (c *Codec) decode(r *http.Request) (d *Data, which int, err error) {
	var k Cookies
	c.Scan(r, &k)
	return c.decodeScanned(&k)
}

func (c *Codec) decodeScanned(ck *Cookies) (d *Data, which int, err error) {
	k, form := &ck.k, ck.form
	if k.seen[form]&1 == 0 {
		return nil, -1, ErrNoCookie
	}
	macName, value, err := c.join(k, form)
	if err != nil {
		return nil, -1, err
	}
	which, err = c.open(macName, value, func(plain []byte) (ok bool) {
		d, ok = unmarshalSession(plain)
		return ok
	})
	if err != nil {
		return nil, -1, err
	}
	return d, which, nil
}

// fingerprintBufs are Fingerprint's buffers, sized for a session's cookies.
var fingerprintBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Fingerprint is a digest of exactly the cookies Read would decode, for caching
// decoded sessions: equal fingerprints decode to equal Data. A cached Data must still
// pass Check on every use, since time moves on. ok is false when the request carries
// no session cookie.
func (c *Codec) Fingerprint(r *http.Request) (sum [sha256.Size]byte, ok bool) {
	var k Cookies
	c.Scan(r, &k)
	return c.FingerprintScanned(&k)
}

// FingerprintScanned is Fingerprint of the request k was scanned from.
func (c *Codec) FingerprintScanned(ck *Cookies) (sum [sha256.Size]byte, ok bool) {
	k, form := &ck.k, ck.form
	if k.seen[form]&1 == 0 {
		return sum, false
	}
	// Each string is length-prefixed, so no two cookie sets hash the same input.
	// One pooled buffer and one Sum256: this runs on every authenticated
	// request. A buffer on the stack would spill to the heap on every request
	// for a session of many fields or a carried assertion.
	bp := fingerprintBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	n, _, _ := parseCount(k.values[form][0])
	for i := range max(n, 1) {
		for _, s := range [2]string{c.chunkNames[form][i], k.values[form][i]} {
			buf = binary.BigEndian.AppendUint64(buf, uint64(len(s)))
			buf = append(buf, s...)
		}
	}
	sum = sha256.Sum256(buf)
	if cap(buf) <= 16<<10 { // a huge Cookie header's buffer is not kept
		*bp = buf
		fingerprintBufs.Put(bp)
	}
	return sum, true
}

// join reassembles the sealed value from its chunks and names the MAC it must carry.
func (c *Codec) join(k *carried, form int) (macName, value string, err error) {
	n, first, ok := parseCount(k.values[form][0])
	if !ok || first == "" || len(first) > chunkSize {
		return "", "", fmt.Errorf("%w: malformed first chunk", ErrInvalid)
	}
	if n == 1 {
		return c.macNames[form][1], first, nil
	}
	size := len(first)
	for i := 1; i < n; i++ {
		v := k.values[form][i]
		if k.seen[form]&(1<<i) == 0 || v == "" || len(v) > chunkSize {
			return "", "", fmt.Errorf("%w: chunk %d missing or malformed", ErrInvalid, i)
		}
		size += len(v)
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(first)
	for i := 1; i < n; i++ {
		b.WriteString(k.values[form][i])
	}
	return c.macNames[form][n], b.String(), nil
}

// Check reports whether d is still alive now: nil, ErrExpired or ErrIdle. Read
// applies it; a caller that caches decoded sessions applies it on every use.
func (c *Codec) Check(d *Data) error {
	now := c.now()
	if !now.Before(d.Created.Add(c.lifetime)) {
		return ErrExpired
	}
	if !now.Before(d.Refreshed.Add(c.idle)) {
		return ErrIdle
	}
	return nil
}

// Lifetime is the absolute session lifetime the codec enforces.
func (c *Codec) Lifetime() time.Duration { return c.lifetime }

// IdleTimeout is the idle timeout the codec enforces: the longest a cookie
// lives without a request.
func (c *Codec) IdleTimeout() time.Duration { return c.idle }

// End is when d's absolute lifetime ends, however often it is refreshed: the
// last moment a revocation of d must be kept.
func (c *Codec) End(d *Data) time.Time { return d.Created.Add(c.lifetime) }

// Expiry is when d dies unless refreshed: the earlier of the end of its lifetime
// and the end of its idle window.
func (c *Codec) Expiry(d *Data) time.Time {
	abs, idle := d.Created.Add(c.lifetime), d.Refreshed.Add(c.idle)
	if idle.Before(abs) {
		return idle
	}
	return abs
}

// NeedsRefresh reports whether the cookie should be rewritten to slide the idle
// window: once a quarter of IdleTimeout has passed since the last write, or one
// minute if that is longer, but never later than half of IdleTimeout. Most requests
// therefore write no cookie, at the price of the idle timeout being measured from the
// last write: a user idle for three quarters of it may already be logged out. Once
// the idle window reaches the end of the lifetime, rewriting gains nothing and this
// stays false. A session that only an old secret opened always needs a refresh,
// so every user seen while secrets rotate moves to the new one.
func (c *Codec) NeedsRefresh(d *Data) bool {
	if d.oldSecret {
		return true // reseal under the current secret while the old one still opens it
	}
	if !d.Refreshed.Add(c.idle).Before(d.Created.Add(c.lifetime)) {
		return false
	}
	every := min(max(c.idle/4, time.Minute), c.idle/2)
	return c.now().Sub(d.Refreshed) >= every
}

// Write sets the session cookies for d. It sets d.Refreshed to now (and d.Created,
// when zero), both in whole seconds, and d.ID when empty, so it modifies d: pass a copy if d is shared
// with other goroutines, such as a cached session. The chunks beyond the new count
// that the request carried (up to "_9": the previous release wrote ten), and any
// chunks under the other name form, are deleted.
// Write refuses a session whose lifetime is over (ErrExpired) or that encodes to more
// than MaxSessionData bytes, so needs more than MaxChunks cookies (ErrTooLarge).
func (c *Codec) Write(w http.ResponseWriter, r *http.Request, d *Data, secure bool) error {
	if d.Sub == "" {
		return errors.New("session: writing a session without a subject")
	}
	if duplicateField(d.Fields) {
		return errors.New("session: writing a session with a field named twice")
	}
	now := time.Unix(c.now().Unix(), 0)
	if d.Created.IsZero() {
		d.Created = now
	}
	if d.ID == "" {
		d.ID = NewID()
	}
	d.Created = time.Unix(d.Created.Unix(), 0)
	d.Refreshed = now
	d.oldSecret = false
	exp := c.Expiry(d)
	if !now.Before(exp) {
		return fmt.Errorf("writing session: %w", ErrExpired)
	}
	form := formOf(secure)
	chunks, err := c.sealSession(d, form)
	if err != nil {
		return err
	}
	// The browser keeps the cookie until the lifetime ends, past the idle
	// window: the idle timeout is judged here from the sealed Refreshed, and
	// a request after it still tells who it came from (Subject), so that a
	// form it carries can be kept for the same user's next login.
	maxAge := maxAgeUntil(now, c.End(d))
	for i, v := range chunks {
		setCookie(w, form, c.chunkNames[form][i], v, maxAge)
	}
	var k carried
	c.scan(r, &k)
	for f := range 2 {
		for i := range chunkNameSlots {
			if k.seen[f]&(1<<i) != 0 && (f != form || i >= len(chunks)) {
				expire(w, f, c.chunkNames[f][i])
			}
		}
	}
	return nil
}

// sealSession encodes, seals and splits d. The chunk count is bound into the MAC
// name, and the sealed length does not depend on that name, so the count is
// predicted from the payload size; the rare misprediction costs one more seal.
func (c *Codec) sealSession(d *Data, form int) ([]string, error) {
	payload := marshalSession(d)
	size := len(payload)
	if size > MaxSessionData {
		return nil, fmt.Errorf("%w: %d bytes of session data, at most %d fit", ErrTooLarge, size, MaxSessionData)
	}
	n := chunkCount(sealedLen(size))
	for try := range 2 {
		if n > MaxChunks {
			break
		}
		if try > 0 {
			payload = marshalSession(d) // seal encrypted the first one in place
		}
		v, err := c.seal(c.macNames[form][n], payload)
		if err != nil {
			return nil, err
		}
		if got := chunkCount(len(v)); got != n {
			n = got
			continue
		}
		chunks := make([]string, n)
		for i := range chunks {
			chunks[i] = v[i*chunkSize : min((i+1)*chunkSize, len(v))]
		}
		chunks[0] = countPrefix(n) + chunks[0]
		return chunks, nil
	}
	return nil, fmt.Errorf("%w: %d bytes of session data need more than %d cookies", ErrTooLarge, size, MaxChunks)
}

// sealedLen is the length of a sealed value for a payload of n bytes: the
// marker, then base64 (unpadded) of the nonce, the ciphertext and the tag.
func sealedLen(n int) int {
	return len(sealMarker) + base64.RawURLEncoding.EncodedLen(n+sealOverhead)
}

// Clear deletes every session cookie the request carried, in both name forms, and
// the base name of the form secure selects even if the request did not carry it.
func (c *Codec) Clear(w http.ResponseWriter, r *http.Request, secure bool) {
	var k carried
	c.scan(r, &k)
	form := formOf(secure)
	k.seen[form] |= 1
	for f := range 2 {
		for i := range chunkNameSlots {
			if k.seen[f]&(1<<i) != 0 {
				expire(w, f, c.chunkNames[f][i])
			}
		}
	}
}

// IDLen is the random bytes in a session id: 128 bits, unguessable.
const IDLen = 16

// NewID is a fresh session id.
func NewID() string {
	var b [IDLen]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
