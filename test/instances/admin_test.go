package instances

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An operator ends one user's sessions, then everyone's made before a time,
// through a running Caddy: `caddy sgid-revoke` against one instance's admin
// API reaches the other instance through the shared storage, and leaves
// sessions it does not name alone.
func TestAdminRevokeAndTheCLIReachEveryInstance(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	shared := filepath.Join(f.dir, "shared")
	sites := f.cluster(shared, shared)
	for i := range sites {
		sites[i].Sgid = "\t\trevocation_poll 1s"
		sites[i].LogLevel = "INFO" // the audit lines
	}
	admin, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	sites[0].Admin = admin
	a, b := sites[0], sites[1]
	pa := f.start("a", a)
	f.start("b", b)

	resp, err := http.Get("http://" + admin + "/sgid/sites")
	if err != nil {
		t.Fatal(err)
	}
	var listed []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&listed); err != nil || len(listed) != 1 || listed[0]["site"] != a.URL() || listed[0]["store"] != "storage" {
		t.Errorf("GET /sgid/sites = %v (%v), want the one site %s in storage", listed, err, a.URL())
	}
	resp.Body.Close()

	cookie, sub := f.login(a)
	other := f.loginAnotherUser(a)

	revoke := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(caddyBin, append([]string{"sgid-revoke", "--address", admin}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("caddy sgid-revoke %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// Refused by the CLI itself, and by the API: no everyone's-sessions
	// revocation without an explicit time.
	if out, err := exec.Command(caddyBin, "sgid-revoke", "--address", admin).CombinedOutput(); err == nil {
		t.Errorf("sgid-revoke without --sub or --before succeeded: %s", out)
	}
	resp, err = http.Post("http://"+admin+"/sgid/revoke", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST /sgid/revoke {}: %d %s, want 400", resp.StatusCode, body)
	}

	if out := revoke("--sub", sub); !strings.Contains(out, `"shared":true`) {
		t.Errorf("sgid-revoke --sub: %s", out)
	}
	// The operator's revocation is in the audit log, as a logout is.
	if lines := auditLines(t, pa, "info", "sessions revoked"); len(lines) != 1 || lines[0]["sub"] != sub || lines[0]["event"] != "admin" {
		t.Errorf("audit lines for sgid-revoke --sub: %v, want one naming the sub, event admin", lines)
	}
	revokedAt := time.Now()
	refusedIn(t, f, a, cookie, revokedAt, time.Second)
	refusedIn(t, f, b, cookie, revokedAt, 3*time.Second)
	for _, s := range []Site{a, b} {
		if resp, _ := f.get(s, "/page", other); resp.StatusCode != http.StatusOK {
			t.Errorf("another user's session after revoking one sub: %d, want 200", resp.StatusCode)
		}
	}

	// Sessions are created in whole seconds: the cut is the start of a
	// second after every earlier login, and the later login is made in it.
	cut := time.Now().Add(1100 * time.Millisecond).Truncate(time.Second)
	time.Sleep(time.Until(cut))
	later, _, err := Login(a.Transport(), a.URL())
	if err != nil {
		t.Fatal(err)
	}
	revoke("--before", cut.Format(time.RFC3339), "--site", a.URL())
	revokedAt = time.Now()
	refusedIn(t, f, b, other, revokedAt, 3*time.Second)
	for _, s := range []Site{a, b} {
		if resp, _ := f.get(s, "/page", later); resp.StatusCode != http.StatusOK {
			t.Errorf("a session made after --before: %d, want 200", resp.StatusCode)
		}
	}
}
