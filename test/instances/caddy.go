// Package instances runs the real Caddy binary (cmd/caddy) in child processes,
// against the fake sgID server in the test process, for what a test inside one
// process cannot show: instances sharing storage, reloads under load, secret
// rotation, and (in ../soak) a long run watched from /proc. The helpers, for
// both, are in caddy.go (the process), site.go (its config and addresses) and
// client.go (the app behind it and a browser's steps); the tests are in the
// _test files.
package instances

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Build compiles cmd/caddy into dir, with the race detector if race is set.
func Build(dir string, race bool) (string, error) {
	bin := filepath.Join(dir, "caddy")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/sgidproxy/caddy-sgid/cmd/caddy")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build cmd/caddy: %v\n%s", err, out)
	}
	return bin, nil
}

// Main is TestMain for tests that run cmd/caddy: it builds the binary into a
// temporary directory, with the race detector if race is set, sets *bin to
// it, runs the tests and removes the directory. It returns the exit code.
func Main(m *testing.M, race bool, bin *string) int {
	dir, err := os.MkdirTemp("", "caddy-sgid-caddy")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = Build(dir, race); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Process is one running Caddy.
type Process struct {
	PID   int
	Admin string // admin API address, if on
	Log   string // the file holding its stdout and stderr
	bin   string
	conf  string
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
}

// Start writes s's Caddyfile as dir/name.caddyfile, runs `caddy run` on it with
// env added, and waits until the site accepts connections.
func Start(bin, dir, name string, s Site, env []string) (*Process, error) {
	p := &Process{Admin: s.Admin, bin: bin, conf: filepath.Join(dir, name+".caddyfile"),
		Log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	if err := os.WriteFile(p.conf, []byte(s.Caddyfile()), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(p.Log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	p.cmd = exec.Command(bin, "run", "--config", p.conf, "--adapter", "caddyfile")
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Env = append(p.cmd.Env, "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p.PID = p.cmd.Process.Pid
	go func() { p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("caddy %s exited at start: %s", name, p.Tail(20))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("caddy %s did not listen on %s: %s", name, s.Addr, p.Tail(20))
		}
	}
}

// StartForTest is Start for a test: the test fails if Caddy does not start,
// and Caddy is stopped when the test ends, its output logged if it failed.
func StartForTest(t testing.TB, bin, dir, name string, s Site, env []string) *Process {
	t.Helper()
	p, err := Start(bin, dir, name, s, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("caddy %s output:\n%s", name, p.Tail(30))
		}
	})
	return p
}

// Reload replaces the config with s's through the admin API, as an operator
// does: `caddy reload --force`, so that an unchanged config is loaded anew too.
func (p *Process) Reload(s Site) error {
	if err := os.WriteFile(p.conf, []byte(s.Caddyfile()), 0o600); err != nil {
		return err
	}
	out, err := exec.Command(p.bin, "reload", "--config", p.conf, "--adapter", "caddyfile",
		"--address", p.Admin, "--force").CombinedOutput()
	if err != nil {
		return fmt.Errorf("caddy reload: %v\n%s", err, out)
	}
	return nil
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop ends the process with SIGTERM, then SIGKILL after 10s.
func (p *Process) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Tail is the last n lines of the process's output, for failure messages.
func (p *Process) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Status reads one "Name: value" field of /proc/<pid>/status, e.g. VmRSS (in
// kB) or Threads, as a number.
func (p *Process) Status(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.PID))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", p.PID, field)
}

// Goroutines counts the process's goroutines through the admin API's pprof.
func (p *Process) Goroutines() (int, error) {
	resp, err := http.Get("http://" + p.Admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	first, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	// "goroutine profile: total 42"
	_, n, ok := strings.Cut(strings.TrimSpace(first), "total ")
	if !ok {
		return 0, fmt.Errorf("unexpected pprof answer %q", first)
	}
	return strconv.Atoi(n)
}
