package main

import (
	"bytes"
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// Caddy runs one config per process, so no test here may run in parallel with
// another: each starts and stops a whole demo.

func startDemo(t *testing.T) *Demo {
	t.Helper()
	d, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("closing the demo: %v", err)
		}
	})
	return d
}

// browser follows redirects and keeps cookies, as a person's browser would.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

// get navigates to rawURL and returns the final response and its body.
func (b *browser) get(rawURL string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(body)
}

// onChooser fails unless resp is the fake sgID's persona chooser, and returns
// the authorization URL the gateway sent the browser to.
func onChooser(t *testing.T, d *Demo, resp *http.Response, body string) string {
	t.Helper()
	if got := resp.Request.URL; resp.StatusCode != http.StatusOK || "http://"+got.Host != d.SgIDURL {
		t.Fatalf("landed on %s (status %d), want the fake sgID's chooser at %s; body: %.300s", got, resp.StatusCode, d.SgIDURL, body)
	}
	if !strings.Contains(body, "Continue as") {
		t.Fatalf("no \"Continue as\" links on the chooser: %.500s", body)
	}
	return resp.Request.URL.String()
}

// logIn is the person on the chooser resp shows choosing persona; b follows
// where sgID sends it.
func logIn(t *testing.T, d *Demo, b *browser, resp *http.Response, body, persona string) (*http.Response, string) {
	t.Helper()
	callback, err := d.sgid.Authorize(t.Context(), onChooser(t, d, resp, body), persona)
	if err != nil {
		t.Fatalf("logging in as %s: %v", persona, err)
	}
	return b.get(callback)
}

var (
	h1RE  = regexp.MustCompile(`<h1>([^<]*)</h1>`)
	rowRE = regexp.MustCompile(`<tr><td><code>([^<]*)</code></td><td class="value">([^<]*)`)
)

// appPageShows reads the legacy app's page: its heading and the decoded value of
// each identity header.
func appPageShows(t *testing.T, d *Demo, resp *http.Response, body string) (heading string, headers map[string]string) {
	t.Helper()
	if got := resp.Request.URL; resp.StatusCode != http.StatusOK || "http://"+got.Host != d.GatewayURL || got.Path != "/" {
		t.Fatalf("landed on %s (status %d), want the app's page at %s/; body: %.300s", got, resp.StatusCode, d.GatewayURL, body)
	}
	m := h1RE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no heading on the app's page: %.500s", body)
	}
	headers = map[string]string{}
	for _, r := range rowRE.FindAllStringSubmatch(body, -1) {
		headers[r[1]] = html.UnescapeString(r[2])
	}
	return html.UnescapeString(m[1]), headers
}

// scopeInShippedCaddyfile reads the scope line of the Caddyfile as a person would.
func scopeInShippedCaddyfile(t *testing.T) []string {
	t.Helper()
	for line := range strings.Lines(string(shippedCaddyfile)) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "scope" {
			return f[1:]
		}
	}
	t.Fatal("no scope line in the Caddyfile")
	return nil
}

func TestLoginShowsPersonaFieldsAndVerifiedAssertion(t *testing.T) {
	d := startDemo(t)
	var asked []string
	for _, s := range scopeInShippedCaddyfile(t) {
		if s != "openid" {
			asked = append(asked, s)
		}
	}
	if len(asked) < 3 {
		t.Fatalf("the Caddyfile asks for %v; the demo should show several fields", asked)
	}
	nonASCII := false
	for _, p := range sgidtest.Personas() {
		t.Run(p.ID, func(t *testing.T) {
			b := newBrowser(t)
			resp, body := b.get(d.GatewayURL + "/")
			resp, body = logIn(t, d, b, resp, body, p.ID)
			heading, headers := appPageShows(t, d, resp, body)

			name := p.Data["myinfo.name"]
			if want := "Hello, " + name; heading != want {
				t.Errorf("heading %q, want %q", heading, want)
			}
			for _, f := range asked {
				h := "X-Sgid-" + strings.NewReplacer(".", "-", "_", "-").Replace(f)
				h = http.CanonicalHeaderKey(h)
				if got, want := headers[h], p.Data[f]; got != want {
					t.Errorf("%s shows %q, want %q", h, got, want)
				}
			}
			if headers["X-Sgid-Sub"] == "" {
				t.Error("no X-Sgid-Sub shown")
			}
			_, section, _ := strings.Cut(body, "The fields asked for")
			for _, f := range asked {
				if !strings.Contains(section, "<code>"+f+"</code>") {
					t.Errorf("the fields asked for do not list %s", f)
				}
			}
			if !strings.Contains(body, ">assertion verified<") || strings.Contains(body, "not verified") {
				m := regexp.MustCompile(`id="assertion">([^<]*)`).FindStringSubmatch(body)
				t.Errorf("assertion not shown as verified: %q", m)
			}
		})
		nonASCII = nonASCII || strings.ContainsFunc(p.Data["myinfo.name"], func(r rune) bool { return r > 0x7e })
	}
	if !nonASCII {
		t.Error("no persona has a non-ASCII name: the decoding is untested")
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	d := startDemo(t)
	b := newBrowser(t)
	resp, body := b.get(d.GatewayURL + "/")
	resp, body = logIn(t, d, b, resp, body, sgidtest.Personas()[1].ID)
	appPageShows(t, d, resp, body)
	if !strings.Contains(body, `href="`+d.GatewayURL+`/.sgid/logout"`) {
		t.Errorf("the app's page has no logout link to %s/.sgid/logout", d.GatewayURL)
	}

	resp, body = b.get(d.GatewayURL + "/.sgid/logout")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/.sgid/logout" {
		t.Fatalf("logout: %s, status %d; body: %.300s", resp.Request.URL, resp.StatusCode, body)
	}
	resp, body = b.get(d.GatewayURL + "/")
	onChooser(t, d, resp, body)
}

