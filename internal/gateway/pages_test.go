package gateway

import (
	"net/http/httptest"
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
