package sgid

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of failure a caller may need to tell apart. Every error the client returns
// matches (errors.Is) exactly one of these, except configuration errors from New.
var (
	// ErrAccessDenied: the user cancelled the login at sgID (OAuth error
	// access_denied on the callback).
	ErrAccessDenied = errors.New("sgid: the user cancelled the login")
	// ErrOAuth: sgID answered with some other OAuth error, on the callback or from
	// the token endpoint.
	ErrOAuth = errors.New("sgid: sgID returned an oauth error")
	// ErrInvalidGrant: the authorization code was expired, already used, or did not
	// match the redirect URI or PKCE verifier.
	ErrInvalidGrant = errors.New("sgid: invalid grant")
	// ErrInvalidClient: sgID rejected the client credentials.
	ErrInvalidClient = errors.New("sgid: invalid client credentials")
	// ErrUnavailable: sgID could not be reached, timed out or answered 5xx.
	ErrUnavailable = errors.New("sgid: sgID unavailable")
	// ErrBadResponse: sgID answered something that is not the protocol: malformed
	// JSON, a missing member, an oversized body, an unexpected status.
	ErrBadResponse = errors.New("sgid: malformed response from sgID")
	// ErrInvalidIDToken: the ID token failed verification; IDTokenError says why.
	ErrInvalidIDToken = errors.New("sgid: invalid ID token")
	// ErrSubMismatch: the userinfo sub is not the ID token's sub.
	ErrSubMismatch = errors.New("sgid: userinfo sub does not match the ID token")
	// ErrDecryption: the userinfo key or a data field could not be decrypted.
	ErrDecryption = errors.New("sgid: userinfo decryption failed")
	// ErrBadCallback: the callback request is not one this login attempt can accept:
	// state mismatch, or no code.
	ErrBadCallback = errors.New("sgid: invalid callback")
)

// OAuthError is an OAuth 2.0 error response from sgID: on the callback (Endpoint
// "authorize") or from the token endpoint.
type OAuthError struct {
	Endpoint    string // "authorize", "token" or "userinfo"
	Status      int    // HTTP status for the token endpoint; 0 for the callback
	Code        string // the OAuth error code, e.g. "access_denied", "invalid_grant"
	Description string // error_description, sanitised and shortened
}

func (e *OAuthError) Error() string {
	msg := fmt.Sprintf("sgid: %s endpoint returned oauth error %q", e.Endpoint, e.Code)
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Is maps the OAuth error code to the error kinds.
func (e *OAuthError) Is(target error) bool {
	switch target {
	case ErrAccessDenied:
		return e.Endpoint == "authorize" && e.Code == "access_denied"
	case ErrInvalidGrant:
		return e.Code == "invalid_grant"
	case ErrInvalidClient:
		return e.invalidClient()
	case ErrOAuth:
		return !(e.Endpoint == "authorize" && e.Code == "access_denied") &&
			e.Code != "invalid_grant" && !e.invalidClient()
	}
	return false
}

func (e *OAuthError) invalidClient() bool {
	return e.Endpoint == "token" && (e.Code == "invalid_client" || e.Status == 401)
}

// UnavailableError is sgID being unreachable, slow past the timeout, or failing.
type UnavailableError struct {
	Endpoint string // "token", "userinfo" or "jwks"
	Status   int    // the 5xx status, or 0 for a transport failure
	Err      error  // the transport error, if any
}

func (e *UnavailableError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("sgid: %s endpoint answered HTTP %d", e.Endpoint, e.Status)
	}
	return fmt.Sprintf("sgid: %s endpoint unreachable: %v", e.Endpoint, e.Err)
}

func (e *UnavailableError) Unwrap() error        { return e.Err }
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// ResponseError is a response from sgID that does not follow the protocol.
type ResponseError struct {
	Endpoint string
	Reason   string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("sgid: malformed %s response: %s", e.Endpoint, e.Reason)
}

func (e *ResponseError) Is(target error) bool { return target == ErrBadResponse }

// IDTokenError says why an ID token was refused.
type IDTokenError struct {
	Reason string // e.g. "issuer mismatch", "expired", "nonce mismatch"
	Err    error  // the underlying verification error, if any
}

func (e *IDTokenError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("sgid: invalid ID token: %s: %v", e.Reason, e.Err)
	}
	return "sgid: invalid ID token: " + e.Reason
}

func (e *IDTokenError) Unwrap() error        { return e.Err }
func (e *IDTokenError) Is(target error) bool { return target == ErrInvalidIDToken }

// DecryptionError is a userinfo value that could not be decrypted. Field is the
// scope name ("key" for the block key); the value itself never appears.
type DecryptionError struct {
	Field string
	Err   error
}

func (e *DecryptionError) Error() string {
	// go-jose quotes header values from the response in its errors: bound them.
	if e.Err == nil {
		return "sgid: decrypting userinfo " + e.Field
	}
	return fmt.Sprintf("sgid: decrypting userinfo %s: %s", e.Field, sanitize(e.Err.Error()))
}

func (e *DecryptionError) Unwrap() error        { return e.Err }
func (e *DecryptionError) Is(target error) bool { return target == ErrDecryption }

// sanitize makes text from the network safe to put in an error or a log line:
// printable ASCII only, bounded length. OAuth error parameters on the callback come
// from the browser, so they are attacker-controlled.
func sanitize(s string) string {
	const max = 200
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("...")
			break
		}
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
