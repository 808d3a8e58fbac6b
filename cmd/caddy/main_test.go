package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	cmd.Env = append(os.Environ(), "CADDY_SGID_RUN_MAIN=1", "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
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
