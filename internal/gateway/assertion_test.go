package gateway

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/session"
)

// The assertion is signed once per session, shared by concurrent requests, and
// signed anew half way through its lifetime.
func TestAssertionIsReusedAndRenewedHalfWay(t *testing.T) {
	h := benchGateway(t)
	e := h.newEntry(&session.Data{Sub: "sub-1", Fields: []session.Field{{Name: "myinfo.name", Value: "TAN AH KOW"}}})
	req := func() string { a, _ := h.assertionFor(e); return a }

	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = req() }()
	}
	wg.Wait()
	for _, a := range got {
		if a == "" || a != got[0] {
			t.Fatalf("concurrent first requests got different assertions: %q", got)
		}
	}
	if req() != got[0] {
		t.Error("a later request re-signed an assertion that is still fresh")
	}

	// Past half its lifetime the assertion is signed anew (iat moves on a
	// second, so the token differs).
	time.Sleep(1100 * time.Millisecond)
	a := e.signed.Load()
	e.signed.Store(&signedAssertion{token: a.token, renew: time.Now().Add(-time.Second)})
	if renewed := req(); renewed == got[0] || renewed == "" || strings.Count(renewed, ".") != 2 {
		t.Error("an assertion due for renewal was not signed anew")
	}
}
