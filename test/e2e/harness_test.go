package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/sgidproxy/caddy-sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// The harness: a gateway (one Caddy config, started by newGateway), the
// Caddyfile pieces tests add to it (sgidBlock, site), the echo upstream that
// reports what reached it, and a browser. Caddy's logs, captured in files,
// are in logs_test.go; the login flow's steps in login_test.go; the session's
// cookies in session_test.go.

var (
	adminPortOnce sync.Once
	adminPort     int
)

// tempDir is a directory that outlives the test: Caddy keeps writing to its
// storage until the next test loads a new config, which t.TempDir's cleanup
// would race with. TestMain removes them all.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(scratch, "storage")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var scratch string

func TestMain(m *testing.M) {
	var err error
	scratch, err = os.MkdirTemp("", "caddy-sgid-e2e")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(scratch)
	os.Exit(code)
}

// freePort asks the OS for a free loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts is n distinct free ports: each listener is held until all are
// chosen, since one just closed may be handed out again at once (two sites
// on one port make an ambiguous Caddyfile).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// gateway is one Caddy config under test, the fake sgID behind it and the
// upstream in front of which it stands.
type gateway struct {
	t        *testing.T
	sgid     *sgidtest.Server
	upstream *httptest.Server
	tester   *caddytest.Tester
	base     string // http://127.0.0.1:<port>
	port     int    // the HTTP port
	storage  string
}

type gatewayOptions struct {
	directives   string // extra lines inside the sgid block
	scope        string // default: defaultScope
	siteExtra    string // extra site-level directives, before reverse_proxy
	globalExtra  string // extra global options
	storage      string // storage dir; default a new temp dir
	sgid         *sgidtest.Server
	httpPort     int
	noSgIDBlock  bool         // the gateway's site is a bare reverse_proxy
	sgidBlockRaw string       // replaces the generated sgid block
	https        bool         // serve the site over HTTPS with Caddy's internal CA
	extraSites   string       // more site blocks, after the gateway's; $UPSTREAM is the echo upstream's URL
	app          http.Handler // the upstream instead of the echo one
}

