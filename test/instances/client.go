package instances

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"
)

// Upstream is the app behind the gateway. It answers 200 and copies every
// X- header it received into its response as X-Seen-<name>, so a client sees
// what the gateway passed on.
func Upstream() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name, v := range r.Header {
			if strings.HasPrefix(name, "X-") {
				w.Header()["X-Seen-"+name] = v
			}
		}
		io.WriteString(w, "app page\n")
	}))
}

// Login runs a whole login at siteURL as a browser would, following the
// redirects through the fake sgID, and returns the session's Cookie header and
// the last response (the app's, if it worked). siteURL is the public URL; to
// log in at one instance of a cluster, tr is that instance's Site.Transport,
// which the callback goes through too. tr may be shared by many logins.
func Login(tr http.RoundTripper, siteURL string) (cookie string, resp *http.Response, err error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, siteURL+"/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err = c.Do(req)
	if err != nil {
		return "", nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Seen-X-Sgid-Sub") == "" {
		return "", resp, fmt.Errorf("login ended with %d and no identity at the app", resp.StatusCode)
	}
	u, _ := url.Parse(siteURL)
	var b bytes.Buffer
	for _, ck := range jar.Cookies(u) {
		// Only the session: the jar holds the fake sgID's cookies too (same
		// host, other port), and attempt cookies are cleared at the callback.
		if !strings.HasPrefix(ck.Name, "sgid_session") || strings.Contains(ck.Name, "_login_") {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(ck.Name + "=" + ck.Value)
	}
	return b.String(), resp, nil
}

// UpdateCookies applies a response's Set-Cookie headers to a Cookie header, as
// a browser would: new values replace old ones, expired cookies go.
func UpdateCookies(cookie string, resp *http.Response) string {
	jar := map[string]string{}
	var order []string
	for _, part := range strings.Split(cookie, "; ") {
		if name, value, ok := strings.Cut(part, "="); ok {
			jar[name] = value
			order = append(order, name)
		}
	}
	for _, ck := range resp.Cookies() {
		if _, ok := jar[ck.Name]; !ok {
			order = append(order, ck.Name)
		}
		if ck.MaxAge < 0 {
			delete(jar, ck.Name)
			continue
		}
		jar[ck.Name] = ck.Value
	}
	var parts []string
	for _, name := range order {
		if v, ok := jar[name]; ok {
			parts = append(parts, name+"="+v)
			delete(jar, name)
		}
	}
	return strings.Join(parts, "; ")
}

// Request sends one request for rawURL with c, with Accept set and the Cookie
// header if cookie is not empty, and reads the whole response.
func Request(c *http.Client, method, rawURL, accept, cookie string) (*http.Response, string, error) {
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", accept)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}
