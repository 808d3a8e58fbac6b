package caddysgid

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
		s, err := newSite(tt.redirect, tt.audience, func() (string, error) { return tt.fromRoute, nil })
		if err != nil {
			t.Errorf("newSite(%q, %q): %v", tt.redirect, tt.audience, err)
			continue
		}
		if s.origin != tt.wantOrigin || s.host != tt.wantHost || s.audience != tt.wantAud || s.redirect != tt.wantRU {
			t.Errorf("newSite(%q, %q, route %q) = origin %q host %q aud %q redirect %q; want %q %q %q %q", tt.redirect, tt.audience, tt.fromRoute,
				s.origin, s.host, s.audience, s.redirect, tt.wantOrigin, tt.wantHost, tt.wantAud, tt.wantRU)
		}
	}
	// redirect_uri wins over the route, and a route error is the site's error.
	if _, err := newSite("", "", func() (string, error) { return "", errNoFixedSite }); !errors.Is(err, errNoFixedSite) {
		t.Errorf("a route without one host: %v, want errNoFixedSite", err)
	}
	for _, bad := range []string{"/.sgid/callback", "ftp://x/cb", "https://user@app/cb", "https://app/cb#frag", "https://app/" + strings.Repeat("a", 400)} {
		if _, err := newSite(bad, "", nil); err == nil {
			t.Errorf("redirect_uri %q accepted", bad)
		}
	}
}

func TestSiteServesOnlyItsHost(t *testing.T) {
	https, _ := newSite("https://app.example.gov.sg/.sgid/callback", "", nil)
	plain, _ := newSite("http://127.0.0.1:8080/.sgid/callback", "", nil)
	for _, tt := range []struct {
		s     *site
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

func TestRouteHostsAndListenPort(t *testing.T) {
	host := func(h ...string) caddyhttp.MatcherSet { return caddyhttp.MatcherSet{caddyhttp.MatchHost(h)} }
	path := caddyhttp.MatcherSet{caddyhttp.MatchPath{"/x"}}
	for _, tt := range []struct {
		name   string
		sets   caddyhttp.MatcherSets
		hosts  []string
		hasAny bool
	}{
		{"one host", caddyhttp.MatcherSets{host("App.example")}, []string{"app.example"}, true},
		{"two in one", caddyhttp.MatcherSets{host("a.example", "b.example")}, []string{"a.example", "b.example"}, true},
		{"same host twice", caddyhttp.MatcherSets{host("a.example"), host("A.example")}, []string{"a.example"}, true},
		{"no matcher", nil, nil, false},
		{"a set without a host", caddyhttp.MatcherSets{host("a.example"), path}, nil, false},
	} {
		hosts, ok := routeHosts(&caddyhttp.Route{MatcherSets: tt.sets})
		if ok != tt.hasAny || !slices.Equal(hosts, tt.hosts) {
			t.Errorf("%s: routeHosts = %v, %t; want %v, %t", tt.name, hosts, ok, tt.hosts, tt.hasAny)
		}
	}
	for _, tt := range []struct {
		listen []string
		port   int
	}{
		{[]string{":443"}, 443},
		{[]string{"127.0.0.1:8080", "127.0.0.2:8080"}, 8080},
		{[]string{":80", ":8080"}, 0},
		{[]string{":8000-8010"}, 0},
		{nil, 0},
	} {
		port, err := listenPort(tt.listen)
		if port != tt.port || (tt.port == 0) != (err != nil) {
			t.Errorf("listenPort(%v) = %d, %v; want %d", tt.listen, port, err, tt.port)
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
