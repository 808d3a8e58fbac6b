package instances

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// rotated is one key of caddy sgid-rotate's answer.
type rotated struct {
	Kind       string    `json:"kind"`
	Key        string    `json:"key"`
	ID         string    `json:"id"`
	ActiveFrom time.Time `json:"active_from"`
	Retiring   []struct {
		ID      string    `json:"id"`
		Expires time.Time `json:"expires"`
	} `json:"retiring"`
}

// A rotation of the keys in storage, made through one instance's admin API
// with `caddy sgid-rotate`, reaches both instances without a restart and
// logs nobody out:
//   - within a poll both publish the new signing key in the JWKS and open
//     cookies sealed with the new secret, while still signing and sealing
//     with the old ones;
//   - at the activation time both switch: assertions carry the new kid,
//     and a user's next cookie is sealed with the new secret;
//   - a user making requests to either instance throughout never gets
//     anything but 200, and every assertion verifies against the JWKS;
//   - a user not seen during the rotation is still logged in on both after
//     it (the old secret stays for its overlap), and a login on one instance
//     after the rotation works on the other;
//   - both instances then report the same keys, old and new, in
//     caddy_sgid_key_info.
func TestStorageKeyRotationReachesBothInstancesAndLogsNobodyOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	shared, sites := f.pollingPair()
	for i := range sites {
		var err error
		if sites[i].Admin, err = FreeAddr(); err != nil {
			t.Fatal(err)
		}
	}
	a, b := sites[0], sites[1]
	pa := f.start("a", a)
	pb := f.start("b", b)
	before := loggedKeys(t, pa, a)
	unseen, _ := f.login(b) // no request from this user during the rotation
	cookie, _ := f.login(a)

	// One user's requests, alternating between the instances.
	type seen struct {
		at        time.Time
		instance  string
		status    int
		assertion string
	}
	var (
		mu   sync.Mutex
		log  []seen
		last = cookie
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			s := []Site{a, b}[i%2]
			mu.Lock()
			c := last
			mu.Unlock()
			resp, _, err := Request(f.client(s), http.MethodGet, s.URL()+"/page", "application/json", c)
			if err != nil {
				t.Errorf("request to %s: %v", s.Addr, err)
				return
			}
			mu.Lock()
			last = UpdateCookies(last, resp)
			log = append(log, seen{time.Now(), s.Addr, resp.StatusCode, resp.Header.Get("X-Seen-X-Sgid-Assertion")})
			mu.Unlock()
		}
	}()

	out, err := exec.Command(caddyBin, "sgid-rotate", "--address", a.Admin, "--activate-in", "4s").CombinedOutput()
	if err != nil {
		t.Fatalf("caddy sgid-rotate: %v\n%s", err, out)
	}
	var answer struct{ Rotated []rotated }
	if err := json.Unmarshal(out, &answer); err != nil || len(answer.Rotated) != 2 {
		t.Fatalf("caddy sgid-rotate printed %s (%v), want the two keys it rotated", out, err)
	}
	var secret, key rotated
	for _, r := range answer.Rotated {
		if r.Kind == "session_secret" {
			secret = r
		} else {
			key = r
		}
	}
	if len(secret.Retiring) != 1 || secret.Retiring[0].ID != before.SessionSecrets[0] ||
		len(key.Retiring) != 1 || key.Retiring[0].ID != before.SigningKeys[0] {
		t.Fatalf("the rotation retires %+v and %+v; want the secret and key the instances started with, %s", secret.Retiring, key.Retiring, before)
	}
	activation := secret.ActiveFrom

	// Pending, two polls on: published and opening, not yet signing.
	time.Sleep(time.Until(activation.Add(-1500 * time.Millisecond)))
	for _, s := range []Site{a, b} {
		if kids := jwksKids(t, f, s); !slices.Equal(kids, []string{before.SigningKeys[0], key.ID}) {
			t.Errorf("before the activation %s publishes %v, want the old kid (signing) and the new", s.Addr, kids)
		}
	}
	time.Sleep(time.Until(activation.Add(1500 * time.Millisecond)))
	close(stop)
	<-done

	var jwks []byte
	for _, s := range []Site{a, b} {
		_, body := f.get(s, "/.sgid/jwks.json", "")
		if kids := jwksKids(t, f, s); !slices.Equal(kids, []string{key.ID, before.SigningKeys[0]}) {
			t.Errorf("after the activation %s publishes %v, want the new kid (signing) and the old", s.Addr, kids)
		}
		jwks = []byte(body)
	}
	mu.Lock()
	defer mu.Unlock()
	var early, late, refused int
	for _, r := range log {
		if r.status != http.StatusOK {
			refused++
			t.Errorf("%v after the rotation's start, %s answered %d: the rotation logged a user out", r.at.Sub(activation.Add(-4*time.Second)), r.instance, r.status)
			continue
		}
		if _, err := verifyES256(r.assertion, jwks); err != nil {
			t.Errorf("an assertion from %s does not verify against the JWKS: %v", r.instance, err)
		}
		// Each key activates at its own time: the rotation computes each
		// one's activation when it stores it, one after the other, so under
		// load the signing key's may come a few hundred ms before the
		// secret's or after it.
		kid := headerKid(t, r.assertion)
		switch {
		case r.at.Before(key.ActiveFrom) && kid != before.SigningKeys[0]:
			t.Errorf("%s signed with %s %v before the key's activation, want the old key %s", r.instance, kid, key.ActiveFrom.Sub(r.at), before.SigningKeys[0])
		case r.at.After(key.ActiveFrom.Add(200*time.Millisecond)) && kid != key.ID:
			t.Errorf("%s signed with %s %v after the key's activation, want the new key %s", r.instance, kid, r.at.Sub(key.ActiveFrom), key.ID)
		case r.at.Before(key.ActiveFrom):
			early++
		default:
			late++
		}
	}
	if early < 20 || late < 20 {
		t.Errorf("%d requests before the activation and %d after, want some of each", early, late)
	}
	t.Logf("%d requests across the rotation, alternating instances: %d not 200", len(log), refused)

	newSecret := storedSecret(t, shared, secret.Key, secret.ActiveFrom)
	if !opens(f.codec(a, newSecret, 30*time.Minute), last) {
		t.Error("the user's cookie after the activation is not sealed with the new secret")
	}
	for _, s := range []Site{a, b} {
		if resp, _ := f.get(s, "/page", unseen); resp.StatusCode != http.StatusOK {
			t.Errorf("a user not seen during the rotation gets %d from %s, want 200 (the old secret stays for its overlap)", resp.StatusCode, s.Addr)
		}
	}
	after := f.loginAnotherUser(b)
	if resp, _ := f.get(a, "/page", after); resp.StatusCode != http.StatusOK {
		t.Errorf("a login on b after the rotation gets %d on a", resp.StatusCode)
	}
	infoA, infoB := keyInfo(t, a), keyInfo(t, b)
	want := heldKeys{SessionSecrets: []string{before.SessionSecrets[0], secret.ID}, SigningKeys: []string{before.SigningKeys[0], key.ID}}.series(a)
	if !slices.Equal(infoA, want) || !slices.Equal(infoB, want) {
		t.Errorf("caddy_sgid_key_info after the rotation\na: %v\nb: %v\nwant: %v", infoA, infoB, want)
	}
	if lines := auditLines(t, pa, "info", "sgid key rotated"); len(lines) != 2 {
		t.Errorf("a logged %d \"sgid key rotated\" lines, want one per key", len(lines))
	}
	for _, p := range []*Process{pa, pb} {
		if warns := sgidLines(t, p, "warn", ""); len(warns) != 0 {
			t.Errorf("%s warned during a rotation: %v", p.Log, warns)
		}
	}
}

