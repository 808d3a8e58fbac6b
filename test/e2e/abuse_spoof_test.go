package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/fcgi"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// A spoof is one header line a client sends to pass itself off as someone: a
// name the gateway owns, spelled as some upstream may read it.
type spoof struct {
	kind, name, value string // kind: case, duplicate, underscore or dot
}

// spoofMatrix spells each kind of name the gateway owns (its own headers, a
// forwarded field's default name, an X-Sgid- name it does not forward, a
// configured custom name) in every case, twice with different values, and with
// '_' or '.' for '-', as CGI, PHP and FastCGI fold them.
func spoofMatrix() []spoof {
	var out []spoof
	seen := map[string]bool{}
	add := func(kind, name string) {
		if kind != "duplicate" && seen[name] {
			return
		}
		seen[name] = true
		out = append(out, spoof{kind, name, fmt.Sprintf("spoofed-%d", len(out)+1)})
	}
	for _, base := range []string{"X-Sgid-Sub", "X-Sgid-Assertion", "X-Sgid-Myinfo-Name", "X-Sgid-Myinfo-Email", "X-Email"} {
		for _, n := range []string{base, strings.ToLower(base), strings.ToUpper(base), alternateCase(base)} {
			add("case", n)
		}
		add("duplicate", base)
		for sep, kind := range map[string]string{"_": "underscore", ".": "dot"} {
			all := strings.ReplaceAll(base, "-", sep)
			first := strings.Replace(base, "-", sep, 1)
			last := base[:strings.LastIndex(base, "-")] + sep + base[strings.LastIndex(base, "-")+1:]
			for _, n := range []string{all, strings.ToLower(all), strings.ToUpper(all), first, strings.ToLower(last)} {
				add(kind, n)
			}
		}
	}
	return out
}

func alternateCase(s string) string {
	b := []byte(strings.ToLower(s))
	for i := 0; i < len(b); i += 2 {
		b[i] = strings.ToUpper(string(b[i]))[0]
	}
	return string(b)
}

// spoofRounds splits the matrix into requests in which no two underscore or
// dot spellings share a canonical name: Caddy drops an allowlisted header that
// arrives twice, so sending them together would test Caddy, not the gateway.
func spoofRounds(all []spoof) [][]spoof {
	var rounds [][]spoof
	var used []map[string]bool
	for _, s := range all {
		key := textproto.CanonicalMIMEHeaderKey(s.name)
		i := 0
		if s.kind == "underscore" || s.kind == "dot" {
			for i < len(used) && used[i][key] {
				i++
			}
		}
		if i == len(rounds) {
			rounds, used = append(rounds, nil), append(used, map[string]bool{})
		}
		rounds[i], used[i][key] = append(rounds[i], s), true
	}
	return rounds
}

// lookAlikes are names the gateway does not own: they must pass untouched.
var lookAlikes = []spoof{{"keep", "X-Sgidx-Keep", "kept-1"}, {"keep", "X-Email-Verified", "kept-2"}, {"keep", "X-Sgi-Sub", "kept-3"}}

// raw sends the lines exactly as spelled: http.Header.Add would canonicalize
// them on the client, before the server under test sees them.
func (b *browser) raw(method, rawURL, accept string, lines []spoof) (*http.Response, string) {
	b.t.Helper()
	req := b.request(method, rawURL, accept)
	for _, l := range lines {
		req.Header[l.name] = append(req.Header[l.name], l.value)
	}
	return b.send(req)
}

// cgiUpstream is a FastCGI application that reports the request's headers as
// PHP's $_SERVER holds them: HTTP_ and the name upper-cased with '-' and '.' as
// '_'. Names that fold together are listed together: that collision is what a
// client-sent X_Sgid_Sub exploits.
func cgiUpstream(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	fold := strings.NewReplacer("-", "_", ".", "_")
	go fcgi.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vars := map[string][]string{}
		for name, values := range r.Header {
			key := "HTTP_" + fold.Replace(strings.ToUpper(name))
			vars[key] = append(vars[key], values...)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(vars)
	}))
	return l.Addr().String()
}

// spoofSites is one Caddy config: the gated site (g; /cgi/* goes to a FastCGI
// app), an anonymous site, a site whose require rule the persona fails, and a
// bypass site without sgid, which shows what reaches an upstream unprotected.
type spoofSites struct {
	g                     *gateway
	anon, require, bypass string
	cgi                   string
}

