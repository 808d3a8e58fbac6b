package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sgidproxy/caddy-sgid/revocation"
	"github.com/sgidproxy/caddy-sgid/session"
)

const auditName = "http.handlers.sgid.audit"

// deniedGateway is a gateway for http://app.example that admits adults only,
// with a revocation list, its logs observed, and the cookie of a session it
// refuses: a minor's, with a name that must never reach a log.
func deniedGateway(t *testing.T) (*Gateway, *observer.ObservedLogs, string) {
	t.Helper()
	cfg := testConfig(t, "http://app.example/.sgid/callback")
	cfg.Require = []Requirement{{Field: "myinfo.is_age_above_18", Values: []string{"true"}}}
	cfg.Forward = []Forward{{Field: "myinfo.name", Header: DefaultHeader("myinfo.name")}}
	cfg.Revocations = revocation.NewList()
	g, logs := observed(t, cfg)
	rec := httptest.NewRecorder()
	d := &session.Data{Sub: "sub-minor", Fields: []session.Field{{Name: "myinfo.name", Value: "LEE JUN WEI"}, {Name: "myinfo.is_age_above_18", Value: "false"}}}
	if err := g.codec().Write(rec, httptest.NewRequest(http.MethodGet, "http://app.example/", nil), d, false); err != nil {
		t.Fatal(err)
	}
	return g, logs, cookieHeader(rec)
}

// auditLines are the audit logger's entries, each as its message and fields.
func auditLines(logs *observer.ObservedLogs) []observer.LoggedEntry {
	return logs.FilterLoggerName(auditName).All()
}

func fieldNames(e observer.LoggedEntry) []string {
	var names []string
	for k := range e.ContextMap() {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// The audit log has one line per event, on its own logger, with exactly the
// fields it documents: the site, the sub where there is one, the event, the
// reason and the page's error reference; never a field's value.
func TestAuditLogRecordsDenialsFailedLoginsAndLogoutsWithTheirFieldsOnly(t *testing.T) {
	g, logs, cookie := deniedGateway(t)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

	r := failRequest("/admin")
	r.Header.Set("Cookie", cookie)
	rec := httptest.NewRecorder()
	if err := g.ServeHTTP(rec, r, next); err != nil || rec.Code != http.StatusForbidden {
		t.Fatalf("the minor's request: %d %v, want 403", rec.Code, err)
	}
	deniedRef := errorReference.FindStringSubmatch(rec.Body.String())[1]

	rec = httptest.NewRecorder()
	if err := g.fail(rec, failRequest("/.sgid/callback"), outCancelled, errors.New("access_denied"), "/"); err != nil {
		t.Fatal(err)
	}
	failedRef := errorReference.FindStringSubmatch(rec.Body.String())[1]

	r = failRequest("/.sgid/logout")
	r.Header.Set("Cookie", cookie)
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}

	lines := auditLines(logs)
	want := []struct {
		msg    string
		fields map[string]any
	}{
		{"access denied", map[string]any{"event": "access_denied", "site": "http://app.example", "sub": "sub-minor", "reason": "require", "error_id": deniedRef}},
		{"login failed", map[string]any{"event": "login_failed", "site": "http://app.example", "reason": "cancelled", "error_id": failedRef}},
		{"sessions revoked", map[string]any{"event": "logout", "site": "http://app.example", "sub": "sub-minor", "session": true, "shared": true}},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d audit lines, want %d: %+v", len(lines), len(want), lines)
	}
	for i, w := range want {
		got := lines[i].ContextMap()
		if lines[i].Message != w.msg {
			t.Errorf("line %d: %q, want %q", i, lines[i].Message, w.msg)
		}
		for k, v := range w.fields {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", w.msg, k, got[k], v)
			}
		}
	}
	for i, names := range [][]string{
		{"error_id", "event", "reason", "site", "sub"},
		{"error_id", "event", "reason", "site"},
		{"before", "event", "session", "shared", "site", "sub", "until"},
	} {
		if got := fieldNames(lines[i]); !slices.Equal(got, names) {
			t.Errorf("%s: fields %v, want %v", lines[i].Message, got, names)
		}
	}
	for _, e := range logs.All() {
		if s := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(s, "LEE JUN WEI") {
			t.Errorf("a log line holds the user's name: %s", e.Message)
		}
	}
	// Moved, not copied: the revocation is the audit log's alone.
	if n := len(logs.FilterLoggerName("http.handlers.sgid").FilterMessage("sessions revoked").All()); n != 0 {
		t.Errorf("the handler's own logger also has %d \"sessions revoked\" lines", n)
	}
}
