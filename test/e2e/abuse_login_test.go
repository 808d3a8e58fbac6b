package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

func TestAbuseReplayedCallbackIsLoginExpiredAndNoSession(t *testing.T) {
	// Also against an IdP that accepts a code twice (MockPass does): the
	// gateway remembers spent states itself.
	for _, reusable := range []bool{false, true} {
		t.Run(fmt.Sprintf("reusable codes %t", reusable), func(t *testing.T) {
			g := newGateway(t, gatewayOptions{})
			g.sgid.SetFaults(sgidtest.Faults{ReusableCodes: reusable})
			b := g.newBrowser()
			cb := g.callbackURL(b, "/first")
			attempt := b.cookies(g.base)
			resp, body := b.get(cb)
			if s := upstreamSaw(t, resp, body); s.Path != "/first" {
				t.Fatalf("the genuine callback landed on %q", s.Path)
			}

			// The back button: the attempt cookie is gone.
			resp, body = b.noFollow().get(cb)
			assertRefused(t, "replay in the same browser", resp, body, http.StatusBadRequest, "Login expired")

			// Someone who kept the attempt cookie too.
			thief := g.withCookies(attempt)
			resp, body = thief.noFollow().get(cb)
			assertRefused(t, "replay with the attempt cookie", resp, body, http.StatusBadRequest, "Login expired")
			if who := g.whoIs(thief); who != "" {
				t.Errorf("the replaying browser has a session as %s", who)
			}
			// A fresh browser with only the URL.
			resp, body = g.newBrowser().noFollow().get(cb)
			assertRefused(t, "replay in a fresh browser", resp, body, http.StatusBadRequest, "Login expired")
		})
	}
}

func TestAbuseLoginCSRFAttackersCallbackInVictimsBrowserIsRefused(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	personas := sgidtest.Personas()
	attackerID, victimID := personas[1].ID, personas[0].ID

	for _, victimState := range []string{"no session", "own login in progress", "logged in"} {
		t.Run(victimState, func(t *testing.T) {
			victim := g.newBrowser()
			switch victimState {
			case "own login in progress":
				g.callbackURL(victim, "/victims-page") // leaves the victim's attempt cookie
			case "logged in":
				if err := g.sgid.SetPersona(victimID); err != nil {
					t.Fatal(err)
				}
				g.login(victim, "/")
			}
			if err := g.sgid.SetPersona(attackerID); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.sgid.SetPersona(victimID) })
			lure := g.callbackURL(g.newBrowser(), "/attackers-page")

			tokens := g.sgid.Requests(sgidtest.EndpointToken)
			resp, body := victim.noFollow().get(lure)
			assertRefused(t, "attacker's callback", resp, body, http.StatusBadRequest, "Login expired")
			if g.sgid.Requests(sgidtest.EndpointToken) != tokens {
				t.Error("the attacker's code was exchanged from the victim's browser")
			}
			want := ""
			if victimState == "logged in" {
				want = g.subOf(victimID)
			}
			if who := g.whoIs(victim); who != want {
				t.Errorf("after the lure the victim is %q, want %q (attacker is %s)", who, want, g.subOf(attackerID))
			}
		})
	}
}

func TestAbuseCallbackWithMissingOrDuplicatedParametersIsRefused(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	for _, c := range []struct {
		name  string
		edit  func(q url.Values)
		spent bool // the attempt was found, so it is used up
	}{
		{"no code", func(q url.Values) { q.Del("code") }, true},
		{"empty code", func(q url.Values) { q.Set("code", "") }, true},
		{"code twice", func(q url.Values) { q.Add("code", "attacker-code") }, true},
		{"state twice, the attempt's first", func(q url.Values) { q.Add("state", "other-state") }, true},
		{"state twice, the attempt's second", func(q url.Values) { q["state"] = []string{"other-state", q.Get("state")} }, false},
		{"no state", func(q url.Values) { q.Del("state") }, false},
		{"empty state", func(q url.Values) { q.Set("state", "") }, false},
		{"nothing", func(q url.Values) { clear(q) }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := g.newBrowser()
			genuine := mustURL(t, g.callbackURL(b, "/target"))
			q := genuine.Query()
			c.edit(q)
			bad := *genuine
			bad.RawQuery = q.Encode()
			tokens := g.sgid.Requests(sgidtest.EndpointToken)
			resp, body := b.noFollow().get(bad.String())
			assertRefused(t, c.name, resp, body, http.StatusBadRequest, "Login expired")
			if g.sgid.Requests(sgidtest.EndpointToken) != tokens {
				t.Error("a malformed callback reached sgID's token endpoint")
			}
			if who := g.whoIs(b); who != "" {
				t.Errorf("a session after a malformed callback: %s", who)
			}
			// The genuine callback afterwards: an attempt is single-use.
			resp, body = b.noFollow().get(genuine.String())
			if c.spent {
				assertRefused(t, "the genuine callback after "+c.name, resp, body, http.StatusBadRequest, "Login expired")
			} else if resp.StatusCode != http.StatusSeeOther || !setsSession(resp) {
				t.Errorf("the genuine callback after %s: %d, want the 303 with a session", c.name, resp.StatusCode)
			}
		})
	}
}

