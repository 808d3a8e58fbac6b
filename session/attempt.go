package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
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
	// Created is when the login started, in whole seconds: AttemptTTL runs from here.
	Created time.Time
}

// maxScannedAttempts bounds the attempt cookies WriteAttempt looks at, and so the
// decoding and the deletion headers one request can cost. Only a client that forges
// its own cookies carries more than MaxAttempts; the rest expire by Max-Age.
const maxScannedAttempts = 32

// attemptName is the cookie name for the attempt with this state: 72 bits of its
// SHA-256 tell a handful of tabs apart without putting the state itself in a name.
func (c *Codec) attemptName(form int, state string) string {
	sum := sha256.Sum256([]byte(state))
	return c.loginPrefix[form] + base64.RawURLEncoding.EncodeToString(sum[:9])
}

// WriteAttempt sets the cookie for a. It sets a.Created to now when zero. When the
// request already carries MaxAttempts other attempt cookies, the oldest are deleted
// (unreadable ones first, then by Created) so that at most MaxAttempts remain,
// counting the new one. An attempt must fit one cookie: it is ErrTooLarge otherwise,
// which a ReturnTo of a few KB can cause.
func (c *Codec) WriteAttempt(w http.ResponseWriter, r *http.Request, a *Attempt, secure bool) error {
	if a.State == "" {
		return errors.New("session: writing a login attempt without a state")
	}
	if a.Created.IsZero() {
		a.Created = c.now()
	}
	a.Created = time.Unix(a.Created.Unix(), 0)
	form := formOf(secure)
	name := c.attemptName(form, a.State)
	payload := marshalAttempt(a)
	size := len(payload)
	v, err := c.seal(name, payload)
	if err != nil {
		return err
	}
	if len(v) > chunkSize {
		return fmt.Errorf("%w: %d bytes of login attempt data need more than one cookie", ErrTooLarge, size)
	}
	c.evictAttempts(w, r, form, name)
	setCookie(w, form, name, v, int(c.attemptTTL/time.Second))
	return nil
}

// evictAttempts deletes the oldest attempt cookies of this form so that, with the
// one being written (keep), at most MaxAttempts remain.
func (c *Codec) evictAttempts(w http.ResponseWriter, r *http.Request, form int, keep string) {
	type other struct {
		name    string
		created time.Time
		ok      bool
	}
	var others []other
	for name, value := range cookiePairs(r.Header) {
		if !strings.HasPrefix(name, c.loginPrefix[form]) || name == keep ||
			slices.ContainsFunc(others, func(o other) bool { return o.name == name }) {
			continue
		}
		if len(others) == maxScannedAttempts {
			break
		}
		o := other{name: name}
		if plain, err := c.open(name, value); err == nil {
			if a, ok := unmarshalAttempt(plain); ok {
				o.created, o.ok = a.Created, true
			}
		}
		others = append(others, o)
	}
	excess := len(others) - (c.maxAttempts - 1)
	if excess <= 0 {
		return
	}
	slices.SortStableFunc(others, func(x, y other) int {
		if x.ok != y.ok {
			if !x.ok {
				return -1
			}
			return 1
		}
		return x.created.Compare(y.created)
	})
	for _, o := range others[:excess] {
		expire(w, form, o.name)
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
	if len(value) > chunkSize {
		return nil, fmt.Errorf("%w: oversized login attempt cookie", ErrInvalid)
	}
	plain, err := c.open(name, value)
	if err != nil {
		return nil, err
	}
	a, ok := unmarshalAttempt(plain)
	if !ok {
		return nil, fmt.Errorf("%w: malformed login attempt payload", ErrInvalid)
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
