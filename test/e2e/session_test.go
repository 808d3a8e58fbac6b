package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// spoofHeaders are identity headers a client might send itself, in the case and
// separator variants CGI-style upstreams fold together.
var spoofHeaders = []string{
	"X-Sgid-Sub: attacker",
	"x-sgid-sub: attacker2",
	"X-SGID-MYINFO-NAME: Mallory",
	"X-Sgid-Assertion: forged.jwt.value",
	"X-Sgid-Anything-Else: forged",
	"X-Email: mallory@example.com",
	"x-email: mallory2@example.com",
	"X_Email: mallory3@example.com",
	"X_Sgid_Sub: attacker3",
	"x_sgid-myinfo_name: Mallory2",
}

// assertNoSpoof fails if any spoofed value reached the upstream.
func assertNoSpoof(t *testing.T, where string, s seen) {
	t.Helper()
	for name, values := range s.Headers {
		for _, v := range values {
			for _, bad := range []string{"attacker", "Mallory", "mallory", "forged"} {
				if strings.Contains(v, bad) {
					t.Errorf("%s: spoofed header reached the upstream: %s: %s", where, name, v)
				}
			}
		}
	}
}

func TestSpoofedIdentityHeadersNeverReachTheUpstream(t *testing.T) {
	// The server accepts underscore header names, as a PHP or CGI deployment
	// would need, so the gateway itself must drop them.
	opts := gatewayOptions{globalExtra: `servers {
		expected_underscore_headers X_Email X_Sgid_Sub x_sgid-myinfo_name
	}`}

	t.Run("authenticated", func(t *testing.T) {
		g := newGateway(t, opts)
		b := g.newBrowser()
		g.login(b, "/")
		resp, body := b.get(g.base+"/page", spoofHeaders...)
		s := upstreamSaw(t, resp, body)
		assertNoSpoof(t, "authenticated", s)
		if s.header("X-Sgid-Sub") == "" {
			t.Error("the real identity is missing")
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		o := opts
		o.directives = "anonymous"
		g := newGateway(t, o)
		resp, body := g.newBrowser().get(g.base+"/public", spoofHeaders...)
		s := upstreamSaw(t, resp, body)
		assertNoSpoof(t, "anonymous", s)
		if s.hasHeader("X-Sgid-Sub") {
			t.Error("an anonymous request carries X-Sgid-Sub")
		}
	})
	t.Run("unauthenticated and reserved paths answer without the upstream", func(t *testing.T) {
		g := newGateway(t, opts)
		b := g.newBrowser().noFollow()
		for _, path := range []string{"/page", "/.sgid/userinfo", "/.sgid/nothing", "/.sgid/callback?state=x&code=y"} {
			resp, body := b.api(http.MethodGet, g.base+path, spoofHeaders...)
			if resp.StatusCode == http.StatusOK || strings.Contains(body, `"headers"`) {
				t.Errorf("%s: reached the upstream (%d)", path, resp.StatusCode)
			}
			for _, bad := range []string{"attacker", "Mallory", "mallory"} {
				if strings.Contains(body, bad) {
					t.Errorf("%s: the response echoes a spoofed header", path)
				}
			}
		}
	})
}

func TestIdleTimeoutEndsASession(t *testing.T) {
	g := newGateway(t, gatewayOptions{directives: "idle_timeout 1s\nsession_lifetime 1h"})
	b := g.newBrowser()
	g.login(b, "/")
	time.Sleep(2100 * time.Millisecond)
	if resp, _ := b.api(http.MethodGet, g.base+"/api"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after the idle timeout: %d, want 401", resp.StatusCode)
	}
}

func TestAbsoluteLifetimeEndsAnActiveSession(t *testing.T) {
	g := newGateway(t, gatewayOptions{directives: "idle_timeout 1s\nsession_lifetime 2s"})
	b := g.newBrowser()
	g.login(b, "/")
	deadline := time.Now().Add(5 * time.Second)
	var status int
	for time.Now().Before(deadline) {
		resp, _ := b.api(http.MethodGet, g.base+"/api")
		status = resp.StatusCode
		if status == http.StatusUnauthorized {
			break
		}
		time.Sleep(300 * time.Millisecond) // active: well inside the idle window
	}
	if status != http.StatusUnauthorized {
		t.Fatal("a session kept active outlived its absolute lifetime")
	}
}

func TestSecretRotationKeepsUsersLoggedIn(t *testing.T) {
	const s1 = "first-secret-first-secret-first-secret"
	const s2 = "second-secret-second-secret-second-secret"
	g := newGateway(t, gatewayOptions{directives: "session_secret " + s1})
	b, unseen := g.newBrowser(), g.newBrowser()
	g.login(b, "/")
	g.login(unseen, "/")
	port := mustURL(t, g.base).Port()
	reload := func(secrets string) *gateway {
		return newGateway(t, gatewayOptions{directives: "session_secret " + secrets, sgid: g.sgid, httpPort: atoi(t, port), storage: g.storage})
	}
	reload(s2 + " " + s1)
	if resp, _ := b.api(http.MethodGet, g.base+"/api"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after adding a new secret in front: %d, want 200", resp.StatusCode)
	}
	reload(s2)
	// The request during the overlap resealed b's session under the new secret;
	// the user not seen then still holds a cookie only the removed secret opens.
	if resp, _ := b.api(http.MethodGet, g.base+"/api"); resp.StatusCode != http.StatusOK {
		t.Errorf("a user seen while both secrets were listed, after the old one was removed: %d, want 200", resp.StatusCode)
	}
	if resp, _ := unseen.api(http.MethodGet, g.base+"/api"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a cookie only the removed secret opens: %d, want 401", resp.StatusCode)
	}
}

func TestGeneratedKeysSurviveAReload(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	g.login(b, "/")
	newGateway(t, gatewayOptions{sgid: g.sgid, httpPort: atoi(t, mustURL(t, g.base).Port()), storage: g.storage, directives: "audience reloaded"})
	if resp, _ := b.api(http.MethodGet, g.base+"/api"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a reload with the same storage: %d, want 200", resp.StatusCode)
	}
	// A new storage means new keys: the old cookie is no session there.
	newGateway(t, gatewayOptions{sgid: g.sgid, httpPort: atoi(t, mustURL(t, g.base).Port())})
	if resp, _ := b.api(http.MethodGet, g.base+"/api"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("with other storage: %d, want 401", resp.StatusCode)
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
	if resp, _ := logged.api(http.MethodGet, g.base+"/api"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a logged-in user while sgID is down: %d, want 200", resp.StatusCode)
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

// Later directives read the identity from placeholders: http.auth.user.id is the
// sub and http.auth.user.<field> each forwarded field, as the headers carry them.
func TestIdentityPlaceholdersReachLaterDirectives(t *testing.T) {
	g := newGateway(t, gatewayOptions{siteExtra: `header {
		defer
		X-Who "{http.auth.user.id}"
		X-Who-Name "{http.auth.user.myinfo.name}"
		X-Unknown "{http.auth.user.myinfo.mobile_number}"
	}`})
	persona := sgidtest.Personas()[0]
	resp, body := g.newBrowser().get(g.base + "/")
	upstreamSaw(t, resp, body)
	if got, want := resp.Header.Get("X-Who"), sgidtest.PairwiseSub(g.sgid.ClientID(), persona.ID); got != want {
		t.Errorf("{http.auth.user.id} = %q, want the sub %q", got, want)
	}
	if got, want := resp.Header.Get("X-Who-Name"), persona.Data["myinfo.name"]; got != want {
		t.Errorf("{http.auth.user.myinfo.name} = %q, want %q", got, want)
	}
	// Caddy leaves an unknown placeholder as written.
	if got := resp.Header.Get("X-Unknown"); got != "{http.auth.user.myinfo.mobile_number}" {
		t.Errorf("a field not forwarded has a placeholder value %q", got)
	}
}
