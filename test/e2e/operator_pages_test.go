package e2e

import (
	"bytes"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// Pages people can act on (issue 16): every gateway page gives the next
// action, the pages can be branded with handle_errors as
// examples/branded-pages.caddyfile shows, and the failures an operator must
// act on are in the log at WARN with the reference the page shows.

// The personas the fake sgID has on either side of `require
// myinfo.is_age_above_18 true`.
const (
	adultPersona = "tan-ah-kow"
	minorPersona = "lee-jun-wei"
)

// adultsOnly is the require line of the tests with a refused user.
const adultsOnly = "require myinfo.is_age_above_18 true"

var pageLink = regexp.MustCompile(`<a href="([^"]*)">([^<]*)</a>`)

// pageLinks are a page's links, by their text.
func pageLinks(body string) map[string]string {
	out := map[string]string{}
	for _, m := range pageLink.FindAllStringSubmatch(body, -1) {
		out[html.UnescapeString(m[2])] = html.UnescapeString(m[1])
	}
	return out
}

// A user the require rules refuse is still logged in: the page offers to log
// out, and to log in as someone else, which ends this session and lands the
// new user where the refused one was going.
func TestDeniedUserCanLogOutOrLogInAsSomeoneElse(t *testing.T) {
	srv := sgidtest.Start(t, sgidtest.Options{Persona: minorPersona})
	g := newGateway(t, gatewayOptions{sgid: srv, directives: adultsOnly})

	b := g.newBrowser()
	resp, body := b.get(g.base + "/reports?year=2024")
	links := pageLinks(body)
	switchTo := "/.sgid/logout?relogin=" + url.QueryEscape("/reports?year=2024")
	if resp.StatusCode != http.StatusForbidden || links["Log out"] != "/.sgid/logout" || links["Log in as someone else"] != switchTo {
		t.Fatalf("denied: %d with links %v, want 403 with Log out and Log in as someone else (%s)", resp.StatusCode, links, switchTo)
	}
	if err := srv.SetPersona(adultPersona); err != nil {
		t.Fatal(err)
	}
	resp, body = b.get(g.base + links["Log in as someone else"])
	s := upstreamSaw(t, resp, body)
	if s.Path != "/reports?year=2024" || s.header("X-Sgid-Sub") != g.subOf(adultPersona) {
		t.Errorf("after logging in as someone else the app got %s as %q, want /reports?year=2024 as the adult", s.Path, s.header("X-Sgid-Sub"))
	}

	// Log out leaves no session: the next API call is a 401, not a 403.
	srv.SetPersona(minorPersona)
	refused := g.newBrowser()
	refused.get(g.base + "/")
	resp, body = refused.get(g.base + "/.sgid/logout")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Logged out") {
		t.Fatalf("Log out: %d %.200s", resp.StatusCode, body)
	}
	if got := g.apiStatus(refused); got != http.StatusUnauthorized {
		t.Errorf("after Log out the API answers %d, want 401", got)
	}
}

