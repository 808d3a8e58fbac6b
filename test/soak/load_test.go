package soak

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/test/instances"
)

// load sends the mix and checks each answer.
type load struct {
	t    *testing.T
	site string // http://127.0.0.1:port
	idp  string // the fake sgID's URL, where navigations are sent
	sub  string // the sub of every real login
	mint *session.Codec
	tr   *http.Transport
	pool []atomic.Pointer[string] // Cookie headers from real logins, updated on refresh

	logins atomic.Int64
	done   atomic.Int64 // requests answered, warm-up included

	mu         sync.Mutex
	counts     map[string]int // "kind status" -> answers as expected
	transport  int
	unexpected int
	failures   []string
}

// run sends requests numbered [from, to) over *workers clients. A request's
// number picks its kind, so every run has the same mix.
func (l *load) run(from, to int) {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			c := &http.Client{Transport: l.tr, Timeout: 30 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			counts := map[string]int{}
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					break
				}
				kind, status, err := l.one(c, i)
				l.done.Add(1)
				if err != nil {
					l.fail(kind, err)
					continue
				}
				counts[fmt.Sprintf("%s %d", kind, status)]++
			}
			l.mu.Lock()
			if l.counts == nil {
				l.counts = map[string]int{}
			}
			for k, n := range counts {
				l.counts[k] += n
			}
			l.mu.Unlock()
		})
	}
	wg.Wait()
}

// transportError marks a failure to get an answer at all.
type transportError struct{ error }

func (l *load) fail(kind string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := err.(transportError); ok {
		l.transport++
	} else {
		l.unexpected++
	}
	if len(l.failures) < 20 {
		l.failures = append(l.failures, kind+": "+err.Error())
	}
}

func (l *load) statuses() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keys []string
	for k := range l.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d; ", k, l.counts[k])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// one sends request number i. Per 1000: 400 with a real login's session, 300
