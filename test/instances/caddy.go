// Package instances runs the real Caddy binary (cmd/caddy) in child processes,
// against the fake sgID server in the test process, for what a test inside one
// process cannot show: instances sharing storage, reloads under load, secret
// rotation, and (in ../soak) a long run watched from /proc. This file holds the
// helpers; the tests are in the _test files.
package instances

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
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

// Site is the Caddyfile of one gated site in front of Upstream, as one Caddy
// instance serves it. Instances of one cluster, behind a load balancer, have
// the same Public and each its own Addr on Public's port.
type Site struct {
	Admin    string // admin API address; empty turns the admin API off
	Storage  string // file_system storage directory
	Addr     string // loopback host:port this instance listens on (bind)
	Public   string // host:port of the site address, the Host clients send; default Addr
	Upstream string // host:port of the app
	Sgid     string // lines added inside the sgid block
	Extra    string // site directives before reverse_proxy
}

func (s Site) public() string {
	if s.Public == "" {
		return s.Addr
	}
	return s.Public
}

// URL is the site's public URL, the one its users and its redirect URI name.
func (s Site) URL() string { return "http://" + s.public() }

// Transport reaches this instance for requests to the public URL, as a load
// balancer would: connections to Public are dialled to Addr; any other
// address, such as the fake sgID's, is dialled as it is. Each call returns a
// new Transport.
func (s Site) Transport() *http.Transport {
	public, addr := s.public(), s.Addr
	var d net.Dialer
	return &http.Transport{DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
		if address == public {
			address = addr
		}
		return d.DialContext(ctx, network, address)
	}}
}

// Caddyfile renders s. The sgID credentials come from the environment made by
// Env, as {env.*} placeholders, so the config file holds no secret. The site
// binds Addr's host only, so that instances of a cluster can share the port.
func (s Site) Caddyfile() string {
	admin := "off"
	if s.Admin != "" {
		admin = s.Admin
	}
	bind, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		bind = s.Addr // Caddy will refuse it, and say why
	}
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	auto_https off
	storage file_system %s
	log {
		level WARN
	}
}
http://%s {
	bind %s
	sgid {
		client_id {env.SGID_CLIENT_ID}
		client_secret {env.SGID_CLIENT_SECRET}
		private_key {env.SGID_PRIVATE_KEY}
		hostname {env.SGID_HOSTNAME}
		scope openid myinfo.name
		forward myinfo.name
%s
	}
%s
	reverse_proxy %s
}
`, admin, s.Storage, s.public(), bind, s.Sgid, s.Extra, s.Upstream)
}

// Env is the environment that carries idp's client credentials to Caddy.
func Env(idp *sgidtest.Server) []string {
	return []string{
		"SGID_CLIENT_ID=" + idp.ClientID(),
		"SGID_CLIENT_SECRET=" + idp.ClientSecret(),
		"SGID_PRIVATE_KEY=" + sgidtest.EncodePKCS8(idp.ClientKey()),
		"SGID_HOSTNAME=" + idp.URL(),
	}
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

// FreeAddr asks the OS for a free loopback port. Another process may take it
// before Caddy binds it; on this test machine that has not been seen.
func FreeAddr() (string, error) {
	addrs, err := FreeAddrs(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// FreeAddrs is n addresses with one port, free on each of 127.0.0.1,
// 127.0.0.2, ... 127.0.0.n, for the instances of one cluster. The OS picks a
// port free on the first; it is tried on the others, and another is picked if
// it is taken there.
func FreeAddrs(n int) ([]string, error) {
	const tries = 20
	var lastErr error
	for range tries {
		addrs, err := freeAddrs(n)
		if err == nil {
			return addrs, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no port free on %d loopback addresses in %d tries: %w", n, tries, lastErr)
}

func freeAddrs(n int) ([]string, error) {
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer first.Close()
	_, port, _ := net.SplitHostPort(first.Addr().String())
	addrs := []string{first.Addr().String()}
	for i := 2; i <= n; i++ {
		addr := net.JoinHostPort(fmt.Sprintf("127.0.0.%d", i), port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, addr)
	}
	return addrs, nil
}

// Upstream is the app behind the gateway. It answers 200 and copies every
// X- header it received into its response as X-Seen-<name>, so a client sees
// what the gateway passed on.
func Upstream() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name, v := range r.Header {
			if strings.HasPrefix(name, "X-") {
				w.Header()["X-Seen-"+name] = v
			}
		}
		io.WriteString(w, "app page\n")
	}))
}

// Login runs a whole login at siteURL as a browser would, following the
// redirects through the fake sgID, and returns the session's Cookie header and
// the last response (the app's, if it worked). siteURL is the public URL; to
// log in at one instance of a cluster, tr is that instance's Site.Transport,
// which the callback goes through too. tr may be shared by many logins.
func Login(tr http.RoundTripper, siteURL string) (cookie string, resp *http.Response, err error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, siteURL+"/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err = c.Do(req)
	if err != nil {
		return "", nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Seen-X-Sgid-Sub") == "" {
		return "", resp, fmt.Errorf("login ended with %d and no identity at the app", resp.StatusCode)
	}
	u, _ := url.Parse(siteURL)
	var b bytes.Buffer
	for _, ck := range jar.Cookies(u) {
		// Only the session: the jar holds the fake sgID's cookies too (same
		// host, other port), and attempt cookies are cleared at the callback.
		if !strings.HasPrefix(ck.Name, "sgid_session") || strings.Contains(ck.Name, "_login_") {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(ck.Name + "=" + ck.Value)
	}
	return b.String(), resp, nil
}

// UpdateCookies applies a response's Set-Cookie headers to a Cookie header, as
// a browser would: new values replace old ones, expired cookies go.
func UpdateCookies(cookie string, resp *http.Response) string {
	jar := map[string]string{}
	var order []string
	for _, part := range strings.Split(cookie, "; ") {
		if name, value, ok := strings.Cut(part, "="); ok {
			jar[name] = value
			order = append(order, name)
		}
	}
	for _, ck := range resp.Cookies() {
		if _, ok := jar[ck.Name]; !ok {
			order = append(order, ck.Name)
		}
		if ck.MaxAge < 0 {
			delete(jar, ck.Name)
			continue
		}
		jar[ck.Name] = ck.Value
	}
	var parts []string
	for _, name := range order {
		if v, ok := jar[name]; ok {
			parts = append(parts, name+"="+v)
			delete(jar, name)
		}
	}
	return strings.Join(parts, "; ")
}
