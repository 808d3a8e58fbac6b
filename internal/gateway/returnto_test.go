package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestSafeReturnToKeepsOnlyPathsOnThisSite(t *testing.T) {
	long := "/" + strings.Repeat("a", 511)
	for _, tt := range []struct{ in, want string }{
		{"/app/page?q=1", "/app/page?q=1"},
		{"/", "/"},
		{"", "/"},
		{"app/page", "/"},
		{"https://evil.example/", "/"},
		{"//evil.example/", "/"},
		{`/\evil.example/`, "/"},
		{"/a\\b", "/"},
		{"/a\nb", "/"},
		{"/a\x7fb", "/"},
		{"/.sgid/logout", "/"},
		{"/.sgid/", "/"},
		{"/app/../.sgid/login", "/"},
		{"/app/%2e%2e/.sgid/login", "/"},
		{"/app%23/../.sgid/logout", "/"},
		{"/.sgidx/page", "/.sgidx/page"},
		{long, long},
		{long + "b", "/"},
		{"/%zz", "/"},
	} {
		if got := safeReturnTo(tt.in); got != tt.want {
			t.Errorf("safeReturnTo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// "Log in as someone else" is a logout that starts a new login: its target
// obeys the post-login rule, so a link from another site can only log the
// user out and send them to sgID, which /.sgid/logout and /.sgid/login
// already let it do, and the login returns to this site only.
func TestReloginLogsOutAndStartsALoginBackToASafeTarget(t *testing.T) {
	for _, tt := range []struct{ relogin, want string }{
		{"/admin?x=1", "/admin?x=1"},
		{"", "/"},
		{"//evil.example/", "/"},
		{"https://evil.example/", "/"},
		{"/.sgid/logout?relogin=/", "/"},
		{"/a/../.sgid/login", "/"},
	} {
		g, _, cookie := deniedGateway(t)
		r := failRequest("/.sgid/logout?relogin=" + url.QueryEscape(tt.relogin))
		r.Header.Set("Cookie", cookie)
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		rec := httptest.NewRecorder()
		if err := g.ServeHTTP(rec, r, nil); err != nil {
			t.Fatal(err)
		}
		loc, err := url.Parse(rec.Header().Get("Location"))
		if rec.Code != http.StatusFound || err != nil || !strings.HasSuffix(loc.Path, "/authorize") {
			t.Fatalf("relogin=%q: %d to %q, want a 302 to sgID's authorize", tt.relogin, rec.Code, rec.Header().Get("Location"))
		}
		back := httptest.NewRequest(http.MethodGet, "http://app.example/.sgid/callback", nil)
		back.Header.Set("Cookie", cookieHeader(rec))
		att, err := g.codec().ReadAttempt(back, loc.Query().Get("state"))
		if err != nil || att.ReturnTo != tt.want {
			t.Errorf("relogin=%q: the login returns to %v (%v), want %q", tt.relogin, att, err, tt.want)
		}
		if _, err := g.codec().Read(back); err == nil {
			t.Errorf("relogin=%q: the session cookie is still set", tt.relogin)
		}
		if g.lookup(withCookie(cookie)) != nil {
			t.Errorf("relogin=%q: the old session cookie is still a session", tt.relogin)
		}
	}
}

func withCookie(cookie string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
	r.Header.Set("Cookie", cookie)
	return r
}
