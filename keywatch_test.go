package caddysgid

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// watched provisions a handler's gateway from k's storage keys, as
// Provision does, and watches them every poll until the test ends.
func (tk *testKeys) watched(k *keyStore, poll time.Duration) *gateway.Gateway {
	tk.t.Helper()
	gw, _ := tk.watch(k, poll)
	return gw
}

// watch is watched, with the watch.
func (tk *testKeys) watch(k *keyStore, poll time.Duration) (*gateway.Gateway, *keyWatch) {
	tk.t.Helper()
	secrets, err := k.sessionSecrets()
	if err != nil {
		tk.t.Fatal(err)
	}
	ecKeys, err := k.signingKeys(tk.site)
	if err != nil {
		tk.t.Fatal(err)
	}
	rsaKey, err := sgidtest.NewRSAKey()
	if err != nil {
		tk.t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{
		Client: sgid.Config{ClientID: k.clientID, ClientSecret: "s", PrivateKey: sgidtest.EncodePKCS8(rsaKey)},
		Site:   tk.site, SessionSecrets: secrets, SigningKeys: ecKeys,
	})
	if err != nil {
		tk.t.Fatal(err)
	}
	base := gateway.Keys{SessionSecrets: secrets, SigningKeys: ecKeys}
	w := watchKeys(k, gw, tk.site, base, keySources{sessionSecrets: "storage", signingKeys: "storage"}, poll, 30*time.Minute, 5*time.Minute)
	tk.t.Cleanup(w.close)
	return gw, w
}

// held is what storage holds for k: the session secret, the site's signing
// key and its kid.
func (tk *testKeys) held(k *keyStore) (secret, key []byte, kid string) {
	tk.t.Helper()
	secret, key = tk.stored(k, sessionSecretName), tk.stored(k, signingKeyName(tk.site))
	return secret, key, valueID(kindSigningKey, string(key))
}

