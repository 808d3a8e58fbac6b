package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// tableOutcomes is every row of outcome.go's table, by name, and whether the
// operator must act on it: the rule item 3 of issue 16 sets (sgID unreachable
// or refusing, answers that do not verify, the client's configuration, the
// gateway's own failures are the operator's; a user's cancel, an expired or
// replayed link, a refusal are not). TestTableOutcomesIsTheWholeTable keeps
// the list whole.
var tableOutcomes = []struct {
	name     string
	o        outcome
	operator bool
}{
	{"outNotFound", outNotFound, false},
	{"outNoPublicKeys", outNoPublicKeys, false},
	{"outMisdirected", outMisdirected, false},
	{"outCrossSiteEverywhere", outCrossSiteEverywhere, false},
	{"outFormNotKept", outFormNotKept, false},
	{"outDenied", outDenied, false},
	{"outStartFailed", outStartFailed, true},
	{"outAttemptNotWritten", outAttemptNotWritten, true},
	{"outNoAttempt", outNoAttempt, false},
	{"outAttemptSpent", outAttemptSpent, false},
	{"outCancelled", outCancelled, false},
	{"outCallbackRefused", outCallbackRefused, true},
	{"outCallbackSgidDown", outCallbackSgidDown, true},
	{"outSgidUnavailable", outSgidUnavailable, true},
	{"outInvalidGrant", outInvalidGrant, false},
	{"outBadCallback", outBadCallback, false},
	{"outInvalidClient", outInvalidClient, true},
	{"outVerificationFailed", outVerificationFailed, true},
	{"outSgidError", outSgidError, true},
	{"outSessionNotWritten", outSessionNotWritten, true},
	{"outSessionTooLarge", outSessionTooLarge, true},
}

func TestTableOutcomesIsTheWholeTable(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "outcome.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			for _, name := range spec.(*ast.ValueSpec).Names {
				if strings.HasPrefix(name.Name, "out") {
					declared = append(declared, name.Name)
				}
			}
		}
	}
	var listed []string
	for _, tt := range tableOutcomes {
		listed = append(listed, tt.name)
	}
	slices.Sort(declared)
	slices.Sort(listed)
	if !slices.Equal(declared, listed) {
		t.Errorf("outcome.go declares %v, the test lists %v", declared, listed)
	}
}

// failRequest is a browser's GET of path on http://app.example, with a replacer
// as Caddy gives one.
func failRequest(path string) *http.Request {
	ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	r := httptest.NewRequest(http.MethodGet, "http://app.example"+path, nil).WithContext(ctx)
	r.Header.Set("Accept", "text/html")
	return r
}

// observed is a gateway whose logger, named as Caddy names the handler's,
// writes to the returned observer at every level.
func observed(t *testing.T, cfg Config) (*Gateway, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	cfg.Logger = zap.New(core).Named("http.handlers.sgid")
	return newTestGateway(t, cfg), logs
}

var errorReference = regexp.MustCompile(`Error reference: ([0-9a-f]{12})`)

// An operator who runs Caddy at WARN finds the error reference a user reads
// off a page whenever the failure is theirs to fix, and is not woken by
// failures that are the user's own.
func TestFailuresTheOperatorMustActOnAreLoggedAtWarnWithTheReference(t *testing.T) {
	for _, tt := range tableOutcomes {
		t.Run(tt.name, func(t *testing.T) {
			g, logs := observed(t, testConfig(t, "http://app.example/.sgid/callback"))
			rec := httptest.NewRecorder()
			if err := g.fail(rec, failRequest("/page"), tt.o, errors.New("cause"), "/page"); err != nil {
				t.Fatal(err)
			}
			m := errorReference.FindStringSubmatch(rec.Body.String())
			if m == nil {
				t.Fatalf("no error reference on the page: %.300s", rec.Body.String())
			}
			var lines []observer.LoggedEntry
			for _, e := range logs.FilterLoggerName("http.handlers.sgid").All() {
				if e.ContextMap()["error_id"] == m[1] {
					lines = append(lines, e)
				}
			}
			if len(lines) != 1 {
				t.Fatalf("%d lines of the handler's logger hold the reference %s, want 1", len(lines), m[1])
			}
			want := zapcore.InfoLevel
			if tt.operator {
				want = zapcore.WarnLevel
			}
			if lines[0].Level != want {
				t.Errorf("logged at %s, want %s", lines[0].Level, want)
			}
		})
	}
}