func TestAbuseCallbackErrorsFromSgIDGiveCleanPages(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	for _, c := range []struct {
		name, query string
		withAttempt bool
		status      int
		title       string
	}{
		{"access_denied", "error=access_denied", true, http.StatusForbidden, "Login cancelled"},
		{"access_denied without an attempt", "error=access_denied", false, http.StatusBadRequest, "Login expired"},
		{"access_denied beside a code", "error=access_denied&code=x", true, http.StatusForbidden, "Login cancelled"},
		{"server_error with markup in the description", "error=server_error&error_description=" +
			url.QueryEscape(`<script>alert("x")</script> S1234567A`), true, http.StatusBadGateway, "sgID unavailable"},
		{"an error code sgID does not send for an outage", "error=invalid_scope", true, http.StatusBadRequest, "Login failed"},
		{"a made-up error code", "error=" + url.QueryEscape("<b>made-up</b>"), true, http.StatusBadRequest, "Login failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := g.newBrowser()
			state := "no-such-state"
			if c.withAttempt {
				state = mustURL(t, g.callbackURL(b, "/app")).Query().Get("state")
			}
			tokens := g.sgid.Requests(sgidtest.EndpointToken)
			resp, body := b.noFollow().get(g.base + "/.sgid/callback?state=" + url.QueryEscape(state) + "&" + c.query)
			assertRefused(t, c.name, resp, body, c.status, c.title)
			if strings.Contains(body, "<script>") || strings.Contains(body, "S1234567A") || strings.Contains(body, "server_error") {
				t.Errorf("the page reflects sgID's error text: %.400s", body)
			}
			if g.sgid.Requests(sgidtest.EndpointToken) != tokens {
				t.Error("an error callback reached sgID's token endpoint")
			}
			if c.withAttempt {
				for _, ck := range resp.Cookies() {
					if attemptCookie(ck.Name) && ck.MaxAge >= 0 {
						t.Errorf("the attempt cookie %s was not cleared", ck.Name)
					}
				}
			}
		})
	}
}

// cookieSizes records, for requests to one host, the longest Cookie header
// sent and the longest Set-Cookie received.
type cookieSizes struct {
	http.RoundTripper
	host                string
	mu                  sync.Mutex
	maxCookie, maxSetCk int
}

func (c *cookieSizes) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.RoundTripper.RoundTrip(req)
	if req.URL.Host == c.host {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.maxCookie = max(c.maxCookie, len(req.Header.Get("Cookie")))
		if resp != nil {
			for _, v := range resp.Header.Values("Set-Cookie") {
				c.maxSetCk = max(c.maxSetCk, len(v))
			}
		}
	}
	return resp, err
}

func (g *gateway) attemptCookies(b *browser) int {
	n := 0
	for _, c := range b.cookies(g.base) {
		if attemptCookie(c.Name) {
			n++
		}
	}
	return n
}

