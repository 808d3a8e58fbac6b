package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// Caddy's own log lines, at its default level (INFO), must not carry the
// identity the gateway hands the upstream; nor its access log the callback's
// code and state. logs.go says which lines could, and why.

// streamUpstream serves /stream: a body written in 32 KB chunks, flushed, for
// as long as the client reads (up to 64 MB); after the first pause chunks it
// goes quiet for pause, then writes again, as an event stream's heartbeat. It
// reports on ended when each response ends, and how.
type streamUpstream struct {
	*httptest.Server
	ended chan streamEnd
}

type streamEnd struct {
	path     string
	at       time.Time
	complete bool // the whole body was written
}

func newStreamUpstream(t *testing.T, h2 bool) *streamUpstream {
	u := &streamUpstream{ended: make(chan streamEnd, 16)}
	chunk := []byte(strings.Repeat("x", 32<<10))
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if want := map[bool]int{false: 1, true: 2}[h2]; r.ProtoMajor != want {
			t.Errorf("the upstream got HTTP/%d, want %d", r.ProtoMajor, want)
		}
		end := streamEnd{path: r.URL.Path}
		defer func() { end.at = time.Now(); u.ended <- end }()
		q := r.URL.Query()
		if d, err := time.ParseDuration(q.Get("before")); err == nil { // slow to answer
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		pauseAfter, pause := 2048, time.Duration(0)
		if d, err := time.ParseDuration(q.Get("pause")); err == nil {
			pauseAfter, pause = 2, d
		}
		if q.Get("silent") != "" {
			pauseAfter = 2
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := 0; i < 2048; i++ {
			if i == pauseAfter {
				if q.Get("silent") != "" { // never writes again
					<-r.Context().Done()
					return
				}
				time.Sleep(pause)
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
		end.complete = true
	}))
	if h2 {
		u.EnableHTTP2 = true
		u.StartTLS()
	} else {
		u.Start()
	}
	t.Cleanup(u.Close)
	return u
}

// awaitEnd waits for the upstream's response to path to end.
func (u *streamUpstream) awaitEnd(t *testing.T, path string, within time.Duration) streamEnd {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e := <-u.ended:
			if e.path == path {
				return e
			}
		case <-deadline:
			t.Fatalf("the upstream's response to %s did not end within %v: the gateway holds it", path, within)
		}
	}
}

