package instances

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Two instances that share a storage directory and configure no secrets share
// sessions: the second to start loads the session secret and the assertion key
// the first generated. A third with its own storage is the control: it must
// refuse the same cookie, or the first check proves nothing.
func TestInstancesSharingStorageServeEachOthersSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	shared := filepath.Join(f.dir, "shared")
	a, b := f.site(shared, false), f.site(shared, false)
	f.start("a", a)
	f.start("b", b) // after a is up: a generated the keys, b loads them

	cookie, sub := f.login(a)
	resp, body := mustCall(t, "http://"+b.Addr+"/page", cookie)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Seen-X-Sgid-Sub") != sub {
		t.Fatalf("instance b with a's cookie: %d, sub %q, want 200 and %q; body %.200s",
			resp.StatusCode, resp.Header.Get("X-Seen-X-Sgid-Sub"), sub, body)
	}
	_, jwksA := mustCall(t, "http://"+a.Addr+"/.sgid/jwks.json", "")
	_, jwksB := mustCall(t, "http://"+b.Addr+"/.sgid/jwks.json", "")
	if jwksA != jwksB {
		t.Errorf("the instances publish different keys:\na: %s\nb: %s", jwksA, jwksB)
	}
	claims, err := verifyES256(resp.Header.Get("X-Seen-X-Sgid-Assertion"), []byte(jwksA))
	if err != nil {
		t.Fatalf("b's assertion against a's JWKS: %v", err)
	}
	if claims["sub"] != sub || claims["iss"] != "http://"+b.Addr || claims["aud"] != "127.0.0.1" {
		t.Errorf("b's assertion claims sub %v iss %v aud %v; want %s, http://%s, 127.0.0.1", claims["sub"], claims["iss"], claims["aud"], sub, b.Addr)
	}

	// The other way round, and the user info endpoint as well as the app.
	cookieB, _ := f.login(b)
	if resp, body := mustCall(t, "http://"+a.Addr+"/.sgid/userinfo", cookieB); resp.StatusCode != http.StatusOK || !strings.Contains(body, sub) {
		t.Errorf("instance a's userinfo with b's cookie: %d %s", resp.StatusCode, body)
	}

	if got, want := storedKeys(t, shared), 2; len(got) != want {
		t.Errorf("storage holds %v, want one session secret and one assertion key", got)
	}

	other := f.site(filepath.Join(f.dir, "other"), false)
	f.start("other", other)
	if resp, _ := mustCall(t, "http://"+other.Addr+"/page", cookie); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an instance with its own storage answered a's cookie with %d, want 401", resp.StatusCode)
	}
	_, jwksOther := mustCall(t, "http://"+other.Addr+"/.sgid/jwks.json", "")
	if jwksOther == jwksA {
		t.Error("an instance with its own storage publishes the same key as a")
	}
}

// Instances started at the same moment on empty shared storage race to
// generate the keys. keys.go takes a storage lock and loads again under it, so
// exactly one generates and the others load: every instance must accept every
// other's cookies and publish the same JWKS. Several rounds, three instances
// each, to give a race a chance to show.
func TestInstancesStartingTogetherAgreeOnKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const rounds, n = 3, 3
	for round := range rounds {
		storage := filepath.Join(f.dir, fmt.Sprintf("shared-%d", round))
		sites := make([]Site, n)
		for i := range sites {
			sites[i] = f.site(storage, false)
		}
		var wg sync.WaitGroup
		procs := make([]*Process, n)
		errs := make([]error, n)
		for i := range sites {
			name := fmt.Sprintf("together-%d-%d", round, i)
			wg.Go(func() { procs[i], errs[i] = Start(caddyBin, f.dir, name, sites[i], f.env) })
		}
		wg.Wait()
		for i, p := range procs {
			if p != nil {
				t.Cleanup(p.Stop)
			}
			if errs[i] != nil {
				t.Fatalf("round %d: %v", round, errs[i])
			}
		}

		var jwks []string
		for _, s := range sites {
			_, body := mustCall(t, "http://"+s.Addr+"/.sgid/jwks.json", "")
			jwks = append(jwks, body)
		}
		if distinct := slices.Compact(slices.Sorted(slices.Values(jwks))); len(distinct) != 1 {
			t.Errorf("round %d: the instances publish %d different JWKS", round, len(distinct))
		}
		for i, from := range sites {
			cookie, sub := f.login(from)
			for j, to := range sites {
				resp, _ := mustCall(t, "http://"+to.Addr+"/", cookie)
				if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Seen-X-Sgid-Sub") != sub {
					t.Errorf("round %d: instance %d's cookie at instance %d: %d, want 200 with the sub (the instances hold different session secrets)", round, i, j, resp.StatusCode)
				}
			}
		}
		if got := storedKeys(t, storage); len(got) != 2 {
			t.Errorf("round %d: storage holds %v, want one session secret and one assertion key", round, got)
		}
		for _, p := range procs {
			p.Stop()
		}
	}
}
