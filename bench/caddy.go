package main

import (
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
	"time"
)

// caddyProc is one Caddy process under measurement.
type caddyProc struct {
	cmd *exec.Cmd
	pid int
}

// site is one site block: its address and its handlers.
type site struct {
	addr  string // 127.0.0.1:port
	body  string
	https bool // https://, with a certificate from Caddy's internal CA
}

// caddyfile is the config for the sites: admin is the admin endpoint's
// address, "" for none.
func caddyfile(dir, name, admin string, sites []site) string {
	var b strings.Builder
	adminLine := "admin off"
	if admin != "" {
		adminLine = "admin " + admin
	}
	// HTTPS sites get certificates from Caddy's internal CA, which is not
	// installed in the machine's trust store.
	https := "auto_https off"
	for _, s := range sites {
		if s.https {
			https = "auto_https disable_redirects\n\tskip_install_trust"
		}
	}
	fmt.Fprintf(&b, "{\n\t%s\n\tpersist_config off\n\t%s\n\tstorage file_system %s\n\tlog {\n\t\tlevel WARN\n\t}\n}\n", adminLine, https, filepath.Join(dir, name+"-storage"))
	for _, s := range sites {
		if s.https {
			fmt.Fprintf(&b, "https://%s {\n\ttls internal\n%s\n}\n", s.addr, s.body)
			continue
		}
		fmt.Fprintf(&b, "http://%s {\n%s\n}\n", s.addr, s.body)
	}
	return b.String()
}

// startCaddy writes a Caddyfile for the sites and runs `caddy run` on it,
// waiting until every site accepts connections.
// admin is the admin endpoint's address, "" for none.
func startCaddy(bin, dir, name, admin string, sites []site, env []string) (*caddyProc, error) {
	config := caddyfile(dir, name, admin, sites)
	path := filepath.Join(dir, name+".caddyfile")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	if pinnedCaddy {
		cmd = exec.Command("taskset", "-c", "0", bin, "run", "--config", path, "--adapter", "caddyfile")
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &caddyProc{cmd: cmd, pid: cmd.Process.Pid}
	for _, s := range sites {
		if err := waitListening(s.addr, 20*time.Second); err != nil {
			p.stop()
			return nil, fmt.Errorf("caddy (%s) did not start: %w; see %s", name, err, logf.Name())
		}
	}
	return p, nil
}

func (p *caddyProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func waitListening(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr asks the OS for a free loopback port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// profile fetches a CPU profile of the Caddy behind admin, over d, into path.
// It runs beside a measurement, so it starts at once and returns a channel that
// yields its error.
func profile(admin, path string, d time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- fetchTo(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, int(d.Seconds())), path)
	}()
	return done
}

// fetchTo writes what a GET of url answers to the file at path.
func fetchTo(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// refreshed is caddy_sgid_sessions_refreshed_total of the Caddy behind admin
// (session cookies rewritten: a slid idle window, or a new signature), or -1
// if it cannot be read.
func refreshed(admin string) float64 {
	if admin == "" {
		return -1
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	total, found := 0.0, false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "caddy_sgid_sessions_refreshed_total") {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			total, found = total+v, true
		}
	}
	if !found {
		return -1 // not served: this Caddy's metrics are elsewhere
	}
	return total
}

// rewrites says how many session cookies the gateway rewrote during a round:
// a replaying client that keeps rewritten cookies out would make each of
// them cost a seal or a signature on every request.
func rewrites(before, after float64) string {
	if before < 0 || after < 0 {
		return ", cookie rewrites unknown"
	}
	return fmt.Sprintf(", %.0f cookie rewrites", after-before)
}
