package e2e

import (
	"bytes"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// formGateway is a gateway whose sessions go idle after 3 s, so a test can
// let one end and then send a form. (Times are sealed in whole seconds, so a
// session lives 2 to 3 s: time enough for the requests a test makes first.)
func formGateway(t *testing.T, directives string) *gateway {
	t.Helper()
	return newGateway(t, gatewayOptions{directives: "idle_timeout 3s\n" + directives})
}

// idleUser is a form gateway and a browser whose session there has just
// gone idle.
func idleUser(t *testing.T, directives string) (*gateway, *browser) {
	t.Helper()
	g := formGateway(t, directives)
	b := g.newBrowser()
	g.idle(b)
	return g, b
}

// idle logs b in, then waits for its session to go idle.
func (g *gateway) idle(b *browser) {
	g.t.Helper()
	g.login(b, "/form")
	if g.apiStatus(b) != http.StatusOK {
		g.t.Fatal("no session after the login")
	}
	time.Sleep(3500 * time.Millisecond)
	if g.apiStatus(b) != http.StatusUnauthorized {
		g.t.Fatal("the session did not go idle")
	}
}

// post sends a form as a browser submits one from a page of site (the
// headers Chromium sends), not following the redirect to sgID.
func (b *browser) post(rawURL, contentType string, body []byte, site string, headers ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Sec-Fetch-Site", site)
	if site == "same-origin" {
		u := mustURL(b.t, rawURL)
		req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return b.noFollow().send(req)
}

// finishLogin follows a redirect to sgID through the callback, and returns
// the callback's answer.
func (g *gateway) finishLogin(b *browser, resp *http.Response) (*http.Response, string) {
	g.t.Helper()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), g.sgid.URL()) {
		g.t.Fatalf("the form started no login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// sgID's redirect to the callback, then the callback itself, unfollowed.
	r2, _ := b.noFollow().get(resp.Header.Get("Location"))
	if r2.StatusCode != http.StatusFound {
		g.t.Fatalf("sgID answered %d", r2.StatusCode)
	}
	return b.noFollow().get(r2.Header.Get("Location"))
}

// resendForm is the form on the gateway's page, as a browser would send it.
type resendForm struct {
	action, enctype string
	fields          [][2]string // name, value; a file input's value is "\x00file"
}

func parseResendForm(t *testing.T, page string) resendForm {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var f resendForm
	var found bool
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			switch {
			case n.Data == "form" && attr["enctype"] != "":
				f.action, f.enctype, found = attr["action"], attr["enctype"], true
			case n.Data == "input" && attr["type"] == "hidden":
				f.fields = append(f.fields, [2]string{attr["name"], attr["value"]})
			case n.Data == "input" && attr["type"] == "file":
				f.fields = append(f.fields, [2]string{attr["name"], "\x00file"})
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if !found {
		t.Fatalf("no form on the page: %.600s", page)
	}
	return f
}

const csrfToken = "csrf-7f3a9c1e"

// The journey without a browser: a same-origin urlencoded form sent after
// the idle timeout is kept across the login, and the page's form sends the
// app the same method, path, content type and body bytes, the app's CSRF
// token included. (The same journey in Chromium: form_browser_test.go.)
func TestFormReplayKeepsAnURLEncodedFormAcrossTheLogin(t *testing.T) {
	g, b := idleUser(t, "")

	body := "csrf_token=" + csrfToken + "&name=Tan+Ah+Kow&note=line+one%0D%0Aline+two+%E2%9C%93&amount=12.50"
	resp, page := b.post(g.base+"/form/submit?step=2", "application/x-www-form-urlencoded", []byte(body), "same-origin")
	if strings.Contains(page, "Tan") {
		t.Fatalf("the redirect holds the form: %.300s", page)
	}
	resp, page = g.finishLogin(b, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "You are logged in again") || !strings.Contains(page, "Your form to /form/submit is ready to send") {
		t.Fatalf("callback: %d %.600s, want the page offering the form", resp.StatusCode, page)
	}
	for name, want := range map[string]string{
		"Cache-Control": "no-store", "Referrer-Policy": "origin", "X-Frame-Options": "DENY",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("the form page's %s is %q, want %q", name, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "form-action 'self'") || strings.Contains(csp, "script-src") {
		t.Errorf("the form page's CSP %q", csp)
	}
	f := parseResendForm(t, page)
	if f.action != "/form/submit?step=2" || f.enctype != "application/x-www-form-urlencoded" {
		t.Fatalf("the page's form posts %s to %q", f.enctype, f.action)
	}
	var again []string
	// Encoded as a browser encodes: the HTML parser made the value's CRLF
	// an LF, and the form's serializer makes every line break CRLF again.
	crlf := strings.NewReplacer("\r\n", "\r\n", "\r", "\r\n", "\n", "\r\n")
	for _, kv := range f.fields {
		again = append(again, url.QueryEscape(crlf.Replace(kv[0]))+"="+url.QueryEscape(crlf.Replace(kv[1])))
	}
	resent := strings.NewReplacer("%2A", "*").Replace(strings.Join(again, "&"))
	if resent != body {
		t.Fatalf("the page's fields encode to %q, the form was %q", resent, body)
	}
	resp, out := b.post(g.base+f.action, f.enctype, []byte(resent), "same-origin")
	s := upstreamSaw(t, resp, out)
	if s.Path != "/form/submit?step=2" || s.Body != body || s.header("Content-Type") != "application/x-www-form-urlencoded" || s.header("X-Sgid-Sub") != g.subOf("tan-ah-kow") {
		t.Fatalf("the app got %s with %q (%s, sub %s)", s.Path, s.Body, s.header("Content-Type"), s.header("X-Sgid-Sub"))
	}
}

// A form of more than the attempt cookie holds goes to the store, sealed
// (its bytes are nowhere in storage), and comes back once.
func TestFormReplayKeepsALargeMultipartFormInTheStore(t *testing.T) {
	g, b := idleUser(t, "")

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	long := strings.Repeat("A long answer, kept word for word. ", 200) // 7 KB
	mw.WriteField("csrf_token", csrfToken)
	mw.WriteField("essay", long)
	fw, _ := mw.CreateFormFile("attachment", "")
	_ = fw // an empty file input: no file chosen
	mw.Close()
	resp, _ := b.post(g.base+"/apply", mw.FormDataContentType(), buf.Bytes(), "same-origin")
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "_login_") && len(c.Value) > 2000 {
			t.Errorf("a 7 KB form went into the attempt cookie (%d characters)", len(c.Value))
		}
	}
	if files := storedFilesContaining(t, g.storage, "kept word for word"); len(files) != 0 {
		t.Fatalf("the form is in storage in the clear: %v", files)
	}
	// A user cannot fill the store: however many forms they send, one is
	// kept for them, the newest (here, a second tab's), and each attempt
	// that finds it offers it.
	kept := func() []string {
		var out []string
		filepath.WalkDir(g.storage, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(path, string(filepath.Separator)+"kept"+string(filepath.Separator)) {
				out = append(out, path)
			}
			return nil
		})
		return out
	}
	for i := range 3 { // four attempts in all: the browser keeps five
		extra, _ := b.post(g.base+"/other-tab", "application/x-www-form-urlencoded", []byte("n="+strings.Repeat("y", 3000+i)), "same-origin")
		if extra.StatusCode != http.StatusSeeOther {
			t.Fatalf("form %d: %d", i, extra.StatusCode)
		}
	}
	if files := kept(); len(files) != 1 {
		t.Fatalf("4 forms of one user left %d kept in storage, want 1: %v", len(files), files)
	}
	resp, page := g.finishLogin(b, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Your form to /other-tab is ready") {
		t.Fatalf("callback of the first attempt: %d %.400s, want the user's newest form", resp.StatusCode, page)
	}
	if files := kept(); len(files) != 0 {
		t.Fatalf("the offered form is still in storage: %v", files)
	}

	// Once more, alone: the 7 KB multipart form comes back field for field.
	g.idle(b)
	resp, _ = b.post(g.base+"/apply", mw.FormDataContentType(), buf.Bytes(), "same-origin")
	resp, page = g.finishLogin(b, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d %.400s", resp.StatusCode, page)
	}
	f := parseResendForm(t, page)
	if f.enctype != "multipart/form-data" || len(f.fields) != 3 || f.fields[1] != [2]string{"essay", long} || f.fields[2] != [2]string{"attachment", "\x00file"} {
		t.Fatalf("the page's form is %s with %d fields", f.enctype, len(f.fields))
	}
}

// What is not kept gets a page that says so, with the login link, and keeps
// nothing: a cross-site form, one too large, one with a file, one not a
// form, and a script's POST gets 401 JSON as before.
func TestFormReplayRefusesWhatItMustNotKeep(t *testing.T) {
	g, b := idleUser(t, "form_replay 4KiB")

	var files bytes.Buffer
	mw := multipart.NewWriter(&files)
	fw, _ := mw.CreateFormFile("upload", "passport.pdf")
	fw.Write([]byte("%PDF-1.7"))
	mw.Close()
	for _, c := range []struct {
		name, site, contentType, body, why string
	}{
		{"cross-site", "cross-site", "application/x-www-form-urlencoded", "amount=1000000&to=mallory", "not sent from a page of this site"},
		{"same-site, another subdomain", "same-site", "application/x-www-form-urlencoded", "amount=1000000&to=mallory", "not sent from a page of this site"},
		{"over form_replay", "same-origin", "application/x-www-form-urlencoded", "essay=" + strings.Repeat("x", 5000), "too large"},
		{"a file", "same-origin", mw.FormDataContentType(), files.String(), "holds files"},
		{"JSON", "same-origin", "application/json", `{"amount":1}`, "not a form this gateway can send again"},
		{"not as a browser encodes", "same-origin", "application/x-www-form-urlencoded", "name=Tan%20Ah%20Kow", "not a form this gateway can send again"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, page := b.post(g.base+"/form/submit", c.contentType, []byte(c.body), c.site)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Your session ended") || !strings.Contains(page, c.why) ||
				!strings.Contains(page, "/.sgid/login?return_to=%2Fform%2Fsubmit") {
				t.Fatalf("%d %.500s, want 401, the page saying %q, the login link", resp.StatusCode, page, c.why)
			}
			if strings.Contains(page, "mallory") || strings.Contains(page, "PDF") || strings.Contains(page, "xxxx") {
				t.Fatal("the page holds the form's content")
			}
			for _, ck := range resp.Cookies() {
				if strings.Contains(ck.Name, "_login_") {
					t.Fatalf("a form not kept started a login: %s", ck.Name)
				}
			}
		})
	}
	// A path a browser reads as another host is not an action the page uses.
	if resp, page := b.post(g.base+"//evil.example/collect", "application/x-www-form-urlencoded", []byte("a=b"), "same-origin"); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(page, "not a form this gateway can send again") {
		t.Fatalf("a form to //evil.example: %d %.300s", resp.StatusCode, page)
	}
	resp, body := b.api(http.MethodPost, g.base+"/api", "Content-Type: application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"login_required"`) {
		t.Fatalf("a script's POST: %d %.200s, want the 401 JSON", resp.StatusCode, body)
	}
}

