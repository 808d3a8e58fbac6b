package e2e

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// Caddy's logs captured in files, and what they must not hold: the identity,
// the client secret, the callback's code. The tests of particular log lines
// are trust_logs_test.go and trust_logs_abort_test.go.

// caddyLog is a log Caddy writes to a file: option is its log block, for the
// global options (Caddy's log, newCaddyLog) or a site (its access log,
// newAccessLog).
type caddyLog struct{ option, path string }

// newCaddyLog is Caddy's log at INFO, or with lines in place of "level INFO".
func newCaddyLog(t *testing.T, lines ...string) caddyLog {
	if len(lines) == 0 {
		lines = []string{"level INFO"}
	}
	return newLogFile(t, "caddy.log", lines...)
}

// newAccessLog is a site's access log.
func newAccessLog(t *testing.T) caddyLog { return newLogFile(t, "access.log") }

func newLogFile(t *testing.T, name string, lines ...string) caddyLog {
	path := filepath.Join(tempDir(t), name)
	lines = append([]string{"output file " + path}, lines...)
	return caddyLog{option: "log {\n\t\t" + strings.Join(lines, "\n\t\t") + "\n\t}", path: path}
}

// text is what the log holds so far: nothing until Caddy writes a line.
func (l caddyLog) text(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(l.path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// assertNoPanicOrError fails on a recovered panic or an error-level line: a
// request that should end as "no session" must not be a server error.
func (l caddyLog) assertNoPanicOrError(t *testing.T) {
	t.Helper()
	l.check(t, func(line string) bool {
		return strings.Contains(line, "panic") || strings.Contains(line, `"level":"error"`)
	})
}

// assertNoPanic fails on a handler panic that net/http recovered and logged.
func (l caddyLog) assertNoPanic(t *testing.T) {
	t.Helper()
	l.check(t, func(line string) bool { return strings.Contains(line, "panic") })
}

func (l caddyLog) check(t *testing.T, bad func(string) bool) {
	t.Helper()
	text := l.text(t)
	if !strings.Contains(text, `"logger":"http.handlers.sgid"`) {
		t.Fatal("the handler's lines are not in the captured log: the check would prove nothing")
	}
	for _, line := range strings.Split(text, "\n") {
		if bad(line) {
			t.Errorf("the log has: %.300s", line)
		}
	}
}

// awaitLine waits until a line of read() holds every one of parts.
func awaitLine(t *testing.T, what string, read func() string, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(read(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no line with %q", what, parts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// identity is what the gateway sends upstream for the persona that logs in
// first: the sub and each forwarded field value long enough to be telling.
type identity struct {
	sub    string
	values map[string]string // what: value
}

func personaIdentity(g *gateway) identity {
	persona := sgidtest.Personas()[0]
	id := identity{sub: g.subOf(persona.ID), values: map[string]string{}}
	id.values["sub"] = id.sub
	for _, field := range []string{"myinfo.name", "myinfo.email"} { // newGateway forwards these
		id.values[field] = persona.Data[field]
	}
	return id
}

var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.(eyJ[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*`)

// leak names what of the identity line holds, or is "": a value in clear, or
// an assertion (any JWT whose payload holds the sub). The audit log's lines
// name the user by the pairwise sub, as the access log's user_id does
// (README: the audit log); nothing else of the identity.
func (id identity) leak(line string) string {
	for what, v := range id.values {
		if what == "sub" && isAuditLine(line) {
			continue
		}
		if strings.Contains(line, v) {
			return what
		}
	}
	for _, m := range jwtLike.FindAllStringSubmatch(line, -1) {
		payload, err := base64.RawURLEncoding.DecodeString(m[1])
		if err == nil && strings.Contains(string(payload), id.sub) {
			return "an assertion with the sub"
		}
	}
	return ""
}

// assertNoLeak fails for each line of text that holds the identity.
func (id identity) assertNoLeak(t *testing.T, what, text string) {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if found := id.leak(line); found != "" {
			v := id.values[found]
			if v == "" {
				v = "eyJ"
			}
			t.Errorf("%s holds %s: %.200s", what, found, redact(line, v))
		}
	}
}

// isAuditLine is a line of the audit log, which holds the sub by design.
func isAuditLine(line string) bool {
	return strings.Contains(line, `"logger":"http.handlers.sgid.audit"`)
}

// redact shows where a forbidden value sits in a log line without repeating it.
func redact(line, v string) string {
	i := strings.Index(line, v)
	start := max(0, i-120)
	return line[start:i] + "<REDACTED>"
}

func TestLogsCarryNoPersonalDataOrSecretsAndAccessLogHasTheSub(t *testing.T) {
	log, accessLog := newCaddyLog(t, "level DEBUG"), newAccessLog(t)
	g := newGateway(t, gatewayOptions{globalExtra: log.option, siteExtra: accessLog.option})
	b := g.newBrowser()
	g.login(b, "/private?token=abc")
	b.get(g.base + "/.sgid/callback?state=forged&code=forged")           // a bad callback, logged
	g.newBrowser().get(g.base+"/", "Cookie: sgid_session=garbage-value") // a bad cookie, logged at debug
	// Loading the next config closes the log files.
	newGateway(t, gatewayOptions{sgid: g.sgid})

	logs, access := log.text(t), accessLog.text(t)
	if !strings.Contains(logs, "login completed") || !strings.Contains(logs, `"level":"debug","ts"`) {
		t.Fatal("the handler's log lines are not in the captured log: the test would prove nothing")
	}
	persona := sgidtest.Personas()[0]
	sub := g.subOf(persona.ID)
	forbidden := map[string]string{"client secret": g.sgid.ClientSecret(), "sub": sub}
	for field, v := range persona.Data {
		if len(v) > 5 {
			forbidden[field] = v
		}
	}
	for what, v := range forbidden {
		for _, line := range strings.Split(logs, "\n") {
			// At debug level Caddy's reverse_proxy logs the headers it sends
			// upstream, identity headers included (README, troubleshooting):
			// what is held to account here is every line at info and above,
			// and every line of this handler's at any level.
			if strings.Contains(line, `"level":"debug"`) && !strings.Contains(line, `"logger":"http.handlers.sgid"`) {
				continue
			}
			if what == "sub" && isAuditLine(line) {
				continue
			}
			if strings.Contains(line, v) {
				t.Errorf("the Caddy log holds the %s: %.160s", what, redact(line, v))
			}
		}
	}
	if !strings.Contains(access, `"user_id":"`+sub+`"`) {
		t.Errorf("the access log's user_id is not the sub")
	}
	for what, v := range forbidden {
		if what != "sub" && strings.Contains(access, v) {
			t.Errorf("the access log holds the %s", what)
		}
	}
}