// with a freshly minted one, 100 navigations and 100 API calls without a
// session, 50 POSTs without one, 30 user info calls, 19 tampered cookies, and
// one whole login followed by a logout.
func (l *load) one(c *http.Client, i int) (kind string, status int, err error) {
	n := i % 1000
	switch {
	case n < 400:
		kind = "session"
		slot := &l.pool[i%len(l.pool)]
		resp, _, err := l.do(c, http.MethodGet, fmt.Sprintf("/page/%d", i), "text/html", *slot.Load())
		if err != nil {
			return kind, 0, err
		}
		if resp.Header.Get("X-Seen-X-Sgid-Sub") != l.sub || resp.Header.Get("X-Seen-X-Sgid-Assertion") == "" || resp.Header.Get("X-Seen-X-Sgid-Myinfo-Name") == "" {
			return kind, 0, fmt.Errorf("%d with sub %q: want 200 and the logged-in user's identity", resp.StatusCode, resp.Header.Get("X-Seen-X-Sgid-Sub"))
		}
		if len(resp.Cookies()) > 0 { // the idle window slid: keep the new cookie, as a browser does
			updated := instances.UpdateCookies(*slot.Load(), resp)
			slot.Store(&updated)
		}
		return kind, resp.StatusCode, nil
	case n < 700:
		kind = "minted"
		sub, name := fmt.Sprintf("soak-user-%08d", i), fmt.Sprintf("SOAK USER %d", i)
		cookie, err := l.minted(sub, name)
		if err != nil {
			return kind, 0, err
		}
		resp, _, err := l.do(c, http.MethodGet, "/", "application/json", cookie)
		if err != nil {
			return kind, 0, err
		}
		if resp.Header.Get("X-Seen-X-Sgid-Sub") != sub || resp.Header.Get("X-Seen-X-Sgid-Myinfo-Name") != name {
			return kind, 0, fmt.Errorf("%d with sub %q name %q: want 200, %s and %s", resp.StatusCode,
				resp.Header.Get("X-Seen-X-Sgid-Sub"), resp.Header.Get("X-Seen-X-Sgid-Myinfo-Name"), sub, name)
		}
		return kind, resp.StatusCode, nil
	case n < 800:
		kind = "navigation"
		resp, _, err := l.do(c, http.MethodGet, fmt.Sprintf("/page/%d?x=1", i), "text/html", "")
		if err != nil {
			return kind, 0, err
		}
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), l.idp) {
			return kind, 0, fmt.Errorf("%d to %q: want 302 to sgID", resp.StatusCode, resp.Header.Get("Location"))
		}
		return kind, resp.StatusCode, nil
	case n < 950:
		kind = "api"
		method := http.MethodGet
		if n >= 900 {
			kind, method = "post", http.MethodPost
		}
		resp, body, err := l.do(c, method, "/api/items", "application/json", "")
		if err != nil {
			return kind, 0, err
		}
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"login_url"`) {
			return kind, 0, fmt.Errorf("%d: want 401 with a login_url", resp.StatusCode)
		}
		return kind, resp.StatusCode, nil
	case n < 980:
		kind = "userinfo"
		resp, body, err := l.do(c, http.MethodGet, "/.sgid/userinfo", "application/json", *l.pool[i%len(l.pool)].Load())
		if err != nil {
			return kind, 0, err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, l.sub) {
			return kind, 0, fmt.Errorf("%d: want 200 with the sub", resp.StatusCode)
		}
		return kind, resp.StatusCode, nil
	case n < 999:
		kind = "tampered"
		cookie := *l.pool[i%len(l.pool)].Load()
		// A character from the middle of the sealed value, where every bit
		// counts (near the end, base64 padding bits may not).
		at := len(cookie)/2 + i%40 - 20
		flipped := byte('A')
		if cookie[at] == 'A' {
			flipped = 'B'
		}
		resp, _, err := l.do(c, http.MethodGet, "/api/items", "application/json", cookie[:at]+string(flipped)+cookie[at+1:])
		if err != nil {
			return kind, 0, err
		}
		if resp.StatusCode != http.StatusUnauthorized {
			return kind, 0, fmt.Errorf("%d: want 401", resp.StatusCode)
		}
		return kind, resp.StatusCode, nil
	default:
		return "login+logout", http.StatusNoContent, l.loginLogout(c)
	}
}

// loginLogout logs a new browser in, then out: the logout answers 204 and
// expires every session cookie, after which the browser has no session.
func (l *load) loginLogout(c *http.Client) error {
	cookie, resp, err := instances.Login(l.tr, l.site)
	if err != nil {
		if resp == nil {
			return transportError{err}
		}
		return err
	}
	l.logins.Add(1)
	resp, _, err = l.do(c, http.MethodGet, "/.sgid/logout", "application/json", cookie)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("logout: %d, want 204", resp.StatusCode)
	}
	if left := instances.UpdateCookies(cookie, resp); left != "" {
		return fmt.Errorf("logout left cookies %q", left)
	}
	resp, _, err = l.do(c, http.MethodGet, "/api/items", "application/json", "")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("after logout: %d, want 401", resp.StatusCode)
	}
	return nil
}

// minted is the Cookie header of a new session sealed with the configured
// secret by the gateway's own codec.
func (l *load) minted(sub, name string) (string, error) {
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest(http.MethodGet, l.site, nil)
	if err := l.mint.Write(rec, req, &session.Data{Sub: sub, Fields: []session.Field{{Name: "myinfo.name", Value: name}}}, false); err != nil {
		return "", err
	}
	var parts []string
	for _, ck := range rec.Result().Cookies() {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; "), nil
}

// do sends one request and reads the whole answer.
func (l *load) do(c *http.Client, method, path, accept, cookie string) (*http.Response, string, error) {
	resp, body, err := instances.Request(c, method, l.site+path, accept, cookie)
	if err != nil {
		return nil, "", transportError{err}
	}
	return resp, body, nil
}
