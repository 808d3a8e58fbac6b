package caddysgid

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// buildForTest builds h as Provision does, from what Provision would resolve
// for a site at redirectURI, without a Caddy config: the keys and secrets
// must be in h (no storage), and now is the codec's clock (nil: time.Now).
func buildForTest(tb testing.TB, h *Handler, redirectURI string, now func() time.Time) {
	tb.Helper()
	ident := func(_, v string) (string, error) { return v, nil }
	res := resolved{clientID: h.ClientID, clientSecret: h.ClientSecret, privateKey: h.PrivateKey,
		hostname: h.Hostname, observe: metrics.observeSgidCall, now: now}
	var err error
	if res.site, err = newSite(redirectURI, h.Audience, nil); err != nil {
		tb.Fatal(err)
	}
	if res.sessionSecrets, err = h.sessionSecrets(ident, nil); err != nil {
		tb.Fatal(err)
	}
	if res.signingKeys, res.signingSecret, err = h.signingKeys(ident, nil, res.site); err != nil {
		tb.Fatal(err)
	}
	if err := h.build(res); err != nil {
		tb.Fatal(err)
	}
}

// Table tests of the pure helpers the pipeline is built on.

func TestSafeReturnToKeepsOnlyPathsOnThisSite(t *testing.T) {
	long := "/" + strings.Repeat("a", 511)
	for _, tt := range []struct{ in, want string }{
		{"/app/page?q=1", "/app/page?q=1"},
		{"/", "/"},
		{"", "/"},
		{"app/page", "/"},
		{"https://evil.example/", "/"},
		{"//evil.example/", "/"},
		{`/\evil.example/`, "/"},
		{"/a\\b", "/"},
		{"/a\nb", "/"},
		{"/a\x7fb", "/"},
		{"/.sgid/logout", "/"},
		{"/.sgid/", "/"},
		{"/app/../.sgid/login", "/"},
		{"/app/%2e%2e/.sgid/login", "/"},
		{"/app%23/../.sgid/logout", "/"},
		{"/.sgidx/page", "/.sgidx/page"},
		{long, long},
		{long + "b", "/"},
		{"/%zz", "/"},
	} {
		if got := safeReturnTo(tt.in); got != tt.want {
			t.Errorf("safeReturnTo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEncodeHeaderValueIsExactAndPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"TAN AH KOW", "TAN AH KOW"},
		{"", ""},
		{"100%", "100%25"},
		{"BLK 1\nSINGAPORE", "BLK 1%0ASINGAPORE"},
		{"Zoë", "Zo%C3%AB"},
		{"a\x00b\x7f", "a%00b%7F"},
		{"~!@#$^&*()", "~!@#$^&*()"},
	} {
		if got := encodeHeaderValue(tt.in); got != tt.want {
			t.Errorf("encodeHeaderValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValidHeaderNameIsAnRFC9110Token(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"X-Email", true},
		{"x_email.v2", true},
		{"!#$%&'*+-.^_`|~09azAZ", true},
		{"", false},
		{"X Email", false},
		{"X-Email:", false},
		{"X-Émail", false},
		{"X\nY", false},
	} {
		if got := validHeaderName(tt.in); got != tt.ok {
			t.Errorf("validHeaderName(%q) = %t, want %t", tt.in, got, tt.ok)
		}
	}
}

// One rule tells a browser from a script; a login redirect also needs a method
// it can answer.
func TestWantsPageAndIsNavigation(t *testing.T) {
	for _, tt := range []struct {
		method     string
		headers    map[string]string
		page, navi bool
	}{
		{"GET", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, true, true},
		{"GET", map[string]string{"Sec-Fetch-Mode": "navigate"}, true, true},
		{"HEAD", map[string]string{"Accept": "text/html,application/xhtml+xml"}, true, true},
		{"POST", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, true, false},
		{"GET", map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "text/html"}, false, false},
		{"GET", map[string]string{"Accept": "application/json"}, false, false},
		{"GET", map[string]string{}, false, false},
		{"GET", map[string]string{"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"}, false, false},
	} {
		r := httptest.NewRequest(tt.method, "http://app.example/", nil)
		for k, v := range tt.headers {
			r.Header.Set(k, v)
		}
		if got := wantsPage(r); got != tt.page {
			t.Errorf("%s %v: wantsPage = %t, want %t", tt.method, tt.headers, got, tt.page)
		}
		if got := isNavigation(r); got != tt.navi {
			t.Errorf("%s %v: isNavigation = %t, want %t", tt.method, tt.headers, got, tt.navi)
		}
	}
}
