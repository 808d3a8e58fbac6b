package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A client that leaves in the middle of a response, and a response left with
// no client: what reverse_proxy logs then, and that the upstream's request
// still ends.

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
			log, access := newCaddyLog(t, "level DEBUG"), newAccessLog(t)
			control := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
			const marker = "control-identity-7f3a"
			g := newGateway(t, gatewayOptions{
				https:       client.https,
				globalExtra: log.option,
				siteExtra: access.option + "\n\thandle /stream* {\n\t\treverse_proxy " + up.URL + "\n\t}" +
					"\n\thandle_path /h2/* {\n\t\treverse_proxy " + up2.URL + " {\n\t\t\ttransport http {\n\t\t\t\ttls_insecure_skip_verify\n\t\t\t}\n\t\t}\n\t}",
				extraSites: site(control, up.URL, "request_header X-Control-Identity "+marker),
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
