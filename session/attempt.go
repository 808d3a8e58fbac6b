package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Attempt is one in-flight login, kept in its own short-lived cookie. Each tab that
// starts a login gets its own cookie, named after its state, so logins in several
// tabs at once do not overwrite one another.
type Attempt struct {
	State, Nonce, CodeVerifier, RedirectURI string
	// ReturnTo is the same-origin path and query to go back to after login.
	ReturnTo string
	// Form is an opaque value the caller keeps with the attempt, sealed like
	// the rest, at most MaxAttemptForm bytes: the gateway keeps there the form
	// a login interrupted, or where it put it.
	Form string
	// Created is when the login started, in whole seconds: AttemptTTL runs from here.
	Created time.Time
}

// maxScannedAttempts bounds the attempt cookies WriteAttempt looks at, and so the
// decoding and the deletion headers one request can cost. Only a client that forges
// its own cookies carries more than MaxAttempts; the rest expire by Max-Age.
const maxScannedAttempts = 32

// MaxReturnTo is the longest Attempt.ReturnTo an attempt cookie is sized for: a
// caller caps the path and query it keeps at this, or a login from a longer URL
// fails with ErrTooLarge.
const MaxReturnTo = 512

// MaxRedirectURI is the longest Attempt.RedirectURI an attempt cookie is sized for:
// one built from the request is "https://" + a host of at most 253 + ":65535" +
// "/.sgid/callback" = 282 bytes; a caller checks a configured one against it.
const MaxRedirectURI = 300

// maxTokenLen is the longest state, nonce and PKCE verifier an attempt cookie is
// sized for; the gateway's are 43 characters (32 random bytes in base64url).
const maxTokenLen = 64

// MaxAttemptForm is the most bytes of Form an attempt keeps.
const MaxAttemptForm = 1536

// maxAttemptPayload is the encoded attempt (see encoding.go) with every field at
// the size above: tag 1 + created 10 (the longest varint) + six length prefixes of
// 2 (lengths under 16,384) + state, nonce and verifier 3 × 64 + redirect URI 300 +
// return-to 512 + form 1,536 = 2,563 bytes.
const maxAttemptPayload = 1 + binary.MaxVarintLen64 + 6*2 + 3*maxTokenLen + MaxRedirectURI + MaxReturnTo + MaxAttemptForm

// MaxAttemptValue is the longest attempt cookie value WriteAttempt writes (longer is
// ErrTooLarge) and ReadAttempt reads: maxAttemptPayload sealed (see sealedLen),
// the marker and base64 of nonce 24 + 2,563 + tag 16 = 2,603 bytes, that is
// 1 + ⌈2,603 × 4 / 3⌉ = 3,472 characters. One without a form is at most 1,421
// (the release before sealed those to as many as 1,912).
const MaxAttemptValue = len(sealMarker) + ((maxAttemptPayload+sealOverhead)*8+5)/6

// maxPlainAttemptValue is the longest value of an attempt without a form.
const maxPlainAttemptValue = len(sealMarker) + ((maxAttemptPayload-MaxAttemptForm-2+sealOverhead)*8+5)/6

// attemptLimit is the longest value WriteAttempt writes for a: its fields at
// their sizes, and no room for a form it does not hold.
func attemptLimit(a *Attempt) int {
	if a.Form == "" {
		return maxPlainAttemptValue
	}
	return MaxAttemptValue
}

// AttemptBudget is the most bytes a browser's attempt cookies add to its Cookie
// header, counted as name=value pairs (the "; " between them aside). WriteAttempt
// deletes the oldest others until those left and the new one fit it as well as
// MaxAttempts. It holds an attempt of MaxAttemptValue under the longest name (90 +
// 1 + 3,472 = 3,563 bytes), or two of the longest without a form (2 × (90 + 1 +
// 1,421) = 3,024 bytes), or five typical ones (about 600 bytes each
// under the longest name: 43-character tokens and a short return path), so a
// cross-site page that starts logins with long return paths cannot make the Cookie
// header pass MaxCookieHeaderBytes and lock the user out with 431s.
const AttemptBudget = 4096

// maxAttemptNameLen is the longest attempt cookie name: the __Host- prefix, the
// longest base name, "_login_" and 12 characters of hash.
const maxAttemptNameLen = len(hostPrefix) + maxNameLen + len("_login_") + 12

// An attempt of the longest value under the longest name must fit the budget
// alone.
const _ = uint(AttemptBudget - (maxAttemptNameLen + 1 + MaxAttemptValue))

// attemptName is the cookie name for the attempt with this state: 72 bits of its
// SHA-256 tell a handful of tabs apart without putting the state itself in a name.
func (c *Codec) attemptName(form int, state string) string {
	sum := sha256.Sum256([]byte(state))
	return c.loginPrefix[form] + base64.RawURLEncoding.EncodeToString(sum[:9])
}

// attemptForm tells whether name is an attempt cookie name of this codec, and in
// which form.
func (c *Codec) attemptForm(name string) (form int, ok bool) {
	switch {
	case strings.HasPrefix(name, c.loginPrefix[hostForm]):
		return hostForm, true
	case strings.HasPrefix(name, c.loginPrefix[plainForm]):
		return plainForm, true
	}
	return 0, false
}

