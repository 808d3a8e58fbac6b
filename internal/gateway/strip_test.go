package gateway

import (
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestOwnsHeaderFoldsCaseUnderscoresAndDots(t *testing.T) {
	h := withForward(t, Forward{Field: "myinfo.email", Header: "X.Email"}, Forward{Field: "myinfo.name", Header: "Legacy_Name"})
	for _, name := range []string{"X-Email", "x_email", "X.EMAIL", "legacy-name", "LEGACY.NAME", "X-Sgid-Sub", "x.sgid.anything", "X_SGID_ASSERTION"} {
		if !h.ownsHeader(name) {
			t.Errorf("%s is not stripped", name)
		}
	}
	for _, name := range []string{"X-Emails", "X-Sgidx-Sub", "Legacy-Names", "Accept"} {
		if h.ownsHeader(name) {
			t.Errorf("%s is stripped but the gateway does not own it", name)
		}
	}
}

func TestStripTokensDropsOwnedNamesAndKeepsTheRest(t *testing.T) {
	h := withForward(t, Forward{Field: "myinfo.email", Header: "X-Email"})
	for _, c := range []struct {
		in, want []string // nil want: the header goes
	}{
		{[]string{"keep-alive"}, []string{"keep-alive"}},
		{[]string{"keep-alive, X-Sgid-Sub, x_sgid_assertion, X-Email"}, []string{"keep-alive"}},
		{[]string{"X-SGID-SUB", "close,x.email , Upgrade"}, []string{"close, Upgrade"}},
		{[]string{" x-sgid-myinfo-name\t,X-Email"}, nil},
		{[]string{"X-Emails, X-Sgidx"}, []string{"X-Emails, X-Sgidx"}},
	} {
		hdr := http.Header{"Connection": slices.Clone(c.in)}
		h.stripTokens(hdr, "Connection")
		if got, ok := hdr["Connection"]; !slices.Equal(got, c.want) || ok != (c.want != nil) {
			t.Errorf("Connection %q: %q (present %v), want %q", c.in, got, ok, c.want)
		}
	}
}

// fillingBody models net/http filling the request's trailers in the Read that
// returns io.EOF: HTTP/1.1 merges every trailer into a declared map, or, when
// none was declared, sets the Trailer field of its own request.
type fillingBody struct {
	io.Reader
	fill func()
}

func (b *fillingBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF && b.fill != nil {
		b.fill()
		b.fill = nil
	}
	return n, err
}

func (b *fillingBody) Close() error { return nil }

func TestStripRequestRemovesTrailersFilledAtTheEnd(t *testing.T) {
	h := withForward(t, Forward{Field: "myinfo.email", Header: "X-Email"})
	arrived := http.Header{"X-Sgid-Sub": {"spoofed"}, "X_sgid_assertion": {"spoofed"}, "X-Email": {"spoofed"}, "X-Checksum": {"kept"}}
	for _, c := range []struct {
		name     string
		declared http.Header
	}{
		{"declared, merged into the map", http.Header{"X-Sgid-Sub": nil, "X-Checksum": nil}},
		{"undeclared, the field set at the end", nil},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.ContentLength, r.Trailer = -1, c.declared
		r.Body = &fillingBody{Reader: strings.NewReader("body"), fill: func() {
			if r.Trailer == nil {
				r.Trailer = http.Header{}
			}
			maps.Copy(r.Trailer, arrived.Clone())
		}}
		h.stripRequest(r)
		if _, ok := r.Trailer["X-Sgid-Sub"]; ok {
			t.Errorf("%s: the declared X-Sgid-Sub is still announced", c.name)
		}
		if _, err := io.ReadAll(r.Body); err != nil {
			t.Fatal(err)
		}
		if len(r.Trailer) != 1 || r.Trailer.Get("X-Checksum") != "kept" {
			t.Errorf("%s: trailers after the body %v, want only X-Checksum", c.name, r.Trailer)
		}
	}
	for _, c := range []struct {
		name string
		body io.ReadCloser
		n    int64
	}{
		{"no body", http.NoBody, 0},
		{"a body of known length", io.NopCloser(strings.NewReader("body")), 4},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Body, r.ContentLength = c.body, c.n
		h.stripRequest(r)
		if _, wrapped := r.Body.(*trailerGuard); wrapped {
			t.Errorf("%s: wrapped, though it can carry no trailers", c.name)
		}
	}
}
