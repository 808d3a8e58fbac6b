package e2e

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// Clients that are not browsers, through a real Caddy: a gRPC call gets a
// gRPC status, a WebSocket handshake the 401 JSON; neither is ever
// redirected to sgID, and neither reaches the app.

// A gRPC call without a session, over HTTP/2 (TLS, as gRPC runs), ends with
// UNAUTHENTICATED as a trailers-only response: status 200, grpc-status in the
// headers, no body. So does a call the require rules refuse, with
// PERMISSION_DENIED.
func TestGRPCCallsGetAGRPCStatusNeverJSONOrARedirect(t *testing.T) {
	srv := sgidtest.Start(t, sgidtest.Options{Persona: minorPersona})
	g := newGateway(t, gatewayOptions{sgid: srv, directives: adultsOnly, https: true})
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true,
	}}
	refused := g.newBrowser()
	refused.get(g.base + "/") // logged in, and refused by require
	for _, tt := range []struct {
		what    string
		cookies []*http.Cookie
		status  string
	}{
		{"without a session", nil, "16"},
		{"with a session require refuses", refused.cookies(g.base), "7"},
	} {
		// One unary message: no compression, length 0.
		req, err := http.NewRequest(http.MethodPost, g.base+"/helloworld.Greeter/SayHello", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("TE", "trailers")
		for _, c := range tt.cookies {
			req.AddCookie(c)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("the call went over %s, want HTTP/2", resp.Proto)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Grpc-Status") != tt.status || resp.Header.Get("Grpc-Message") == "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc") || len(body) != 0 {
			t.Errorf("%s: %d %v body %q, want 200, content-type application/grpc, grpc-status %s with a message, no body",
				tt.what, resp.StatusCode, resp.Header, body, tt.status)
		}
		if resp.Header.Get("Location") != "" {
			t.Errorf("%s: a gRPC call was redirected to %s", tt.what, resp.Header.Get("Location"))
		}
	}
}

// A WebSocket handshake without a session gets the 401 JSON with the login
// URL, never a 302 to sgID: not when its Accept names HTML, not when it says
// it is a navigation.
func TestWebSocketHandshakeWithoutASessionGets401NeverARedirect(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser().noFollow()
	for _, extra := range [][]string{
		{"Sec-Fetch-Mode: websocket"},
		{"Accept: text/html"},
		{"Sec-Fetch-Mode: navigate"},
	} {
		headers := append([]string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}, extra...)
		resp, body := b.do(http.MethodGet, g.base+"/socket", "text/html", headers...)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error":"login_required"`) ||
			!strings.Contains(body, `"login_url":"/.sgid/login?return_to=%2Fsocket"`) {
			t.Errorf("%v: %d %q (Location %q), want 401 with the login JSON", extra, resp.StatusCode, body, resp.Header.Get("Location"))
		}
	}
}
