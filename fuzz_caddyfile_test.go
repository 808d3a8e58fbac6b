package caddysgid

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/sgidproxy/caddy-sgid/internal/fuzzcorpus"
)

// updateFuzzCorpus rewrites the shipped Caddyfile seeds (TestFuzzCaddyfileCorpusHoldsEveryShippedBlock).
var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite the seeds in testdata/fuzz/")

// caddyfileSeeds are the sgid blocks of every Caddyfile the repository ships, as
// the handler's parser sees them: a matcher after "sgid" is the directive's, not
// the handler's, so it is dropped. The seed name is the file's, with the block's
// number in it.
func caddyfileSeeds(t testing.TB) map[string]string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"testdata/*.caddyfile", "examples/*.caddyfile", "Caddyfile.example", "cmd/sgid-demo/Caddyfile"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	seeds := map[string]string{}
	start := regexp.MustCompile(`^\s*sgid(\s+@\S+)?\s*\{\s*$`)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		n := 0 // sgid blocks in this file
		for i := 0; i < len(lines); i++ {
			m := start.FindStringSubmatch(lines[i])
			if m == nil {
				continue
			}
			n++
			name := fmt.Sprintf("%s-%d", strings.NewReplacer("/", "-", ".", "-").Replace(file), n)
			block := []string{strings.Replace(strings.TrimSpace(lines[i]), m[1], "", 1)}
			for depth := 1; depth > 0 && i+1 < len(lines); {
				i++
				depth += strings.Count(lines[i], "{") - strings.Count(lines[i], "}") // placeholders balance
				block = append(block, lines[i])
			}
			seeds[name] = strings.Join(block, "\n") + "\n"
		}
	}
	if len(seeds) < len(files) {
		t.Fatalf("found %d sgid blocks in %d Caddyfiles", len(seeds), len(files))
	}
	return seeds
}

// FuzzUnmarshalCaddyfile checks that no sgid block makes the parser panic, that
// every refusal names a line, and that whatever it accepts passes Validate and
// survives the trip through JSON that caddy adapt and a Caddy reload make.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, s := range []string{
		"", "sgid", "sgid {", "sgid }", "sgid {\n}", "sgid arg {\n}", "sgid {\n\tclient_id\n}",
		"sgid {\n\tclient_id a\n\tclient_secret b\n\tprivate_key c\n}",
		"sgid {\n\tclient_id a\n\tclient_secret b\n\tprivate_key c\n\tforward sub X-User\n\trequire sub x y\n\tscope openid\n}",
		"sgid {\n\tclient_id a\n\tclient_secret b\n\tprivate_key c\n\tidle_timeout 13h\n}",
		"sgid {\n\tclient_id a a\n\tclient_secret \"\"\n\tsession_lifetime -1s\n\tsgid {\n\t}\n}",
		"sgid {\n\tclient_id a\n\tclient_secret b\n\tprivate_key <<EOF\n\t-----BEGIN PRIVATE KEY-----\n\tEOF\n\tclock_skew 1d\n}",
	} {
		f.Add(s)
	}
	for _, s := range caddyfileSeeds(f) {
		f.Add(s)
	}
	whole, _ := filepath.Glob("testdata/*.caddyfile")
	for _, file := range whole {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(string(data))
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		tokens, err := caddyfile.Tokenize([]byte(text), "Caddyfile")
		if err != nil {
			return // the lexer's refusal, before any handler sees the block
		}
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			if len(tokens) > 0 && !strings.Contains(err.Error(), "Caddyfile:") {
				t.Fatalf("error %q names no line", err)
			}
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("UnmarshalCaddyfile accepted a block that fails Validate: %v", err)
		}
		adapted, err := json.Marshal(&h)
		if err != nil {
			t.Fatal(err)
		}
		var loaded Handler
		if err := json.Unmarshal(adapted, &loaded); err != nil {
			t.Fatalf("adapted JSON does not load: %v", err)
		}
		if err := loaded.Validate(); err != nil {
			t.Fatalf("the adapted JSON %s fails Validate: %v", adapted, err)
		}
		if again, _ := json.Marshal(&loaded); !bytes.Equal(again, adapted) {
			t.Fatalf("JSON changes across a load: %s, then %s", adapted, again)
		}
	})
}

// TestFuzzCaddyfileCorpusHoldsEveryShippedBlock keeps the committed seeds in step
// with the shipped Caddyfiles: each is a seed, and each parses. With
// -update-fuzz-corpus it first rewrites them.
func TestFuzzCaddyfileCorpusHoldsEveryShippedBlock(t *testing.T) {
	seeds := caddyfileSeeds(t)
	if *updateFuzzCorpus {
		old, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzUnmarshalCaddyfile", "shipped-*"))
		for _, file := range old {
			os.Remove(file)
		}
		for name, text := range seeds {
			fuzzcorpus.Write(t, "FuzzUnmarshalCaddyfile", "shipped-"+name, text)
		}
	}
	for name, text := range seeds {
		file := filepath.Join("testdata", "fuzz", "FuzzUnmarshalCaddyfile", "shipped-"+name)
		if _, err := os.Stat(file); err != nil {
			t.Errorf("%s is missing: run go test -run TestFuzzCaddyfileCorpus -update-fuzz-corpus .", file)
			continue
		}
		if args := fuzzcorpus.Read(t, file); len(args) != 1 || args[0] != text {
			t.Errorf("%s is not the sgid block it was made from: run go test -run TestFuzzCaddyfileCorpus -update-fuzz-corpus .", file)
			continue
		}
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(text)); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}
