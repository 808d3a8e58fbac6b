package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

const childrenScope = "openid myinfo.name myinfo.email myinfo.children_birth_records"

// childrenGateway forwards the children's birth records of nur-aisyah, whose
// 4 KB of them would make a session too large for its cookies: the fake sgID
// it starts, unless o names one, cuts them to make a session of several.
func childrenGateway(t *testing.T, o gatewayOptions) *gateway {
	t.Helper()
	if o.sgid == nil {
		// Children records of 3,000 bytes: a session of two cookies, the most
		// one can be (session.MaxChunks).
		srv := sgidtest.Start(t, sgidtest.Options{Persona: "nur-aisyah",
			Data: map[string]string{"myinfo.children_birth_records": `[{"name":"` + strings.Repeat("CHILD ", 500) + `"}]`}})
		o.sgid = srv
	}
	o.scope = childrenScope
	o.directives += "\nforward myinfo.children_birth_records X-Children"
	return newGateway(t, o)
}

// assertNoSession checks that a request with this Cookie header has no
// session: an API call gets 401 with a login URL, a navigation goes to sgID.
func (g *gateway) assertNoSession(t *testing.T, what, cookie string) {
	t.Helper()
	b := g.newBrowser().noFollow()
	resp, body := b.api(http.MethodGet, g.base+"/api", cookie)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "login_url") {
		t.Errorf("%s: API call got %d %.150s, want 401 with login_url", what, resp.StatusCode, body)
	}
	resp, _ = b.get(g.base+"/page", cookie)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), g.sgid.URL()) {
		t.Errorf("%s: navigation got %d to %q, want 302 to sgID", what, resp.StatusCode, resp.Header.Get("Location"))
	}
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// flip inverts the top bit of the 6 that the character at i encodes, a bit
// that always carries data (the low ones of a final character may not).
func flip(v string, i int) (string, bool) {
	if i < 0 || i >= len(v) {
		return v, false
	}
	k := strings.IndexByte(b64url, v[i])
	if k < 0 {
		return v, false
	}
	return v[:i] + string(b64url[k^32]) + v[i+1:], true
}

func TestAbuseTamperedChunkedSessionCookiesAreNoSession(t *testing.T) {
	log := newCaddyLog(t)
	g := childrenGateway(t, gatewayOptions{globalExtra: log.option})
	b, other := g.newBrowser(), g.newBrowser()
	g.login(b, "/")
	g.login(other, "/")
	good, theirs := g.sessionCookies(b), g.sessionCookies(other)
	if len(good) != session.MaxChunks || len(theirs) != len(good) {
		t.Fatalf("sessions of %d and %d cookies: the test needs two of %d", len(good), len(theirs), session.MaxChunks)
	}
	if got := g.apiStatus(g.newBrowser(), cookieHeader(good)); got != http.StatusOK {
		t.Fatalf("the untouched cookies, sent as a header, got %d: the harness is wrong", got)
	}
	withExtra := append(clone(good), &http.Cookie{Name: "sgid_session_9", Value: "left-over-chunk"})
	if got := g.apiStatus(g.newBrowser(), cookieHeader(withExtra)); got != http.StatusOK {
		t.Errorf("a chunk beyond the count, as an earlier login leaves, broke the session: %d", got)
	}

	type tampering struct {
		name    string
		cookies []*http.Cookie
	}
	var cases []tampering
	edit := func(name string, f func(cs []*http.Cookie) []*http.Cookie) {
		cases = append(cases, tampering{name, f(clone(good))})
	}
	for i, c := range good {
		positions := []int{0, 1, 2, len(c.Value) - 2, len(c.Value) - 1}
		for p := 3; p < len(c.Value)-2; p += len(c.Value) / 16 {
			positions = append(positions, p)
		}
		for _, p := range positions {
			if v, ok := flip(c.Value, p); ok {
				edit(fmt.Sprintf("bit flip in %s at %d of %d", c.Name, p, len(c.Value)), func(cs []*http.Cookie) []*http.Cookie {
					cs[i].Value = v
					return cs
				})
			}
		}
		for _, cut := range []int{1, 4, len(c.Value) / 2, len(c.Value)} {
			edit(fmt.Sprintf("%s cut by %d", c.Name, cut), func(cs []*http.Cookie) []*http.Cookie {
				cs[i].Value = cs[i].Value[:len(cs[i].Value)-cut]
				return cs
			})
		}
		edit(c.Name+" missing", func(cs []*http.Cookie) []*http.Cookie { return append(cs[:i], cs[i+1:]...) })
		edit(c.Name+" from another session", func(cs []*http.Cookie) []*http.Cookie {
			cs[i].Value = theirs[i].Value
			return cs
		})
		if i+1 < len(good) {
			edit(fmt.Sprintf("%s and the next swapped", c.Name), func(cs []*http.Cookie) []*http.Cookie {
				cs[i].Value, cs[i+1].Value = cs[i+1].Value, cs[i].Value
				return cs
			})
		}
	}
	count, rest, _ := strings.Cut(good[0].Value, ".")
	for _, n := range []string{"1", "2", fmt.Sprint(len(good) + 1), "9", "10", "11", "0", "-3", "03", ""} {
		if n != count {
			edit("chunk count "+n, func(cs []*http.Cookie) []*http.Cookie {
				cs[0].Value = n + "." + rest
				return cs
			})
		}
	}
	edit("chunk count dropped", func(cs []*http.Cookie) []*http.Cookie { cs[0].Value = rest; return cs })
	edit("chunks rotated", func(cs []*http.Cookie) []*http.Cookie {
		first := cs[0].Value
		for i := range len(cs) - 1 {
			cs[i].Value = cs[i+1].Value
		}
		cs[len(cs)-1].Value = first
		return cs
	})
	edit("all chunks joined in one cookie", func(cs []*http.Cookie) []*http.Cookie {
		var all strings.Builder
		for _, c := range cs {
			all.WriteString(c.Value)
		}
		return []*http.Cookie{{Name: "sgid_session", Value: strings.Replace(all.String(), count+".", "1.", 1)}}
	})
	edit("values under the __Host- names", func(cs []*http.Cookie) []*http.Cookie {
		for _, c := range cs {
			c.Name = "__Host-" + c.Name
		}
		return cs
	})
	edit("quoted and padded", func(cs []*http.Cookie) []*http.Cookie { cs[1].Value = `"` + cs[1].Value + `=="`; return cs })

	for _, c := range cases {
		g.assertNoSession(t, c.name, cookieHeader(c.cookies))
	}
	t.Logf("%d tamperings of a %d-cookie session", len(cases), len(good))
	log.assertNoPanicOrError(t)
}

