package gateway

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/sgidproxy/caddy-sgid/internal/fuzzcorpus"
	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite the seeds in testdata/fuzz/")

// The fuzzed gateway's session codec has a fixed secret and a stopped clock, so the
// attempt and session cookies committed under testdata/fuzz stay valid for ever.
const fuzzSessionSecret = "caddy-sgid fuzz session secret, for tests only"

var fuzzNow = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// fuzzAuth is the login attempt every committed attempt cookie holds: its state is
// what a committed callback query names.
var fuzzAuth = sgid.AuthRequest{
	State:        "fuzz-state-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	Nonce:        "fuzz-nonce-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	CodeVerifier: "fuzz-verifier-cccccccccccccccccccccccccccccc",
	RedirectURI:  "http://app.example/.sgid/callback",
}

const fuzzReturnTo = "/app/after?tab=1"

// fuzzPaths are the paths a fuzz input's flags choose from: mostly the callback.
var fuzzPaths = [8]string{
	"/.sgid/callback", "/.sgid/callback", "/.sgid/callback", "/.sgid/callback",
	"/.sgid/login", "/.sgid/logout", "/.sgid/userinfo", "/app/page",
}

// Flags of a fuzz input, one bit each but the path (bits 3 to 5).
const (
	flagAttempt = 1 << 0 // send the valid attempt cookie for fuzzAuth
	flagHTML    = 1 << 1 // Accept: text/html
	flagTLS     = 1 << 2 // over HTTPS: __Host- cookies
	flagSession = 1 << 6 // send a valid session cookie
)

func pathFlags(path string) byte {
	for i, p := range fuzzPaths {
		if p == path {
			return byte(i) << 3
		}
	}
	panic(path)
}

// fuzzGateway is a Gateway built as Provision builds it, in front of a fake
// sgID, with the valid cookies a browser in the middle of a login would hold.
type fuzzGateway struct {
	h       *Gateway
	sgid    *sgidtest.Server
	attempt [2]string // [secure] "name=value" of fuzzAuth's attempt cookie
	session [2]string // [secure] "name=value; ..." of a session
}

// cookieTokens stand for g's valid cookies in seeds: cookies are bound to the
// fake sgID's issuer, whose port changes from run to run, so committed seeds
// name them and each run mints them.
func (g *fuzzGateway) cookieTokens() *strings.Replacer {
	return strings.NewReplacer("{attempt}", g.attempt[0], "{attempt-tls}", g.attempt[1],
		"{session}", g.session[0], "{session-tls}", g.session[1])
}

func newFuzzGateway(t testing.TB) *fuzzGateway {
	t.Helper()
	key, err := sgidtest.NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	srv := sgidtest.Start(t, sgidtest.Options{Client: sgidtest.Client{PublicKey: &key.PublicKey}})
	cfg := testConfig(t, fuzzAuth.RedirectURI)
	cfg.Client = sgid.Config{
		ClientID:     srv.ClientID(),
		ClientSecret: srv.ClientSecret(),
		PrivateKey:   sgidtest.EncodePKCS8(key),
		Hostname:     srv.URL(),
		Scopes:       []string{"openid", "myinfo.name", "myinfo.email", "myinfo.is_age_above_18"},
		Timeout:      5 * time.Second,
	}
	cfg.Forward = []Forward{{Field: "myinfo.name", Header: DefaultHeader("myinfo.name")}, {Field: "myinfo.email", Header: "X-Email"}}
	cfg.Require = []Requirement{{Field: "myinfo.is_age_above_18", Values: []string{"true"}}}
	cfg.SessionSecrets = [][]byte{[]byte(fuzzSessionSecret)}
	// Built as Provision builds it, with the codec's clock stopped.
	cfg.Now = func() time.Time { return fuzzNow }
	h := newTestGateway(t, cfg)
	g := &fuzzGateway{h: h, sgid: srv}
	for i, secure := range []bool{false, true} {
		rec := httptest.NewRecorder()
		empty := httptest.NewRequest(http.MethodGet, "/", nil)
		att := &session.Attempt{State: fuzzAuth.State, Nonce: fuzzAuth.Nonce, CodeVerifier: fuzzAuth.CodeVerifier,
			RedirectURI: fuzzAuth.RedirectURI, ReturnTo: fuzzReturnTo}
		if err := h.codec().WriteAttempt(rec, empty, att, secure); err != nil {
			t.Fatal(err)
		}
		g.attempt[i] = cookieHeader(rec)
		rec = httptest.NewRecorder()
		d := &session.Data{Sub: "fuzz-sub", Fields: []session.Field{
			{Name: "myinfo.name", Value: "TAN AH KOW"},
			{Name: "myinfo.email", Value: "tan@example.gov.sg"},
			{Name: "myinfo.is_age_above_18", Value: "true"},
		}}
		if err := h.codec().Write(rec, empty, d, secure); err != nil {
			t.Fatal(err)
		}
		g.session[i] = cookieHeader(rec)
	}
	return g
}