func newSpoofSites(t *testing.T, serverOptions string) *spoofSites {
	srv := sgidtest.Start(t, sgidtest.Options{})
	s := &spoofSites{cgi: cgiUpstream(t)}
	cgiRoute := "route /cgi/* {\n\t\treverse_proxy " + s.cgi + " {\n\t\t\ttransport fastcgi\n\t\t}\n\t}"
	ports := freePorts(t, 3)
	s.anon, s.require, s.bypass = fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1]), fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	extra := site(s.anon, "$UPSTREAM", sgidBlock(srv, "anonymous"),
		`request_header X-Copied-Sub "{http.request.header.X-Sgid-Sub}"`,
		`request_header X-Copied-User "{http.auth.user.id}"`, cgiRoute) +
		site(s.require, "$UPSTREAM", sgidBlock(srv, "require myinfo.is_age_above_18 false")) +
		site(s.bypass, "$UPSTREAM {\n\t\theader_up X_Probe_Up probe\n\t}", cgiRoute)
	s.g = newGateway(t, gatewayOptions{sgid: srv, globalExtra: serverOptions, siteExtra: cgiRoute, extraSites: extra})
	return s
}

// cgiSaw decodes the FastCGI app's report.
func cgiSaw(t *testing.T, resp *http.Response, body string) map[string][]string {
	t.Helper()
	var vars map[string][]string
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &vars) != nil {
		t.Fatalf("not the FastCGI app's report: %d %.300s", resp.StatusCode, body)
	}
	return vars
}

