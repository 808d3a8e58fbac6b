package sgid_test

import (
	"bufio"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// The benchmarks run the fake sgID server in a child process (this test binary,
// re-executed) so that the process's CPU time is the client's alone.
const benchServerEnv = "SGID_BENCH_FAKE_SERVER"

type benchServerInfo struct {
	URL, ClientID, ClientSecret string
}

func TestMain(m *testing.M) {
	if profile := os.Getenv(benchServerEnv); profile != "" {
		os.Exit(runBenchServer(profile))
	}
	os.Exit(m.Run())
}

// runBenchServer serves a fake sgID for the client public key given on stdin's
// first line (PEM, newlines escaped) until stdin closes.
func runBenchServer(profile string) int {
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadString('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench server: reading the client key:", err)
		return 1
	}
	var der []byte
	if block, _ := pem.Decode([]byte(unescapeNewlines(line))); block != nil {
		der = block.Bytes
	}
	pub, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench server: bad client key:", err)
		return 1
	}
	opts := sgidtest.Options{Client: sgidtest.Client{PublicKey: pub}}
	if profile == "observed" {
		opts.Profile = sgidtest.ProfileObserved
	}
	srv, err := sgidtest.NewServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench server:", err)
		return 1
	}
	defer srv.Close()
	json.NewEncoder(os.Stdout).Encode(benchServerInfo{srv.URL(), srv.ClientID(), srv.ClientSecret()})
	in.ReadString('\n') // until the parent closes stdin
	return 0
}

func unescapeNewlines(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == 'n' {
			out = append(out, '\n')
			i++
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}

// startBenchServer starts the child-process fake server for profile.
func startBenchServer(b *testing.B, profile string) benchServerInfo {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"="+profile)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	pub := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&testClientKey(b).PublicKey)})
	fmt.Fprintf(stdin, "%s\n", escapeNewlines(string(pub)))
	var info benchServerInfo
	if err := json.NewDecoder(stdout).Decode(&info); err != nil {
		b.Fatalf("bench server did not start: %v", err)
	}
	return info
}

func escapeNewlines(s string) string {
	out := make([]byte, 0, len(s)+64)
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, '\\', 'n')
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}