func TestAppRefusesHeadersThatDidNotComeThroughTheGateway(t *testing.T) {
	d := startDemo(t)
	for _, tc := range []struct {
		name, assertion, reason string
	}{
		{"no assertion", "", "no X-Sgid-Assertion header"},
		{"not a JWT", "forged", "not an ES256 JWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, d.AppURL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Sgid-Sub", "forged")
			req.Header.Set("X-Sgid-Myinfo-Name", "<script>MALLORY</script>")
			if tc.assertion != "" {
				req.Header.Set("X-Sgid-Assertion", tc.assertion)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page := string(body)
			if !strings.Contains(page, "assertion not verified: "+tc.reason) {
				t.Errorf("page does not say %q", tc.reason)
			}
			if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;MALLORY") {
				t.Error("header value not HTML-escaped")
			}
			// The forged name is shown as a header received, never as whom
			// the gateway logged in.
			if m := h1RE.FindStringSubmatch(page); m == nil || m[1] != "This request did not come through the gateway" {
				t.Errorf("heading %q, want it to say the request did not come through the gateway", h1RE.FindString(page))
			}
			for _, claim := range []string{"Hello", "logged you in"} {
				if strings.Contains(page, claim) {
					t.Errorf("the page says %q to a request that did not come through the gateway", claim)
				}
			}
			// Logging out (or in) happens at the gateway, not at the app's own address.
			if !strings.Contains(page, `href="`+d.GatewayURL+`/.sgid/logout"`) || strings.Contains(page, `href="/.sgid/logout"`) {
				t.Errorf("the logout link does not lead to the gateway's %s/.sgid/logout", d.GatewayURL)
			}
		})
	}
}

// syncBuffer is written by run's goroutine and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunPrintsTheShippedCaddyfileAndTheURLThenStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, Options{}, &out) }()

	openRE := regexp.MustCompile(`Open (http://127\.0\.0\.1:\d+)/ in a browser`)
	var gateway string
	for deadline := time.Now().Add(30 * time.Second); gateway == ""; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v; output:\n%s", err, out.String())
		default:
		}
		if m := openRE.FindStringSubmatch(out.String()); m != nil {
			gateway = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no URL to open in the output:\n%s", out.String())
		}
	}

	onDisk, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\n"+string(onDisk)) {
		t.Errorf("the output does not hold the shipped Caddyfile as it is:\n%s", out.String())
	}
	if strings.Contains(out.String(), "PRIVATE KEY-----") {
		t.Error("the output shows the client's private key")
	}

	noFollow := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, _ := http.NewRequest(http.MethodGet, gateway+"/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatalf("the printed URL does not answer: %v", err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/v2/oauth/authorize?") {
		t.Errorf("the printed URL: status %d, Location %q; want a redirect to the fake sgID", resp.StatusCode, loc)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if _, err := noFollow.Get(gateway + "/"); err == nil {
		t.Error("the gateway still answers after run returned")
	}
}

func TestShippedCaddyfileIsFormattedAndEmbedded(t *testing.T) {
	onDisk, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, shippedCaddyfile) {
		t.Error("the embedded Caddyfile differs from the file")
	}
	// An unformatted file makes the adapter warn at every start.
	if got := caddyfile.Format(shippedCaddyfile); !bytes.Equal(got, shippedCaddyfile) {
		t.Errorf("the Caddyfile is not as caddy fmt writes it:\n%s", got)
	}
	if !slices.Contains(scopeInShippedCaddyfile(t), "openid") {
		t.Error("scope lacks openid")
	}
}
