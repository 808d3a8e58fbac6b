package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestIsGRPCAndIsWebSocketReadOnlyTheirOwnMarks(t *testing.T) {
	for _, tt := range []struct {
		method      string
		headers     map[string]string
		grpc, ws    bool
		description string
	}{
		{"POST", map[string]string{"Content-Type": "application/grpc"}, true, false, "gRPC"},
		{"POST", map[string]string{"Content-Type": "application/grpc+proto"}, true, false, "gRPC with a codec"},
		{"POST", map[string]string{"Content-Type": "Application/GRPC-web-text"}, true, false, "gRPC-Web, any case"},
		{"POST", map[string]string{"Content-Type": "application/json"}, false, false, "JSON"},
		{"POST", map[string]string{"Content-Type": "application/grp"}, false, false, "a prefix of it"},
		{"GET", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}, false, true, "WebSocket over HTTP/1.1"},
		{"GET", map[string]string{"Upgrade": "h2c, WebSocket"}, false, true, "one of several upgrades"},
		{"CONNECT", map[string]string{":protocol": "websocket"}, false, true, "WebSocket over HTTP/2"},
		{"GET", map[string]string{"Upgrade": "h2c"}, false, false, "another upgrade"},
		{"GET", map[string]string{"Accept": "text/html"}, false, false, "a page"},
	} {
		r := httptest.NewRequest(tt.method, "http://app.example/", nil)
		for k, v := range tt.headers {
			r.Header[k] = []string{v}
		}
		if got := isGRPC(r); got != tt.grpc {
			t.Errorf("%s: isGRPC = %t", tt.description, got)
		}
		if got := isWebSocket(r); got != tt.ws {
			t.Errorf("%s: isWebSocket = %t", tt.description, got)
		}
	}
}

// A request without a session that is a gRPC call gets UNAUTHENTICATED as a
// trailers-only response; a WebSocket handshake gets the 401 JSON even when
// it says it accepts HTML: neither is ever sent to sgID.
func TestChallengeAnswersGRPCWithItsStatusAndWebSocketsWith401(t *testing.T) {
	g := newTestGateway(t, testConfig(t, "http://app.example/.sgid/callback"))
	grpc := failRequest("/pkg.Service/Method")
	grpc.Method = http.MethodPost
	grpc.Header.Set("Content-Type", "application/grpc")
	grpc.Header.Set("Te", "trailers")
	rec := httptest.NewRecorder()
	if err := g.challenge(rec, grpc); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || rec.Header().Get("Grpc-Status") != "16" || rec.Header().Get("Grpc-Message") == "" ||
		rec.Header().Get("Content-Type") != "application/grpc" || rec.Body.Len() != 0 {
		t.Errorf("gRPC call: %d %v %q, want 200, grpc-status 16 and a message, no body", rec.Code, rec.Header(), rec.Body)
	}

	ws := failRequest("/socket")
	ws.Header.Set("Upgrade", "websocket")
	ws.Header.Set("Connection", "Upgrade")
	rec = httptest.NewRecorder()
	if err := g.challenge(rec, ws); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("WebSocket handshake: %d %s, want the 401 JSON", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestGRPCCodeFollowsGRPCsHTTPMapping(t *testing.T) {
	for status, want := range map[int]int{401: 16, 403: 7, 404: 12, 400: 13, 502: 14, 503: 14, 421: 2, 500: 2} {
		if got := grpcCode(status); got != want {
			t.Errorf("grpcCode(%d) = %d, want %d", status, got, want)
		}
	}
	if got := grpcPercentEncode("50% off\n é"); got != "50%25 off%0A %C3%A9" {
		t.Errorf("grpcPercentEncode = %q", got)
	}
}
