package sgidtest

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"time"
)

// Faults make the server misbehave on purpose. Each field breaks one thing
// and leaves the rest of the protocol intact, so a test learns whether the
// client notices that one thing. The zero value is a well-behaved server.
type Faults struct {
	// ID token misbehaviour
	WrongIssuer, WrongAudience, WrongNonce bool // WrongNonce also sets a nonce when none was sent
	ExpiredIDToken                         bool // exp in the past (by more than any sane skew: 1h ago)
	FutureIDToken                          bool // iat 1h in the future
	MissingIssuedAt                        bool
	MissingSub                             bool
	BadSignature                           bool // valid structure, signature bytes corrupted
	UnknownKID                             bool // signed by a key that is not in the JWKS, with a kid not in it
	WrongATHash                            bool // at_hash present but wrong
	AlgNone                                bool // ID token with alg "none"
	HS256IDToken                           bool // ID token HMAC-signed with the client secret (alg confusion), with the current kid
	// Userinfo misbehaviour; the data faults need a scope besides openid.
	MismatchedSub     bool // userinfo "sub" differs from the ID token's
	GarbageKey        bool // "key" is not a valid JWE
	GarbageData       bool // the first data field (in sorted order) is not a valid JWE, the others are fine
	KeyForOtherClient bool // key JWE encrypted to some other RSA key
	DataAsJWS         bool // the last data field (in sorted order) is an RS256 JWS (3 parts) instead of a JWE
	KeyRSA1_5         bool // key encrypted with RSA1_5 (a client must refuse it)
	// ReusableCodes: an authorization code may be exchanged more than once,
	// until it expires (MockPass does this), so a relying party must refuse a
	// replayed callback on its own.
	ReusableCodes bool
	// Transport misbehaviour, per endpoint, applied before normal handling
	// in this order: Delay, then the first of Status, Malformed, Oversized.
	Delay     map[Endpoint]time.Duration // sleep before answering; cut short when the client goes away or the server closes
	Status    map[Endpoint]int           // answer with this status (e.g. 500, 503) and a small JSON body
	Malformed map[Endpoint]bool          // 200 with a body that is not valid JSON
	Oversized map[Endpoint]int           // 200 with a valid JSON object of at least this many bytes, streamed
}

// clone copies the maps so a caller changing its Faults after SetFaults
// cannot race with handlers reading them.
func (f Faults) clone() Faults {
	f.Delay = maps.Clone(f.Delay)
	f.Status = maps.Clone(f.Status)
	f.Malformed = maps.Clone(f.Malformed)
	f.Oversized = maps.Clone(f.Oversized)
	return f
}

// applyTransportFaults reports how long it slept and whether it answered the
// request itself.
func (s *Server) applyTransportFaults(e Endpoint, w http.ResponseWriter, r *http.Request) (slept time.Duration, handled bool) {
	f, _, _, _ := s.snapshot()
	if d := f.Delay[e]; d > 0 {
		if r.Body != nil && r.Body != http.NoBody {
			// net/http notices a client going away only once the body is read:
			// read it now, so a POST's delay is cut short as a GET's is. The
			// handler reads the copy, then whatever is past the bound.
			read, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(read), r.Body), r.Body}
		}
		start := time.Now()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.closing:
		}
		t.Stop()
		slept = time.Since(start)
	}
	if code := f.Status[e]; code != 0 {
		writeOAuthError(w, code, "server_error", fmt.Sprintf("sgidtest: injected status %d at %s", code, e))
		return slept, true
	}
	if f.Malformed[e] {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		// Truncated JSON: what a proxy cutting a response short delivers.
		w.Write([]byte(`{"sgidtest":"malformed`))
		return slept, true
	}
	if n := f.Oversized[e]; n > 0 {
		writeOversized(w, n)
		return slept, true
	}
	return slept, false
}

// writeOversized streams {"padding":"xxxx..."} of at least n bytes in
// chunks, so a 20 MiB answer costs neither side 20 MiB of memory here.
// There is deliberately no Content-Length: a client must bound what it reads,
// not trust a header.
func writeOversized(w http.ResponseWriter, n int) {
	const prefix, suffix = `{"padding":"`, `"}`
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	if _, err := w.Write([]byte(prefix)); err != nil {
		return
	}
	for left := n - len(prefix) - len(suffix); left > 0; left -= len(chunk) {
		if _, err := w.Write(chunk[:min(left, len(chunk))]); err != nil {
			return // the client stopped reading, as it should
		}
	}
	w.Write([]byte(suffix))
}
