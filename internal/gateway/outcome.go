package gateway

import (
	"errors"
	"net/http"
	"strings"

	"github.com/sgidproxy/caddy-sgid/sgid"
)

// An outcome is one way a request ends at the gateway instead of the app, named
// once: its status, its stable machine code (the JSON "error", an API), the
// page a person sees, the reason the log records and, for a failed login, the
// label it is counted under. Pages, JSON, logs, metrics and handle_errors all
// read it from here. None of its text holds personal data.
type outcome struct {
	status  int
	code    string // the JSON "error"; stable, whatever the title says
	title   string // the page's heading
	message string // what the page, the JSON "message" and {http.error.message} say
	reason  string // the log's reason: short and fixed
	metric  string // caddy_sgid_logins_failed_total's reason label; "" when no login failed
	retry   bool   // the page offers a new login ("Try again")
	action  string // the login link's text, when not "Try again"
}

// because is o with the reason a user can act on after its message's first
// sentence: "... could not be kept because it holds files. ..."
func (o outcome) because(why string) outcome {
	o.message = strings.Replace(o.message, "{why}", why, 1)
	return o
}

var (
	outNotFound = outcome{status: http.StatusNotFound, code: "not_found", title: "Not found",
		message: "There is nothing here.", reason: "unknown reserved path"}
	outNoPublicKeys = outcome{status: http.StatusNotFound, code: "not_found", title: "Not found",
		message: "The assertion is signed with a shared secret; there are no public keys.", reason: "jwks with hs256"}
	outMisdirected = outcome{status: http.StatusMisdirectedRequest, code: "wrong_address", title: "Wrong address",
		message: "This site is not served at this address.", reason: "host not served by this site"}
	outCrossSiteEverywhere = outcome{status: http.StatusForbidden, code: "cross_site", title: "Not logged out",
		message: "Logging out everywhere must be confirmed on this site's own page.", reason: "sign-out everywhere not same-origin"}
	// A form a login interrupted that is not kept (form.go): {why} is a
	// formNotKept.
	outFormNotKept = outcome{status: http.StatusUnauthorized, code: "form_not_kept", title: "Your session ended",
		message: "The form you sent could not be kept because {why}. Log in, then fill it in and send it again.",
		reason:  "form not kept across the login", retry: true, action: "Log in"}
	outDenied = outcome{status: http.StatusForbidden, code: "access_denied", title: "Access denied",
		message: "Your account does not meet the requirements for this site.", reason: "require"}

	outStartFailed = outcome{status: http.StatusInternalServerError, code: "login_unavailable", title: "Login unavailable",
		message: "The login could not be started.", reason: "auth request", metric: reasonStartFailed}
	outAttemptNotWritten = outcome{status: http.StatusBadRequest, code: "login_unavailable", title: "Login unavailable",
		message: "The login could not be started.", reason: "attempt cookie", metric: reasonStartFailed}
	outNoAttempt = outcome{status: http.StatusBadRequest, code: "login_expired", title: "Login expired",
		message: "This login link has expired or was already used.", reason: "no login attempt for this state", metric: reasonNoAttempt, retry: true}
	outAttemptSpent = outcome{status: http.StatusBadRequest, code: "login_expired", title: "Login expired",
		message: "This login link has expired or was already used.", reason: "login attempt already used", metric: reasonNoAttempt, retry: true}

	outCancelled = outcome{status: http.StatusForbidden, code: "login_cancelled", title: "Login cancelled",
		message: "The login was cancelled.", reason: "cancelled", metric: reasonCancelled, retry: true}
	outCallbackRefused = outcome{status: http.StatusBadRequest, code: "login_failed", title: "Login failed",
		message: "sgID did not complete the login.", reason: "error on the callback", metric: reasonSgidError, retry: true}
	outCallbackSgidDown = outcome{status: http.StatusBadGateway, code: "sgid_unavailable", title: "sgID unavailable",
		message: "sgID could not be reached. Please try again in a moment.", reason: "sgid unavailable", metric: reasonSgidError, retry: true}
	outSgidUnavailable = outcome{status: http.StatusBadGateway, code: "sgid_unavailable", title: "sgID unavailable",
		message: "sgID could not be reached. Please try again in a moment.", reason: "sgid unavailable", metric: reasonSgidUnavailable, retry: true}
	outInvalidGrant = outcome{status: http.StatusBadRequest, code: "login_expired", title: "Login expired",
		message: "This login has expired or was already used.", reason: "invalid grant or callback", metric: reasonInvalidGrant, retry: true}
	outBadCallback = outcome{status: http.StatusBadRequest, code: "login_expired", title: "Login expired",
		message: "This login has expired or was already used.", reason: "invalid grant or callback", metric: reasonBadCallback, retry: true}
	outInvalidClient = outcome{status: http.StatusBadGateway, code: "login_failed", title: "Login failed",
		message: "sgID's answer could not be verified.", reason: "login failed", metric: reasonInvalidClient, retry: true}
	outVerificationFailed = outcome{status: http.StatusBadGateway, code: "login_failed", title: "Login failed",
		message: "sgID's answer could not be verified.", reason: "login failed", metric: reasonVerificationFailed, retry: true}
	outSgidError = outcome{status: http.StatusBadGateway, code: "login_failed", title: "Login failed",
		message: "sgID's answer could not be verified.", reason: "login failed", metric: reasonSgidError, retry: true}

	outSessionNotWritten = outcome{status: http.StatusInternalServerError, code: "login_failed", title: "Login failed",
		message: "The session could not be saved.", reason: "session cookie", metric: reasonSessionWrite, retry: true}
	// A session past the cookie budget would make every later request,
	// logout included, too large for the server: no session at all.
	outSessionTooLarge = outcome{status: http.StatusInternalServerError, code: "login_failed", title: "Login failed",
		message: "Your details from sgID are too large to keep in this site's session cookie. " +
			"The site's operator can forward fewer fields (README: session size).",
		reason: "session too large for its cookies", metric: reasonSessionWrite}
)

