package gateway

import (
	"net/http"
	"strconv"
	"strings"
)

// gRPC and WebSocket clients are neither browsers nor the scripts the 401 JSON
// is for: a redirect to sgID means nothing to either, and a gRPC client reads
// only its status. Which requests these are, and the status a gRPC call gets.

// isGRPC is a gRPC (or gRPC-Web) call: its content type is application/grpc,
// optionally with a suffix (+proto, -web, -web-text).
func isGRPC(r *http.Request) bool {
	const grpc = "application/grpc"
	ct := r.Header.Get("Content-Type")
	return len(ct) >= len(grpc) && strings.EqualFold(ct[:len(grpc)], grpc)
}

// isWebSocket is a WebSocket handshake: HTTP/1.1's Upgrade (RFC 6455), or
// HTTP/2's extended CONNECT (RFC 8441), whose :protocol net/http puts in the
// header.
func isWebSocket(r *http.Request) bool {
	if r.Method == http.MethodConnect && strings.EqualFold(r.Header.Get(":protocol"), "websocket") {
		return true
	}
	for _, v := range r.Header.Values("Upgrade") {
		for token := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(token), "websocket") {
				return true
			}
		}
	}
	return false
}

// gRPC status codes the gateway answers with (google.golang.org/grpc/codes).
const (
	grpcUnknown          = 2
	grpcInternal         = 13
	grpcUnimplemented    = 12
	grpcPermissionDenied = 7
	grpcUnavailable      = 14
	grpcUnauthenticated  = 16
)

// grpcCode is the gRPC status for an HTTP status, by gRPC's own mapping
// (doc/http-grpc-status-mapping.md), so a client reads the same meaning
// whether the gateway or a proxy in front of it refused the call.
func grpcCode(status int) int {
	switch status {
	case http.StatusBadRequest:
		return grpcInternal
	case http.StatusUnauthorized:
		return grpcUnauthenticated
	case http.StatusForbidden:
		return grpcPermissionDenied
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return grpcUnavailable
	}
	return grpcUnknown
}

// writeGRPCStatus ends a gRPC call as a trailers-only response: HTTP 200,
// the status in the headers and no body (over HTTP/2, one HEADERS frame that
// ends the stream). message is the gateway's fixed text, percent-encoded as
// grpc-message requires.
func writeGRPCStatus(w http.ResponseWriter, code int, message string) error {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(code))
	h.Set("Grpc-Message", grpcPercentEncode(message))
	w.WriteHeader(http.StatusOK)
	return nil
}

// grpcPercentEncode encodes what grpc-message may not hold as it is: bytes
// outside printable ASCII, and '%'.
func grpcPercentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
