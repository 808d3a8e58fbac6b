package caddysgid

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// parseRootFile parses a Go file of this package, with comments.
func parseRootFile(t *testing.T, name string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// stringCases returns the string literals of a switch's case clauses.
func stringCases(t *testing.T, sw *ast.SwitchStmt) []string {
	t.Helper()
	var labels []string
	for _, stmt := range sw.Body.List {
		for _, e := range stmt.(*ast.CaseClause).List {
			lit, ok := e.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Fatalf("case label %T is not a string literal", e)
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			labels = append(labels, s)
		}
	}
	return labels
}

func TestUnmarshalCaddyfileDocListsEverySubdirective(t *testing.T) {
	f := parseRootFile(t, "caddyfile.go")
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if d, ok := d.(*ast.FuncDecl); ok && d.Name.Name == "UnmarshalCaddyfile" {
			fn = d
		}
	}
	if fn == nil || fn.Doc == nil {
		t.Fatal("UnmarshalCaddyfile or its doc comment not found in caddyfile.go")
	}

	// The parser: one switch accepts subdirectives and rejects the rest; the
	// other skips the duplicate check for those that may repeat.
	accepted := switchLabels(t, fn, "unrecognized subdirective")
	repeatable := switchLabels(t, fn, "given more than once")

	// The doc: the lines between "sgid [<matcher>] {" and "}".
	var documented, documentedRepeatable []string
	inBlock := false
	for line := range strings.SplitSeq(fn.Doc.Text(), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "sgid "):
			inBlock = true
		case trimmed == "}":
			inBlock = false
		case inBlock && trimmed != "":
			word, _, _ := strings.Cut(trimmed, " ")
			documented = append(documented, word)
			if _, comment, _ := strings.Cut(trimmed, "#"); strings.Contains(comment, "repeatable") {
				documentedRepeatable = append(documentedRepeatable, word)
			}
		}
	}
	if len(documented) == 0 {
		t.Fatal("no syntax block found in the UnmarshalCaddyfile doc comment")
	}
	for _, s := range accepted {
		if !slices.Contains(documented, s) {
			t.Errorf("the parser accepts %q, but the UnmarshalCaddyfile doc comment does not list it", s)
		}
	}
	for _, s := range documented {
		if !slices.Contains(accepted, s) {
			t.Errorf("the UnmarshalCaddyfile doc comment lists %q, but the parser does not accept it", s)
		}
	}
	// The list an unrecognized subdirective's hint is chosen from.
	if got, want := slices.Sorted(slices.Values(subdirectives)), slices.Sorted(slices.Values(accepted)); !slices.Equal(got, want) {
		t.Errorf("subdirectives (the did-you-mean list) is %v; the parser accepts %v", got, want)
	}
	slices.Sort(repeatable)
	slices.Sort(documentedRepeatable)
	if !slices.Equal(repeatable, documentedRepeatable) {
		t.Errorf("repeatable subdirectives: the parser allows %v, the doc comment says %v", repeatable, documentedRepeatable)
	}
}

// switchLabels returns the case labels, other than default, of the switch in
// fn whose default clause holds a string containing marker.
func switchLabels(t *testing.T, fn *ast.FuncDecl, marker string) []string {
	t.Helper()
	var out []string
	found := false
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		sw, ok := n.(*ast.SwitchStmt)
		if !ok || found {
			return !found
		}
		for _, stmt := range sw.Body.List {
			if c := stmt.(*ast.CaseClause); c.List == nil && mentionsString(c, marker) {
				found = true
			}
		}
		if found {
			out = stringCases(t, sw)
		}
		return !found
	})
	if !found {
		t.Fatalf("no switch in %s whose default clause says %q", fn.Name.Name, marker)
	}
	return out
}

// mentionsString reports whether a string literal under n contains s.
func mentionsString(n ast.Node, s string) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && strings.Contains(lit.Value, s) {
			found = true
		}
		return !found
	})
	return found
}

func TestHandlerFieldsDocumentDefaultOrRequired(t *testing.T) {
	f := parseRootFile(t, "module.go")
	var st *ast.StructType
	ast.Inspect(f, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.Name == "Handler" {
			st, _ = ts.Type.(*ast.StructType)
			return false
		}
		return true
	})
	if st == nil {
		t.Fatal("type Handler struct not found in module.go")
	}
	exported := 0
	for _, field := range st.Fields.List {
		for _, name := range field.Names {
			if !name.IsExported() {
				continue
			}
			exported++
			doc := field.Doc.Text()
			if !strings.HasPrefix(doc, name.Name+" ") {
				t.Errorf("Handler.%s: the doc comment must start with %q, got %q", name.Name, name.Name+" ", doc)
			}
			if !strings.Contains(doc, "Default") && !strings.Contains(doc, "Required") {
				t.Errorf("Handler.%s: the doc comment states neither its Default nor that it is Required: %q", name.Name, doc)
			}
		}
	}
	want := 0
	for f := range reflect.TypeFor[Handler]().Fields() {
		if f.IsExported() {
			want++
		}
	}
	if exported != want {
		t.Errorf("read %d exported fields of Handler in module.go, the type has %d", exported, want)
	}
}
