package gateway

import (
	"slices"
	"testing"

	"github.com/sgidproxy/caddy-sgid/session"
)

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

// TestKeepNamesEachFieldOnce: a field that two forward lines and a require
// rule all use is kept once, in the order of the config, and a field the
// config does not use is not kept: the session must be writable (Write
// refuses a name twice) and hold only what is used.
func TestKeepNamesEachFieldOnce(t *testing.T) {
	g := &Gateway{
		forward: []Forward{{Field: "myinfo.name", Header: "X-Name"}, {Field: "myinfo.email", Header: "X-Email"}, {Field: "myinfo.name", Header: "X-Name-Again"}},
		require: []Requirement{{Field: "myinfo.name", Values: []string{"TAN"}}, {Field: "myinfo.sex", Values: []string{"F"}}},
	}
	got := g.keep(map[string]string{"myinfo.email": "t@example.com", "myinfo.sex": "F", "myinfo.name": "TAN", "myinfo.nric_number": "not-a-real-nric"})
	want := []session.Field{{Name: "myinfo.name", Value: "TAN"}, {Name: "myinfo.email", Value: "t@example.com"}, {Name: "myinfo.sex", Value: "F"}}
	if !slices.Equal(got, want) {
		t.Fatalf("keep = %v, want %v", got, want)
	}
}