// leaked lists the spoofed values in a set of headers.
func leaked(headers map[string][]string) []string {
	var out []string
	for name, values := range headers {
		for _, v := range values {
			if strings.Contains(v, "spoofed") {
				out = append(out, name+": "+v)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestSpoofMatrixNoClientIdentityHeaderReachesAnyUpstream sends every spelling
// of every owned header on every kind of request, under three server setups:
// Caddy's defaults (which drop '_' and '.' names themselves), and servers that
// let '_' or '.' names through, as a PHP deployment may need. The bypass site,
// with the same server options and no sgid, shows each spelling really reaches
// the handler in at least one setup, so the matrix tests the gateway, not Caddy.
func TestSpoofMatrixNoClientIdentityHeaderReachesAnyUpstream(t *testing.T) {
	matrix := spoofMatrix()
	delivered := map[string]bool{}
	for _, setup := range []struct{ name, options string }{
		{"caddy defaults", ""},
		{"underscore names allowed", "servers {\n\t\texpected_underscore_headers X_* X-Sgid_* X-Sgid-Myinfo_*\n\t}"},
		{"dot names allowed", "servers {\n\t\texpected_dot_headers X.* X-Sgid.* X-Sgid-Myinfo.*\n\t}"},
	} {
		t.Run(setup.name, func(t *testing.T) {
			s := newSpoofSites(t, setup.options)
			rounds := spoofRounds(matrix)
			rounds[0] = append(rounds[0], lookAlikes...)
			through, bypassSaw := s.control(t, rounds)
			for _, sp := range matrix {
				if through[sp.value] && setup.options == "" && (sp.kind == "underscore" || sp.kind == "dot") {
					t.Errorf("with Caddy's defaults %s reached an upstream: Caddy 2.11 drops such names", sp.name)
				}
				delivered[sp.value] = delivered[sp.value] || through[sp.value]
			}
			b, sub, email := s.authenticated(t, rounds, bypassSaw)
			s.anonymous(t, rounds)
			s.answeredByTheGateway(t, rounds, b, sub, email)
		})
	}
	for _, sp := range matrix {
		if !delivered[sp.value] {
			t.Errorf("%s (%s) reached no bypass upstream in any setup: Caddy dropped it, so the gateway was never tested on it", sp.name, sp.kind)
		}
	}
}

// control sends each round to the bypass site: the spoofed values that reach
// its upstream, and what it saw of each round. Its proxy adds X_Probe_Up with
// header_up: underscore names pass a reverse_proxy when nothing strips them.
func (s *spoofSites) control(t *testing.T, rounds [][]spoof) (map[string]bool, []seen) {
	through := map[string]bool{}
	var saws []seen
	for _, round := range rounds {
		resp, body := s.g.newBrowser().raw(http.MethodGet, s.bypass+"/page", "text/html", round)
		saw := upstreamSaw(t, resp, body)
		saws = append(saws, saw)
		for _, v := range leaked(saw.Headers) {
			through[v[strings.Index(v, ": ")+2:]] = true
		}
		if saw.header("X_Probe_Up") != "probe" {
			t.Errorf("header_up X_Probe_Up did not reach the upstream")
		}
		resp, body = s.g.newBrowser().raw(http.MethodGet, s.bypass+"/cgi/page", "text/html", round)
		if vars := cgiSaw(t, resp, body); len(leaked(vars)) == 0 && len(leaked(saw.Headers)) > 0 {
			t.Errorf("spoofs reached the bypass upstream but not the FastCGI app behind it: %v", vars)
		}
	}
	return through, saws
}

// authenticated logs in and sends each round with the session, to the plain
// upstream and to the FastCGI app. Names the gateway does not own must arrive
// as they do without sgid.
func (s *spoofSites) authenticated(t *testing.T, rounds [][]spoof, bypassSaw []seen) (b *browser, sub, email string) {
	g := s.g
	b = g.newBrowser()
	first := g.login(b, "/")
	sub, email = first.header("X-Sgid-Sub"), first.header("X-Email")
	if sub == "" || email == "" {
		t.Fatalf("the login gave sub %q, email %q", sub, email)
	}
	for i, round := range rounds {
		resp, body := b.raw(http.MethodGet, g.base+"/page", "text/html", round)
		saw := upstreamSaw(t, resp, body)
		if l := leaked(saw.Headers); len(l) > 0 {
			t.Errorf("authenticated: spoofed headers reached the upstream: %v", l)
		}
		if saw.header("X-Sgid-Sub") != sub || saw.header("X-Email") != email || !strings.HasPrefix(saw.header("X-Sgid-Assertion"), "ey") {
			t.Errorf("authenticated: identity headers changed: sub %q, email %q, assertion %.20q",
				saw.header("X-Sgid-Sub"), saw.header("X-Email"), saw.header("X-Sgid-Assertion"))
		}
		for _, k := range lookAlikes {
			if bypassSaw[i].header(k.name) != saw.header(k.name) {
				t.Errorf("%s, not the gateway's, reached the upstream as %q without sgid and %q with it",
					k.name, bypassSaw[i].header(k.name), saw.header(k.name))
			}
		}
		resp, body = b.raw(http.MethodGet, g.base+"/cgi/page", "text/html", round)
		vars := cgiSaw(t, resp, body)
		if l := leaked(vars); len(l) > 0 {
			t.Errorf("authenticated: the FastCGI app reads spoofed values: %v", l)
		}
		if !slices.Equal(vars["HTTP_X_SGID_SUB"], []string{sub}) || !slices.Equal(vars["HTTP_X_EMAIL"], []string{email}) || vars["HTTP_X_SGID_MYINFO_EMAIL"] != nil {
			t.Errorf("authenticated: the FastCGI app reads HTTP_X_SGID_SUB %q, HTTP_X_EMAIL %q, HTTP_X_SGID_MYINFO_EMAIL %q",
				vars["HTTP_X_SGID_SUB"], vars["HTTP_X_EMAIL"], vars["HTTP_X_SGID_MYINFO_EMAIL"])
		}
	}
	return b, sub, email
}

// anonymous sends each round to the anonymous site: no identity at all, and
// none for a later directive to copy from a placeholder.
func (s *spoofSites) anonymous(t *testing.T, rounds [][]spoof) {
	for _, round := range rounds {
		anon := s.g.newBrowser()
		resp, body := anon.raw(http.MethodGet, s.anon+"/page", "text/html", round)
		saw := upstreamSaw(t, resp, body)
		copiedUser := saw.header("X-Copied-User") // an unset placeholder stays as written
		if l := leaked(saw.Headers); len(l) > 0 || saw.hasHeader("X-Sgid-Sub") || saw.header("X-Copied-Sub") != "" ||
			(copiedUser != "" && copiedUser != "{http.auth.user.id}") {
			t.Errorf("anonymous: upstream saw spoofs %v, X-Sgid-Sub %v, copied sub %q, user %q",
				l, saw.hasHeader("X-Sgid-Sub"), saw.header("X-Copied-Sub"), copiedUser)
		}
		resp, body = anon.raw(http.MethodGet, s.anon+"/cgi/page", "text/html", round)
		for name := range cgiSaw(t, resp, body) {
			if strings.HasPrefix(name, "HTTP_X_SGID_") || name == "HTTP_X_EMAIL" {
				t.Errorf("anonymous: the FastCGI app reads %s", name)
			}
		}
	}
}

// answeredByTheGateway sends each round on every request the gateway answers
// itself (401, 302, reserved paths, 403, 404, callback errors): none reaches
// the upstream, none echoes a spoofed value, and neither userinfo nor require
// reads identity from headers.
func (s *spoofSites) answeredByTheGateway(t *testing.T, rounds [][]spoof, b *browser, sub, email string) {
	g := s.g
	pending := g.newBrowser()
	cb := mustURL(t, g.callbackURL(pending, "/wanted"))
	q := cb.Query()
	q.Del("code")
	noCode := g.base + "/.sgid/callback?" + q.Encode()
	denied := g.newBrowser()
	if resp, _ := denied.get(s.require + "/"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the require site let the persona in: %d", resp.StatusCode)
	}
	none := g.newBrowser().noFollow()
	adult := []spoof{{"require", "X-Sgid-Myinfo-Is-Age-Above-18", "false"}, {"require", "X_Sgid_Myinfo_Is_Age_Above_18", "false"}}
	const page, api = "text/html", "application/json"
	for _, c := range []struct {
		name       string
		b          *browser
		method     string
		url        string
		accept     string
		want       int
		moreSpoofs []spoof
	}{
		{"401 JSON", none, http.MethodGet, g.base + "/page", api, http.StatusUnauthorized, nil},
		{"401 JSON to a POST", none, http.MethodPost, g.base + "/page", page, http.StatusUnauthorized, nil},
		{"302 to sgID", none, http.MethodGet, g.base + "/page", page, http.StatusFound, nil},
		{"login start", none, http.MethodGet, g.base + "/.sgid/login", page, http.StatusFound, nil},
		{"userinfo without a session", none, http.MethodGet, g.base + "/.sgid/userinfo", api, http.StatusUnauthorized, nil},
		{"userinfo with a session", b.noFollow(), http.MethodGet, g.base + "/.sgid/userinfo", api, http.StatusOK, nil},
		{"jwks.json", none, http.MethodGet, g.base + "/.sgid/jwks.json", api, http.StatusOK, nil},
		{"logout", none, http.MethodGet, g.base + "/.sgid/logout", api, http.StatusNoContent, nil},
		{"404 unknown reserved path", none, http.MethodGet, g.base + "/.sgid/nothing", page, http.StatusNotFound, nil},
		{"callback with a forged state", none, http.MethodGet, g.base + "/.sgid/callback?state=forged&code=forged", page, http.StatusBadRequest, nil},
		{"callback without a code", pending.noFollow(), http.MethodGet, noCode, page, http.StatusBadRequest, nil},
		{"403 require, page", denied.noFollow(), http.MethodGet, s.require + "/", page, http.StatusForbidden, adult},
		{"403 require, API", denied.noFollow(), http.MethodGet, s.require + "/api", api, http.StatusForbidden, adult},
	} {
		for _, round := range rounds {
			resp, body := c.b.raw(c.method, c.url, c.accept, slices.Concat(round, c.moreSpoofs))
			if resp.StatusCode != c.want {
				t.Errorf("%s: %d, want %d; %.200s", c.name, resp.StatusCode, c.want, body)
			}
			if strings.Contains(body, `"headers"`) {
				t.Errorf("%s: the request reached the upstream", c.name)
			}
			if l := leaked(resp.Header); len(l) > 0 || strings.Contains(body, "spoofed") {
				t.Errorf("%s: the response echoes a spoofed header: %v %.200s", c.name, l, body)
			}
			var out map[string]string
			if c.name == "userinfo with a session" && (json.Unmarshal([]byte(body), &out) != nil || out["sub"] != sub || out["myinfo.email"] != email) {
				t.Errorf("userinfo: %.200s, want sub %s", body, sub)
			}
		}
	}
}
