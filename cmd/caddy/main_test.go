package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// The test binary doubles as the caddy command: run with CADDY_SGID_RUN_MAIN set,
// it is main() with the same modules linked in as a `go build ./cmd/caddy`.
func TestMain(m *testing.M) {
	if os.Getenv("CADDY_SGID_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runCaddy(t *testing.T, args ...string) string {
	t.Helper()
	out, err := caddy(t, args...)
	if err != nil {
		t.Fatalf("caddy %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func caddy(t *testing.T, args ...string) (string, error) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = caddyEnv(t)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestListModulesShowsTheSgidHandler(t *testing.T) {
	out := runCaddy(t, "list-modules")
	lines := strings.Split(out, "\n")
	var found, standard bool
	for _, l := range lines {
		found = found || strings.TrimSpace(l) == "http.handlers.sgid"
		standard = standard || strings.TrimSpace(l) == "http.handlers.reverse_proxy"
	}
	if !found {
		t.Errorf("list-modules does not show http.handlers.sgid:\n%s", out)
	}
	if !standard {
		t.Errorf("list-modules does not show the standard modules (http.handlers.reverse_proxy):\n%s", out)
	}
}

func TestCaddyfileExampleAdapts(t *testing.T) {
	out := runCaddy(t, "adapt", "--config", "../../Caddyfile.example", "--adapter", "caddyfile")
	if !strings.Contains(out, `"handler":"sgid"`) {
		t.Errorf("the adapted Caddyfile.example has no sgid handler:\n%s", out)
	}
	if strings.Contains(out, "WARN") {
		t.Errorf("caddy adapt warns about Caddyfile.example:\n%s", out)
	}
}

// validate writes body to a Caddyfile and runs caddy validate on it.
func validate(t *testing.T, path, body string) (string, error) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return caddy(t, "validate", "--config", path, "--adapter", "caddyfile")
}

func TestValidateNamesTheMistakeAndItsLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Caddyfile")
	const body = `app.example.gov.sg {
	sgid {
		client_id     test
		client_secret {env.SGID_CLIENT_SECRET}
		private_key   {env.SGID_PRIVATE_KEY}
		scope         openid myinfo.name
		forward       myinfo.email
	}
	reverse_proxy 127.0.0.1:9000
}
`
	out, err := validate(t, path, body)
	if err == nil {
		t.Fatalf("caddy validate accepted a forwarded field that is not in scope:\n%s", out)
	}
	want := "forward myinfo.email: the field is not requested: add it to scope, at " + path + ":7"
	if !strings.Contains(out, want) {
		t.Errorf("caddy validate output lacks %q:\n%s", want, out)
	}
}

// A site that does not name one host and port cannot fix the assertion's iss
// and aud or its cookies' site: caddy validate refuses it and says what to set.
func TestValidateRefusesASiteWithoutOneFixedHost(t *testing.T) {
	for _, tt := range []struct{ address, want string }{
		{":8080", "the site matches no host name"},
		{"http://", "the site matches no host name"},
		{"a.example.gov.sg, b.example.gov.sg", "the site serves 2 host names (a.example.gov.sg, b.example.gov.sg), not one"},
		{"*.example.gov.sg", "is a pattern, not one host name"},
	} {
		t.Run(tt.address, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Caddyfile")
			body := tt.address + ` {
	sgid {
		client_id     test
		client_secret {env.SGID_CLIENT_SECRET}
		private_key   {env.SGID_PRIVATE_KEY}
	}
	reverse_proxy 127.0.0.1:9000
}
`
			out, err := validate(t, path, body)
			if err == nil {
				t.Fatalf("caddy validate accepted a site without one fixed host:\n%s", out)
			}
			for _, want := range []string{tt.want, "set redirect_uri"} {
				if !strings.Contains(out, want) {
					t.Errorf("caddy validate output lacks %q:\n%s", want, out)
				}
			}
			// With redirect_uri the same site is valid as far as the site goes.
			fixed := strings.Replace(body, "client_id     test", "client_id     test\n\t\tredirect_uri  https://a.example.gov.sg/.sgid/callback", 1)
			out, _ = validate(t, path, fixed)
			if strings.Contains(out, "set redirect_uri") {
				t.Errorf("with redirect_uri, caddy validate still asks for it:\n%s", out)
			}
		})
	}
}