var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// callbackQuery logs in at the fake sgID for fuzzAuth and returns the query of the
// callback it redirects to: a real, unused code.
func (g *fuzzGateway) callbackQuery(t testing.TB) string {
	t.Helper()
	auth := fuzzAuth
	resp, err := noRedirects.Get(g.h.client.AuthURL(&auth))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("the fake sgID redirected to %q (%v), want a callback with a code", resp.Header.Get("Location"), err)
	}
	return loc.RawQuery
}

func (g *fuzzGateway) freshCode(t testing.TB) string {
	q, _ := url.ParseQuery(g.callbackQuery(t))
	return url.QueryEscape(q.Get("code"))
}

// request builds the request a fuzz input describes.
func (g *fuzzGateway) request(query, cookies string, flags byte) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
	r.URL.Path, r.URL.RawQuery = fuzzPaths[flags>>3&7], query
	r.RequestURI = r.URL.RequestURI()
	i := 0 // index of the cookies of the request's name form
	if flags&flagTLS != 0 {
		r.TLS, i = &tls.ConnectionState{}, 1
	}
	if flags&flagAttempt != 0 {
		r.Header.Add("Cookie", g.attempt[i])
	}
	if flags&flagSession != 0 {
		r.Header.Add("Cookie", g.session[i])
	}
	for line := range strings.SplitSeq(cookies, "\n") {
		if line != "" {
			r.Header.Add("Cookie", line)
		}
	}
	if flags&flagHTML != 0 {
		r.Header.Set("Accept", "text/html,application/xhtml+xml")
	} else {
		r.Header.Set("Accept", "application/json")
	}
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	return r.WithContext(ctx)
}

var panicTrace = regexp.MustCompile(`goroutine \d+|panic:|runtime error|\.go:\d+`)

