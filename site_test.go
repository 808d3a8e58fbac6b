package caddysgid

import (
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

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
