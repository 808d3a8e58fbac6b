package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Caddy's own log lines, at its default level (INFO), must not carry the
// identity the gateway hands the upstream; nor its access log the callback's
// code and state. logs.go says which lines could, and why.

// When the upstream fails before a response (connection refused, a retry that
// runs out, a response header timeout), what Caddy logs at ERROR is the
// request as the client sent it, before the gateway added the identity; the
// request reverse_proxy sent is only in its DEBUG line.
func TestTrustLogsUpstreamFailingBeforeAResponseLogsNoIdentity(t *testing.T) {
	log := newCaddyLog(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	refused := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	routes := []struct{ path, proxy string }{
		{"/refused", refused},
		{"/retried", refused + " {\n\t\t\tlb_try_duration 300ms\n\t\t}"},
		{"/header-timeout", slow.URL + " {\n\t\t\ttransport http {\n\t\t\t\tresponse_header_timeout 200ms\n\t\t\t}\n\t\t}"},
	}
	var site strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&site, "handle %s {\n\t\treverse_proxy %s\n\t}\n\t", r.path, r.proxy)
	}
	g := newGateway(t, gatewayOptions{globalExtra: log.option, siteExtra: site.String()})
	id := personaIdentity(g)
	b := g.newBrowser()
	g.login(b, "/")
	for _, r := range routes {
		resp, _ := b.get(g.base + r.path)
		if resp.StatusCode < 500 {
			t.Fatalf("%s: status %d, want the upstream's failure", r.path, resp.StatusCode)
		}
		awaitLine(t, r.path, func() string { return log.text(t) }, `"level":"error"`, `"uri":"`+r.path+`"`)
	}
	id.assertNoLeak(t, "the Caddy log", log.text(t))
}

// logFilter is the README's log filter (Logs) for newGateway's headers: it
// deletes the identity headers from the request reverse_proxy logs.
const logFilter = `format filter {
			request>headers>X-Sgid-Sub delete
			request>headers>X-Sgid-Myinfo-Name delete
			request>headers>X-Email delete
			request>headers>X-Sgid-Assertion delete
		}`

// An upstream that fails in the middle of a body (a reset, the transport's
// read_timeout) makes reverse_proxy log its WARN line with the identity, and
// no handler can stop it (logs.go): the README's log filter does.
func TestTrustLogsUpstreamFailingMidBodyNeedsTheLogFilter(t *testing.T) {
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + strings.Repeat("y", 5000))
		bw.Flush()
		time.Sleep(50 * time.Millisecond)
		conn.(*net.TCPConn).SetLinger(0) // a reset, not a clean close
		conn.Close()
	}))
	t.Cleanup(reset.Close)
	for _, filtered := range []bool{false, true} {
		t.Run(map[bool]string{false: "default log", true: "with the filter"}[filtered], func(t *testing.T) {
			lines := []string{"level INFO"}
			if filtered {
				lines = append(lines, logFilter)
			}
			log := newCaddyLog(t, lines...)
			g := newGateway(t, gatewayOptions{globalExtra: log.option, siteExtra: "handle /reset {\n\t\treverse_proxy " + reset.URL + "\n\t}"})
			id := personaIdentity(g)
			b := g.newBrowser()
			g.login(b, "/")
			if resp, err := b.client.Get(g.base + "/reset"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			line := awaitLine(t, "the Caddy log", func() string { return log.text(t) }, "aborting with incomplete response", `"uri":"/reset"`)
			if found := id.leak(line); filtered && found != "" {
				t.Errorf("with the filter, the line holds %s", found)
			} else if !filtered && found == "" {
				t.Errorf("reverse_proxy no longer logs the identity when an upstream fails mid-body: logs.go and the README's Logs are out of date: %.300s", line)
			}
			if filtered && !strings.Contains(line, `"User-Agent"`) {
				t.Errorf("the filter took more than the identity: %.300s", line)
			}
		})
	}
}

// The callback's URL holds the authorization code and the state, and the
// access log would record it: the gateway leaves its line out (log_skip).
// Every other request is logged, with the sub as user_id.
func TestTrustLogsAccessLogHoldsNoCallbackCodeOrState(t *testing.T) {
	log, access := newCaddyLog(t), newAccessLog(t)
	g := newGateway(t, gatewayOptions{globalExtra: log.option, siteExtra: access.option})
	id := personaIdentity(g)
	b := g.newBrowser()
	cb := g.callbackURL(b, "/after-login")
	q := mustURL(t, cb).Query()
	code, state := q.Get("code"), q.Get("state")
	if code == "" || state == "" {
		t.Fatalf("the callback URL %s has no code or state", cb)
	}
	// A browser following the 303 sends the referrer of the navigation that
	// led to the callback (Fetch, HTTP-redirect fetch), here none; Go's
	// client would send the callback URL itself.
	b.client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		req.Header.Del("Referer")
		return nil
	}
	if resp, body := b.get(cb); upstreamSaw(t, resp, body).Path != "/after-login" {
		t.Fatalf("the login landed on %s", upstreamSaw(t, resp, body).Path)
	}
	resp, _ := b.noFollow().get(cb) // replayed: refused, logged by the handler
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the replayed callback: status %d, want 400", resp.StatusCode)
	}
	b.get(g.base + "/.sgid/callback?" + url.Values{"error": {"access_denied"}, "state": {state}}.Encode())
	// The callback URL sent with a Host of another port: misdirected (421),
	// and still not in the access log.
	mis, err := http.NewRequest(http.MethodGet, cb, nil)
	if err != nil {
		t.Fatal(err)
	}
	mis.Host = "127.0.0.1:1"
	if resp, err := http.DefaultTransport.RoundTrip(mis); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("the callback on another Host: %v %v, want 421", resp, err)
	} else {
		resp.Body.Close()
	}

	awaitLine(t, "the access log", func() string { return access.text(t) }, `"uri":"/after-login"`, `"user_id":"`+id.sub+`"`)
	text := access.text(t)
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var entry struct {
			Request struct{ URI string } `json:"request"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("not an access log line: %v: %.200s", err, line)
		}
		if strings.HasPrefix(entry.Request.URI, reservedCallback) || strings.Contains(entry.Request.URI, state) {
			t.Errorf("the access log has the callback: %.200s", redact(line, entry.Request.URI))
		}
	}
	// The state is also in the Location of the redirect to sgID that
	// started the login (resp_headers), which cannot be trimmed; without
	// the code and the browser's attempt cookie it lets no one in.
	if strings.Contains(text, code) {
		t.Error("the access log holds the code")
	}
	logs := log.text(t)
	if !strings.Contains(logs, "login completed") || !strings.Contains(logs, "sgid request refused") {
		t.Error("the handler's lines for the callback's outcomes are not in the Caddy log")
	}
	if strings.Contains(logs, code) {
		t.Error("the Caddy log holds the code")
	}
}

const reservedCallback = "/.sgid/callback"