func newGateway(t *testing.T, o gatewayOptions) *gateway {
	t.Helper()
	adminPortOnce.Do(func() { adminPort = freePort(t) })
	g := &gateway{t: t, sgid: o.sgid, storage: o.storage, port: o.httpPort}
	if g.sgid == nil {
		g.sgid = sgidtest.Start(t, sgidtest.Options{})
	}
	if o.app != nil {
		g.upstream = httptest.NewServer(o.app)
		t.Cleanup(g.upstream.Close)
	} else {
		g.upstream = echoUpstream(t)
	}
	if g.storage == "" {
		g.storage = tempDir(t)
	}
	ports := freePorts(t, 2)
	if g.port == 0 {
		g.port = ports[0]
	}
	httpsPort := ports[1]
	if httpsPort == g.port { // a port the caller chose, which ours may repeat
		httpsPort = ports[0]
	}
	g.base = fmt.Sprintf("http://127.0.0.1:%d", g.port)
	tlsLine := ""
	if o.https {
		g.base, tlsLine = fmt.Sprintf("https://127.0.0.1:%d", httpsPort), "tls internal"
	}
	t.Setenv("SGIDTEST_CLIENT_ID", g.sgid.ClientID())
	t.Setenv("SGIDTEST_CLIENT_SECRET", g.sgid.ClientSecret())
	t.Setenv("SGIDTEST_PRIVATE_KEY", sgidtest.EncodePKCS8(g.sgid.ClientKey()))
	block := o.sgidBlockRaw
	if block == "" && !o.noSgIDBlock {
		block = sgidBlockScoped(g.sgid, o.scope, o.directives)
	}
	cfg := fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	grace_period 1ns
	skip_install_trust
	storage file_system %s
	%s
}
`, adminPort, g.port, httpsPort, g.storage, o.globalExtra) +
		site(g.base, g.upstream.URL, tlsLine, block, o.siteExtra) +
		strings.ReplaceAll(o.extraSites, "$UPSTREAM", g.upstream.URL)
	g.tester = caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{
		AdminPort: adminPort, LoadRequestTimeout: 10 * time.Second, TestRequestTimeout: 20 * time.Second,
	})
	g.tester.InitServer(cfg, "caddyfile")
	if o.https {
		waitForCertificate(t, g.base)
	}
	return g
}

// sameSite is o for the next config of g's site, as a reload loads it: the
// same port, the same fake sgID and, unless o names another, the same storage.
func (g *gateway) sameSite(o gatewayOptions) gatewayOptions {
	o.sgid, o.httpPort = g.sgid, g.port
	if o.storage == "" {
		o.storage = g.storage
	}
	return o
}

// site is a site block of a test config: the address, the lines inside it
// (empty ones left out) and, last, reverse_proxy to upstream, which may end
// in a block of its own.
func site(address, upstream string, lines ...string) string {
	var b strings.Builder
	b.WriteString(address + " {\n")
	for _, l := range lines {
		if l != "" {
			b.WriteString("\t" + l + "\n")
		}
	}
	b.WriteString("\treverse_proxy " + upstream + "\n}\n")
	return b.String()
}

// defaultScope is the scope of the harness's sgid blocks.
const defaultScope = "openid myinfo.name myinfo.email myinfo.is_age_above_18"

// sgidBlock is the harness's sgid block against srv, with the credentials
// newGateway puts in the environment, the default scope and directives added:
// the one template for every sgid handler of a test config.
func sgidBlock(srv *sgidtest.Server, directives string) string {
	return sgidBlockScoped(srv, "", directives)
}

// sgidBlockScoped is sgidBlock with a scope ("" for defaultScope).
func sgidBlockScoped(srv *sgidtest.Server, scope, directives string) string {
	if scope == "" {
		scope = defaultScope
	}
	return fmt.Sprintf(`sgid {
		client_id {env.SGIDTEST_CLIENT_ID}
		client_secret {env.SGIDTEST_CLIENT_SECRET}
		private_key {env.SGIDTEST_PRIVATE_KEY}
		hostname %s
		scope %s
		forward myinfo.name
		forward myinfo.email X-Email
		%s
	}`, srv.URL(), scope, directives)
}

// seen is what the echo upstream received: the request's path and query, its
// headers and, read once the body has been, its body and trailers.
type seen struct {
	Path     string              `json:"path"`
	Headers  map[string][]string `json:"headers"`
	Trailers map[string][]string `json:"trailers,omitempty"`
	Body     string              `json:"body,omitempty"`
}

// echoUpstream is the app behind a gateway: it answers with what reached it
// (seen), as JSON.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{Path: r.URL.RequestURI(), Headers: r.Header, Trailers: r.Trailer, Body: string(body)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (s seen) header(name string) string {
	for k, v := range s.Headers {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func (s seen) hasHeader(name string) bool {
	for k := range s.Headers {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// upstreamSaw decodes the upstream's report from a response body.
func upstreamSaw(t *testing.T, resp *http.Response, body string) seen {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 from the upstream; body: %.300s", resp.StatusCode, body)
	}
	var s seen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("not the upstream's report: %v; body: %.300s", err, body)
	}
	return s
}

// browser is a cookie-keeping client that acts like a browser navigating.
type browser struct {
	t      *testing.T
	client *http.Client
}

func (g *gateway) newBrowser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		g.t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	if strings.HasPrefix(g.base, "https:") {
		// Caddy's internal CA is not in the system pool.
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	return &browser{t: g.t, client: c}
}

// noFollow returns a copy of b that does not follow redirects (sharing cookies).
func (b *browser) noFollow() *browser {
	c := *b.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: b.t, client: &c}
}

// get navigates to rawURL with extra headers as "Name: value" strings.
func (b *browser) get(rawURL string, headers ...string) (*http.Response, string) {
	b.t.Helper()
	return b.do(http.MethodGet, rawURL, "text/html,application/xhtml+xml", headers...)
}

// api requests rawURL as a script would.
func (b *browser) api(method, rawURL string, headers ...string) (*http.Response, string) {
	b.t.Helper()
	return b.do(method, rawURL, "application/json", headers...)
}

func (b *browser) do(method, rawURL, accept string, headers ...string) (*http.Response, string) {
	b.t.Helper()
	req := b.request(method, rawURL, accept)
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return b.send(req)
}

// request is a request as b makes it, before send.
func (b *browser) request(method, rawURL, accept string) *http.Request {
	b.t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	return req
}

// send sends req and reads the whole response.
func (b *browser) send(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(body)
}

// cookies are the cookies b's jar sends to base.
func (b *browser) cookies(base string) []*http.Cookie {
	return b.client.Jar.Cookies(mustURL(b.t, base))
}

// setCookies puts cookies in b's jar for base.
func (b *browser) setCookies(base string, cs ...*http.Cookie) {
	b.client.Jar.SetCookies(mustURL(b.t, base), cs)
}

// login logs b in through the whole redirect chain, landing on path.
func (g *gateway) login(b *browser, path string) seen {
	g.t.Helper()
	resp, body := b.get(g.base + path)
	return upstreamSaw(g.t, resp, body)
}

// apiStatus is the status of an API call to /api with b's cookies and
// headers: 200 with a session, 401 without.
func (g *gateway) apiStatus(b *browser, headers ...string) int {
	g.t.Helper()
	resp, _ := b.api(http.MethodGet, g.base+"/api", headers...)
	return resp.StatusCode
}

// subOf is the sub g's client gets from the fake sgID for a persona.
func (g *gateway) subOf(personaID string) string {
	return sgidtest.PairwiseSub(g.sgid.ClientID(), personaID)
}

func mustURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// waitForCertificate waits until Caddy's internal CA has issued the
// certificate of the site at base, which happens in the background after a
// config loads.
func waitForCertificate(t *testing.T, base string) {
	t.Helper()
	addr := mustURL(t, base).Host
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
