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

// Two instances of one cluster (one public site, each instance at its own
// address, as behind a load balancer) that share a storage directory and
// configure no secrets share sessions: the second to start loads the session
// secret and the assertion key the first generated. A third instance of the
// same site with its own storage is the control: it must refuse the same
// cookie, or the first check proves nothing.
func TestInstancesSharingStorageServeEachOthersSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	shared := filepath.Join(f.dir, "shared")
	sites := f.cluster(shared, shared, filepath.Join(f.dir, "other"))
	a, b, other := sites[0], sites[1], sites[2]
	f.start("a", a)
	f.start("b", b) // after a is up: a generated the keys, b loads them

	cookie, sub := f.login(a)
	resp, body := f.get(b, "/page", cookie)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Seen-X-Sgid-Sub") != sub {
		t.Fatalf("instance b with a's cookie: %d, sub %q, want 200 and %q; body %.200s",
			resp.StatusCode, resp.Header.Get("X-Seen-X-Sgid-Sub"), sub, body)
	}
	_, jwksA := f.get(a, "/.sgid/jwks.json", "")
	_, jwksB := f.get(b, "/.sgid/jwks.json", "")
	if jwksA != jwksB {
		t.Errorf("the instances publish different keys:\na: %s\nb: %s", jwksA, jwksB)
	}
	claims, err := verifyES256(resp.Header.Get("X-Seen-X-Sgid-Assertion"), []byte(jwksA))
	if err != nil {
		t.Fatalf("b's assertion against a's JWKS: %v", err)
	}
	// The public site, not the instance's own address.
	if claims["sub"] != sub || claims["iss"] != b.URL() || claims["aud"] != b.Public {
		t.Errorf("b's assertion claims sub %v iss %v aud %v; want %s, %s, %s", claims["sub"], claims["iss"], claims["aud"], sub, b.URL(), b.Public)
	}

	// The other way round, and the user info endpoint as well as the app.
	cookieB, _ := f.login(b)
	if resp, body := f.get(a, "/.sgid/userinfo", cookieB); resp.StatusCode != http.StatusOK || !strings.Contains(body, sub) {
		t.Errorf("instance a's userinfo with b's cookie: %d %s", resp.StatusCode, body)
	}

	checkStoredKeys(t, shared, 1)

	f.start("other", other)
	if resp, _ := f.get(other, "/page", cookie); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an instance of the same site with its own storage answered a's cookie with %d, want 401", resp.StatusCode)
	}
	_, jwksOther := f.get(other, "/.sgid/jwks.json", "")
	if jwksOther == jwksA {
		t.Error("an instance with its own storage publishes the same key as a")
	}
}

// Instances of one cluster started at the same moment on empty shared storage
// race to generate the keys. keys.go takes a storage lock and loads again under it, so
// exactly one generates and the others load: every instance must accept every
// other's cookies and publish the same JWKS. Several rounds, three instances
// each, to give a race a chance to show.
func TestInstancesStartingTogetherAgreeOnKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const rounds, n = 3, 3
	for round := range rounds {
		storage := filepath.Join(f.dir, fmt.Sprintf("shared-%d", round))
		sites := f.cluster(slices.Repeat([]string{storage}, n)...)
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
			_, body := f.get(s, "/.sgid/jwks.json", "")
			jwks = append(jwks, body)
		}
		if distinct := slices.Compact(slices.Sorted(slices.Values(jwks))); len(distinct) != 1 {
			t.Errorf("round %d: the instances publish %d different JWKS", round, len(distinct))
		}
		for i, from := range sites {
			cookie, sub := f.login(from)
			for j, to := range sites {
				resp, _ := f.get(to, "/", cookie)
				if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Seen-X-Sgid-Sub") != sub {
					t.Errorf("round %d: instance %d's cookie at instance %d: %d, want 200 with the sub (the instances hold different session secrets)", round, i, j, resp.StatusCode)
				}
			}
		}
		checkStoredKeys(t, storage, 1)
		for _, p := range procs {
			p.Stop()
		}
	}
}
