package e2e

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// The gateway's own pages: when a login fails or is cancelled, when sgID is
// down, and as handle_errors restyles them.

// With handle_errors on the site, the gateway's failures reach it as Caddy
// errors: an operator restyles or replaces every page, and the error
// reference it shows ({err.id}) is the one in the gateway's log line.
func TestHandleErrorsRestylesTheGatewaysPages(t *testing.T) {
	log := newCaddyLog(t)
	g := newGateway(t, gatewayOptions{
		globalExtra: log.option,
		directives:  "require myinfo.is_age_above_18 false",
		siteExtra: `handle_errors {
		header Content-Type "text/plain; charset=utf-8"
		respond "branded {err.status_code}: {err.message} (reference {err.id})"
	}`,
	})
	b := g.newBrowser()
	for _, tt := range []struct {
		path, message string
		status        int
	}{
		{"/", "Your account does not meet the requirements for this site.", http.StatusForbidden},
		{"/.sgid/nothing-here", "There is nothing here.", http.StatusNotFound},
		{"/.sgid/callback?state=forged&code=x", "This login link has expired or was already used.", http.StatusBadRequest},
	} {
		resp, body := b.get(g.base + tt.path)
		want := regexp.MustCompile(fmt.Sprintf(`^branded %d: %s \(reference ([0-9a-f]{12})\)$`, tt.status, regexp.QuoteMeta(tt.message)))
		m := want.FindStringSubmatch(body)
		if resp.StatusCode != tt.status || m == nil {
			t.Errorf("%s: %d %q, want %d and the operator's page", tt.path, resp.StatusCode, body, tt.status)
			continue
		}
		if !strings.Contains(log.text(t), `"error_id":"`+m[1]+`"`) {
			t.Errorf("%s: reference %s is not in the gateway's log", tt.path, m[1])
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", tt.path, cc)
		}
	}
}

// handle_errors on another site of the same server leaves the gateway's own
// pages in place: Caddy would answer an error no route matches with an empty
// body.
func TestAnotherSitesHandleErrorsLeavesTheGatewaysPages(t *testing.T) {
	port := freePort(t)
	g := newGateway(t, gatewayOptions{
		httpPort:   port,
		directives: "require myinfo.is_age_above_18 false",
		extraSites: `http://localhost:` + fmt.Sprint(port) + ` {
	handle_errors {
		respond "other site's page"
	}
	respond "other"
}`,
	})
	resp, body := g.newBrowser().get(g.base + "/")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "<h1>Access denied</h1>") {
		t.Fatalf("%d %.300s, want the gateway's 403 page", resp.StatusCode, body)
	}
}

func TestCancelledLoginShowsTheCancelPage(t *testing.T) {
	srv := sgidtest.Start(t, sgidtest.Options{Chooser: true})
	g := newGateway(t, gatewayOptions{sgid: srv})
	b := g.newBrowser()

	resp, chooser := b.get(g.base + "/wanted?q=1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(chooser, "Continue as") {
		t.Fatalf("expected sgID's chooser page, got %d %.200s", resp.StatusCode, chooser)
	}
	// The person presses Cancel on the page the browser is on.
	cancel, err := srv.Cancel(t.Context(), resp.Request.URL.String())
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.get(cancel)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Login cancelled") {
		t.Fatalf("cancel: %d %.300s, want 403 with the cancel page", resp.StatusCode, body)
	}
	if !strings.Contains(body, "Error reference:") {
		t.Error("the cancel page has no error reference")
	}
	if want := "/.sgid/login?return_to=" + url.QueryEscape("/wanted?q=1"); !strings.Contains(html.UnescapeString(body), want) {
		t.Errorf("the cancel page does not offer to try again for the original URL (%s): %.400s", want, body)
	}
	// Cancelling spent the attempt: no session, and its cookie is gone.
	for _, c := range b.cookies(g.base) {
		if attemptCookie(c.Name) || c.Name == "sgid_session" {
			t.Errorf("cookie %s left after a cancelled login", c.Name)
		}
	}
	resp, _ = b.api(http.MethodGet, g.base+"/wanted")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after a cancelled login the API gets %d, want 401", resp.StatusCode)
	}
}

func TestGatewayPagesLeakNoRefererAndCannotBeFramed(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	resp, _ := b.get(g.base + "/.sgid/callback?code=c&state=s")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback without an attempt: %d, want 400", resp.StatusCode)
	}
	if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("callback page Referrer-Policy %q, want no-referrer", got)
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("error page can be framed: CSP %q, X-Frame-Options %q", resp.Header.Get("Content-Security-Policy"), resp.Header.Get("X-Frame-Options"))
	}
}

func TestSgIDDownGivesA502AndLeavesSessionsAlone(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	logged := g.newBrowser()
	g.login(logged, "/")
	g.sgid.SetFaults(sgidtest.Faults{Status: map[sgidtest.Endpoint]int{sgidtest.EndpointToken: 503}})

	resp, body := g.newBrowser().get(g.base + "/")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Error reference") {
		t.Fatalf("login while sgID is down: %d %.300s", resp.StatusCode, body)
	}
	if got := g.apiStatus(logged); got != http.StatusOK {
		t.Fatalf("a logged-in user while sgID is down: %d, want 200", got)
	}
}

func TestCaddyStartsWhileSgIDIsUnreachable(t *testing.T) {
	srv, err := sgidtest.NewServer(sgidtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close() // nothing listens at its address any more
	g := newGateway(t, gatewayOptions{sgid: srv})
	resp, _ := g.newBrowser().noFollow().get(g.base + "/")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("with sgID unreachable the gateway answered %d, want the usual 302", resp.StatusCode)
	}
}
