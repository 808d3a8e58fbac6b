package gateway

import (
	"time"

	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/revocation"
)

// The audit log is one structured line per login completed, login failed,
// access denied by require, and sessions revoked (a logout, a sign-out
// everywhere), written by a child of the handler's logger, so that Caddy's log
// config can route it on its own ("include http.handlers.sgid.audit"). A line
// holds the log's own ts, the site, the pairwise sub when there is one (it
// names a user of this site only, and is what the access log's user_id
// holds), the event, the reason and the error reference the user's page
// shows; never a field's value, a token, a code or a cookie.

// AuditLogger is the audit log's name under the handler's logger: its lines
// are logged as http.handlers.sgid.audit.
const AuditLogger = "audit"

// The audit events besides the revocations', whose event is their reason
// (revocation.ReasonLogout, ReasonEverywhere, ReasonAdmin).
const (
	eventLogin       = "login"
	eventLoginFailed = "login_failed"
	eventDenied      = "access_denied"
)

// audit is the audit log. Its events are a person's logins, refusals and
// logouts, never every request, so the child is made when one happens.
func (g *Gateway) audit() *zap.Logger { return g.logger.Named(AuditLogger) }

// auditLogin records a completed login.
func (g *Gateway) auditLogin(sub string, sgidTook time.Duration) {
	g.audit().Info("login completed", zap.String("event", eventLogin), zap.String("site", g.site.origin),
		zap.String("sub", sub), zap.Duration("sgid_duration", sgidTook))
}

// auditOutcome records an outcome that is an audit event (outcome.audited):
// sub is "" when the request had no user yet (a login that failed before
// sgID named one); id is the error reference on the user's page.
func (g *Gateway) auditOutcome(o outcome, sub, id string) {
	event := o.audited()
	if event == "" {
		return
	}
	msg := "login failed"
	if event == eventDenied {
		msg = "access denied"
	}
	fields := []zap.Field{zap.String("event", event), zap.String("site", g.site.origin)}
	if sub != "" {
		fields = append(fields, zap.String("sub", sub))
	}
	reason := o.metric // the fixed label set of caddy_sgid_logins_failed_total
	if reason == "" {
		reason = o.reason
	}
	fields = append(fields, zap.String("reason", reason), zap.String("error_id", id))
	g.audit().Info(msg, fields...)
}

// auditRevoked records sessions ended: who (the sub), what (the event is the
// revocation's reason; session says whether one session or all made before
// "before"), until when the entry holds, and whether the shared store has it.
func (g *Gateway) auditRevoked(e revocation.Entry, shared bool) {
	g.audit().Info("sessions revoked", zap.String("event", e.Reason), zap.String("site", g.site.origin),
		zap.String("sub", e.Sub), zap.Bool("session", e.Session != ""), zap.Time("before", e.Before),
		zap.Time("until", e.Expires), zap.Bool("shared", shared))
}
