package instances

import (
	"crypto/rand"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	caddysgid "github.com/sgidproxy/caddy-sgid"
	"github.com/sgidproxy/caddy-sgid/session"
)

// Rotating the session secret logs out exactly the users not seen while both
// secrets were configured.
//
// A cookie that only an older secret opens is resealed under the first one on
// the user's next request (session.Codec.NeedsRefresh), whether or not the
// idle window needs sliding. So after `session_secret NEW OLD`, any request
// moves a user to NEW; a user not seen at all still holds an OLD cookie and is
// logged out when OLD is dropped. Every OLD cookie was written before the
// rotation and dies idle_timeout after its last write at the latest, so an
// overlap of idle_timeout (not session_lifetime) logs out nobody who would
// still be logged in.
//
// Two groups of users logged in under S1, then S2 S1 configured:
//   - seen: one request during the overlap, right after the login (long before
//     the idle window needs sliding): a new cookie sealed with S2 (and not S1);
//     still logged in after S1 is dropped;
//   - unseen: no request during the overlap; logged out.
//
// The logged-out cookies are still alive under S1 when refused (a client-side
// codec with S1 and the same idle_timeout reads them), so it is the rotation
// that ends them, not the idle timeout.
func TestSecretRotationLogsOutOnlyUsersNotSeenDuringTheOverlap(t *testing.T) {
	t.Parallel()
	s1, s2 := rand.Text()+rand.Text(), rand.Text()+rand.Text() // 52 characters each
	f := newFixture(t, "SGID_S1="+s1, "SGID_S2="+s2)
	const idle = 16 * time.Second
	base := f.site(filepath.Join(f.dir, "storage"), true)
	config := func(secrets string) Site {
		s := base
		s.Sgid = "\t\tsession_secret " + secrets + "\n\t\tidle_timeout 16s"
		return s
	}
	p := f.start("rotation", config("{env.SGID_S1}"))
	onlyS1 := f.codec(base, s1, idle)
	onlyS2 := f.codec(base, s2, idle)

	type user struct {
		group    string
		cookie   string
		loggedIn time.Time
	}
	var users []*user
	for _, g := range []struct {
		name string
		n    int
	}{{"seen", 10}, {"unseen", 10}} {
		for range g.n {
			cookie, _ := f.login(base)
			if !opens(onlyS1, cookie) {
				t.Fatal("a cookie written under session_secret S1 does not open with S1")
			}
			users = append(users, &user{group: g.name, cookie: cookie, loggedIn: time.Now()})
		}
	}
	sub := func(resp *http.Response) string { return resp.Header.Get("X-Seen-X-Sgid-Sub") }

	if err := p.Reload(config("{env.SGID_S2} {env.SGID_S1}")); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.group != "seen" {
			continue
		}
		resp, _ := f.get(base, "/account", u.cookie)
		if resp.StatusCode != http.StatusOK || sub(resp) == "" {
			t.Fatalf("user during the overlap: %d, want 200 with identity", resp.StatusCode)
		}
		u.cookie = UpdateCookies(u.cookie, resp)
		if !opens(onlyS2, u.cookie) || opens(onlyS1, u.cookie) {
			t.Errorf("a cookie seen during the overlap is not resealed with S2 alone (Set-Cookie: %v)", resp.Header["Set-Cookie"])
		}
	}

	if err := p.Reload(config("{env.SGID_S2}")); err != nil {
		t.Fatal(err)
	}
	kept, dropped := 0, 0
	for _, u := range users {
		alive := opens(onlyS1, u.cookie)
		resp, _ := f.get(base, "/account", u.cookie)
		switch u.group {
		case "seen":
			if resp.StatusCode != http.StatusOK || sub(resp) == "" {
				t.Errorf("a user seen during the overlap: %d after S1 was dropped, want 200 with identity", resp.StatusCode)
			}
			kept++
		default:
			if !alive {
				t.Fatalf("an unseen user's S1 cookie is no longer alive %s after its login: the test ran too slowly to tell the rotation from the idle timeout", time.Since(u.loggedIn))
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("an unseen user (cookie sealed with S1 only) after S1 was dropped: %d, want 401", resp.StatusCode)
			}
			dropped++
		}
	}
	t.Logf("after S1 -> S2 S1 -> S2: %d users kept (seen during the overlap), %d logged out (not seen)", kept, dropped)
}

// codec is a client-side session codec for s's cookies with one secret and
// the gateway's idle timeout, to tell which secret sealed a cookie and whether
// it is alive.
func (f *fixture) codec(s Site, secret string, idle time.Duration) *session.Codec {
	f.t.Helper()
	c, err := session.New(session.Config{Binding: caddysgid.SessionBinding(f.issuer(), f.idp.ClientID(), s.URL()),
		Secrets: [][]byte{[]byte(secret)}, IdleTimeout: idle})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// opens reports whether c reads a live session from the Cookie header.
func opens(c *session.Codec, cookie string) bool {
	req, _ := http.NewRequest(http.MethodGet, "http://example/", nil)
	req.Header.Set("Cookie", cookie)
	_, err := c.Read(req)
	return err == nil
}
