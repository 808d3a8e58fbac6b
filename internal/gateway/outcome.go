package gateway

import (
	"errors"
	"net/http"
	"strings"

	"github.com/sgidproxy/caddy-sgid/sgid"
)

// An outcome is one way a request ends at the gateway instead of the app, named
// once: its status, its stable machine code (the JSON "error", an API), the
// page a person sees and what it offers to do next, the reason the log
// records and at which level, the audit event and, for a failed login, the
// label it is counted under. Pages, JSON, gRPC statuses, logs, the audit log,
// metrics and handle_errors all read it from here. None of its text holds
// personal data, nor any of <, >, & or " (an operator's page may put it into
// HTML as it is: pages.go, the placeholders).
type outcome struct {
	status   int
	code     string // the JSON "error"; stable, whatever the title says
	title    string // the page's heading
	message  string // what the page, the JSON "message" and {http.error.message} say
	reason   string // the log's reason: short and fixed
	metric   string // caddy_sgid_logins_failed_total's reason label; "" when no login failed
	event    string // the audit log's event (audit.go), besides login_failed for every row with a metric
	next     next   // what the page offers to do next (pages.go); nextLogin is also the JSON's login_url
	action   string // the login link's text, when not "Try again"
	operator bool   // the operator must act (sgID down, configuration, a fault here): logged at WARN, not INFO
}

// next is what a gateway page offers a person after an outcome: a dead end
// is never the answer when something can still be done.
type next uint8

const (
	nextNone    next = iota // nothing the person can do: the message says who can
	nextLogin               // a new login, back to where the person was going ("Try again")
	nextSwitch              // a session the gateway refuses: log out, or log in as someone else
	nextHome                // the site's home page, at the site's own address
	nextConfirm             // the site's own page that confirms a sign-out everywhere
)

// audited is the audit log's event for o (audit.go): a login that failed is
// every outcome counted as one; "" when o is no audit event.
func (o outcome) audited() string {
	if o.event == "" && o.metric != "" {
		return eventLoginFailed
	}
	return o.event
}

// because is o with the reason a user can act on after its message's first
// sentence: "... could not be kept because it holds files. ..."
func (o outcome) because(why string) outcome {
	o.message = strings.Replace(o.message, "{why}", why, 1)
	return o
}

var (
	outNotFound = outcome{status: http.StatusNotFound, code: "not_found", title: "Not found",
		message: "There is nothing here.", reason: "unknown reserved path", next: nextHome}
	outNoPublicKeys = outcome{status: http.StatusNotFound, code: "not_found", title: "Not found",
		message: "The assertion is signed with a shared secret; there are no public keys.", reason: "jwks with hs256", next: nextHome}
	outMisdirected = outcome{status: http.StatusMisdirectedRequest, code: "wrong_address", title: "Wrong address",
		message: "This site is not served at this address.", reason: "host not served by this site", next: nextHome}
	outCrossSiteEverywhere = outcome{status: http.StatusForbidden, code: "cross_site", title: "Not logged out",
		message: "Logging out everywhere must be confirmed on this site's own page.", reason: "sign-out everywhere not same-origin",
		next: nextConfirm}
	// A form a login interrupted that is not kept (form.go): {why} is a
	// formNotKept.
	outFormNotKept = outcome{status: http.StatusUnauthorized, code: "form_not_kept", title: "Your session ended",
		message: "The form you sent could not be kept because {why}. Log in, then fill it in and send it again.",
		reason:  "form not kept across the login", next: nextLogin, action: "Log in"}
	// The user stays logged in, so the page offers a way out of the session
	// as well as into another one.
	outDenied = outcome{status: http.StatusForbidden, code: "access_denied", title: "Access denied",
		message: "Your account does not meet the requirements for this site.", reason: "require", event: eventDenied, next: nextSwitch}

	outStartFailed = outcome{status: http.StatusInternalServerError, code: "login_unavailable", title: "Login unavailable",
		message: "The login could not be started.", reason: "auth request", metric: reasonStartFailed, next: nextLogin, operator: true}
	outAttemptNotWritten = outcome{status: http.StatusBadRequest, code: "login_unavailable", title: "Login unavailable",
		message: "The login could not be started.", reason: "attempt cookie", metric: reasonStartFailed, next: nextLogin, operator: true}
	outNoAttempt = outcome{status: http.StatusBadRequest, code: "login_expired", title: "Login expired",
		message: "This login link has expired or was already used.", reason: "no login attempt for this state", metric: reasonNoAttempt, next: nextLogin}
	outAttemptSpent = outcome{status: http.StatusBadRequest, code: "login_expired", title: "Login expired",
		message: "This login link has expired or was already used.", reason: "login attempt already used", metric: reasonNoAttempt, next: nextLogin}

	outCancelled = outcome{status: http.StatusForbidden, code: "login_cancelled", title: "Login cancelled",
		message: "The login was cancelled.", reason: "cancelled", metric: reasonCancelled, next: nextLogin}
	outCallbackRefused = outcome{status: http.StatusBadRequest, code: "login_failed", title: "Login failed",
		message: "sgID did not complete the login.", reason: "error on the callback", metric: reasonSgidError, next: nextLogin, operator: true}
	outCallbackSgidDown = outcome{status: http.StatusBadGateway, code: "sgid_unavailable", title: "sgID unavailable",
		message: "sgID could not be reached. Please try again in a moment.", reason: "sgid unavailable", metric: reasonSgidError, next: nextLogin, operator: true}
	outSgidUnavailable = outcome{status: http.StatusBadGateway, code: "sgid_unavailable", title: "sgID unavailable",
		message: "sgID could not be reached. Please try again in a moment.", reason: "sgid unavailable", metric: reasonSgidUnavailable, next: nextLogin, operator: true}
	outInvalidGrant = outcome{status: http.StatusBadRequest, code: "login_expired", title: "Login expired",
		message: "This login has expired or was already used.", reason: "invalid grant or callback", metric: reasonInvalidGrant, next: nextLogin}
	outBadCallback = outcome{status: http.StatusBadRequest, code: "login_expired", title: "Login expired",
		message: "This login has expired or was already used.", reason: "invalid grant or callback", metric: reasonBadCallback, next: nextLogin}
	outInvalidClient = outcome{status: http.StatusBadGateway, code: "login_failed", title: "Login failed",
		message: "sgID's answer could not be verified.", reason: "login failed", metric: reasonInvalidClient, next: nextLogin, operator: true}
	outVerificationFailed = outcome{status: http.StatusBadGateway, code: "login_failed", title: "Login failed",
		message: "sgID's answer could not be verified.", reason: "login failed", metric: reasonVerificationFailed, next: nextLogin, operator: true}
	outSgidError = outcome{status: http.StatusBadGateway, code: "login_failed", title: "Login failed",
		message: "sgID's answer could not be verified.", reason: "login failed", metric: reasonSgidError, next: nextLogin, operator: true}

	outSessionNotWritten = outcome{status: http.StatusInternalServerError, code: "login_failed", title: "Login failed",
		message: "The session could not be saved.", reason: "session cookie", metric: reasonSessionWrite, next: nextLogin, operator: true}
	// A session past the cookie budget would make every later request,
	// logout included, too large for the server: no session at all.
	outSessionTooLarge = outcome{status: http.StatusInternalServerError, code: "login_failed", title: "Login failed",
		message: "Your details from sgID are too large to keep in this site's session cookie. " +
			"The site's operator can forward fewer fields (README: session size).",
		reason: "session too large for its cookies", metric: reasonSessionWrite, operator: true}
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