// swappedTo waits up to within for the watch to log that it gave the gateway
// these secrets and keys (fingerprints and kids, in order) and returns when.
func swappedTo(t *testing.T, logs *observer.ObservedLogs, secrets, keys []string, within time.Duration) time.Time {
	t.Helper()
	want := fmt.Sprint(secrets) + fmt.Sprint(keys)
	deadline := time.Now().Add(within)
	for {
		for _, l := range logs.FilterMessage("sgid keys").All() {
			f := l.ContextMap()
			if fmt.Sprint(f["session_secrets"])+fmt.Sprint(f["signing_keys"]) == want {
				return l.Time
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no swap to secrets %v, keys %v within %v; logged: %v", secrets, keys, within, logs.All())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// jwksKids is what the gateway's JWKS publishes, in order.
func jwksKids(t *testing.T, gw *gateway.Gateway) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := gw.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://app.example:8443/.sgid/jwks.json", nil), nil); err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatalf("JWKS %s: %v", rec.Body, err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// A rotation reaches a running handler in two steps: at the next poll the
// new secret opens and the new key is published, while the old ones still
// seal and sign; at the activation time (not a poll later) they trade
// places. The retired ones stay for their overlap: the idle timeout (or a
// login's time, if longer) for the secret, the assertion lifetime for the
// key, each plus two polls.
func TestKeyWatchTakesUpARotationAtItsActivation(t *testing.T) {
	tk := newTestKeys(t)
	k, logs := tk.instance(nil, nil)
	const poll = 300 * time.Millisecond
	gw := tk.watched(k, poll)
	oldSecret, oldKey, oldKid := tk.held(k)
	oldFP := fingerprint(oldSecret)

	targets := rotationTargets(tk.site.Origin(), "")
	if len(targets) != 2 || targets[0].kind != kindSigningKey || targets[1].kind != kindSessionSecret {
		t.Fatalf("rotation targets %+v, want the site's signing key and the session secret", targets)
	}
	if d := targets[0].activateIn(); d != jwksMaxAge {
		t.Errorf("a signing key activates after %v by default, want the JWKS max-age %v", d, jwksMaxAge)
	}
	if d := targets[1].activateIn(); d != 2*poll+time.Second {
		t.Errorf("a session secret activates after %v by default, want two polls and a second", d)
	}
	rotated := map[string]RotatedKey{}
	for _, tg := range targets {
		rk, err := tg.rotate(context.Background(), time.Second, false)
		if err != nil {
			t.Fatal(err)
		}
		rotated[rk.Kind] = rk
	}
	sec, key := rotated[kindSessionSecret], rotated[kindSigningKey]
	if len(sec.Retiring) != 1 || sec.Retiring[0].ID != oldFP || !sec.Retiring[0].Expires.Equal(sec.ActiveFrom.Add(30*time.Minute+2*poll)) {
		t.Errorf("the secret's rotation retires %+v; want %s until the activation plus the idle timeout and two polls", sec.Retiring, oldFP)
	}
	if len(key.Retiring) != 1 || key.Retiring[0].ID != oldKid || !key.Retiring[0].Expires.Equal(key.ActiveFrom.Add(5*time.Minute+2*poll)) {
		t.Errorf("the key's rotation retires %+v; want %s until the activation plus the assertion lifetime and two polls", key.Retiring, oldKid)
	}

	swappedTo(t, logs, []string{oldFP, sec.ID}, []string{oldKid, key.ID}, poll) // the rotation wakes this instance's watch
	if time.Now().After(sec.ActiveFrom) {
		t.Fatal("the pending phase was missed: the machine is too slow for this test's timing")
	}
	if got := jwksKids(t, gw); fmt.Sprint(got) != fmt.Sprint([]string{oldKid, key.ID}) {
		t.Errorf("before the activation the JWKS publishes %v, want the old kid (signing) then the new", got)
	}
	at := swappedTo(t, logs, []string{sec.ID, oldFP}, []string{key.ID, oldKid}, 2*time.Second)
	if at.Before(sec.ActiveFrom) || at.After(sec.ActiveFrom.Add(poll/2)) {
		t.Errorf("swapped at %v, the activation is %v: want at it, not a poll later", at, sec.ActiveFrom)
	}
	if got := jwksKids(t, gw); fmt.Sprint(got) != fmt.Sprint([]string{key.ID, oldKid}) {
		t.Errorf("after the activation the JWKS publishes %v, want the new kid then the old", got)
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 0 {
		t.Errorf("a rotation logged %d WARNs: %v", n, logs.All())
	}
	checkNoKeyMaterial(t, logs, oldSecret, oldKey)
}

// An activation that passes while a check is under way is either in the keys
// the check gives the gateway or what the watch waits for next, never left
// for the next poll: the check reads the clock once. (Reading it twice, the
// keys before the activation and the next event after it, was a flaky test
// on a loaded machine: the swap came a poll late.)
func TestKeyWatchNeverSleepsPastAnActivationDuringACheck(t *testing.T) {
	tk := newTestKeys(t)
	k, logs := tk.instance(nil, nil)
	_, w := tk.watch(k, time.Hour)
	oldSecret, _, oldKid := tk.held(k)
	oldFP := fingerprint(oldSecret)
	targets := rotationTargets(tk.site.Origin(), kindSessionSecret)
	if len(targets) != 1 {
		t.Fatalf("rotation targets %+v, want the session secret", targets)
	}
	sec, err := targets[0].rotate(context.Background(), time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	swappedTo(t, logs, []string{oldFP, sec.ID}, []string{oldKid}, 5*time.Second) // the rotation's wake-up

	// A clock that passes the activation between one reading and the next.
	w.mu.Lock()
	var calls atomic.Int64
	k.now = func() time.Time {
		return sec.ActiveFrom.Add(time.Duration(2*calls.Add(1)-3) * time.Millisecond)
	}
	w.mu.Unlock()
	w.check()
	w.mu.Lock()
	defer w.mu.Unlock()
	if active := strings.HasPrefix(w.applied, sec.ID+" "); !active && w.next.After(sec.ActiveFrom) {
		t.Errorf("after a check across the activation at %v, the new secret is not active and the watch waits until %v", sec.ActiveFrom, w.next)
	}
}

// Storage that lost a key gets it back from a running handler, before an
// instance starting later generates a new one; a key that another instance
// put in its place (it generated one after a loss) is taken up within a
// poll, with a WARN, so instances that disagreed agree again.
func TestKeyWatchGivesBackALostKeyAndTakesUpAReplacedOne(t *testing.T) {
	tk := newTestKeys(t)
	k, logs := tk.instance(nil, nil)
	const poll = 20 * time.Millisecond
	tk.watched(k, poll)
	secret, key, kid := tk.held(k)

	tk.delete(k, sessionSecretName)
	// The watch stores the copy, then logs: wait for both, or the log is read
	// between the two (a flaky CI run).
	gaveBack := func() []observer.LoggedEntry {
		return logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("storage lost the session secret").All()
	}
	deadline := time.Now().Add(time.Second)
	for string(tk.stored(k, sessionSecretName)) != string(secret) || len(gaveBack()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the lost secret is not back in storage with its WARN after 1s; logged %v", logs.All())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if warns := gaveBack(); len(warns) != 1 ||
		warns[0].ContextMap()["key"] != k.prefix()+sessionSecretName {
		t.Errorf("giving back logged %v, want one WARN naming the key", warns)
	}

	other := NewSessionSecret()
	if err := tk.storage.Store(tk.ctx, k.prefix()+sessionSecretName, []byte(other)); err != nil {
		t.Fatal(err)
	}
	swappedTo(t, logs, []string{fingerprint([]byte(other))}, []string{kid}, time.Second)
	if warns := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("not the one this process held before").Len(); warns != 1 {
		t.Errorf("taking up a replaced secret logged %d WARNs about it, want 1: %v", warns, logs.All())
	}
	checkNoKeyMaterial(t, logs, secret, key, []byte(other))
}

// A storage read that fails changes nothing: the handler keeps its keys,
// generates and gives back nothing, and logs one WARN for the outage (not
// one per poll) and an INFO when storage answers again, when it takes up
// what changed meanwhile.
func TestKeyWatchKeepsItsKeysWhileStorageFails(t *testing.T) {
	tk := newTestKeys(t)
	var failing atomic.Bool
	st := &faultyStorage{Storage: tk.storage, failLoad: func(string, int) error {
		if failing.Load() {
			return errTransient
		}
		return nil
	}}
	k, logs := tk.instance(nil, st)
	const poll = 20 * time.Millisecond
	tk.watched(k, poll)
	secret, key, kid := tk.held(k)
	swaps := func() int { return logs.FilterMessage("sgid keys").Len() }
	before := swaps()

	failing.Store(true)
	other := NewSessionSecret()
	if err := tk.storage.Store(tk.ctx, k.prefix()+sessionSecretName, []byte(other)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * poll)
	if n := swaps(); n != before {
		t.Errorf("%d swaps while storage failed, want none", n-before)
	}
	if warns := logs.FilterLevelExact(zapcore.WarnLevel).All(); len(warns) != 1 || warns[0].Message != "sgid keys not reloaded from storage; keeping the ones this instance holds" {
		t.Errorf("while storage failed for 10 polls: WARNs %v, want one", warns)
	}
	if got := string(tk.stored(k, sessionSecretName)); got != other {
		t.Error("a handler wrote a key while storage failed")
	}

	failing.Store(false)
	swappedTo(t, logs, []string{fingerprint([]byte(other))}, []string{kid}, time.Second)
	if infos := logs.FilterMessage("sgid keys reloaded from storage again").Len(); infos != 1 {
		t.Errorf("%d INFO lines for storage answering again, want 1", infos)
	}
	checkNoKeyMaterial(t, logs, secret, key, []byte(other))
}

// A rotation for a compromised key (dropOld) ends the old value at the
// activation: from then the handler holds the new one alone.
func TestKeyWatchDropsTheOldValueAtADropOldActivation(t *testing.T) {
	tk := newTestKeys(t)
	k, logs := tk.instance(nil, nil)
	const poll = 100 * time.Millisecond
	tk.watched(k, poll)
	oldSecret, _, kid := tk.held(k)
	targets := rotationTargets(tk.site.Origin(), kindSessionSecret)
	if len(targets) != 1 {
		t.Fatalf("rotation targets %+v, want the session secret", targets)
	}
	rk, err := targets[0].rotate(context.Background(), 500*time.Millisecond, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rk.Retiring) != 1 || !rk.Retiring[0].Expires.Equal(rk.ActiveFrom) {
		t.Errorf("a drop-old rotation retires %+v, want the old secret until the activation %v", rk.Retiring, rk.ActiveFrom)
	}
	swappedTo(t, logs, []string{fingerprint(oldSecret), rk.ID}, []string{kid}, poll)
	at := swappedTo(t, logs, []string{rk.ID}, []string{kid}, 2*time.Second)
	if at.Before(rk.ActiveFrom) {
		t.Errorf("the old secret went at %v, before the activation %v", at, rk.ActiveFrom)
	}
}
