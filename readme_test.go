package caddysgid_test

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard" // reverse_proxy in the examples
)

// The README's Caddyfile reference is checked against the code: the same
// subdirectives as the UnmarshalCaddyfile doc comment (which caddyfile_test.go
// checks against the parser), the same defaults, and every example adapts and
// changes the adapted config.

type referenceRow struct {
	name, defaultText, what, example string
}

var referenceCell = regexp.MustCompile("^`([a-z_]+)")

func readmeReference(t *testing.T) []referenceRow {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- reference:begin")
	table, _, ok2 := strings.Cut(rest, "<!-- reference:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no reference:begin/end markers")
	}
	var rows []referenceRow
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 4 {
			continue
		}
		m := referenceCell.FindStringSubmatch(cells[0])
		if m == nil {
			continue
		}
		rows = append(rows, referenceRow{name: m[1], defaultText: strings.ReplaceAll(cells[1], "`", ""), what: strings.ReplaceAll(cells[2], "`", ""), example: strings.Trim(cells[3], "`")})
	}
	return rows
}

// docComment reads the syntax block of UnmarshalCaddyfile's doc comment: each
// subdirective and the text after its '#'.
func docComment(t *testing.T) map[string]string {
	t.Helper()
	src, err := os.ReadFile("caddyfile.go")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^//\t\t([a-z_]+)\b[^#\n]*(?:#\s*(.*))?$`)
	out := map[string]string{}
	for _, m := range line.FindAllStringSubmatch(string(src), -1) {
		out[m[1]] = m[2]
	}
	if len(out) < 10 {
		t.Fatalf("found only %d subdirectives in caddyfile.go's doc comment", len(out))
	}
	return out
}

var commentDefault = regexp.MustCompile(`default:? ([^;(]+)`)

func TestReadmeReferenceMatchesTheCode(t *testing.T) {
	rows := readmeReference(t)
	doc := docComment(t)
	var names []string
	for _, r := range rows {
		names = append(names, r.name)
		comment, ok := doc[r.name]
		if !ok {
			t.Errorf("README documents %s, which the doc comment (and so the parser) does not have", r.name)
			continue
		}
		if strings.Contains(comment, "required") && r.defaultText != "required" {
			t.Errorf("%s: the code says required, README says %q", r.name, r.defaultText)
		}
		if m := commentDefault.FindStringSubmatch(comment); m != nil {
			if want := strings.TrimSpace(m[1]); !strings.Contains(r.defaultText+" "+r.what, want) {
				t.Errorf("%s: README default %q, the code's %q", r.name, r.defaultText, want)
			}
		}
	}
	for name := range doc {
		if !slices.Contains(names, name) {
			t.Errorf("README's reference lacks %s", name)
		}
	}
}

func TestReadmeReferenceExamplesAdapt(t *testing.T) {
	base := map[string]string{
		"client_id":     "client_id test-client",
		"client_secret": "client_secret {env.TEST_CLIENT_SECRET}",
		"private_key":   "private_key {env.TEST_PRIVATE_KEY}",
		"scope":         "scope openid myinfo.name myinfo.email myinfo.is_age_above_18",
	}
	caddyfile := func(extra string) string {
		lines := map[string]string{}
		for k, v := range base {
			lines[k] = v
		}
		name, _, _ := strings.Cut(extra, " ")
		lines[name] = extra
		var b strings.Builder
		b.WriteString("app.example.gov.sg {\n\tsgid {\n")
		keys := make([]string, 0, len(lines))
		for k := range lines {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b.WriteString("\t\t" + lines[k] + "\n")
		}
		b.WriteString("\t}\n\treverse_proxy 127.0.0.1:9000\n}\n")
		return b.String()
	}
	adapt := func(body string) ([]byte, error) {
		out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), nil)
		if len(warnings) > 0 {
			t.Errorf("warnings: %+v", warnings)
		}
		return out, err
	}
	plain, err := adapt(caddyfile(base["client_id"]))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readmeReference(t) {
		out, err := adapt(caddyfile(r.example))
		if err != nil {
			t.Errorf("README example %q does not adapt: %v", r.example, err)
			continue
		}
		if bytes.Equal(out, plain) {
			t.Errorf("README example %q changes nothing in the adapted config", r.example)
		}
	}
}

func TestCaddyfileExampleShowsEverySubdirective(t *testing.T) {
	example, err := os.ReadFile("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	for name := range docComment(t) {
		if !regexp.MustCompile(`(?m)^\t\t#? ?` + name + `\b`).Match(example) {
			t.Errorf("Caddyfile.example does not show %s", name)
		}
	}
}
