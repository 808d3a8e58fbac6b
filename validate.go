package caddysgid

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid"
)

// configError is a Validate error about one subdirective, so the Caddyfile
// parser can name its line. For a repeatable subdirective (forward, require,
// session_secret), index is which of its values, in config order from 0.
type configError struct {
	subdirective string
	index        int
	err          error
}

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// invalid returns a *configError; format and args are fmt.Errorf's.
func invalid(subdirective string, index int, format string, args ...any) error {
	return &configError{subdirective: subdirective, index: index, err: fmt.Errorf(format, args...)}
}

// Validate checks the configuration: everything that can be known without
// expanding placeholders, so that mistakes fail `caddy adapt` and `caddy
// validate` with the subdirective named. An error that concerns one
// subdirective is a *configError (a missing one concerns none).
func (h *Handler) Validate() error {
	if h.ClientID == "" {
		return errors.New("client_id is required")
	}
	if h.ClientSecret == "" {
		return errors.New("client_secret is required")
	}
	if h.PrivateKey == "" {
		return errors.New("private_key is required")
	}
	if err := keyPathHint("private_key", h.PrivateKey); err != nil {
		return invalid("private_key", 0, "%w", err)
	}
	for i, k := range h.SigningKeys {
		if err := keyPathHint(fmt.Sprintf("signing_key #%d", i+1), k); err != nil {
			return invalid("signing_key", i, "%w", err)
		}
	}
	if len(h.SigningKeys) > 0 && h.SigningSecret != "" {
		return invalid("signing_secret", 0, "signing_key and signing_secret are exclusive: choose ES256 or HS256")
	}
	scopes := h.scopes()
	if err := sgid.CheckScopes(scopes); err != nil {
		return invalid("scope", 0, "scope: %w", err)
	}
	inScope := func(field string) bool { return field == "sub" || slices.Contains(scopes, field) }
	seen := map[string]string{}
	for i, f := range h.Forward {
		if err := f.check(); err != nil {
			return invalid("forward", i, "forward: %w", err)
		}
		if !inScope(f.Field) {
			return invalid("forward", i, "forward %s: the field is not requested: add it to scope", f.Field)
		}
		header := f.header()
		n := gateway.NormalizeHeader(header)
		if prev, dup := seen[n]; dup {
			return invalid("forward", i, "forward: header %s is used for both %s and %s", header, prev, f.Field)
		}
		seen[n] = f.Field
	}
	for i, r := range h.Require {
		if r.Field == "" || len(r.Values) == 0 {
			return invalid("require", i, "require: a field and at least one value are required")
		}
		if !inScope(r.Field) {
			return invalid("require", i, "require %s: the field is not requested, so no one would pass: add it to scope", r.Field)
		}
	}
	for _, d := range []struct {
		name      string
		value     caddy.Duration
		atLeast1s bool // a lifetime; the timeouts to sgID may be shorter
	}{
		{"session_lifetime", h.SessionLifetime, true},
		{"idle_timeout", h.IdleTimeout, true},
		{"assertion_lifetime", h.AssertionLifetime, true},
		{"timeout", h.Timeout, false},
		{"clock_skew", h.ClockSkew, false},
		{"revocation_poll", h.RevocationPoll, true},
	} {
		switch {
		case d.value < 0:
			return invalid(d.name, 0, "durations must not be negative")
		case d.atLeast1s && d.value != 0 && time.Duration(d.value) < time.Second:
			return invalid(d.name, 0, "%s must be at least 1s", d.name)
		}
	}
	if h.ClockSkew > caddy.Duration(10*time.Minute) {
		return invalid("clock_skew", 0, "clock_skew must be at most 10m")
	}
	lifetime := durationOr(h.SessionLifetime, session.DefaultLifetime)
	if h.IdleTimeout > 0 && time.Duration(h.IdleTimeout) > lifetime {
		return invalid("idle_timeout", 0, "idle_timeout %s is longer than the session lifetime %s", time.Duration(h.IdleTimeout), lifetime)
	}
	if err := checkRevocationStore(h.RevocationStore); err != nil && !hasPlaceholder(h.RevocationStore) {
		return invalid("revocation_store", 0, "revocation_store: %w", err)
	}
	if _, err := formReplayBytes(h.FormReplay); err != nil {
		return invalid("form_replay", 0, "form_replay: %w", err)
	}
	if h.CookieName != "" {
		if err := session.CheckName(h.CookieName); err != nil {
			return invalid("cookie_name", 0, "cookie_name %q: %w", h.CookieName, err)
		}
	}
	for i, s := range h.SessionSecrets {
		if err := session.CheckSecret(fmt.Sprintf("session_secret #%d", i+1), s); !hasPlaceholder(s) && err != nil {
			return invalid("session_secret", i, "%w", err)
		}
	}
	if err := session.CheckSecret("signing_secret", h.SigningSecret); h.SigningSecret != "" && !hasPlaceholder(h.SigningSecret) && err != nil {
		return invalid("signing_secret", 0, "%w", err)
	}
	return nil
}

// scopes are the scopes the handler requests.
func (h *Handler) scopes() []string {
	if len(h.Scopes) == 0 {
		return sgid.DefaultScopes
	}
	return h.Scopes
}

// formReplayBytes is form_replay in bytes: 0 for the default, -1 for off.
func formReplayBytes(v string) (int64, error) {
	switch v {
	case "":
		return 0, nil
	case "off":
		return -1, nil
	}
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not off or a size (64KiB, 256KB, 100000)", v)
	}
	if n < 1 || n > gateway.MaxFormReplay {
		return 0, fmt.Errorf("%s is outside 1 byte to %d bytes", v, gateway.MaxFormReplay)
	}
	return int64(n), nil
}

// hasPlaceholder tells a value that is only known at provisioning ({env.*},
// {file.*}) from a literal one.
func hasPlaceholder(s string) bool { return strings.Contains(s, "{") }

// check tells a field and header that can work from one that cannot.
func (f Forward) check() error {
	if f.Field == "" {
		return errors.New("a field is required")
	}
	if f.Header == "" && f.Field == "sub" {
		return errors.New("sub is always sent as X-Sgid-Sub; name another header to copy it to")
	}
	header := f.header()
	if !validHeaderName(header) {
		return fmt.Errorf("%q is not a valid header name", header)
	}
	n := gateway.NormalizeHeader(header)
	if n == gateway.NormalizeHeader(gateway.SubHeader) || n == gateway.NormalizeHeader(gateway.AssertionHeader) {
		return fmt.Errorf("header %s is reserved", header)
	}
	return nil
}

// validHeaderName is RFC 9110's token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func durationOr(d caddy.Duration, def time.Duration) time.Duration {
	if d > 0 {
		return time.Duration(d)
	}
	return def
}
