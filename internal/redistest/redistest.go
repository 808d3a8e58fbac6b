// Package redistest runs a real redis-server for tests: Debian's binary, on a
// free loopback port, with no persistence, stopped by its process id when the
// test ends. It exists so that the revocation store is tested against the
// Redis it will meet in production, faults included (killed, back empty),
// instead of an in-process imitation whose failure modes are not Redis's.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is the redis-server the tests run: Debian's package, which
// examples/setup.sh installs.
const Binary = "/usr/bin/redis-server"

const (
	// startTimeout bounds how long a started server may take to answer PING.
	startTimeout = 10 * time.Second
	// portTries is how many free ports Start tries: a port taken from a
	// listener on :0 can be taken again by another process before
	// redis-server binds it.
	portTries = 5
)

// Server is one redis-server process. Its methods are safe for concurrent use.
type Server struct {
	t    testing.TB
	port int
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *bytes.Buffer // the server's own output, for failure messages
}

// Start runs a redis-server on 127.0.0.1 and returns once it answers PING.
// It fails the test (never skips it) when redis-server is not installed, so
// that a machine without it cannot pass by testing nothing.
func Start(t testing.TB) *Server {
	t.Helper()
	if err := checkBinary(Binary); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, dir: t.TempDir()}
	t.Cleanup(s.Kill)
	var lastErr error
	for range portTries {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: finding a free port: %v", err)
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: starting redis-server: %v", lastErr)
	return nil
}

// Addr is the server's host:port, the same across Restart.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Kill ends the server with SIGKILL, as a crash or an OOM kill would, and
// waits until it has exited. Killing a server that is not running does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

// Pause stops the server with SIGSTOP: it keeps its port and its data, and
// the kernel still accepts connections for it, but nothing answers, as with
// a Redis stuck in a long command or behind a stalled network. Resume ends it.
func (s *Server) Pause() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redistest: %s to a server that is not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: sending %s to redis-server: %v", sig, err)
	}
}

// Restart kills the server if it runs and starts a new one on the same port,
// empty: a Redis without persistence back after a restart, a flush or a
// failover to an empty replica.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	s.kill()
	s.mu.Unlock()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restarting redis-server on %s: %v", s.Addr(), err)
	}
}

// start runs redis-server on s.port and waits for its PING. It returns an
// error when the process exits first (most often: the port was taken) or
// does not answer in time.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	log := new(bytes.Buffer)
	cmd := exec.Command(Binary,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
	)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", Binary, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done, s.log = cmd, done, log

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("redis-server exited before answering PING on port %d: %s", s.port, lastLines(log.Bytes()))
		default:
		}
		if err := ping(s.Addr()); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("redis-server did not answer PING on port %d within %s: %w", s.port, startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill must be called with s.mu held.
func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // SIGKILL, by the PID Start got; it ends a paused server too
	<-s.done
	s.cmd = nil
}

// ping sends a RESP PING over a fresh connection: the package needs no Redis
// client of its own, so what it checks is the server, not a client library.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		// -LOADING and similar: up, but not serving yet.
		return fmt.Errorf("ping answered %q", line)
	}
	return nil
}

// checkBinary says how to install redis-server when path is not there.
func checkBinary(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("redistest: %s is missing (%v): run examples/setup.sh, which installs Debian's redis-server", path, err)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("listener address is not TCP")
	}
	return addr.Port, nil
}

// lastLines keeps a failure message short: redis-server prints its banner first.
func lastLines(b []byte) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}