// sameOriginTarget is a post-login or post-logout target: a path on this site
// that browsers cannot read as another host, and not a reserved path once the
// browser resolves its dot segments (%2e is a dot to it) and Caddy decodes it.
func sameOriginTarget(loc string) bool {
	if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`) ||
		strings.ContainsFunc(loc, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return false
	}
	p := loc
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	p = strings.NewReplacer("%2e", ".", "%2E", ".").Replace(p)
	if u, err := url.PathUnescape(p); err == nil {
		p = u
	}
	return !strings.HasPrefix(path.Clean(p)+"/", EndpointPrefix)
}

// FuzzCallback drives the handler, mostly at /.sgid/callback, with arbitrary query
// strings and cookies, optionally with the valid attempt cookie and a real code
// from the fake sgID: the string {code} in a query becomes a fresh one.
func FuzzCallback(f *testing.F) {
	g := newFuzzGateway(f)
	state := "state=" + fuzzAuth.State
	cb := pathFlags("/.sgid/callback")
	for _, s := range []struct {
		query, cookies string
		flags          byte
	}{
		{"code={code}&" + state, "", cb | flagAttempt | flagHTML},
		{"code={code}&" + state, "", cb | flagAttempt | flagTLS},
		{"code={code}&" + state + "&code={code}", "", cb | flagAttempt},
		{"code=AAAA&" + state, "", cb | flagAttempt | flagHTML},
		{"code={code}&state=other", "", cb | flagAttempt | flagHTML},
		{"error=access_denied&error_description=cancelled&" + state, "", cb | flagAttempt | flagHTML},
		{"error=server_error&" + state, "", cb | flagAttempt},
		{state, "", cb | flagAttempt},
		{"", "", cb},
		{"code=x&state=", "sgid_session_login_x=y", cb | flagHTML},
		{"code=%zz&state=%", "a=b;;c", cb},
		{"return_to=/app/page%3Fq%3D1", "", pathFlags("/.sgid/login") | flagHTML},
		{"return_to=//evil.example/", "", pathFlags("/.sgid/login") | flagHTML},
		{"return_to=/app/../.sgid/logout", "", pathFlags("/.sgid/logout")},
		{"", "", pathFlags("/.sgid/userinfo") | flagSession},
		{"q=1", "", pathFlags("/app/page") | flagSession | flagHTML},
		{"q=1", "", pathFlags("/app/page") | flagHTML | flagTLS},
	} {
		f.Add(s.query, s.cookies, s.flags)
	}
	secrets := []string{fuzzSessionSecret, g.sgid.ClientSecret()}
	authorize := g.h.client.IssuerURL() + "/oauth/authorize?"
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		_, err := w.Write([]byte("upstream"))
		return err
	})
	tokens := g.cookieTokens()
	f.Fuzz(func(t *testing.T, query, cookies string, flags byte) {
		cookies = tokens.Replace(cookies)
		if strings.Contains(query, "{code}") {
			query = strings.ReplaceAll(query, "{code}", g.freshCode(t))
		}
		r := g.request(query, cookies, flags)
		rec := httptest.NewRecorder()
		if err := g.h.ServeHTTP(rec, r, next); err != nil {
			t.Fatalf("ServeHTTP returned %v: the handler answers every request itself", err)
		}
		res := rec.Result()
		body := rec.Body.String()
		dump := fmt.Sprint(res.Header) + body
		switch {
		case res.StatusCode == http.StatusInternalServerError:
			t.Fatalf("%s?%s answered 500: %s", r.URL.Path, query, body)
		case panicTrace.MatchString(body):
			t.Fatalf("the response holds a panic trace: %s", body)
		}
		for _, s := range secrets {
			if strings.Contains(dump, s) {
				t.Fatal("the response holds a secret")
			}
		}
		if res.StatusCode >= 300 && res.StatusCode < 400 {
			loc := res.Header.Get("Location")
			if !sameOriginTarget(loc) && !strings.HasPrefix(loc, authorize) {
				t.Fatalf("%s?%s redirects to %q: neither a same-origin path outside %s nor sgID", r.URL.Path, query, loc, EndpointPrefix)
			}
			// Only the codec can make an attempt cookie, and the only one it made
			// returns to fuzzReturnTo.
			if r.URL.Path == "/.sgid/callback" && (res.StatusCode != http.StatusSeeOther || loc != fuzzReturnTo) {
				t.Fatalf("a callback answered %d to %q, want 303 to %q", res.StatusCode, loc, fuzzReturnTo)
			}
		}
		for _, line := range res.Header.Values("Set-Cookie") {
			c, err := http.ParseSetCookie(line)
			if err != nil || !c.HttpOnly || len(line) >= 4096 {
				t.Fatalf("Set-Cookie %.100q: unparsable, not HttpOnly or too long for a browser", line)
			}
		}
	})
}

// TestFuzzCorpusValidCookiesStillRead guards the committed seeds: a change to the
// cookie format or the fuzzed gateway would leave the fuzzer starting from cookies
// that no longer read. With -update-fuzz-corpus it first rewrites them.
func TestFuzzCorpusValidCookiesStillRead(t *testing.T) {
	g := newFuzzGateway(t)
	if *updateFuzzCorpus {
		state := "state=" + fuzzAuth.State
		cb := pathFlags("/.sgid/callback")
		for name, s := range map[string]struct {
			query, cookies string
			flags          byte
		}{
			"real-callback":                {g.callbackQuery(t), "{attempt}", cb | flagHTML},
			"real-callback-https-json":     {g.callbackQuery(t), "{attempt-tls}; other=1", cb | flagTLS},
			"fresh-code-callback":          {"code={code}&" + state, "", cb | flagAttempt | flagHTML},
			"fresh-code-with-session":      {state + "&code={code}", "{session}", cb | flagAttempt},
			"cancelled-at-sgid":            {"error=access_denied&error_description=User+cancelled+login&" + state, "{attempt}", cb | flagHTML},
			"both-attempt-forms":           {"code=" + g.freshCode(t) + "&" + state, "{attempt-tls}\n{attempt}", cb | flagHTML},
			"attempt-among-other-cookies":  {"code=AAAA&" + state, "theme=dark; {attempt}; {session}", cb},
			"no-attempt":                   {"code=AAAA&" + state, "sgid_session_login_AAAAAAAAAAAA=AAAA", cb | flagHTML},
			"login-with-return-to":         {"return_to=%2Fapp%2Freports%3Fq%3D%E4%B8%AD", "", pathFlags("/.sgid/login") | flagHTML},
			"logout-with-return-to":        {"return_to=/app/", "{session}", pathFlags("/.sgid/logout") | flagHTML},
			"logout-return-to-dot-dot":     {"return_to=/app/../.sgid/logout", "{session}", pathFlags("/.sgid/logout") | flagHTML},
			"logout-return-to-dot-dot-enc": {"return_to=/app/%252e%252e/.sgid/login", "", pathFlags("/.sgid/logout")},
			"logout-return-to-fragment":    {"return_to=/app%23/../.sgid/logout", "", pathFlags("/.sgid/logout")},
			"userinfo-with-session":        {"", "{session-tls}", pathFlags("/.sgid/userinfo") | flagTLS},
			"app-with-session-and-attempt": {"a=1", "{session}; {attempt}", pathFlags("/app/page") | flagHTML},
		} {
			fuzzcorpus.Write(t, "FuzzCallback", name, s.query, s.cookies, s.flags)
		}
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzCallback", "*"))
	if len(files) == 0 {
		t.Fatal("no seeds: run go test -run TestFuzzCorpus -update-fuzz-corpus .")
	}
	for _, file := range files {
		args := fuzzcorpus.Read(t, file)
		if len(args) != 3 || len(args[2]) != 1 {
			t.Fatalf("%s: want a query, cookies and flags", file)
		}
		r := g.request("", g.cookieTokens().Replace(args[1]), args[2][0]&flagTLS) // the seed's transport picks the cookie names read
		// A seed that carries a cookie of ours carries a valid one, unless its
		// name says otherwise.
		if strings.HasPrefix(filepath.Base(file), "no-") {
			continue
		}
		if strings.Contains(args[1], "{attempt") {
			if _, err := g.h.codec().ReadAttempt(r, fuzzAuth.State); err != nil {
				t.Errorf("%s: %v: run go test -run TestFuzzCorpus -update-fuzz-corpus .", file, err)
			}
		}
		if strings.Contains(args[1], "{session") {
			if _, err := g.h.codec().Read(r); err != nil {
				t.Errorf("%s: %v: run go test -run TestFuzzCorpus -update-fuzz-corpus .", file, err)
			}
		}
	}
}
