package instances

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/internal/redistest"
)

// A cookie saved before a logout on one instance is refused on the other
// within the store's bound: the poll interval with Caddy storage, a second
// with Redis (whose instances here share no storage at all). Sign-out
// everywhere on one instance ends both of that user's sessions on both, and
// not another user's.
func TestLogoutOnOneInstanceIsRefusedOnTheOther(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		store  func(t *testing.T) string // the sgid lines that choose the store
		shared bool                      // the instances share Caddy storage
		within time.Duration
	}{
		{"storage", func(*testing.T) string { return "\t\trevocation_poll 2s" }, true, 2*time.Second + time.Second},
		{"redis", func(t *testing.T) string {
			return fmt.Sprintf("\t\trevocation_store redis://%s\n\t\trevocation_poll 1m", redistest.Start(t).Addr())
		}, false, time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			storageA, storageB := filepath.Join(f.dir, "a"), filepath.Join(f.dir, "b")
			if tt.shared {
				storageB = storageA
			}
			sites := f.cluster(storageA, storageB)
			lines := tt.store(t)
			if !tt.shared {
				// Without shared storage the instances must share the keys.
				lines += "\n\t\tsession_secret {env.TEST_SESSION_SECRET}\n\t\tsigning_secret {env.TEST_SIGNING_SECRET}"
				f.env = append(f.env, "TEST_SESSION_SECRET=0123456789abcdef0123456789abcdef-s", "TEST_SIGNING_SECRET=0123456789abcdef0123456789abcdef-a")
			}
			for i := range sites {
				sites[i].Sgid = lines
			}
			a, b := sites[0], sites[1]
			f.start("a", a)
			f.start("b", b)

			cookie, _ := f.login(a)
			if resp, _ := f.get(b, "/page", cookie); resp.StatusCode != http.StatusOK {
				t.Fatalf("b with a's cookie before logout: %d, want 200", resp.StatusCode)
			}
			if resp, _ := f.get(a, "/.sgid/logout", cookie); resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
				t.Fatalf("logout on a: %d", resp.StatusCode)
			}
			if resp, _ := f.get(a, "/page", cookie); resp.StatusCode == http.StatusOK {
				t.Fatal("a still serves the cookie it logged out")
			}
			logout := time.Now()
			refusedIn(t, f, b, cookie, logout, tt.within)

			// Sign-out everywhere: two sessions of one user, one of another
			// (a second persona), all made on a.
			one, _ := f.login(a)
			two, _ := f.login(b)
			other := f.loginAnotherUser(a)
			req, _ := http.NewRequest(http.MethodPost, a.URL()+"/.sgid/logout?everywhere=1", nil)
			req.Header.Set("Cookie", one)
			req.Header.Set("Origin", a.URL())
			resp, err := f.client(a).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
				t.Fatalf("sign-out everywhere on a: %d", resp.StatusCode)
			}
			everywhere := time.Now()
			refusedIn(t, f, b, one, everywhere, tt.within)
			refusedIn(t, f, b, two, everywhere, tt.within)
			refusedIn(t, f, a, two, everywhere, tt.within)
			for _, s := range []Site{a, b} {
				if resp, _ := f.get(s, "/page", other); resp.StatusCode != http.StatusOK {
					t.Errorf("another user's session after sign-out everywhere: %d, want 200", resp.StatusCode)
				}
			}
		})
	}
}

// loginAnotherUser logs in at s as a persona other than the default one, for
// the rest of the test, and returns the session cookies.
func (f *fixture) loginAnotherUser(s Site) string {
	f.t.Helper()
	if err := f.idp.SetPersona("nur-aisyah"); err != nil {
		f.t.Fatal(err)
	}
	cookie, _, err := Login(s.Transport(), s.URL())
	if err != nil {
		f.t.Fatal(err)
	}
	return cookie
}

// refusedIn waits for s to refuse cookie, failing if that takes longer than
// within from since.
func refusedIn(t *testing.T, f *fixture, s Site, cookie string, since time.Time, within time.Duration) {
	t.Helper()
	for {
		resp, _ := f.get(s, "/page", cookie)
		if resp.StatusCode != http.StatusOK {
			t.Logf("refused on %s %v after the revocation", s.Addr, time.Since(since).Round(10*time.Millisecond))
			return
		}
		if time.Since(since) > within {
			t.Fatalf("%s still serves the revoked cookie %v after the revocation, want at most %v", s.Addr, time.Since(since).Round(10*time.Millisecond), within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Redis down when Caddy starts costs users nothing: Caddy starts, logins and
// sessions work, and a logout holds on the instance that served it. Once
// Redis is back (empty), that logout reaches it, and an instance started
// after refuses the cookie.
func TestRedisDownAtStartCostsUsersNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	redis := redistest.Start(t)
	redis.Kill()
	f.env = append(f.env, "TEST_SESSION_SECRET=0123456789abcdef0123456789abcdef-s", "TEST_SIGNING_SECRET=0123456789abcdef0123456789abcdef-a")
	sites := f.cluster(filepath.Join(f.dir, "a"), filepath.Join(f.dir, "b"))
	for i := range sites {
		sites[i].Sgid = fmt.Sprintf("\t\trevocation_store redis://%s\n\t\trevocation_poll 1s\n"+
			"\t\tsession_secret {env.TEST_SESSION_SECRET}\n\t\tsigning_secret {env.TEST_SIGNING_SECRET}", redis.Addr())
	}
	a, b := sites[0], sites[1]
	f.start("a", a)
	cookie, _ := f.login(a)
	if resp, _ := f.get(a, "/page", cookie); resp.StatusCode != http.StatusOK {
		t.Fatalf("a session with Redis down: %d, want 200", resp.StatusCode)
	}
	if resp, _ := f.get(a, "/.sgid/logout", cookie); resp.StatusCode >= 300 {
		t.Fatalf("logout with Redis down: %d", resp.StatusCode)
	}
	if resp, _ := f.get(a, "/page", cookie); resp.StatusCode == http.StatusOK {
		t.Fatal("the instance that logged out still serves the cookie with Redis down")
	}
	redis.Restart()
	back := time.Now()
	f.start("b", b)
	// Generous: a's syncer retries with a doubling wait, capped at its 1 s
	// poll, and gives the logout back within its grace.
	refusedIn(t, f, b, cookie, back, 15*time.Second)
}