// WriteAttempt sets the cookie for a. It sets a.Created to now when zero. The
// attempt must seal to at most MaxAttemptValue characters, which fields within
// MaxReturnTo and the sizes above always do; it is ErrTooLarge otherwise, and
// nothing is set. Other attempt cookies the request carries are deleted, oldest
// first (unreadable ones first, then by Created), until at most MaxAttempts remain,
// counting the new one, and their name=value pairs with the new one's fit
// AttemptBudget. Those under the other name form are deleted too, since no read
// takes them over this transport.
func (c *Codec) WriteAttempt(w http.ResponseWriter, r *http.Request, a *Attempt, secure bool) error {
	if a.State == "" {
		return errors.New("session: writing a login attempt without a state")
	}
	if a.Created.IsZero() {
		a.Created = c.now()
	}
	a.Created = time.Unix(a.Created.Unix(), 0)
	if len(a.Form) > MaxAttemptForm {
		return fmt.Errorf("%w: %d bytes of form with a login attempt, at most %d", ErrTooLarge, len(a.Form), MaxAttemptForm)
	}
	form := formOf(secure)
	name := c.attemptName(form, a.State)
	payload := marshalAttempt(a)
	size := len(payload)
	v, err := c.seal(name, payload)
	if err != nil {
		return err
	}
	if limit := attemptLimit(a); len(v) > limit {
		return fmt.Errorf("%w: %d bytes of login attempt data seal to more than %d characters", ErrTooLarge, size, limit)
	}
	c.evictAttempts(w, r, form, name, len(name)+1+len(v))
	setCookie(w, form, name, v, int(c.attemptTTL/time.Second))
	return nil
}

// evictAttempts deletes attempt cookies so that, with the one being written (keep,
// of keepSize bytes as name=value), at most MaxAttempts of this form remain within
// AttemptBudget, and none of the other form.
func (c *Codec) evictAttempts(w http.ResponseWriter, r *http.Request, form int, keep string, keepSize int) {
	type other struct {
		name    string
		form    int
		size    int // name=value bytes in the Cookie header
		created time.Time
		ok      bool // readable: an authentic attempt of this form
	}
	var others []other
	for name, value := range cookiePairs(r.Header) {
		f, mine := c.attemptForm(name)
		if !mine || name == keep ||
			slices.ContainsFunc(others, func(o other) bool { return o.name == name }) {
			continue
		}
		if len(others) == maxScannedAttempts {
			break
		}
		o := other{name: name, form: f, size: len(name) + 1 + len(value)}
		if f == form && len(value) <= MaxAttemptValue {
			c.open(name, value, func(plain []byte) bool {
				a, ok := unmarshalAttempt(plain)
				if ok {
					o.created, o.ok = a.Created, true
				}
				return ok
			})
		}
		others = append(others, o)
	}
	// Eviction order: the other form, then unreadable, then oldest.
	slices.SortStableFunc(others, func(x, y other) int {
		switch {
		case (x.form == form) != (y.form == form):
			if x.form != form {
				return -1
			}
			return 1
		case x.ok != y.ok:
			if !x.ok {
				return -1
			}
			return 1
		}
		return x.created.Compare(y.created)
	})
	count, total := 1, keepSize
	for _, o := range others {
		if o.form == form {
			count++
			total += o.size
		}
	}
	for _, o := range others {
		if o.form == form && count <= c.maxAttempts && total <= AttemptBudget {
			break
		}
		expire(w, o.form, o.name)
		if o.form == form {
			count--
			total -= o.size
		}
	}
}

// ReadAttempt returns the attempt whose State is state, if its cookie is present,
// authentic and younger than AttemptTTL. Like Read, it takes only the __Host- name
// over TLS and only the plain name over plain HTTP.
// Errors match ErrNoCookie, ErrInvalid or ErrExpired.
func (c *Codec) ReadAttempt(r *http.Request, state string) (*Attempt, error) {
	if state == "" {
		return nil, ErrNoCookie
	}
	form := formOf(r.TLS != nil)
	name := c.attemptName(form, state)
	var value string
	seen := false
	for n, v := range cookiePairs(r.Header) {
		if n == name {
			value, seen = v, true
			break
		}
	}
	if !seen {
		return nil, ErrNoCookie
	}
	if len(value) > MaxAttemptValue {
		return nil, fmt.Errorf("%w: oversized login attempt cookie", ErrInvalid)
	}
	var a *Attempt
	if _, err := c.open(name, value, func(plain []byte) (ok bool) {
		a, ok = unmarshalAttempt(plain)
		return ok
	}); err != nil {
		return nil, err
	}
	// The name already commits to the state, but only to 72 bits of its hash.
	if subtle.ConstantTimeCompare([]byte(a.State), []byte(state)) != 1 {
		return nil, fmt.Errorf("%w: login attempt state mismatch", ErrInvalid)
	}
	if !c.now().Before(a.Created.Add(c.attemptTTL)) {
		return nil, fmt.Errorf("login attempt: %w", ErrExpired)
	}
	return a, nil
}

// ClearAttempt deletes the cookie of the attempt with this state: under the form
// secure selects, and under the other form too if the request carried it.
func (c *Codec) ClearAttempt(w http.ResponseWriter, r *http.Request, state string, secure bool) {
	form := formOf(secure)
	expire(w, form, c.attemptName(form, state))
	other := 1 - form
	otherName := c.attemptName(other, state)
	for name := range cookiePairs(r.Header) {
		if name == otherName {
			expire(w, other, otherName)
			return
		}
	}
}
