package caddysgid

import "testing"

func TestOwnsHeaderFoldsCaseUnderscoresAndDots(t *testing.T) {
	h := &Handler{Forward: []Forward{{Field: "myinfo.email", Header: "X.Email"}, {Field: "myinfo.name", Header: "Legacy_Name"}}}
	h.buildForwarding()
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
	if err := (&Handler{ClientID: "c", ClientSecret: "s", PrivateKey: "k", Scopes: []string{"openid", "myinfo.name", "myinfo.email"},
		Forward: []Forward{{Field: "myinfo.name", Header: "X.Who"}, {Field: "myinfo.email", Header: "X-Who"}}}).Validate(); err == nil {
		t.Error("X.Who and X-Who are the same header to a CGI upstream; Validate accepted both")
	}
}
