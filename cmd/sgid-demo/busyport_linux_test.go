//go:build amd64 || arm64

package main

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
)

// soReusePort is SO_REUSEPORT on Linux on amd64 and arm64 (other
// architectures number it differently); the syscall package does not define it.
const soReusePort = 0xf

// Caddy listens with SO_REUSEPORT, so without a check of its own a demo started
// on a port another Caddy (or demo) serves would come up without error and the
// kernel would deal the connections out between the two.
func TestStartRefusesAPortAnotherCaddyServes(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := Start(Options{Port: l.Addr().(*net.TCPAddr).Port})
	if err == nil {
		d.Close()
		t.Fatal("the demo started on a port in use")
	}
	if !strings.Contains(err.Error(), "-port") {
		t.Errorf("error %q does not say how to choose another port", err)
	}
}