// exampleFile is an example's text; examplesDir is examples_caddyfile_test.go's.
func exampleFile(t *testing.T, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(examplesDir, name+".caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// siteBlock is the block of a directive in a Caddyfile's site, as the file
// has it: from its line at one tab to the closing brace at one tab.
func siteBlock(t *testing.T, caddyfileText []byte, directive string) string {
	t.Helper()
	_, rest, ok := strings.Cut(string(caddyfileText), "\n\t"+directive+" {\n")
	block, _, ok2 := strings.Cut(rest, "\n\t}\n")
	if !ok || !ok2 {
		t.Fatalf("no %s block", directive)
	}
	return directive + " {\n" + block + "\n\t}"
}

// The branded-pages example is a Caddyfile as `caddy fmt` prints it, and its
// handle_errors block, on a real site, shows the gateway's outcome in the
// operator's page: heading, text, the next actions as links, the code and
// the reference that the gateway's log holds.
func TestBrandedPagesExampleShowsTheOutcomeAndItsNextActions(t *testing.T) {
	text := exampleFile(t, "branded-pages")
	if formatted := caddyfile.Format(text); !bytes.Equal(formatted, text) {
		t.Errorf("examples/branded-pages.caddyfile is not as `caddy fmt` prints it")
	}
	log := newCaddyLog(t)
	srv := sgidtest.Start(t, sgidtest.Options{Persona: minorPersona})
	g := newGateway(t, gatewayOptions{sgid: srv, directives: adultsOnly, globalExtra: log.option,
		siteExtra: siteBlock(t, text, "handle_errors")})
	reference := regexp.MustCompile(`Error (\d{3}) ([a-z_]+), reference ([0-9a-f]{12})\.`)
	for _, tt := range []struct {
		path, code, title, message, actions string
		status                              int
	}{
		{"/reports", "access_denied", "Access denied", "Your account does not meet the requirements for this site.",
			`<a href="/.sgid/logout">Log out</a><a href="/.sgid/logout?relogin=%2Freports">Log in as someone else</a>`, http.StatusForbidden},
		{"/.sgid/callback?state=forged&code=x", "login_expired", "Login expired", "This login link has expired or was already used.",
			`<a href="/.sgid/login?return_to=%2F">Try again</a><a href=""></a>`, http.StatusBadRequest},
	} {
		resp, body := g.newBrowser().get(g.base + tt.path)
		for _, want := range []string{"<header>Example Agency</header>", "<h1>" + tt.title + "</h1>", "<title>" + tt.title + " | Example Agency</title>",
			"<p>" + tt.message + "</p>", tt.actions} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: the branded page lacks %s: %.1500s", tt.path, want, body)
			}
		}
		m := reference.FindStringSubmatch(body)
		if resp.StatusCode != tt.status || m == nil || m[1] != resp.Status[:3] || m[2] != tt.code {
			t.Fatalf("%s: %d %v, want %d with code %s and a reference", tt.path, resp.StatusCode, m, tt.status, tt.code)
		}
		if strings.Contains(body, "{http.") || strings.Contains(body, "{err.") {
			t.Errorf("%s: a placeholder was left unreplaced: %.1500s", tt.path, body)
		}
		awaitLine(t, "the gateway's log", func() string { return log.text(t) }, `"error_id":"`+m[3]+`"`)
	}
}

// An operator running Caddy at WARN finds the error reference a user quotes
// when the failure is theirs to fix (here sgID refusing the login for the
// client, a 400 that was logged at INFO, and sgID down), and is not woken by
// a user's own (a stale login link).
func TestOperatorAtWarnFindsTheReferenceOfAFailedLogin(t *testing.T) {
	log := newCaddyLog(t, "level WARN")
	g := newGateway(t, gatewayOptions{globalExtra: log.option})
	_, stale := g.newBrowser().get(g.base + "/.sgid/callback?state=forged&code=x")
	userRef := referenceOn(t, stale)

	// sgID sends the browser back with an error of its own (its answer to a
	// client it does not accept for this scope or redirect).
	b := g.newBrowser().noFollow()
	resp, _ := b.get(g.base + "/")
	authorize := mustURL(t, resp.Header.Get("Location"))
	resp, refused := b.get(g.base + "/.sgid/callback?error=unauthorized_client&state=" + url.QueryEscape(authorize.Query().Get("state")))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("sgID's error on the callback: %d, want 400", resp.StatusCode)
	}
	refusedRef := referenceOn(t, refused)

	g.sgid.SetFaults(sgidtest.Faults{Status: map[sgidtest.Endpoint]int{sgidtest.EndpointToken: 503}})
	_, down := g.newBrowser().get(g.base + "/")
	downRef := referenceOn(t, down)

	read := func() string { return log.text(t) }
	awaitLine(t, "sgID's refusal at WARN", read, `"level":"warn"`, `"error_id":"`+refusedRef+`"`, `"reason":"error on the callback"`)
	awaitLine(t, "sgID down at WARN", read, `"level":"warn"`, `"error_id":"`+downRef+`"`, `"status":502`)
	if strings.Contains(read(), userRef) {
		t.Errorf("a stale login link, the user's own doing, is in the log at WARN")
	}
}

// referenceOn is the error reference a gateway page shows (errorRef).
func referenceOn(t *testing.T, body string) string {
	t.Helper()
	m := errorRef.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no error reference on the page: %.300s", body)
	}
	return m[1]
}