// leaveMidBody requests rawURL with c, reads the first 64 KB of the body and
// closes the connection, as a browser does when a download is cancelled.
func leaveMidBody(t *testing.T, c *http.Client, rawURL, proto string) time.Time {
	t.Helper()
	resp, err := c.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Proto != proto {
		t.Fatalf("GET %s: status %d over %s, want 200 over %s", rawURL, resp.StatusCode, resp.Proto, proto)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	resp.Body.Close() // before the end: net/http closes the connection
	return time.Now()
}

// identity is what the gateway sends upstream for the persona that logs in
// first: the sub and each forwarded field value long enough to be telling.
type identity struct {
	sub    string
	values map[string]string // what: value
}

func personaIdentity(g *gateway) identity {
	persona := sgidtest.Personas()[0]
	id := identity{sub: sgidtest.PairwiseSub(g.sgid.ClientID(), persona.ID), values: map[string]string{}}
	id.values["sub"] = id.sub
	for _, field := range []string{"myinfo.name", "myinfo.email"} { // newGateway forwards these
		id.values[field] = persona.Data[field]
	}
	return id
}

var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.(eyJ[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*`)

// leak names what of the identity line holds, or is "": a value in clear, or
// an assertion (any JWT whose payload holds the sub).
func (id identity) leak(line string) string {
	for what, v := range id.values {
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

// newAccessLog is a site's access log file (a caddyLog whose option goes in
// the site block).
func newAccessLog(t *testing.T) caddyLog {
	path := filepath.Join(tempDir(t), "access.log")
	return caddyLog{option: "log {\n\t\toutput file " + path + "\n\t}", path: path}
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

// A client that leaves in the middle of a response (a cancelled download, a
// closed tab) makes reverse_proxy log "aborting with incomplete response" at
// WARN with every header it sent upstream. Through the gateway that line is
// written at DEBUG only, and the upstream's response is still ended: a
// download's at once, a quiet stream's at its next write. A site without the
// gateway, whose requests carry a marker header, shows that the same departure
// does produce the WARN line here. Clients over HTTP/1.1 and HTTP/2, upstreams
// over both.
func TestTrustLogsClientLeavingMidResponseLogsNoIdentity(t *testing.T) {
	up, up2 := newStreamUpstream(t, false), newStreamUpstream(t, true)
	for _, client := range []struct {
		proto string
		https bool
	}{{"HTTP/1.1", false}, {"HTTP/2.0", true}} {
		t.Run(client.proto, func(t *testing.T) {
			log, access := newCaddyLog(t), newAccessLog(t)
			log.option = strings.Replace(log.option, "level INFO", "level DEBUG", 1)
			control := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
			const marker = "control-identity-7f3a"
			g := newGateway(t, gatewayOptions{
				https:       client.https,
				globalExtra: log.option,
				siteExtra: access.option + "\n\thandle /stream* {\n\t\treverse_proxy " + up.URL + "\n\t}" +
					"\n\thandle_path /h2/* {\n\t\treverse_proxy " + up2.URL + " {\n\t\t\ttransport http {\n\t\t\t\ttls_insecure_skip_verify\n\t\t\t}\n\t\t}\n\t}",
				extraSites: control + " {\n\trequest_header X-Control-Identity " + marker + "\n\treverse_proxy " + up.URL + "\n}",
			})
			id := personaIdentity(g)
			b := g.newBrowser()
			if client.https {
				b.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
			}
			g.login(b, "/")

			t.Run("control", func(t *testing.T) {
				leaveMidBody(t, http.DefaultClient, control+"/stream", "HTTP/1.1")
				up.awaitEnd(t, "/stream", 5*time.Second)
				line := awaitLine(t, "the Caddy log", func() string { return log.text(t) }, "aborting with incomplete response", marker)
				if !strings.Contains(line, `"level":"warn"`) {
					t.Fatalf("the line is not at WARN: %.300s", line)
				}
			})
			for _, upstream := range []struct {
				name, prefix string
				u            *streamUpstream
			}{{"HTTP/1.1 upstream", "", up}, {"HTTP/2 upstream", "/h2", up2}} {
				t.Run(upstream.name, func(t *testing.T) {
					t.Run("download", func(t *testing.T) {
						left := leaveMidBody(t, b.client, g.base+upstream.prefix+"/stream", client.proto)
						if e := upstream.u.awaitEnd(t, "/stream", 5*time.Second); e.complete {
							t.Fatalf("the upstream wrote the whole body %v after the client left", e.at.Sub(left))
						}
						awaitLine(t, "the access log", func() string { return access.text(t) }, `"uri":"`+upstream.prefix+`/stream"`, id.sub)
					})
					t.Run("quiet stream, then a heartbeat", func(t *testing.T) {
						left := leaveMidBody(t, b.client, g.base+upstream.prefix+"/stream?pause=1500ms", client.proto)
						e := upstream.u.awaitEnd(t, "/stream", 5*time.Second)
						if e.complete {
							t.Fatalf("the upstream wrote the whole body %v after the client left", e.at.Sub(left))
						}
						if held := e.at.Sub(left); held < time.Second {
							t.Errorf("the upstream request was ended %v after the client left, not at its next write", held)
						}
						awaitLine(t, "the access log", func() string { return access.text(t) }, `"uri":"`+upstream.prefix+`/stream?pause=1500ms"`)
					})
				})
			}
			t.Run("leaving before the response starts", func(t *testing.T) {
				c := *b.client
				c.Timeout = 300 * time.Millisecond
				if resp, err := c.Get(g.base + "/stream?before=10s"); err == nil {
					resp.Body.Close()
					t.Fatal("the response came before the client gave up")
				}
				// The upstream request is cancelled with the client's, as
				// without the gateway: the upstream does not wait out its 10s.
				up.awaitEnd(t, "/stream", 3*time.Second)
				awaitLine(t, "the access log", func() string { return access.text(t) }, `"uri":"/stream?before=10s"`, `"status":499`)
			})
			// reverse_proxy still writes its line for each departure in the
			// middle of a response, with the identity, but at DEBUG.
			var warned, debug int
			for _, line := range strings.Split(log.text(t), "\n") {
				switch {
				case strings.Contains(line, `"level":"debug"`):
					if strings.Contains(line, "aborting with incomplete response") && id.leak(line) != "" {
						debug++
					}
					continue
				case strings.Contains(line, "aborting with incomplete response"):
					warned++
				}
				id.assertNoLeak(t, "the Caddy log at INFO and above", line)
			}
			if warned != 1 || debug != 4 {
				t.Errorf("the Caddy log has %d lines aborting a response at INFO or above, want 1 (the control's), and %d at DEBUG with the identity, want 4", warned, debug)
			}
		})
	}
}

// A response whose client has left while the upstream sends nothing is held
// until the upstream writes again (above) or for the grace (logs.go,
// abandonGrace: 30s), and then ended as a complete body, which on an HTTP/1.1
// upstream logs nothing either.
func TestTrustLogsAbandonedSilentResponseIsEndedQuietlyAfterTheGrace(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the 30s grace")
	}
	log := newCaddyLog(t)
	up := newStreamUpstream(t, false)
	g := newGateway(t, gatewayOptions{globalExtra: log.option, siteExtra: "handle /stream* {\n\t\treverse_proxy " + up.URL + "\n\t}"})
	id := personaIdentity(g)
	b := g.newBrowser()
	g.login(b, "/")
	left := leaveMidBody(t, b.client, g.base+"/stream?silent=1", "HTTP/1.1")
	e := up.awaitEnd(t, "/stream", 40*time.Second)
	if held := e.at.Sub(left); held < 25*time.Second {
		t.Errorf("the upstream request was ended %v after the client left, before the grace", held)
	}
	text := log.text(t)
	if strings.Contains(text, "aborting with incomplete response") {
		t.Errorf("reverse_proxy logged the abort")
	}
	id.assertNoLeak(t, "the Caddy log", text)
}

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
			log := newCaddyLog(t)
			if filtered {
				log.option = strings.Replace(log.option, "level INFO", "level INFO\n\t\t"+logFilter, 1)
			}
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