// A form kept for one user is never sent as another: a login as someone else
// drops it and lands on the path, without the page.
func TestFormReplayDropsTheFormForAnotherUser(t *testing.T) {
	g, b := idleUser(t, "")
	resp, _ := b.post(g.base+"/form/submit", "application/x-www-form-urlencoded", []byte("csrf_token="+csrfToken+"&secret=tan-only"), "same-origin")
	g.sgid.SetPersona("nur-aisyah")
	resp, page := g.finishLogin(b, resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/form/submit" || strings.Contains(page, "tan-only") {
		t.Fatalf("a login as another user: %d to %q %.300s, want 303 to the path, no form", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	// Nor does the first user get it back afterwards: it was single-use.
	g.sgid.SetPersona("tan-ah-kow")
	if s := g.login(b, "/after"); s.header("X-Sgid-Sub") != g.subOf("nur-aisyah") {
		t.Fatalf("the login is %s", s.header("X-Sgid-Sub"))
	}
}

// A request without any session cookie (never logged in, or a browser that
// dropped it) names no user, so its form is not kept.
func TestFormReplayNeedsTheSessionThatEnded(t *testing.T) {
	g := formGateway(t, "")
	resp, page := g.newBrowser().post(g.base+"/form/submit", "application/x-www-form-urlencoded", []byte("a=b"), "same-origin")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "the session it was filled in is unknown") {
		t.Fatalf("%d %.300s", resp.StatusCode, page)
	}
}

// storedFilesContaining lists the files under dir whose bytes contain s.
func storedFilesContaining(t *testing.T, dir, s string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A browser that sends no Fetch Metadata (Sec-Fetch-*) is judged by Origin
// and Accept: its same-origin form is kept, one with another Origin is not.
// form_replay off keeps none and says so.
func TestFormReplayWithoutFetchMetadataAndOff(t *testing.T) {
	g, b := idleUser(t, "")
	send := func(g *gateway, b *browser, origin string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, g.base+"/form/submit", strings.NewReader("a=b"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
		req.Header.Set("Origin", origin)
		return b.noFollow().send(req)
	}
	if resp, _ := send(g, b, "http://evil.example"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("another Origin, no Fetch Metadata: %d, want 401", resp.StatusCode)
	}
	if resp, _ := send(g, b, g.base); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), g.sgid.URL()) {
		t.Errorf("the site's Origin, no Fetch Metadata: %d to %q, want 303 to sgID", resp.StatusCode, resp.Header.Get("Location"))
	}
	off, ob := idleUser(t, "form_replay off")
	if resp, page := send(off, ob, off.base); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "this site does not keep forms") {
		t.Errorf("form_replay off: %d %.300s", resp.StatusCode, page)
	}
}
