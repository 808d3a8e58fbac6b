package instances

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A form too large for the login attempt's cookie is kept in the shared
// store: sent to one instance after the session went idle, its login may
// complete on the other, which offers it back; and only once.
func TestAFormKeptOnOneInstanceIsOfferedBackByTheOther(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, sites := f.pollingPair()
	for i := range sites {
		sites[i].Sgid += "\n\t\tidle_timeout 3s"
	}
	a, b := sites[0], sites[1]
	f.start("a", a)
	f.start("b", b)
	cookie, _ := f.login(a)
	time.Sleep(3500 * time.Millisecond)

	essay := strings.Repeat("kept across instances, word for word; ", 150) // 5.7 KB: the store, not the cookie
	body := url.Values{"csrf_token": {"tok"}, "essay": {essay}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, a.URL()+"/apply", strings.NewReader(body))
	for k, v := range map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "Accept": "text/html",
		"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Origin": a.URL(),
	} {
		req.Header.Set(k, v)
	}
	noFollow := func(s Site) *http.Client {
		c := *f.client(s)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return &c
	}
	resp, err := noFollow(a).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the form on a: %d, want 303 to sgID", resp.StatusCode)
	}
	cookie = UpdateCookies(cookie, resp)
	// The fake sgID consents and sends the browser to the callback: on b.
	resp, _, err = Request(noFollow(b), http.MethodGet, resp.Header.Get("Location"), "text/html", "")
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("sgID: %v %v", resp, err)
	}
	callback := resp.Header.Get("Location")
	resp, page, err := Request(noFollow(b), http.MethodGet, callback, "text/html", cookie)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Your form to /apply is ready to send") || !strings.Contains(page, essay[:200]) {
		t.Fatalf("the callback on b: %d %.300s, want the page offering the form kept on a", resp.StatusCode, page)
	}
	// Once: the same callback again (a saved URL) offers nothing.
	if resp, page, _ := Request(noFollow(a), http.MethodGet, callback, "text/html", cookie); resp.StatusCode == http.StatusOK || strings.Contains(page, "word for word") {
		t.Fatalf("the callback replayed on a: %d %.300s", resp.StatusCode, page)
	}
}
