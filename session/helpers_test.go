package session

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// t0 is an arbitrary login time: the codec's clock is always a fakeClock.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// newCodec builds a codec on a fake clock starting at t0. edit, if given, adjusts the
// config first.
func newCodec(t testing.TB, edit func(*Config)) (*Codec, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: t0}
	cfg := Config{Secrets: [][]byte{secret(1)}, Now: clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, clock
}

// browser is a cookie jar for one host that applies Set-Cookie headers the way a
// browser does, and checks on the way that every cookie is one a browser would take.
// tls is the transport of its requests: write and startLogin set it to the scheme
// they write for, as a browser is on the site it logs in to.
type browser struct {
	t   testing.TB
	jar map[string]string
	tls bool
}

func newBrowser(t testing.TB) *browser {
	return &browser{t: t, jar: map[string]string{}}
}

// apply stores or deletes the cookies a response set, and returns them.
func (b *browser) apply(rec *httptest.ResponseRecorder) []*http.Cookie {
	b.t.Helper()
	var set []*http.Cookie
	for _, line := range rec.Header().Values("Set-Cookie") {
		if n := len("Set-Cookie: ") + len(line); n >= 4096 {
			b.t.Errorf("Set-Cookie header is %d bytes, browsers drop cookies past 4096", n)
		}
		c, err := http.ParseSetCookie(line)
		if err != nil {
			b.t.Fatalf("unparsable Set-Cookie header: %v", err)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			b.t.Errorf("cookie %s: want HttpOnly, SameSite=Lax, Path=/ and no Domain; header %.80s", c.Name, line)
		}
		if isHost := strings.HasPrefix(c.Name, hostPrefix); isHost != c.Secure {
			b.t.Errorf("cookie %s: Secure=%v, want it exactly on __Host- names", c.Name, c.Secure)
		}
		// ParseSetCookie turns "Max-Age=0" into -1: both delete.
		if c.MaxAge < 0 {
			delete(b.jar, c.Name)
		} else {
			b.jar[c.Name] = c.Value
		}
		set = append(set, c)
	}
	return set
}

// request is a request over b.tls carrying the jar, in map order: no order may
// matter. It sends the whole jar, __Host- cookies over plain HTTP too, as a client
// that replays cookies could.
func (b *browser) request() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	over(r, b.tls)
	var parts []string
	for name, value := range b.jar {
		parts = append(parts, name+"="+value)
	}
	if len(parts) > 0 {
		r.Header.Set("Cookie", strings.Join(parts, "; "))
	}
	return r
}

// over makes r a request over TLS, or over plain HTTP.
func over(r *http.Request, tls bool) *http.Request {
	r.TLS = nil
	if tls {
		r.TLS = &tlsState
	}
	return r
}

var tlsState tls.ConnectionState

// names is the jar's cookie names with the given prefix.
func (b *browser) names(prefix string) []string {
	var names []string
	for name := range b.jar {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names
}

// clone copies the jar, to tamper with one copy.
func (b *browser) clone() *browser {
	c := newBrowser(b.t)
	c.tls = b.tls
	for k, v := range b.jar {
		c.jar[k] = v
	}
	return c
}

// write writes d into the browser and fails the test on error.
func (b *browser) write(c *Codec, d *Data, secure bool) []*http.Cookie {
	b.t.Helper()
	return b.respond(secure, "Write", func(w http.ResponseWriter, r *http.Request) error {
		return c.Write(w, r, d, secure)
	})
}

// respond sends the jar over TLS or plain HTTP, as secure says, has answer respond
// as the site would, and applies the cookies it set. If answer fails, so does the
// test, naming what.
func (b *browser) respond(secure bool, what string, answer func(http.ResponseWriter, *http.Request) error) []*http.Cookie {
	b.t.Helper()
	b.tls = secure
	rec := httptest.NewRecorder()
	if err := answer(rec, b.request()); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return b.apply(rec)
}

// bigValue is at least n bytes of multi-line UTF-8 with multi-byte runes and CRLFs.
func bigValue(n int) string {
	var s strings.Builder
	for i := 0; s.Len() < n; i++ {
		s.WriteString("línea ")
		s.WriteString(strings.Repeat("新", i%7))
		s.WriteString(" ✓ ")
		s.WriteByte(byte('a' + i%26))
		s.WriteString("\r\n")
	}
	return s.String()
}

func typicalData() *Data {
	return &Data{
		Sub: "u=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
		Fields: []Field{
			{Name: "myinfo.name", Value: "TAN AH KOW"},
			{Name: "myinfo.nric_number", Value: "S1234567D"},
			{Name: "myinfo.email_address", Value: "ahkow@example.gov.sg"},
		},
	}
}

func sameData(got, want *Data) bool {
	if got.ID != want.ID || got.Sub != want.Sub || got.Carried != want.Carried || !got.Created.Equal(want.Created) ||
		!got.Refreshed.Equal(want.Refreshed) || len(got.Fields) != len(want.Fields) {
		return false
	}
	for _, f := range want.Fields {
		if g, ok := got.Field(f.Name); !ok || g != f.Value {
			return false
		}
	}
	return true
}