func TestAbuseRemovedSecretEndsChunkedSessionsAndPendingLogins(t *testing.T) {
	const s1 = "first-secret-first-secret-first-secret"
	const s2 = "second-secret-second-secret-second-secret"
	log := newCaddyLog(t)
	g := childrenGateway(t, gatewayOptions{directives: "session_secret " + s1, globalExtra: log.option})
	b, pending := g.newBrowser(), g.newBrowser()
	g.login(b, "/")
	if n := len(g.sessionCookies(b)); n < 2 {
		t.Fatalf("the session is %d cookie: not chunked", n)
	}
	inFlight := g.callbackURL(pending, "/was-pending")
	reload := func(secrets string) {
		childrenGateway(t, g.sameSite(gatewayOptions{directives: "session_secret " + secrets, globalExtra: log.option}))
	}

	sealedWithS1 := g.sessionCookies(b)
	reload(s2 + " " + s1)
	if got := g.apiStatus(b); got != http.StatusOK {
		t.Fatalf("with the old secret still listed: %d, want 200", got)
	}
	reload(s2)
	g.assertNoSession(t, "session made with a removed secret", cookieHeader(sealedWithS1))
	if got := g.apiStatus(b); got != http.StatusOK {
		t.Errorf("the session resealed while both secrets were listed: %d after the old one was removed, want 200", got)
	}
	resp, body := pending.noFollow().get(inFlight)
	assertRefused(t, "a login started under a removed secret", resp, body, http.StatusBadRequest, "Login expired")
	if s := g.login(b, "/again"); s.header("X-Children") == "" {
		t.Error("a new login under the new secret carries no forwarded field")
	}
	log.assertNoPanicOrError(t)
}

func TestAbuseHugeCookieHeaderIsNoSessionNeverAServerError(t *testing.T) {
	pad := func(n int, f func(i int) string) string {
		var sb strings.Builder
		for i := 0; sb.Len() < n; i++ {
			if i > 0 {
				sb.WriteString("; ")
			}
			sb.WriteString(f(i))
		}
		return "Cookie: " + sb.String()
	}
	junk := pad(60<<10, func(i int) string { return fmt.Sprintf("junk%d=%s", i, strings.Repeat("j", 50)) })

	t.Run("caddy's own limit", func(t *testing.T) {
		g := newGateway(t, gatewayOptions{})
		if got := g.apiStatus(g.newBrowser(), junk); got != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("60 KB of cookies with Caddy's default header limit: %d, want 431", got)
		}
		g.assertNoSession(t, "12 KB of junk cookies, under the limit", pad(12<<10, func(i int) string { return fmt.Sprintf("j%d=%s", i, strings.Repeat("j", 50)) }))
	})

	t.Run("limit raised to 1 MB", func(t *testing.T) {
		log := newCaddyLog(t)
		g := childrenGateway(t, gatewayOptions{globalExtra: log.option + "\n\tservers {\n\t\tmax_header_size 1MB\n\t}"})
		b := g.newBrowser()
		g.login(b, "/")
		good := cookieHeader(g.sessionCookies(b))
		huge := strings.Repeat("A", 60<<10)
		for _, c := range []struct{ name, cookie string }{
			{"60 KB of junk", junk},
			{"one 60 KB session cookie", "Cookie: sgid_session=1." + huge},
			{"ten 6 KB chunks", pad(60<<10, func(i int) string {
				name, count := "sgid_session", ""
				if i > 0 {
					name = fmt.Sprintf("sgid_session_%d", i)
				} else {
					count = "10."
				}
				return name + "=" + count + strings.Repeat("B", 6<<10)
			})},
			{"the session cookie 2000 times", pad(60<<10, func(int) string { return "sgid_session=3.AAAA" })},
			{"1000 forged login attempts", pad(60<<10, func(i int) string { return fmt.Sprintf("sgid_session_login_%012d=%s", i, strings.Repeat("C", 30)) })},
		} {
			g.assertNoSession(t, c.name, c.cookie)
			resp, body := g.newBrowser().noFollow().get(g.base+"/.sgid/callback?state=forged&code=forged", c.cookie)
			assertRefused(t, c.name+" on the callback", resp, body, http.StatusBadRequest, "Login expired")
			resp, _ = g.newBrowser().noFollow().get(g.base+"/page", c.cookie)
			if n := len(resp.Header.Values("Set-Cookie")); n > 33 {
				t.Errorf("%s: a login start answered with %d Set-Cookie headers, want at most 33", c.name, n)
			}
		}
		if got := g.apiStatus(g.newBrowser(), good+"; "+strings.TrimPrefix(junk, "Cookie: ")); got != http.StatusOK {
			t.Errorf("a good session beside 60 KB of junk cookies: %d, want 200", got)
		}
		log.assertNoPanicOrError(t)
	})
}
