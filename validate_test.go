package caddysgid

import "testing"

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

func TestValidateRefusesTwoForwardsToOneCGIHeader(t *testing.T) {
	if err := (&Handler{ClientID: "c", ClientSecret: "s", PrivateKey: "k", Scopes: []string{"openid", "myinfo.name", "myinfo.email"},
		Forward: []Forward{{Field: "myinfo.name", Header: "X.Who"}, {Field: "myinfo.email", Header: "X-Who"}}}).Validate(); err == nil {
		t.Error("X.Who and X-Who are the same header to a CGI upstream; Validate accepted both")
	}
}
