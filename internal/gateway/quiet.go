package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/quic-go/quic-go/http3"
)

// What Caddy itself logs about a request with identity, at INFO and above
// (Caddy v2.11.9):
//
//   - reverse_proxy's "aborting with incomplete response" (WARN,
//     reverseproxy.go:1378, also through copy_response) carries the request
//     it sent upstream, every header in it: the sub, each forwarded field,
//     the assertion. The fields are encoded when the round trip returns
//     (logger.With at reverseproxy.go:1126; zap's ioCore encodes at With),
//     from reverse_proxy's own deep copy of the header map (cloneRequest,
//     reverseproxy.go:1663), after the identity has gone on the wire: nothing
//     a handler holds reaches that copy, and no handler code runs between an
//     upstream's failed read and the line. A handler can only keep a client's
//     departure from failing the copy, or have it taken for one; see
//     serveQuietly.
//   - the error log and the access log (server.go:655-684) write a copy of
//     the request made before any handler runs: the client's headers, never
//     the identity (the session cookie as REDACTED); but its URI as it came,
//     which on the callback holds the code and the state; see skipAccessLog.
//   - upstream failures before a response (connection refused, dial and
//     response header timeouts) are errors the server logs with that same
//     early copy; reverse_proxy's own line for them is DEBUG.

// abandonGrace is how long an upstream response whose client has left stays
// open, waiting for a byte to write: a write is what ends it quietly, whatever
// the transport. After it, the upstream request is cancelled with io.EOF as its
// cause, which Go's HTTP/1.1 transport returns from the body read, so that
// reverse_proxy sees the body end; an HTTP/2 upstream returns a read error, and
// reverse_proxy logs its line.
const abandonGrace = 30 * time.Second

// serveQuietly calls next so that a client leaving in the middle of a response
// ends the response without reverse_proxy's WARN line, which would carry the
// identity. Two things make reverse_proxy's body copy fail when a client
// leaves: net/http cancels the request's context, and the transport's body
// read then fails (the usual case: "reading: context canceled"); or a write to
// the client fails. So next gets a context that the client's departure cancels
// only until the response starts (before that a cancelled round trip is a
// quiet 499, as without the gateway), and a ResponseWriter whose writes, once
// the client is gone or a write fails, answer clientGone: reverse_proxy logs
// that at DEBUG and aborts the response as it would have.
//
// A failure on the upstream's side in the middle of a body (reset, the
// transport's read_timeout, a body shorter than its Content-Length) is still
// logged by reverse_proxy: README, Logs, has the log filter for that.
func serveQuietly(next caddyhttp.Handler, w http.ResponseWriter, r *http.Request) error {
	client := r.Context()
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(client))
	q := &quietWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, client: client, cancel: cancel}
	stop := context.AfterFunc(client, q.clientLeft)
	defer func() {
		if !stop() { // the client left: a grace timer may be armed
			q.finish()
		}
		cancel(context.Canceled)
	}()
	return next.ServeHTTP(q, r.WithContext(ctx))
}

const (
	beforeResponse int32 = iota // no final status has gone out
	responding                  // the response has started
	abandoned                   // the client left after the response started
	cancelled                   // the client left before it started
)

// quietWriter is the ResponseWriter of serveQuietly. http.ResponseController
// reaches the writer below through Unwrap (Flush, Hijack, deadlines).
type quietWriter struct {
	caddyhttp.ResponseWriterWrapper
	state  atomic.Int32
	client context.Context
	cancel context.CancelCauseFunc

	mu       sync.Mutex // guards grace and finished
	grace    *time.Timer
	finished bool
}

// clientLeft runs when the client's context is done.
func (q *quietWriter) clientLeft() {
	if q.state.CompareAndSwap(beforeResponse, cancelled) {
		q.cancel(context.Cause(q.client))
		return
	}
	if !q.state.CompareAndSwap(responding, abandoned) {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.finished {
		q.grace = time.AfterFunc(abandonGrace, func() { q.cancel(io.EOF) })
	}
}

func (q *quietWriter) finish() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.finished = true
	if q.grace != nil {
		q.grace.Stop()
	}
}

func (q *quietWriter) started() { q.state.CompareAndSwap(beforeResponse, responding) }

func (q *quietWriter) WriteHeader(status int) {
	if status >= 200 {
		q.started()
	}
	q.ResponseWriter.WriteHeader(status)
}

func (q *quietWriter) Write(b []byte) (int, error) {
	q.started()
	if q.state.Load() == abandoned {
		return 0, clientGone{errClientLeft}
	}
	n, err := q.ResponseWriter.Write(b)
	if err != nil {
		// The client is gone, or past the server's write_timeout: the
		// response cannot be finished either way.
		return n, clientGone{err}
	}
	return n, nil
}

var errClientLeft = errors.New("the client left")

// clientGone is a write's error once the client has left. reverse_proxy
// tells a client that cancelled from a failing upstream only for HTTP/3
// (isClientCanceledH3, reverseproxy.go:1423, which lowers its line to DEBUG);
// As lets it recognise this one too. Write must not panic instead: a
// reverse_proxy tunnel (WebSocket over HTTP/2) writes from a goroutine of its
// own, where a panic is no handler abort but the end of the process.
type clientGone struct{ err error }

func (e clientGone) Error() string { return "client gone: " + e.err.Error() }

func (e clientGone) Unwrap() error { return e.err }

func (e clientGone) As(target any) bool {
	t, ok := target.(**http3.Error)
	if ok {
		*t = &http3.Error{Remote: true, ErrorCode: http3.ErrCodeRequestCanceled}
	}
	return ok
}

// ReadFrom passes on to the writer below (sendfile for file_server);
// reverse_proxy copies with Write.
func (q *quietWriter) ReadFrom(src io.Reader) (int64, error) {
	q.started()
	return q.ResponseWriterWrapper.ReadFrom(src)
}

// Flush and FlushError start the response as well; without them
// http.ResponseController would reach past this writer through Unwrap.
func (q *quietWriter) Flush() { _ = q.FlushError() }

func (q *quietWriter) FlushError() error {
	q.started()
	return http.NewResponseController(q.ResponseWriter).Flush()
}

// skipAccessLog leaves the request out of Caddy's access log (the log_skip
// variable, server.go:1251). The callback's URL holds the authorization code
// and the state, and the access log writes the URL from the copy made before
// any handler ran (server.go:655), which no handler can reach to trim: the
// line can only be left out. What it would tell, the outcome of the login, is
// in the handler's own lines ("login completed", or "sgid request refused"
// with its error id and reason).
func skipAccessLog(r *http.Request) {
	caddyhttp.SetVar(r.Context(), caddyhttp.LogSkipVar, true)
}

// Interface guards
var (
	_ http.ResponseWriter = (*quietWriter)(nil)
	_ http.Flusher        = (*quietWriter)(nil)
	_ io.ReaderFrom       = (*quietWriter)(nil)
)
