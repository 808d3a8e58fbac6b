package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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

// A user the require rules refuse stays logged in: the page is no dead end,
// it offers to log out and to log in as someone else, back to this page.
func TestDeniedPageOffersLogOutAndLogInAsSomeoneElse(t *testing.T) {
	g, _, cookie := deniedGateway(t)
	r := failRequest("/admin?x=1")
	r.Header.Set("Cookie", cookie)
	rec := httptest.NewRecorder()
	if err := g.ServeHTTP(rec, r, nil); err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`<a href="/.sgid/logout">Log out</a>`,
		`<a href="/.sgid/logout?relogin=%2Fadmin%3Fx%3D1">Log in as someone else</a>`,
	} {
		if rec.Code != http.StatusForbidden || !strings.Contains(body, want) {
			t.Errorf("%d, the page lacks %s: %.500s", rec.Code, want, body)
		}
	}
}
