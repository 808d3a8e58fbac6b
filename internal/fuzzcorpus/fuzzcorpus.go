// Package fuzzcorpus writes and reads seed files in the `go test fuzz v1`
// format, for tests that keep their committed corpora in step with the code
// that made them.
package fuzzcorpus

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const header = "go test fuzz v1"

// Write writes one seed for target under testdata/fuzz/<target>/<name>. It
// takes the argument types the fuzz targets here use: string, []byte, byte,
// bool.
func Write(t testing.TB, target, name string, args ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString(header + "\n")
	for _, a := range args {
		switch a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", a)
		case byte:
			fmt.Fprintf(&b, "byte(%q)\n", a)
		case string, bool:
			fmt.Fprintf(&b, "%T(%#v)\n", a, a)
		default:
			t.Fatalf("fuzzcorpus: argument of type %T", a)
		}
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Read reads a seed's arguments, each as a string: string and []byte values as
// they are, a byte as a one-byte string, a bool as "true" or "false".
func Read(t testing.TB, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if lines[0] != header {
		t.Fatalf("%s: first line %q, want %s", file, lines[0], header)
	}
	var args []string
	for _, line := range lines[1:] {
		typ, rest, ok := strings.Cut(line, "(")
		value, ok2 := strings.CutSuffix(rest, ")")
		if !ok || !ok2 {
			t.Fatalf("%s: %q is not a fuzz argument", file, line)
		}
		var s string
		switch typ {
		case "string", "[]byte":
			s, err = strconv.Unquote(value)
		case "byte":
			var r rune
			r, _, _, err = strconv.UnquoteChar(strings.TrimSuffix(strings.TrimPrefix(value, "'"), "'"), '\'')
			s = string([]byte{byte(r)})
		case "bool":
			_, err = strconv.ParseBool(value)
			s = value
		default:
			err = fmt.Errorf("unsupported type %s", typ)
		}
		if err != nil {
			t.Fatalf("%s: %q: %v", file, line, err)
		}
		args = append(args, s)
	}
	return args
}
