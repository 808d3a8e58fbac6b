package instances

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Instances sharing storage say which keys they hold, and say the same: each
// logs at startup the fingerprint of its session secret and the kid of its
// signing key (the one the JWKS publishes), and exports them as
// caddy_sgid_key_info. When the session secret is lost from storage, the next
// instance to start generates a new one with a WARN naming it, and its key
// info shows at once that it disagrees with the others (whose cookies it
// refuses). The running instances poll their keys only hourly here: at a
// shorter poll they give the lost secret back first (see
// TestALostKeyIsGivenBackBeforeAnotherInstanceStarts).
func TestKeyInfoAgreesAcrossInstancesAndALostSecretWarns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	shared := filepath.Join(f.dir, "shared")
	sites := f.cluster(shared, shared, shared)
	for i := range sites {
		sites[i].LogLevel = "INFO"
		sites[i].Sgid = "\t\trevocation_poll 1h"
		var err error
		if sites[i].Admin, err = FreeAddr(); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := sites[0], sites[1], sites[2]
	pa := f.start("a", a)
	pb := f.start("b", b) // after a: a generated the keys, b loads them

	keysA, keysB := loggedKeys(t, pa, a), loggedKeys(t, pb, b)
	if keysA.String() != keysB.String() {
		t.Errorf("the instances log different keys:\na: %s\nb: %s", keysA, keysB)
	}
	_, jwks := f.get(a, "/.sgid/jwks.json", "")
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal([]byte(jwks), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %s: %v", jwks, err)
	}
	if want := []string{set.Keys[0].Kid}; !slices.Equal(keysA.SigningKeys, want) {
		t.Errorf("a logs signing keys %v, the JWKS publishes %v", keysA.SigningKeys, want)
	}
	infoA, infoB := keyInfo(t, a), keyInfo(t, b)
	if want := keysA.series(a); !slices.Equal(infoA, want) || !slices.Equal(infoB, want) {
		t.Errorf("caddy_sgid_key_info\na: %v\nb: %v\nwant (as logged): %v", infoA, infoB, want)
	}
	for _, p := range []*Process{pa, pb} {
		if warns := sgidLines(t, p, "warn", ""); len(warns) != 0 {
			t.Errorf("an instance starting on empty or complete storage warns: %v", warns)
		}
	}
	cookie, _ := f.login(a)

	// The storage loses the session secret; a third instance starts.
	secrets, _, _, _ := storedKeys(t, shared)
	if len(secrets) != 1 {
		t.Fatalf("storage holds session secrets %v, want 1", secrets)
	}
	if err := os.Remove(filepath.Join(shared, secrets[0])); err != nil {
		t.Fatal(err)
	}
	pc := f.start("c", c)
	warns := sgidLines(t, pc, "warn", "generating a new sgid key")
	if len(warns) != 1 || !strings.HasSuffix(fmt.Sprint(warns[0]["key"]), "/session.secret") ||
		warns[0]["generating"] != "the session secret" || !strings.Contains(fmt.Sprint(warns[0]["reason"]), "keys.json") {
		t.Errorf("instance c, started after the session secret was lost: WARNs %v; want one naming the session secret and the inventory", warns)
	}
	keysC := loggedKeys(t, pc, c)
	if slices.Equal(keysC.SessionSecrets, keysA.SessionSecrets) || !slices.Equal(keysC.SigningKeys, keysA.SigningKeys) {
		t.Errorf("instance c logs %s, a %s: want another session secret and the same signing key", keysC, keysA)
	}
	if infoC := keyInfo(t, c); slices.Equal(infoC, infoA) || !slices.Equal(infoC, keysC.series(c)) {
		t.Errorf("caddy_sgid_key_info of c %v, of a %v: want c's own keys, which differ", infoC, infoA)
	}
	if resp, _ := f.get(c, "/", cookie); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("instance c with a's cookie: %d, want 401 (c holds another session secret)", resp.StatusCode)
	}
}

// heldKeys is what an instance logged about its keys ("sgid keys").
type heldKeys struct {
	Site           string   `json:"site"`
	SessionSecrets []string `json:"session_secrets"`
	SigningKeys    []string `json:"signing_keys"`
}

func (h heldKeys) String() string {
	return fmt.Sprintf("site %s, session secrets %v, signing keys %v", h.Site, h.SessionSecrets, h.SigningKeys)
}

// series is h as caddy_sgid_key_info's series, as keyInfo returns them.
func (h heldKeys) series(s Site) []string {
	var out []string
	for _, id := range h.SessionSecrets {
		out = append(out, fmt.Sprintf(`caddy_sgid_key_info{id=%q,kind="session_secret",site=%q} 1`, id, s.URL()))
	}
	for _, id := range h.SigningKeys {
		out = append(out, fmt.Sprintf(`caddy_sgid_key_info{id=%q,kind="signing_key",site=%q} 1`, id, s.URL()))
	}
	slices.Sort(out)
	return out
}

// loggedKeys is the one "sgid keys" line p logged, which must be for s and
// name one session secret and one signing key.
func loggedKeys(t *testing.T, p *Process, s Site) heldKeys {
	t.Helper()
	lines := sgidLines(t, p, "info", "sgid keys")
	if len(lines) != 1 {
		t.Fatalf("%d \"sgid keys\" lines in %s, want 1", len(lines), p.Log)
	}
	b, _ := json.Marshal(lines[0])
	var h heldKeys
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	if h.Site != s.URL() || len(h.SessionSecrets) != 1 || len(h.SigningKeys) != 1 {
		t.Fatalf("logged %s; want site %s, one session secret and one signing key", h, s.URL())
	}
	return h
}

// sgidLines are the JSON lines of logger http.handlers.sgid in p's output at
// level whose message contains msg.
func sgidLines(t *testing.T, p *Process, level, msg string) []map[string]any {
	t.Helper()
	return loggerLines(t, p, "http.handlers.sgid", level, msg)
}

// auditLines are sgidLines of the audit logger, http.handlers.sgid.audit.
func auditLines(t *testing.T, p *Process, level, msg string) []map[string]any {
	t.Helper()
	return loggerLines(t, p, "http.handlers.sgid.audit", level, msg)
}

func loggerLines(t *testing.T, p *Process, logger, level, msg string) []map[string]any {
	t.Helper()
	file, err := os.Open(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var out []map[string]any
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue // not a log line: Caddy's banner
		}
		if line["logger"] == logger && line["level"] == level && strings.Contains(fmt.Sprint(line["msg"]), msg) {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// keyInfo is the caddy_sgid_key_info lines of s's admin /metrics, sorted.
func keyInfo(t *testing.T, s Site) []string {
	t.Helper()
	resp, err := http.Get("http://" + s.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics of %s: %d %v", s.Addr, resp.StatusCode, err)
	}
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "caddy_sgid_key_info{") {
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return out
}
