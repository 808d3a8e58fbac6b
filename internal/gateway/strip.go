package gateway

import (
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// stripRequest removes every name the gateway owns from what the client sent,
// wherever a client can put one that reaches the upstream or undoes the
// gateway's headers:
//
//   - the header itself;
//   - Connection tokens: reverse_proxy deletes each header a Connection token
//     names, the ones the gateway sets included, so that a client could send
//     the upstream a sub without its assertion, or fields without a sub;
//   - trailers: reverse_proxy forwards the request's trailers after the body,
//     and net/http fills them in while the body is read, after ServeHTTP has
//     run (see trailerGuard).
//
// It runs first on every request, before any other decision.
func (g *Gateway) stripRequest(r *http.Request) {
	g.stripTokens(r.Header, "Connection")
	// net/http turns the Trailer header into r.Trailer's keys and deletes it,
	// except on a request that is not chunked, where it stays a plain header.
	g.stripTokens(r.Header, "Trailer")
	g.strip(r.Header)
	g.strip(r.Trailer)
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	// Trailers come only with a body of unknown length (chunked in HTTP/1.1)
	// or with trailers declared (HTTP/2 copies nothing else).
	if r.Trailer != nil || r.ContentLength < 0 {
		r.Body = &trailerGuard{ReadCloser: r.Body, g: g, r: r}
	}
}

// strip deletes every header the gateway owns from the request: the X-Sgid-
// prefix and each configured header, matched case-insensitively and with '_'
// and '.' read as '-', as CGI-style upstreams do (PHP folds '.' into its
// $_SERVER names as well as '-').
func (g *Gateway) strip(hdr http.Header) {
	for name := range hdr {
		if g.ownsHeader(name) {
			delete(hdr, name)
		}
	}
}

func (g *Gateway) ownsHeader(name string) bool {
	var buf [64]byte
	folded := buf[:0]
	if len(name) > len(buf) {
		folded = make([]byte, 0, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_' || c == '.':
			c = '-'
		}
		folded = append(folded, c)
	}
	return string(folded[:min(len(folded), len(ownedHeaderPrefix))]) == ownedHeaderPrefix || g.owned[string(folded)]
}

// stripTokens removes the names the gateway owns from a header that lists
// header names (Connection, Trailer), keeping every other token (keep-alive,
// close, Upgrade); a line left empty goes, and the header with its last line.
// Tokens are split and trimmed as reverse_proxy splits them.
func (g *Gateway) stripTokens(hdr http.Header, key string) {
	lines := hdr[key]
	if !slices.ContainsFunc(lines, g.listsOwned) {
		return // the common case allocates nothing
	}
	kept := lines[:0:0]
	for _, line := range lines {
		var tokens []string
		for t := range strings.SplitSeq(line, ",") {
			if t = textproto.TrimString(t); t != "" && !g.ownsHeader(t) {
				tokens = append(tokens, t)
			}
		}
		if len(tokens) > 0 {
			kept = append(kept, strings.Join(tokens, ", "))
		}
	}
	if len(kept) == 0 {
		delete(hdr, key)
		return
	}
	hdr[key] = kept
}

// listsOwned tells whether a comma-separated list of header names names one
// the gateway owns.
func (g *Gateway) listsOwned(line string) bool {
	for t := range strings.SplitSeq(line, ",") {
		if g.ownsHeader(textproto.TrimString(t)) {
			return true
		}
	}
	return false
}

// trailerGuard strips the names the gateway owns from the request's trailers
// as the body ends. Stripping r.Trailer when the request arrives is not
// enough: net/http fills it in the Read that returns io.EOF, and over
// HTTP/1.1 it merges every trailer the client sent into it, declared or not;
// reverse_proxy, whose body reader wraps this one, copies the map to the
// upstream request as that same Read returns. Any error counts, not only EOF:
// a body cut short may have had its trailers read too.
type trailerGuard struct {
	io.ReadCloser
	g *Gateway
	r *http.Request // its Trailer field is read at the end: net/http may set it then
}

func (b *trailerGuard) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.g.strip(b.r.Trailer)
	}
	return n, err
}
