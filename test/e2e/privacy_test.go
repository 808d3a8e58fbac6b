package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

func TestLogsCarryNoPersonalDataOrSecretsAndAccessLogHasTheSub(t *testing.T) {
	dir := tempDir(t)
	logFile := filepath.Join(dir, "caddy.log")
	accessFile := filepath.Join(dir, "access.log")
	g := newGateway(t, gatewayOptions{
		globalExtra: "log {\n\t\toutput file " + logFile + "\n\t\tlevel DEBUG\n\t}",
		siteExtra:   "log {\n\t\toutput file " + accessFile + "\n\t}",
	})
	b := g.newBrowser()
	g.login(b, "/private?token=abc")
	b.get(g.base + "/.sgid/callback?state=forged&code=forged")           // a bad callback, logged
	g.newBrowser().get(g.base+"/", "Cookie: sgid_session=garbage-value") // a bad cookie, logged at debug
	// Loading the next config closes the log files.
	newGateway(t, gatewayOptions{sgid: g.sgid})

	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	access, err := os.ReadFile(accessFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "login completed") || !strings.Contains(string(logs), `"level":"debug","ts"`) {
		t.Fatal("the handler's log lines are not in the captured log: the test would prove nothing")
	}
	persona := sgidtest.Personas()[0]
	sub := sgidtest.PairwiseSub(g.sgid.ClientID(), persona.ID)
	forbidden := map[string]string{"client secret": g.sgid.ClientSecret(), "sub": sub}
	for field, v := range persona.Data {
		if len(v) > 5 {
			forbidden[field] = v
		}
	}
	for what, v := range forbidden {
		for _, line := range strings.Split(string(logs), "\n") {
			// At debug level Caddy's reverse_proxy logs the headers it sends
			// upstream, identity headers included (README, troubleshooting):
			// what is held to account here is every line at info and above,
			// and every line of this handler's at any level.
			if strings.Contains(line, `"level":"debug"`) && !strings.Contains(line, `"logger":"http.handlers.sgid"`) {
				continue
			}
			if strings.Contains(line, v) {
				t.Errorf("the Caddy log holds the %s: %.160s", what, redact(line, v))
			}
		}
	}
	if !strings.Contains(string(access), `"user_id":"`+sub+`"`) {
		t.Errorf("the access log's user_id is not the sub")
	}
	for what, v := range forbidden {
		if what != "sub" && strings.Contains(string(access), v) {
			t.Errorf("the access log holds the %s", what)
		}
	}
}

// redact shows where a forbidden value sits in a log line without repeating it.
func redact(line, v string) string {
	i := strings.Index(line, v)
	start := max(0, i-120)
	return line[start:i] + "<REDACTED>"
}

// The upstream gets the identity, never the credential: the session cookie and
// any login attempt's cookie are removed from what it receives, while the app's
// own cookies pass as they were.
func TestUpstreamNeverSeesTheGatewaysCookies(t *testing.T) {
	check := func(t *testing.T, s seen, wantIdentity bool) {
		t.Helper()
		cookie := strings.Join(s.Headers["Cookie"], "; ")
		if cookie != "app_pref=dark" {
			t.Errorf("the upstream's Cookie header is %q, want only the app's app_pref=dark", cookie)
		}
		if got := s.header("X-Sgid-Sub") != ""; got != wantIdentity {
			t.Errorf("identity at the upstream: %v, want %v", got, wantIdentity)
		}
	}
	for _, anonymous := range []bool{false, true} {
		name := map[bool]string{false: "login required", true: "anonymous"}[anonymous]
		t.Run(name, func(t *testing.T) {
			o := gatewayOptions{}
			if anonymous {
				o.directives = "anonymous"
			}
			g := newGateway(t, o)
			b := g.newBrowser()
			b.client.Jar.SetCookies(mustURL(t, g.base), []*http.Cookie{{Name: "app_pref", Value: "dark"}})
			if anonymous {
				resp, body := b.get(g.base + "/")
				check(t, upstreamSaw(t, resp, body), false)
				// A stale session cookie is not passed on either.
				b.client.Jar.SetCookies(mustURL(t, g.base), []*http.Cookie{{Name: "sgid_session", Value: "1.stale"}})
				resp, body = b.get(g.base + "/")
				check(t, upstreamSaw(t, resp, body), false)
			}
			// Another tab's login in flight leaves its attempt cookie in the jar.
			resp, _ := b.noFollow().get(g.base + "/.sgid/login?return_to=/other-tab")
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d, want a redirect to sgID", resp.StatusCode)
			}
			resp, body := b.get(g.base + "/.sgid/login")
			s := upstreamSaw(t, resp, body)
			if !strings.Contains(cookieNames(b, g.base), "_login_") || !strings.Contains(cookieNames(b, g.base), "sgid_session") {
				t.Fatalf("the browser holds %s: the test needs a session and an attempt cookie", cookieNames(b, g.base))
			}
			check(t, s, true)
		})
	}
}

func cookieNames(b *browser, base string) string {
	var names []string
	for _, c := range b.client.Jar.Cookies(mustURL(b.t, base)) {
		names = append(names, c.Name)
	}
	return strings.Join(names, " ")
}
