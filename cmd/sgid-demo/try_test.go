package main

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// The try mode runs an operator's Caddyfile as it is: credentials as {env.*}
// set to the fake's, one as {file.*} replaced, hostname pointed at the fake;
// a person logs in through the chooser's links, as a browser follows them.
func TestTryModeLogsInThroughTheOperatorsCaddyfile(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream got sub=%q name=%q", r.Header.Get("X-Sgid-Sub"), r.Header.Get("X-Sgid-Myinfo-Name"))
	}))
	defer upstream.Close()
	port, err := freePort(0)
	if err != nil {
		t.Fatal(err)
	}
	site := fmt.Sprintf("http://127.0.0.1:%d", port)
	caddyfilePath := filepath.Join(t.TempDir(), "Caddyfile")
	operators := fmt.Sprintf(`{
	admin off
}

%s {
	sgid {
		client_id {env.TRY_CLIENT_ID}
		client_secret {env.TRY_CLIENT_SECRET}
		private_key {file./etc/sgid/private.pem}
		hostname https://api.id.gov.sg
		scope openid myinfo.name
		forward myinfo.name
	}
	reverse_proxy %s
}
`, site, upstream.Listener.Addr())
	if err := os.WriteFile(caddyfilePath, []byte(operators), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, Options{Caddyfile: caddyfilePath}, &out) }()
	var runErr error
	exited := false
	wait := func() bool { // reports whether run has returned
		if !exited {
			select {
			case runErr = <-done:
				exited = true
			case <-time.After(20 * time.Second):
			}
		}
		return exited
	}
	// A test that fails midway still stops the try mode, and so removes its
	// storage, before another test starts Caddy.
	t.Cleanup(func() { cancel(); wait() })
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "Ctrl-C stops"); time.Sleep(20 * time.Millisecond) {
		select {
		case runErr = <-done:
			exited = true
			t.Fatalf("run returned early: %v; output:\n%s", runErr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the try mode did not start; output:\n%s", out.String())
		}
	}
	intro := out.String()
	for _, want := range []string{
		"TRY_CLIENT_ID=sgidtest-client  # client_id",
		"TRY_CLIENT_SECRET=(not shown)  # client_secret",
		"SGID_DEMO_PRIVATE_KEY=(not shown)  # private_key: the fake's, in place of {file./etc/sgid/private.pem}",
		"in place of https://api.id.gov.sg",
		site,
	} {
		if !strings.Contains(intro, want) {
			t.Errorf("the output does not say %q:\n%s", want, intro)
		}
	}
	secret := os.Getenv("TRY_CLIENT_SECRET")
	if secret == "" || strings.Contains(intro, secret) || strings.Contains(intro, "PRIVATE KEY-----") {
		t.Errorf("the output shows a secret (or TRY_CLIENT_SECRET is not set):\n%s", intro)
	}
	storage := regexp.MustCompile(`storage\s+(\S+) \(removed at the end\)`).FindStringSubmatch(intro)
	if storage == nil {
		t.Fatalf("the output does not say where storage is:\n%s", intro)
	}

	persona := sgidtest.Personas()[1]
	b := newBrowser(t)
	resp, chooser := b.get(site + "/")
	button := regexp.MustCompile(`<a class="button" href="([^"]*)">Continue as ` + regexp.QuoteMeta(html.EscapeString(persona.Data["myinfo.name"])) + `</a>`).FindStringSubmatch(chooser)
	if button == nil {
		t.Fatalf("landed on %s (status %d), not a chooser with a button for %s: %.500s", resp.Request.URL, resp.StatusCode, persona.ID, chooser)
	}
	next, err := resp.Request.URL.Parse(html.UnescapeString(button[1]))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.get(next.String())
	if want := fmt.Sprintf("name=%q", persona.Data["myinfo.name"]); resp.StatusCode != http.StatusOK || !strings.Contains(body, want) || strings.Contains(body, `sub=""`) {
		t.Errorf("after the chooser: %s, status %d, %q; want the upstream to get %s and a sub", resp.Request.URL, resp.StatusCode, body, want)
	}

	cancel()
	if !wait() {
		t.Fatal("run did not return after its context ended")
	}
	if runErr != nil {
		t.Errorf("run: %v", runErr)
	}
	if _, ok := os.LookupEnv("TRY_CLIENT_SECRET"); ok {
		t.Error("TRY_CLIENT_SECRET is still set after the try mode stopped")
	}
	if _, err := os.Stat(storage[1]); !os.IsNotExist(err) {
		t.Errorf("the try's storage %s is still there: %v", storage[1], err)
	}
}
