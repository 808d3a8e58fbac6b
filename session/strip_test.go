package session

import (
	"net/http"
	"slices"
	"testing"
)

func TestStripCookiesRemovesOnlyTheCodecsOwn(t *testing.T) {
	c, _ := newCodec(t, nil)
	attempt := c.attemptName(plainForm, "st")
	hostAttempt := c.attemptName(hostForm, "st")
	tests := []struct {
		name string
		in   []string // Cookie header lines
		want []string // nil: no Cookie header left
	}{
		{"only the session", []string{"sgid_session=1.abc"}, nil},
		{"chunks in both forms and attempts", []string{"sgid_session=2.a; sgid_session_1=b; __Host-sgid_session=1.c; " + attempt + "=x; " + hostAttempt + "=y"}, nil},
		{"others kept in order", []string{"a=1; sgid_session=1.abc; b=2;c=3"}, []string{"a=1; b=2; c=3"}},
		{"quoted and spaced values kept as sent", []string{` theme="dark" ; sgid_session_1=z;lang=en `}, []string{`theme="dark"; lang=en`}},
		{"several lines", []string{"sgid_session=1.x", "a=1; " + attempt + "=q"}, []string{"a=1"}},
		{"chunks the previous release wrote past MaxChunks", []string{"sgid_session_5=x; a=1; __Host-sgid_session_9=y"}, []string{"a=1"}},
		{"look-alikes are the app's", []string{"sgid_sessionx=1; sgid_session_10=2; sgid_session_0=3; xsgid_session=4"}, []string{"sgid_sessionx=1; sgid_session_10=2; sgid_session_0=3; xsgid_session=4"}},
		{"none of ours", []string{"a=1;;b=2"}, []string{"a=1;;b=2"}},
		{"no Cookie header", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Accept": {"text/html"}}
			if tt.in != nil {
				h["Cookie"] = slices.Clone(tt.in)
			}
			c.StripCookies(h)
			if got := h["Cookie"]; !slices.Equal(got, tt.want) || (tt.want == nil && got != nil) {
				t.Errorf("Cookie = %q, want %q", got, tt.want)
			}
			if h.Get("Accept") != "text/html" {
				t.Error("another header was touched")
			}
		})
	}
}

func TestStripCookiesLeavesNothingReadable(t *testing.T) {
	c, _ := newCodec(t, nil)
	b := newBrowser(t)
	b.write(c, typicalData(), false)
	r := b.request()
	r.Header.Add("Cookie", "app=1")
	if _, err := c.Read(r); err != nil {
		t.Fatalf("the session should read before stripping: %v", err)
	}
	c.StripCookies(r.Header)
	if _, err := c.Read(r); err != ErrNoCookie {
		t.Fatalf("after stripping Read = %v, want ErrNoCookie", err)
	}
	if ck, err := r.Cookie("app"); err != nil || ck.Value != "1" {
		t.Fatalf("the app's cookie is gone: %v", err)
	}
}

func TestStripCookiesAllocatesNothingWithoutOwnCookies(t *testing.T) {
	c, _ := newCodec(t, nil)
	h := http.Header{"Cookie": {"a=1; b=2; theme=dark"}}
	if n := testing.AllocsPerRun(100, func() { c.StripCookies(h) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}
