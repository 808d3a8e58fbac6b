package caddysgid

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/session"
)

// The assertion is signed once per session and host, shared by concurrent
// requests, and signed anew half way through its lifetime.
func TestAssertionIsReusedPerHostAndRenewedHalfWay(t *testing.T) {
	h := benchHandler(t)
	e := h.newEntry(&session.Data{Sub: "sub-1", Fields: map[string]string{"myinfo.name": "TAN AH KOW"}})
	req := func(host string) string {
		r := httptest.NewRequest("GET", "http://"+host+"/", nil)
		return h.assertionFor(r, e)
	}

	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = req("app.example") }()
	}
	wg.Wait()
	for _, a := range got {
		if a == "" || a != got[0] {
			t.Fatalf("concurrent first requests got different assertions: %q", got)
		}
	}
	if req("app.example") != got[0] {
		t.Error("a later request re-signed an assertion that is still fresh")
	}
	other := req("other.example")
	if other == got[0] {
		t.Error("another host got the first host's assertion (its aud and iss)")
	}

	// Past half its lifetime the assertion is signed anew.
	a := e.signed.Load()
	e.signed.Store(&signedAssertion{token: a.token, host: a.host, renew: time.Now().Add(-time.Second)})
	if renewed := req("other.example"); renewed == other || renewed == "" {
		t.Error("an assertion due for renewal was not signed anew")
	}
}