// caddyEnv is the environment a caddy child process runs with: the test's,
// plus the switch to main() and a home and data directory of its own.
func caddyEnv(t *testing.T) []string {
	return append(os.Environ(), "CADDY_SGID_RUN_MAIN=1", "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
}

// withClientKey sets {env.SGID_PRIVATE_KEY} to a client key, as a
// deployment would.
func withClientKey(t *testing.T) {
	t.Helper()
	key, err := sgidtest.NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SGID_PRIVATE_KEY", sgidtest.EncodePKCS8(key))
}

// sgidSite is a site block for host with an sgid block of the given extra
// lines, in front of a fixed response.
func sgidSite(host, extra string) string {
	return host + ` {
	sgid {
		client_id     test
		client_secret test-secret
		private_key   {env.SGID_PRIVATE_KEY}
` + extra + `
	}
	respond ok
}
`
}

// A scope not in sgID's catalog validates, since sgID adds scopes, but with
// a WARN naming it and what it is likely a typo of.
func TestValidateWarnsOfAScopeNotInTheCatalog(t *testing.T) {
	withClientKey(t)
	path := filepath.Join(t.TempDir(), "Caddyfile")
	out, err := validate(t, path, sgidSite("http://app.example.gov.sg", "\t\tscope openid myinfo.nmae"))
	if err != nil {
		t.Fatalf("caddy validate refused a scope it does not know:\n%s", out)
	}
	var warned bool
	for line := range strings.SplitSeq(out, "\n") {
		warned = warned || strings.Contains(line, `"level":"warn"`) && strings.Contains(line, "did you mean myinfo.name?") && strings.Contains(line, `"scope":"myinfo.nmae"`)
	}
	if !warned {
		t.Errorf("caddy validate gave no WARN naming myinfo.nmae and myinfo.name:\n%s", out)
	}
}

// The callback of an sgid under route /app/* would never reach it: caddy
// validate says so, not the first login.
func TestValidateRefusesASgidItsEndpointsDoNotReach(t *testing.T) {
	withClientKey(t)
	path := filepath.Join(t.TempDir(), "Caddyfile")
	const body = `http://app.example.gov.sg {
	route /app/* {
		sgid {
			client_id     test
			client_secret test-secret
			private_key   {env.SGID_PRIVATE_KEY}
		}
		respond ok
	}
}
`
	out, err := validate(t, path, body)
	if err == nil {
		t.Fatalf("caddy validate accepted an sgid its callback cannot reach:\n%s", out)
	}
	for _, want := range []string{"the /.sgid/* endpoints do not reach sgid", "matches only path /app/*", "put sgid in a route that also matches /.sgid/*"} {
		if !strings.Contains(out, want) {
			t.Errorf("caddy validate output lacks %q:\n%s", want, out)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Caddy gives each config it loads a registry of its own, and the sgid
// collectors are registered in it again: after a reload, /metrics holds each
// series once (a collector registered twice would repeat it, or fail the
// scrape), and the key metric holds the new config's sites only.
func TestReloadKeepsOneSeriesPerMetric(t *testing.T) {
	withClientKey(t)
	admin, before, after := freePort(t), freePort(t), freePort(t)
	config := func(port int) string {
		return fmt.Sprintf("{\n\tadmin localhost:%d\n}\n", admin) + sgidSite(fmt.Sprintf("http://localhost:%d", port), "")
	}
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(config(before)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = caddyEnv(t)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	adminURL := fmt.Sprintf("http://localhost:%d", admin)
	scrape := func() string {
		t.Helper()
		resp, err := http.Get(adminURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("scraping /metrics: %d %v\n%s", resp.StatusCode, err, body)
		}
		return string(body)
	}
	// The first config is running once its site answers.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://localhost:%d/", before))
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	scrape() // the first config's registry is in use

	resp, err := http.Post(adminURL+"/load", "text/caddyfile", strings.NewReader(config(after)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reloading: %d %s\n%s", resp.StatusCode, body, logs.String())
	}

	text := scrape()
	seen := map[string]int{}
	types := map[string]int{}
	for line := range strings.SplitSeq(text, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE caddy_sgid_"); ok {
			types[name]++
		}
		if i := strings.LastIndexByte(line, ' '); strings.HasPrefix(line, "caddy_sgid_") && i > 0 {
			seen[line[:i]]++
		}
	}
	if len(seen) == 0 {
		t.Fatalf("no caddy_sgid_ series after the reload:\n%s", text)
	}
	for series, n := range seen {
		if n != 1 {
			t.Errorf("%s appears %d times after a reload", series, n)
		}
	}
	for family, n := range types {
		if n != 1 {
			t.Errorf("caddy_sgid_%s is described %d times after a reload", family, n)
		}
	}
	for _, tt := range []struct {
		port int
		want bool
	}{{before, false}, {after, true}} {
		site := fmt.Sprintf(`site="http://localhost:%d"`, tt.port)
		found := false
		for series := range seen {
			found = found || strings.HasPrefix(series, "caddy_sgid_key_info{") && strings.Contains(series, site)
		}
		if found != tt.want {
			t.Errorf("caddy_sgid_key_info with %s after the reload: %t, want %t\n%s", site, found, tt.want, text)
		}
	}
}