// callbackOutcome is the outcome of an error from sgid.Client.Callback. Each
// client error matches exactly one sgid error kind, and so one row.
func callbackOutcome(err error) outcome {
	var oe *sgid.OAuthError
	onCallback := errors.As(err, &oe) && oe.Endpoint == "authorize"
	switch {
	case errors.Is(err, sgid.ErrAccessDenied):
		return outCancelled
	case onCallback && (oe.Code == "server_error" || oe.Code == "temporarily_unavailable"):
		// sgID's outage codes, as the browser brought them back.
		return outCallbackSgidDown
	case onCallback:
		// Any other error= code came with the browser: a bad request, not a
		// bad gateway.
		return outCallbackRefused
	case errors.Is(err, sgid.ErrUnavailable):
		return outSgidUnavailable
	case errors.Is(err, sgid.ErrInvalidGrant):
		return outInvalidGrant
	case errors.Is(err, sgid.ErrBadCallback):
		return outBadCallback
	case errors.Is(err, sgid.ErrInvalidClient):
		return outInvalidClient
	case errors.Is(err, sgid.ErrInvalidIDToken), errors.Is(err, sgid.ErrSubMismatch), errors.Is(err, sgid.ErrDecryption):
		return outVerificationFailed
	default: // ErrOAuth from the token or userinfo endpoint, ErrBadResponse
		return outSgidError
	}
}

// outcomeError is an outcome as an error, for handle_errors: its message is the
// page's text ({http.error.message}); the error reference is the
// HandlerError's ID ({http.error.id}), the same as in the gateway's log line.
type outcomeError struct{ o outcome }

func (e outcomeError) Error() string { return e.o.message }

// Outcome lets a handle_errors route or another module tell the gateway's
// failures apart: the stable machine code, as in the JSON "error".
func (e outcomeError) Code() string { return e.o.code }
