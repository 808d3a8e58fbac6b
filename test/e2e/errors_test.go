package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

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
