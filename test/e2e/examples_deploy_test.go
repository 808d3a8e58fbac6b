package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// The deployment recipes in examples/ (a systemd unit, a Containerfile, and
// the environment file both read secrets from) are checked as far as this
// machine can without systemd running or a container engine: the unit passes
// systemd-analyze verify; each runs a Caddyfile of the repository that adapts
// without warnings and provisions; the secrets that Caddyfile reads are the
// environment file's; and Caddy's data directory, as each sets it, is the one
// that persists.

var (
	deployRepoRoot = filepath.Join(examplesDir, "..")
	installedCaddy = "/usr/local/bin/caddy" // where the unit's install steps put the binary
)

func TestSystemdUnitPassesSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("no systemd-analyze (Debian's systemd package): %s", setupHint)
	}
	unit, err := os.ReadFile(filepath.Join(examplesDir, "caddy-sgid.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart="+installedCaddy+" ") {
		t.Fatalf("ExecStart does not run %s, which the test stands in for", installedCaddy)
	}
	// verify checks that each command is an executable; this machine has no
	// installed Caddy, so the test binary stands in for it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(tempDir(t), "caddy-sgid.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), installedCaddy, self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		// An unknown key or a bad value is a warning with exit status 0.
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestSystemdUnitRunsAValidCaddyfileAndKeepsItsData(t *testing.T) {
	unit := readUnit(t, filepath.Join(examplesDir, "caddy-sgid.service"))
	svc := unit["Service"]
	config := caddyConfigFlag(t, "ExecStart", strings.Fields(unitValue(t, svc, "ExecStart")))
	if reload := caddyConfigFlag(t, "ExecReload", strings.Fields(unitValue(t, svc, "ExecReload"))); reload != config {
		t.Errorf("ExecReload reloads %s, ExecStart runs %s", reload, config)
	}
	// The install steps in the unit's comments say what goes where.
	comments := unit[""]["#"]
	t.Run("the Caddyfile it runs", func(t *testing.T) {
		checkDeployedCaddyfile(t, installedFrom(t, comments, config))
	})
	envFile := unitValue(t, svc, "EnvironmentFile")
	if src := installedFrom(t, comments, envFile); src != "examples/sgid.env" {
		t.Errorf("%s is installed from %s, want examples/sgid.env", envFile, src)
	}

	// StateDirectory=caddy is /var/lib/caddy, made and kept by systemd; Caddy
	// must put its data there, and its autosaved config somewhere it may
	// write (ProtectSystem=strict leaves only the state directory).
	state := "/var/lib/" + unitValue(t, svc, "StateDirectory")
	for _, env := range svc["Environment"] {
		for _, kv := range strings.Fields(env) {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
	}
	if got := caddy.AppDataDir(); got != state {
		t.Errorf("Caddy's data directory under the unit is %s, not its StateDirectory %s", got, state)
	}
	if got := caddy.AppConfigDir(); !strings.HasPrefix(got, state+"/") {
		t.Errorf("Caddy's config directory under the unit is %s, outside %s, the one it may write", got, state)
	}
}

func TestContainerfileBuildsCaddyAndKeepsItsDataOnAVolume(t *testing.T) {
	steps := readContainerfile(t, filepath.Join(examplesDir, "Containerfile"))
	get := func(instr string) []string {
		var out []string
		for _, s := range steps {
			if s[0] == instr {
				out = append(out, s[1])
			}
		}
		return out
	}

	// The build stage's Go is the one go.mod needs, and it builds this
	// repository's Caddy.
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(readDeployFile(t, filepath.Join(deployRepoRoot, "go.mod")))
	if from := get("FROM"); len(from) == 0 || !strings.HasPrefix(from[0], "golang:"+string(goVersion[1])+" ") {
		t.Errorf("the build stage is FROM %q, want golang:%s, the go.mod version", from, goVersion[1])
	}
	build := regexp.MustCompile(`go build .*-o (\S+) \./cmd/caddy$`)
	var binary string
	for _, run := range get("RUN") {
		if m := build.FindStringSubmatch(run); m != nil {
			binary = m[1]
		}
	}
	if binary == "" {
		t.Fatal("no RUN go build -o ... ./cmd/caddy")
	}
	if _, err := os.Stat(filepath.Join(deployRepoRoot, "cmd", "caddy", "main.go")); err != nil {
		t.Errorf("./cmd/caddy: %v", err)
	}
	copies := map[string]string{} // destination -> source
	for _, c := range get("COPY") {
		if f := strings.Fields(c); len(f) >= 2 {
			copies[f[len(f)-1]] = strings.Join(f[:len(f)-1], " ")
		}
	}
	if copies["/usr/bin/caddy"] != "--from=build "+binary {
		t.Errorf("/usr/bin/caddy is COPY %q, want the build stage's %s", copies["/usr/bin/caddy"], binary)
	}

	var entrypoint, cmd []string
	for _, j := range []struct {
		instr string
		into  *[]string
	}{{"ENTRYPOINT", &entrypoint}, {"CMD", &cmd}} {
		v := get(j.instr)
		if len(v) != 1 || json.Unmarshal([]byte(v[0]), j.into) != nil {
			t.Fatalf("%s %q: want one, in JSON form", j.instr, v)
		}
	}
	if !slices.Equal(entrypoint, []string{"caddy"}) {
		t.Errorf("ENTRYPOINT %q, want [\"caddy\"] (/usr/bin/caddy)", entrypoint)
	}
	config := caddyConfigFlag(t, "CMD", append(slices.Clone(entrypoint), cmd...))
	t.Run("the Caddyfile it runs", func(t *testing.T) {
		src, ok := copies[config]
		if !ok {
			t.Fatalf("nothing is copied to %s, the Caddyfile CMD runs", config)
		}
		checkDeployedCaddyfile(t, src)
	})

	for _, env := range get("ENV") {
		for _, kv := range strings.Fields(env) {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
	}
	data := caddy.AppDataDir()
	onVolume := false
	for _, v := range get("VOLUME") {
		onVolume = onVolume || data == v || strings.HasPrefix(data, strings.TrimSuffix(v, "/")+"/")
	}
	if !onVolume {
		t.Errorf("Caddy's data directory in the image is %s, on no VOLUME (%q)", data, get("VOLUME"))
	}
}

// checkDeployedCaddyfile checks a Caddyfile a recipe runs, by its path in the
// repository: it adapts without warnings and provisions, and its {env.*}
// secrets are the ones examples/sgid.env lists.
func checkDeployedCaddyfile(t *testing.T, src string) {
	t.Helper()
	body := readDeployFile(t, filepath.Join(deployRepoRoot, src))
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, nil)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if len(warnings) > 0 {
		t.Errorf("%s: adapting warns: %+v", src, warnings)
	}
	var listed []string
	for line := range strings.Lines(string(readDeployFile(t, filepath.Join(examplesDir, "sgid.env")))) {
		if name, _, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(name, "#") {
			listed = append(listed, name)
		}
	}
	var used []string
	for _, m := range envPlaceholder.FindAllSubmatch(adapted, -1) {
		if name := string(m[1]); !slices.Contains(used, name) {
			used = append(used, name)
		}
	}
	slices.Sort(used)
	slices.Sort(listed)
	if !slices.Equal(used, listed) {
		t.Errorf("%s reads {env.*} %v; examples/sgid.env lists %v", src, used, listed)
	}
	provisionExample(t, adapted)
}

// caddyConfigFlag returns the --config of a `caddy run` or `caddy reload`
// command line, and fails on --environ, which prints every secret.
func caddyConfigFlag(t *testing.T, what string, args []string) string {
	t.Helper()
	if len(args) < 2 || filepath.Base(args[0]) != "caddy" || (args[1] != "run" && args[1] != "reload") {
		t.Fatalf("%s is %q, not caddy run or caddy reload", what, args)
	}
	if slices.Contains(args, "--environ") {
		t.Errorf("%s has --environ: Caddy would log the environment, secrets and all", what)
	}
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("%s %q has no --config", what, args)
	}
	if j := slices.Index(args, "--adapter"); j < 0 || j+1 >= len(args) || args[j+1] != "caddyfile" {
		t.Errorf("%s %q does not say --adapter caddyfile", what, args)
	}
	return args[i+1]
}

// installedFrom reads the `install ... SRC DEST` line for dest among a unit's
// comments.
func installedFrom(t *testing.T, comments []string, dest string) string {
	t.Helper()
	for _, c := range comments {
		f := strings.Fields(strings.Split(c, " #")[0])
		if len(f) >= 3 && f[0] == "install" && f[len(f)-1] == dest {
			return f[len(f)-2]
		}
	}
	t.Fatalf("no install line for %s in the unit's comments", dest)
	return ""
}

// readUnit reads a systemd unit file: section -> key -> values, in order; the
// comments, without their '#', are under "" and "#".
func readUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	unit := map[string]map[string][]string{"": {}}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(readDeployFile(t, path))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			unit[""]["#"] = append(unit[""]["#"], strings.TrimSpace(strings.TrimPrefix(line, "#")))
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			unit[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not key=value", path, line)
			}
			unit[section][k] = append(unit[section][k], v)
		}
	}
	return unit
}

// unitValue returns the one value of key in a unit section.
func unitValue(t *testing.T, section map[string][]string, key string) string {
	t.Helper()
	if v := section[key]; len(v) == 1 {
		return v[0]
	}
	t.Fatalf("want one %s=, got %q", key, section[key])
	return ""
}

// readContainerfile reads a Containerfile's instructions, each [INSTRUCTION,
// arguments], continuation lines joined and comments left out.
func readContainerfile(t *testing.T, path string) [][2]string {
	t.Helper()
	var steps [][2]string
	var cur string
	for line := range strings.Lines(string(readDeployFile(t, path))) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || (line == "" && cur == "") {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur += more + " "
			continue
		}
		cur += line
		instr, args, _ := strings.Cut(strings.TrimSpace(cur), " ")
		steps = append(steps, [2]string{strings.ToUpper(instr), strings.Join(strings.Fields(args), " ")})
		cur = ""
	}
	return steps
}

func readDeployFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
