package caddysgid_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Each SECURITY.md row names the tests that prove it as `path_test.go`:
// `TestName`, ...: every such file must exist at that path from the repo root
// and define each function named, so that moving or renaming a test cannot
// leave a defence without its proof.
func TestSecurityDocNamesTestsThatExist(t *testing.T) {
	doc, err := os.ReadFile("SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	group := regexp.MustCompile("`([A-Za-z0-9_/.-]+_test\\.go)`: ((?:`(?:Test|Fuzz|Benchmark)\\w+`(?: \\([^)]*\\))?(?:, )?)+)")
	name := regexp.MustCompile("`((?:Test|Fuzz|Benchmark)\\w+)`")
	groups := group.FindAllStringSubmatch(string(doc), -1)
	if len(groups) < 50 {
		t.Fatalf("found %d file: test groups in SECURITY.md; the pattern no longer reads its tables", len(groups))
	}
	for _, g := range groups {
		src, err := os.ReadFile(g[1])
		if err != nil {
			t.Errorf("SECURITY.md names %s, which does not exist", g[1])
			continue
		}
		for _, n := range name.FindAllStringSubmatch(g[2], -1) {
			if !strings.Contains(string(src), "func "+n[1]+"(") {
				t.Errorf("SECURITY.md names %s in %s, which does not define it", n[1], g[1])
			}
		}
	}
}
