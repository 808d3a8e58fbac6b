package redistest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// do sends one inline command and returns the first line of the reply.
func do(t *testing.T, addr, command string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n", command); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestStartServesOnLoopback(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want a loopback address", s.Addr())
	}
	if got, err := do(t, s.Addr(), "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING = %q, %v; want +PONG", got, err)
	}
}

func TestStartHasNoPersistence(t *testing.T) {
	s := Start(t)
	for _, c := range []struct{ command, want string }{
		{"CONFIG GET save", ""},
		{"CONFIG GET appendonly", "no"},
	} {
		// CONFIG GET answers an array: name, value.
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "%s\r\n", c.command)
		r := bufio.NewReader(conn)
		var lines []string
		for range 5 {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, strings.TrimSpace(line))
		}
		conn.Close()
		if got := lines[4]; got != c.want {
			t.Errorf("%s = %q, want %q (reply %q)", c.command, got, c.want, lines)
		}
	}
}

func TestKillStopsTheServer(t *testing.T) {
	s := Start(t)
	s.Kill()
	if _, err := do(t, s.Addr(), "PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Kill() // a second Kill does nothing
}

func TestRestartIsEmptyOnTheSamePort(t *testing.T) {
	s := Start(t)
	addr := s.Addr()
	if got, err := do(t, addr, "SET k v"); err != nil || got != "+OK" {
		t.Fatalf("SET = %q, %v", got, err)
	}
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("Addr() after Restart = %q, want %q", s.Addr(), addr)
	}
	if got, err := do(t, addr, "DBSIZE"); err != nil || got != ":0" {
		t.Fatalf("DBSIZE after Restart = %q, %v; want :0", got, err)
	}
}

func TestRestartAfterKill(t *testing.T) {
	s := Start(t)
	s.Kill()
	s.Restart()
	if got, err := do(t, s.Addr(), "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING after Kill and Restart = %q, %v", got, err)
	}
}

func TestServersDoNotShareAPort(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers on %s", a.Addr())
	}
}

func TestMissingBinarySaysToRunSetup(t *testing.T) {
	err := checkBinary("/nonexistent/redis-server")
	if err == nil || !strings.Contains(err.Error(), "examples/setup.sh") {
		t.Fatalf("checkBinary(missing) = %v, want an error that names examples/setup.sh", err)
	}
	if err := checkBinary(Binary); err != nil {
		t.Fatalf("checkBinary(%s) = %v on a machine with redis-server", Binary, err)
	}
}

func TestPauseStopsAnswersUntilResume(t *testing.T) {
	s := Start(t)
	s.Pause()
	if got, err := do(t, s.Addr(), "PING"); err == nil {
		t.Fatalf("PING answered %q while paused", got)
	}
	s.Resume()
	if got, err := do(t, s.Addr(), "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING after Resume = %q, %v", got, err)
	}
	s.Pause() // Cleanup's Kill ends a paused server
}
