package gateway

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNewSiteFixesOriginAudienceAndHost(t *testing.T) {
	for _, tt := range []struct {
		redirect, audience, fromRoute         string
		wantOrigin, wantHost, wantAud, wantRU string
	}{
		{"", "", "https://app.example.gov.sg:443", "https://app.example.gov.sg", "app.example.gov.sg", "app.example.gov.sg", "https://app.example.gov.sg:443/.sgid/callback"},
		{"", "", "http://127.0.0.1:8080", "http://127.0.0.1:8080", "127.0.0.1:8080", "127.0.0.1:8080", "http://127.0.0.1:8080/.sgid/callback"},
		{"https://App.Example.gov.sg/.sgid/callback", "legacy-app", "", "https://app.example.gov.sg", "app.example.gov.sg", "legacy-app", "https://App.Example.gov.sg/.sgid/callback"},
		{"http://app.example:80/.sgid/callback", "", "", "http://app.example", "app.example", "app.example", "http://app.example:80/.sgid/callback"},
		{"https://[::1]:8443/.sgid/callback", "", "", "https://[::1]:8443", "[::1]:8443", "[::1]:8443", "https://[::1]:8443/.sgid/callback"},
	} {
		s, err := NewSite(tt.redirect, tt.audience, func() (string, error) { return tt.fromRoute, nil })
		if err != nil {
			t.Errorf("NewSite(%q, %q): %v", tt.redirect, tt.audience, err)
			continue
		}
		if s.origin != tt.wantOrigin || s.host != tt.wantHost || s.audience != tt.wantAud || s.redirect != tt.wantRU {
			t.Errorf("NewSite(%q, %q, route %q) = origin %q host %q aud %q redirect %q; want %q %q %q %q", tt.redirect, tt.audience, tt.fromRoute,
				s.origin, s.host, s.audience, s.redirect, tt.wantOrigin, tt.wantHost, tt.wantAud, tt.wantRU)
		}
	}
	// redirect_uri wins over the route, and a route error is the site's error.
	errNoHost := errors.New("no one host")
	if _, err := NewSite("", "", func() (string, error) { return "", errNoHost }); !errors.Is(err, errNoHost) {
		t.Errorf("a route without one host: %v, want its error", err)
	}
	for _, bad := range []string{"/.sgid/callback", "ftp://x/cb", "https://user@app/cb", "https://app/cb#frag", "https://app/" + strings.Repeat("a", 400)} {
		if _, err := NewSite(bad, "", nil); err == nil {
			t.Errorf("redirect_uri %q accepted", bad)
		}
	}
}

// TestRedirectURIPathMustEndInTheCallback: the gateway takes sgID's callback
// only at /.sgid/callback (under a prefix a handle_path strips, too), so a
// redirect_uri elsewhere is a configuration error, not a login that never
// completes.
func TestRedirectURIPathMustEndInTheCallback(t *testing.T) {
	for _, tt := range []struct {
		uri string
		ok  bool
	}{
		{"https://app.example/.sgid/callback", true},
		{"https://app.example/app/.sgid/callback", true},
		{"https://app.example/auth/callback", false},
		{"https://app.example/.sgid/callback/", false},
		{"https://app.example/", false},
		{"https://app.example", false},
	} {
		_, err := ParseRedirectURI(tt.uri)
		if (err == nil) != tt.ok {
			t.Errorf("ParseRedirectURI(%q) = %v, want ok %t", tt.uri, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "must end in /.sgid/callback") {
			t.Errorf("ParseRedirectURI(%q): %v does not say where the path must end", tt.uri, err)
		}
	}
}

func TestSiteServesOnlyItsHost(t *testing.T) {
	https, _ := NewSite("https://app.example.gov.sg/.sgid/callback", "", nil)
	plain, _ := NewSite("http://127.0.0.1:8080/.sgid/callback", "", nil)
	for _, tt := range []struct {
		s     *Site
		host  string
		serve bool
	}{
		{https, "app.example.gov.sg", true},
		{https, "APP.example.gov.sg:443", true},
		{https, "app.example.gov.sg.", true},
		{https, "app.example.gov.sg:8443", false},
		{https, "other.example.gov.sg", false},
		{https, "app.example.gov.sg:80", false},
		{https, "", false},
		{plain, "127.0.0.1:8080", true},
		{plain, "127.0.0.1", false},
		{plain, "127.0.0.1:8081", false},
		{plain, "localhost:8080", false},
	} {
		if got := tt.s.serves(tt.host); got != tt.serve {
			t.Errorf("site %s serves Host %q: %t, want %t", tt.s.origin, tt.host, got, tt.serve)
		}
	}
}

func TestSessionBindingReadsTheOriginAsTheHandlerDoes(t *testing.T) {
	want := SessionBinding("https://api.id.gov.sg/v2", "c", "https://app.example")
	for _, origin := range []string{"https://App.example:443", "https://app.example/", "https://app.example"} {
		if got := SessionBinding("https://api.id.gov.sg/v2", "c", origin); !slices.Equal(got, want) {
			t.Errorf("SessionBinding(%q) = %q, want %q", origin, got, want)
		}
	}
}
