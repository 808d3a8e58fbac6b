package caddysgid_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Every Caddyfile the repository ships is as `caddy fmt` writes it: Caddy's
// adapter warns "Caddyfile input is not formatted" at every start otherwise,
// and an operator's first Caddyfile is usually a copy of one of these.

// shippedCaddyfiles returns every Caddyfile the repository ships, by where it
// is: the files, and the README's snippets fenced as caddyfile.
func shippedCaddyfiles(t *testing.T) map[string][]byte {
	t.Helper()
	examples, err := filepath.Glob("examples/*.caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	if len(examples) == 0 {
		t.Fatal("no examples/*.caddyfile")
	}
	out := map[string][]byte{}
	for _, name := range append(examples, "Caddyfile.example", "cmd/sgid-demo/Caddyfile") {
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = body
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range fencedBlocks(string(readme)) {
		if b.info == "caddyfile" {
			out[fmt.Sprintf("README.md:%d", b.line)] = []byte(b.body)
		}
	}
	return out
}

// fencedBlock is a Markdown code block fenced with ```: its info string, the
// line of its opening fence and its text.
type fencedBlock struct {
	info string
	line int
	body string
}

func fencedBlocks(markdown string) []fencedBlock {
	var blocks []fencedBlock
	var open *fencedBlock
	n := 0
	for line := range strings.Lines(markdown) {
		n++
		fence, isFence := strings.CutPrefix(strings.TrimRight(line, "\n"), "```")
		switch {
		case isFence && open == nil:
			open = &fencedBlock{info: strings.TrimSpace(fence), line: n}
		case isFence:
			blocks = append(blocks, *open)
			open = nil
		case open != nil:
			open.body += line
		}
	}
	return blocks
}

func TestShippedCaddyfilesAreFormatted(t *testing.T) {
	for name, body := range shippedCaddyfiles(t) {
		t.Run(name, func(t *testing.T) {
			if got := caddyfile.Format(body); !bytes.Equal(got, body) {
				line, have, want := firstDifference(body, got)
				t.Errorf("not as caddy fmt writes it, from line %d:\n  is:     %q\n  caddy fmt: %q", line, have, want)
			}
		})
	}
}

// The format test reads the README's snippets by their fence, so a Caddyfile
// snippet without `caddyfile` on its fence would escape it.
func TestReadmeFencesEveryCaddyfileSnippetAsCaddyfile(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, b := range fencedBlocks(string(readme)) {
		if b.info == "caddyfile" {
			marked++
			continue
		}
		if strings.Contains(b.body, "sgid {") || strings.Contains(b.body, "reverse_proxy ") {
			t.Errorf("README.md:%d: a Caddyfile snippet fenced as %q, not caddyfile", b.line, b.info)
		}
	}
	if marked == 0 {
		t.Error("README.md has no snippet fenced as caddyfile")
	}
}

// firstDifference returns the first line (1-based) where a and b differ, and
// that line of each.
func firstDifference(a, b []byte) (int, string, string) {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; ; i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y || i >= len(al) || i >= len(bl) {
			return i + 1, x, y
		}
	}
}
