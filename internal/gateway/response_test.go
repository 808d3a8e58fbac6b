package gateway

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestPrivateCacheControlKeepsSharedCachesOut(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{nil, "private"},
		{[]string{"public, max-age=600"}, "private, max-age=600"},
		{[]string{"PUBLIC", "s-maxage=600 , max-age=60,must-revalidate"}, "private, max-age=60, must-revalidate"},
		{[]string{`private="Set-Cookie", max-age=600`}, "private, max-age=600"},
		{[]string{`no-cache="Set-Cookie, X-Foo", public`}, `private, no-cache="Set-Cookie, X-Foo"`},
		{[]string{`no-cache="a\", public", max-age=1`}, `private, no-cache="a\", public", max-age=1`},
		{[]string{"private, max-age=60"}, "private, max-age=60"},
		{[]string{"no-store, public"}, "no-store"},
		{[]string{", ,max-age=5,"}, "private, max-age=5"},
	} {
		if got := privateCacheControl(c.in); got != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

// probeWriter records the Cache-Control the client would see at each point
// the header can go out, and can be hijacked.
type probeWriter struct {
	header   http.Header
	events   []string
	hijacked bool
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) record(what string) {
	p.events = append(p.events, what+": "+strings.Join(p.header.Values("Cache-Control"), ", "))
}
func (p *probeWriter) WriteHeader(status int) { p.record(http.StatusText(status)) }
func (p *probeWriter) Write(b []byte) (int, error) {
	p.record("write")
	return len(b), nil
}
func (p *probeWriter) Flush() { p.record("flush") }
func (p *probeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	p.hijacked = true
	return nil, nil, nil
}

func TestCacheGuardSealsOnTheFirstFinalResponse(t *testing.T) {
	for _, c := range []struct {
		name   string
		cookie bool
		set    string // the upstream's Cache-Control
		serve  func(w http.ResponseWriter)
		want   []string
	}{
		{"103 then 200", false, "", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusOK)
		}, []string{"Early Hints: ", "OK: private"}},
		{"Write alone", false, "", func(w http.ResponseWriter) { w.Write([]byte("x")) }, []string{"write: private"}},
		{"Flush through a ResponseController", true, "public, max-age=9", func(w http.ResponseWriter) {
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Error(err)
			}
		}, []string{"flush: private, max-age=9"}},
		{"the upstream's own choice without a cookie", false, "public, max-age=9", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusOK)
		}, []string{"OK: public, max-age=9"}},
		{"once: a later change is the next handler's", true, "public", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusOK)
			w.Header().Set("Cache-Control", "public")
			w.Write([]byte("x"))
		}, []string{"OK: private", "write: public"}},
	} {
		p := &probeWriter{header: http.Header{}}
		if c.set != "" {
			p.header.Set("Cache-Control", c.set)
		}
		c.serve(newCacheGuard(p, c.cookie))
		if strings.Join(p.events, " | ") != strings.Join(c.want, " | ") {
			t.Errorf("%s: %q, want %q", c.name, p.events, c.want)
		}
	}

	p := &probeWriter{header: http.Header{"Cache-Control": {"public"}}}
	g := newCacheGuard(p, true)
	if _, err := g.ReadFrom(strings.NewReader("body")); err != nil {
		t.Fatal(err)
	}
	if want := []string{"write: private"}; strings.Join(p.events, "|") != strings.Join(want, "|") {
		t.Errorf("ReadFrom: %q, want %q", p.events, want)
	}

	if _, _, err := http.NewResponseController(newCacheGuard(p, false)).Hijack(); err != nil || !p.hijacked {
		t.Errorf("Hijack through a ResponseController: %v, hijacked %v", err, p.hijacked)
	}
}