// A branded page puts the placeholders into HTML as they are, and the JSON
// and the gateway's own page print the same text: none of it may be markup,
// whatever path the user was on.
func TestOutcomeTextAndNextActionsAreSafeInHTML(t *testing.T) {
	g := newTestGateway(t, testConfig(t, "http://app.example/.sgid/callback"))
	hostile := `/a?q="><script>x</script>&b='c'`
	for _, tt := range tableOutcomes {
		texts := []string{tt.o.code, tt.o.title, tt.o.because(string(notKeptFiles)).message}
		for _, l := range g.nextSteps(tt.o, hostile) {
			texts = append(texts, l.URL, l.Text)
		}
		for _, s := range texts {
			if strings.ContainsAny(s, `<>&"`) {
				t.Errorf("%s: %q holds markup", tt.name, s)
			}
		}
	}
}

// Every page but the one where only the operator can help offers a next
// action, and the page's links are the placeholders a handle_errors route
// gets.
func TestEveryOutcomeOffersANextActionAndHandleErrorsGetsIt(t *testing.T) {
	cfg := testConfig(t, "http://app.example/.sgid/callback")
	cfg.ErrorRoutes = true
	routed := newTestGateway(t, cfg)
	g := newTestGateway(t, testConfig(t, "http://app.example/.sgid/callback"))
	for _, tt := range tableOutcomes {
		t.Run(tt.name, func(t *testing.T) {
			links := g.nextSteps(tt.o, "/page?q=1")
			if len(links) == 0 && tt.o != outSessionTooLarge {
				t.Fatal("no next action")
			}
			rec := httptest.NewRecorder()
			if err := g.fail(rec, failRequest("/page?q=1"), tt.o, nil, "/page?q=1"); err != nil {
				t.Fatal(err)
			}
			for _, l := range links {
				if want := `<a href="` + l.URL + `">` + l.Text + `</a>`; !strings.Contains(rec.Body.String(), want) {
					t.Errorf("the page lacks %s: %.400s", want, rec.Body.String())
				}
			}
			r := failRequest("/page?q=1")
			err := routed.fail(httptest.NewRecorder(), r, tt.o, nil, "/page?q=1")
			var he caddyhttp.HandlerError
			if !errors.As(err, &he) || he.StatusCode != tt.o.status {
				t.Fatalf("with handle_errors: %v, want a HandlerError with %d", err, tt.o.status)
			}
			repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
			var first, second pageLink
			if len(links) > 0 {
				first = links[0]
			}
			if len(links) > 1 {
				second = links[1]
			}
			for name, want := range map[string]string{
				PlaceholderCode: tt.o.code, PlaceholderTitle: tt.o.title,
				PlaceholderAction: first.Text, PlaceholderActionURL: first.URL,
				PlaceholderAction2: second.Text, PlaceholderAction2URL: second.URL,
			} {
				if got, ok := repl.GetString(name); !ok || got != want {
					t.Errorf("{%s} = %q (set %t), want %q", name, got, ok, want)
				}
			}
		})
	}
}

// The JSON forms are what API clients parse: their keys stay as they were,
// login_url only where a new login helps.
func TestOutcomeJSONKeepsItsShape(t *testing.T) {
	g := newTestGateway(t, testConfig(t, "http://app.example/.sgid/callback"))
	for _, tt := range tableOutcomes {
		r := failRequest("/page")
		r.Header.Set("Accept", "application/json")
		rec := httptest.NewRecorder()
		if err := g.fail(rec, r, tt.o, nil, "/page"); err != nil {
			t.Fatal(err)
		}
		keys := jsonKeys(t, rec.Body.String())
		want := []string{"error", "error_id", "message"}
		if tt.o.next == nextLogin {
			want = []string{"error", "error_id", "login_url", "message"}
		}
		if !slices.Equal(keys, want) {
			t.Errorf("%s: JSON keys %v, want %v", tt.name, keys, want)
		}
	}
}

// jsonKeys are the keys of a JSON object, sorted.
func jsonKeys(t *testing.T, body string) []string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not a JSON object: %v: %.200s", err, body)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
