package e2e

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium, which examples/setup.sh installs.
const chromiumPath = "/usr/bin/chromium"

// newChromium is a headless Chromium for one test, with its own profile.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("no Chromium at %s: run bash examples/setup.sh (README: Run the tests)", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(tempDir(t)),
		chromedp.NoSandbox, // tests may run as root, where Chromium's sandbox cannot
		chromedp.Flag("disable-gpu", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// formApp is a legacy app with a form: its own CSRF token, a text field and
// a textarea, and a page that shows what a POST brought, byte for byte.
type formApp struct {
	mu       sync.Mutex
	received []receivedForm
}

type receivedForm struct {
	path, contentType, origin, referer, sub string
	body                                    []byte
}

const appToken = "app-csrf-5b1e0c"

var formAppPage = template.Must(template.New("form").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>The form</title></head><body>
<form method="post" action="/form/submit?step=2">
<input type="hidden" name="csrf_token" value="` + appToken + `">
<input id="name" name="name">
<textarea id="note" name="note"></textarea>
<button id="send" type="submit">Send</button>
</form></body></html>`))

func (a *formApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method != http.MethodPost {
		formAppPage.Execute(w, nil)
		return
	}
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.received = append(a.received, receivedForm{path: r.URL.RequestURI(), contentType: r.Header.Get("Content-Type"),
		origin: r.Header.Get("Origin"), referer: r.Header.Get("Referer"), sub: r.Header.Get("X-Sgid-Sub"), body: body})
	a.mu.Unlock()
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	if err := r.ParseForm(); err != nil || r.PostForm.Get("csrf_token") != appToken {
		http.Error(w, "CSRF check failed", http.StatusForbidden)
		return
	}
	fmt.Fprintf(w, `<!doctype html><html><body><p id="got">received: %s</p></body></html>`, template.HTMLEscapeString(r.PostForm.Get("name")))
}

func (a *formApp) posts() []receivedForm {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]receivedForm(nil), a.received...)
}

// text is the visible text of the page's body.
func text(ctx context.Context, t *testing.T) string {
	t.Helper()
	var s string
	if err := chromedp.Run(ctx, chromedp.Text("body", &s, chromedp.ByQuery)); err != nil {
		t.Fatalf("reading the page: %v", err)
	}
	return s
}

// waitForPath waits until the page's address has path, through whatever
// navigations lead there; an evaluation that meets a page being replaced
// is tried again.
func waitForPath(ctx context.Context, t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var loc string
	for time.Now().Before(deadline) {
		if err := chromedp.Run(ctx, chromedp.Location(&loc)); err == nil {
			if u, err := url.Parse(loc); err == nil && u.Path == path {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the browser never reached %s: it is at %q", path, loc)
}

// The journey in a real browser: log in, open a form, let the session go
// idle, fill and send it, log in again at the fake sgID, press the button,
// and the app gets the form exactly as Chromium first sent it, its CSRF
// token included, from the same user.
func TestFormReplayBrowserJourney(t *testing.T) {
	app := &formApp{}
	log, access := newCaddyLog(t, "level DEBUG"), newAccessLog(t)
	g := newGateway(t, gatewayOptions{app: app, directives: "idle_timeout 3s", globalExtra: log.option, siteExtra: access.option})
	ctx := newChromium(t)

	if err := chromedp.Run(ctx,
		chromedp.Navigate(g.base+"/form"), // the login, through the fake sgID, back to the form
		chromedp.WaitVisible("#send", chromedp.ByID),
		chromedp.SendKeys("#name", "Tan Ah Kow & Co. ✓", chromedp.ByID),
		chromedp.SendKeys("#note", "line one\nline two: 100% *done*", chromedp.ByID),
		chromedp.Sleep(3500*time.Millisecond), // lunch: past the idle timeout
		chromedp.Click("#send", chromedp.ByID),
		chromedp.WaitVisible("//button[text()='Send the form']"),
	); err != nil {
		t.Fatalf("to the gateway's page: %v; page: %s", err, text(ctx, t))
	}
	if got := text(ctx, t); !strings.Contains(got, "You are logged in again") || !strings.Contains(got, "Your form to /form/submit is ready to send") {
		t.Fatalf("the gateway's page says %q", got)
	}
	if n := len(app.posts()); n != 0 {
		t.Fatalf("the app got %d POSTs before the button was pressed", n)
	}
	var got string
	if err := chromedp.Run(ctx,
		chromedp.Click("//button[text()='Send the form']"),
		chromedp.WaitVisible("#got", chromedp.ByID),
		chromedp.Text("#got", &got, chromedp.ByID),
	); err != nil {
		t.Fatalf("pressing the button: %v; page: %s", err, text(ctx, t))
	}
	if got != "received: Tan Ah Kow & Co. ✓" {
		t.Errorf("the app's page says %q", got)
	}
	posts := app.posts()
	if len(posts) != 1 {
		t.Fatalf("the app got %d POSTs, want the one the button sent", len(posts))
	}
	p := posts[0]
	want := "csrf_token=" + appToken + "&name=Tan+Ah+Kow+%26+Co.+%E2%9C%93&note=line+one%0D%0Aline+two%3A+100%25+*done*"
	if p.path != "/form/submit?step=2" || p.contentType != "application/x-www-form-urlencoded" || string(p.body) != want {
		t.Errorf("the app got %s %s %q\nwant /form/submit?step=2 application/x-www-form-urlencoded %q", p.path, p.contentType, p.body, want)
	}
	if p.origin != g.base || p.sub != g.subOf("tan-ah-kow") || strings.Contains(p.referer, "/.sgid/") {
		t.Errorf("the app got Origin %q, Referer %q, sub %q: want the site's origin, no callback URL, the same user", p.origin, p.referer, p.sub)
	}
	// What the user typed is in no log line, at DEBUG, nor the access log.
	for _, l := range []caddyLog{log, access} {
		if text := l.text(t); strings.Contains(text, "Ah Kow & Co") || strings.Contains(text, "Ah+Kow") || strings.Contains(text, "100%") || strings.Contains(text, "*done*") {
			t.Errorf("the form's content is in %s", l.path)
		}
	}
	if !strings.Contains(log.text(t), "login completed") {
		t.Error("the log holds no login: it is not the gateway's log")
	}
}

// In the browser too: a form another site's page sends is not kept, nor one
// over form_replay, nor one whose new login is someone else; each time the
// app never receives it.
func TestFormReplayBrowserRefusals(t *testing.T) {
	app := &formApp{}
	g := newGateway(t, gatewayOptions{app: app, directives: "idle_timeout 3s\nform_replay 4KiB"})

	// Another site (127.0.0.2 is cross-site to 127.0.0.1) whose page posts to the gateway.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	evil := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><html><body><form method="post" action="%s/form/submit">
<input type="hidden" name="csrf_token" value="stolen"><input type="hidden" name="name" value="mallory">
<button id="send" type="submit">Win a prize</button></form></body></html>`, g.base)
	}))
	evil.Listener.Close()
	evil.Listener = ln
	evil.Start()
	t.Cleanup(evil.Close)

	loggedInIdle := func(t *testing.T, ctx context.Context) {
		t.Helper()
		if err := chromedp.Run(ctx,
			chromedp.Navigate(g.base+"/form"),
			chromedp.WaitVisible("#send", chromedp.ByID),
			chromedp.Sleep(3500*time.Millisecond),
		); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("cross-site", func(t *testing.T) {
		ctx := newChromium(t)
		loggedInIdle(t, ctx)
		if err := chromedp.Run(ctx,
			chromedp.Navigate(evil.URL),
			chromedp.Click("#send", chromedp.ByID),
			chromedp.WaitVisible("//h1[text()='Your session ended']"),
		); err != nil {
			t.Fatalf("%v; page: %s", err, text(ctx, t))
		}
		if got := text(ctx, t); !strings.Contains(got, "could not be kept") || strings.Contains(got, "mallory") {
			t.Errorf("the page says %q", got)
		}
	})
	t.Run("over form_replay", func(t *testing.T) {
		ctx := newChromium(t)
		loggedInIdle(t, ctx)
		if err := chromedp.Run(ctx,
			chromedp.SetValue("#note", strings.Repeat("x", 5000), chromedp.ByID),
			chromedp.Click("#send", chromedp.ByID),
			chromedp.WaitVisible("//h1[text()='Your session ended']"),
		); err != nil {
			t.Fatalf("%v; page: %s", err, text(ctx, t))
		}
		if got := text(ctx, t); !strings.Contains(got, "too large") || strings.Contains(got, "xxxx") {
			t.Errorf("the page says %q", got)
		}
	})
	t.Run("another user", func(t *testing.T) {
		ctx := newChromium(t)
		loggedInIdle(t, ctx)
		g.sgid.SetPersona("nur-aisyah")
		t.Cleanup(func() { g.sgid.SetPersona("tan-ah-kow") })
		if err := chromedp.Run(ctx,
			chromedp.SendKeys("#name", "for tan only", chromedp.ByID),
			chromedp.Click("#send", chromedp.ByID),
		); err != nil {
			t.Fatalf("%v; page: %s", err, text(ctx, t))
		}
		// Back on the app, at the path, by GET: the form page again, so wait
		// for its address first (the old page's #send is visible until the
		// click's navigation replaces it).
		waitForPath(ctx, t, "/form/submit")
		if err := chromedp.Run(ctx, chromedp.WaitVisible("#send", chromedp.ByID)); err != nil {
			t.Fatalf("%v; page: %s", err, text(ctx, t))
		}
		if got := text(ctx, t); strings.Contains(got, "ready to send") {
			t.Errorf("another user was offered the form: %q", got)
		}
	})
	if posts := app.posts(); len(posts) != 0 {
		t.Errorf("the app received %d POSTs, want none: %+v", len(posts), posts)
	}
}