// Storage that loses the keys while an instance runs (a Redis restart
// without persistence, a deleted directory) gets them back from it within
// a poll, so an instance started after loads them instead of generating new
// ones: the two agree, and a session from the first works on the second.
func TestALostKeyIsGivenBackBeforeAnotherInstanceStarts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	shared, sites := f.pollingPair()
	a, b := sites[0], sites[1]
	pa := f.start("a", a)
	keysA := loggedKeys(t, pa, a)
	cookie, _ := f.login(a)

	secrets, signing, _, _ := storedKeys(t, shared)
	var held [][]byte
	for _, name := range append(secrets, signing...) {
		v, err := os.ReadFile(filepath.Join(shared, name))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, v)
	}
	if err := os.RemoveAll(filepath.Join(shared, "sgid")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for i, name := range append(secrets, signing...) {
		for {
			v, err := os.ReadFile(filepath.Join(shared, name))
			if err == nil && string(v) == string(held[i]) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not given back 5s after the loss", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if warns := sgidLines(t, pa, "warn", "stored again the copy this instance holds"); len(warns) != 2 {
		t.Errorf("a logged %d WARNs for giving keys back, want 2 (the secret and the key): %v", len(warns), warns)
	}

	pb := f.start("b", b)
	if keysB := loggedKeys(t, pb, b); keysB.String() != keysA.String() {
		t.Errorf("b, started after the loss, holds %s; a holds %s", keysB, keysA)
	}
	if warns := sgidLines(t, pb, "warn", ""); len(warns) != 0 {
		t.Errorf("b warned: %v", warns)
	}
	if resp, _ := f.get(b, "/page", cookie); resp.StatusCode != http.StatusOK {
		t.Errorf("a's session on b, started after the loss: %d, want 200", resp.StatusCode)
	}
}

// pollingPair is two instances of one site sharing the storage shared,
// reloading their keys and revocations every second, logging at INFO.
func (f *fixture) pollingPair() (shared string, sites []Site) {
	shared = filepath.Join(f.dir, "shared")
	sites = f.cluster(shared, shared)
	for i := range sites {
		sites[i].Sgid = "\t\trevocation_poll 1s"
		sites[i].LogLevel = "INFO"
	}
	return shared, sites
}

// jwksKids is what s's instance publishes in its JWKS, in order.
func jwksKids(t *testing.T, f *fixture, s Site) []string {
	t.Helper()
	_, body := f.get(s, "/.sgid/jwks.json", "")
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("JWKS of %s: %s: %v", s.Addr, body, err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// headerKid is the kid in a compact JWS's header.
func headerKid(t *testing.T, token string) string {
	t.Helper()
	var h struct{ Kid string }
	head, _, _ := strings.Cut(token, ".")
	if err := decodeSegment(head, &h); err != nil {
		t.Fatalf("assertion header: %v", err)
	}
	return h.Kid
}

// storedSecret is the session secret a rotation added to the ring under key
// (a storage key) in the file storage at dir: the one active from
// activeFrom.
func storedSecret(t *testing.T, dir, key string, activeFrom time.Time) string {
	t.Helper()
	v, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
	if err != nil {
		t.Fatal(err)
	}
	var ring struct {
		Keys []struct {
			Value      string    `json:"value"`
			ActiveFrom time.Time `json:"active_from"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(v, &ring); err != nil {
		t.Fatalf("%s after a rotation is not a key ring: %v", key, err)
	}
	for _, k := range ring.Keys {
		if k.ActiveFrom.Equal(activeFrom) {
			return k.Value
		}
	}
	t.Fatalf("%s holds no key active from %v", key, activeFrom)
	return ""
}
