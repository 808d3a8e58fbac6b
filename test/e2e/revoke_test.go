package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// A logout revokes the session it ends: a copy of the cookie saved before it
// (another tab, a stolen copy, a client that kept the refreshed cookie) is no
// session after it, while a new login works.
func TestLogoutRevokesASavedCopyOfTheCookie(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	g.login(b, "/")
	saved := g.newBrowser()
	saved.setCookies(g.base, b.cookies(g.base)...)
	if got := g.apiStatus(saved); got != http.StatusOK {
		t.Fatalf("the saved copy before logout: %d, want 200", got)
	}
	if resp, body := b.get(g.base + "/.sgid/logout"); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d %.200s", resp.StatusCode, body)
	}
	if got := g.apiStatus(saved); got != http.StatusUnauthorized {
		t.Fatalf("the saved copy after logout: %d, want 401", got)
	}
	g.login(b, "/")
	if got := g.apiStatus(b); got != http.StatusOK {
		t.Fatalf("a new login after logout: %d, want 200", got)
	}
}

// Sign-out everywhere ends every session of the user on this site, in every
// browser, and no other user's; only a same-origin POST does it: a GET shows
// the confirmation page, and a cross-site POST is refused.
func TestLogoutEverywhereEndsEveryOneOfTheUsersSessionsOnlyFromThisSite(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	phone, laptop, other := g.newBrowser(), g.newBrowser(), g.newBrowser()
	g.login(phone, "/")
	g.login(laptop, "/")
	persona := sgidtest.Personas()[1].ID
	if err := g.sgid.SetPersona(persona); err != nil {
		t.Fatal(err)
	}
	g.login(other, "/")
	valid := func(when string, want ...int) {
		t.Helper()
		for i, b := range []*browser{phone, laptop, other} {
			if got := g.apiStatus(b); got != want[i] {
				t.Errorf("%s: browser %d got %d, want %d", when, i, got, want[i])
			}
		}
	}
	ok, gone := http.StatusOK, http.StatusUnauthorized

	resp, body := phone.get(g.base + "/.sgid/logout?everywhere=1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<form method="post" action="/.sgid/logout?everywhere=1">`) {
		t.Fatalf("GET everywhere: %d, want the confirmation page with its form: %.300s", resp.StatusCode, body)
	}
	valid("after the confirmation page", ok, ok, ok)

	for _, crossSite := range [][]string{
		{"Sec-Fetch-Site: cross-site", "Origin: https://evil.example"},
		{"Sec-Fetch-Site: same-site"},
		{"Origin: https://evil.example"},
		nil, // no Origin, no Sec-Fetch-Site: not a form of this site
	} {
		resp, _ := phone.do(http.MethodPost, g.base+"/.sgid/logout?everywhere=1", "text/html", crossSite...)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST everywhere with %q: %d, want 403", crossSite, resp.StatusCode)
		}
	}
	valid("after cross-site POSTs", ok, ok, ok)

	resp, body = phone.do(http.MethodPost, g.base+"/.sgid/logout?everywhere=1", "text/html", "Origin: "+g.base)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "everywhere") {
		t.Fatalf("same-origin POST everywhere: %d %.200s", resp.StatusCode, body)
	}
	valid("after sign-out everywhere", gone, gone, ok)
}

// A reload keeps what the instance knows of revocations: the list lives for
// the process, not the config. With the store unreachable a logout is held
// only in this instance's list, so a reload that started a new, empty one
// would bring the logged-out session back until the store answered.
func TestReloadKeepsARevocationTheStoreNeverGot(t *testing.T) {
	deadRedis := fmt.Sprintf("revocation_store redis://127.0.0.1:%d", freePort(t))
	g := newGateway(t, gatewayOptions{directives: deadRedis})
	b := g.newBrowser()
	g.login(b, "/")
	saved := g.newBrowser()
	saved.setCookies(g.base, b.cookies(g.base)...)
	if resp, body := b.get(g.base + "/.sgid/logout"); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout with the store down: %d %.200s", resp.StatusCode, body)
	}
	if got := g.apiStatus(saved); got != http.StatusUnauthorized {
		t.Fatalf("the saved copy after logout: %d, want 401", got)
	}
	newGateway(t, g.sameSite(gatewayOptions{directives: deadRedis + "\n\t\tforward myinfo.email X-Email-Again"}))
	if got := g.apiStatus(saved); got != http.StatusUnauthorized {
		t.Fatalf("the saved copy after a reload: %d, want 401", got)
	}
}