func TestAbuseMoreLoginAttemptsThanTheCapDropTheOldest(t *testing.T) {
	const maxAttempts, tabs = 5, 8 // session.Config's default cap
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	sizes := &cookieSizes{RoundTripper: http.DefaultTransport, host: mustURL(t, g.base).Host}
	b.client.Transport = sizes
	nf := b.noFollow()

	var authorize []string
	for i := 1; i <= tabs; i++ {
		resp, _ := nf.get(g.base + "/tab" + string(rune('0'+i)))
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("tab %d: %d", i, resp.StatusCode)
		}
		authorize = append(authorize, resp.Header.Get("Location"))
		if n := g.attemptCookies(b); n > maxAttempts {
			t.Fatalf("after %d logins started the browser holds %d attempt cookies, want at most %d", i, n, maxAttempts)
		}
	}
	for i, u := range authorize {
		resp, body := b.get(u)
		path := "/tab" + string(rune('1'+i))
		if i < tabs-maxAttempts {
			assertRefused(t, path+" (dropped)", resp, body, http.StatusBadRequest, "Login expired")
			continue
		}
		if s := upstreamSaw(t, resp, body); s.Path != path || s.header("X-Sgid-Sub") == "" {
			t.Errorf("%s landed on %q with sub %q", path, s.Path, s.header("X-Sgid-Sub"))
		}
	}

	// Tabs racing: each start leaves before the others' cookies arrive, so
	// none of them sees, or trims, the rest; the next start trims them back.
	b = g.newBrowser()
	b.client.Transport = sizes
	nf = b.noFollow()
	racer := &browser{t: t, client: &http.Client{Transport: sizes, CheckRedirect: nf.client.CheckRedirect}}
	for range 12 {
		resp, _ := racer.do(http.MethodGet, g.base+"/race", "text/html")
		b.setCookies(g.base, resp.Cookies()...)
	}
	if n := g.attemptCookies(b); n != 12 {
		t.Fatalf("the racing tabs left %d attempt cookies, want 12", n)
	}
	resp, body := nf.get(g.base + "/last")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("a login started after the race: %d %.300s", resp.StatusCode, body)
	}
	if n := g.attemptCookies(b); n > maxAttempts {
		t.Errorf("after a race of logins and one more, %d attempt cookies remain, want at most %d", n, maxAttempts)
	}
	resp, body = b.get(resp.Header.Get("Location"))
	if s := upstreamSaw(t, resp, body); s.Path != "/last" {
		t.Errorf("the newest login landed on %q", s.Path)
	}
	if sizes.maxCookie == 0 || sizes.maxCookie > 8192 || sizes.maxSetCk > 8192 {
		t.Errorf("largest Cookie header %d bytes, largest Set-Cookie %d: want both within 8 KB", sizes.maxCookie, sizes.maxSetCk)
	}
	t.Logf("largest Cookie header %d bytes, largest Set-Cookie %d", sizes.maxCookie, sizes.maxSetCk)
}

func TestAbuseSessionFixationLoginAlwaysIssuesANewSession(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	personas := sgidtest.Personas()
	value := func(b *browser) string {
		t.Helper()
		cs := g.sessionCookies(b)
		return cs[0].Value
	}

	t.Run("a planted value is replaced", func(t *testing.T) {
		const planted = "1.attacker-chosen-session-value"
		b := g.withCookies([]*http.Cookie{{Name: "sgid_session", Value: planted}})
		g.login(b, "/")
		if v := value(b); v == planted || g.whoIs(b) != g.subOf(personas[0].ID) {
			t.Errorf("after login the cookie is %q (planted %q)", v, planted)
		}
	})
	t.Run("an attacker's own session is replaced by the victim's login", func(t *testing.T) {
		if err := g.sgid.SetPersona(personas[1].ID); err != nil {
			t.Fatal(err)
		}
		attacker := g.newBrowser()
		g.login(attacker, "/")
		if err := g.sgid.SetPersona(personas[0].ID); err != nil {
			t.Fatal(err)
		}
		victim := g.withCookies(g.sessionCookies(attacker))
		if g.whoIs(victim) != g.subOf(personas[1].ID) {
			t.Fatal("the planted session is not the attacker's: the test proves nothing")
		}
		g.login(victim, "/.sgid/login?return_to=/mine")
		if v := value(victim); v == value(attacker) || g.whoIs(victim) != g.subOf(personas[0].ID) {
			t.Errorf("after the victim's own login: same value %v, sub %s", v == value(attacker), g.whoIs(victim))
		}
	})
	t.Run("logging in again gives a new value", func(t *testing.T) {
		b := g.newBrowser()
		g.login(b, "/")
		before := value(b)
		g.login(b, "/.sgid/login?return_to=/again")
		if value(b) == before {
			t.Error("a second login kept the session cookie value")
		}
	})
}
