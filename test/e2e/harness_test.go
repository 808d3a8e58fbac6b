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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// seen is what the upstream received.
type seen struct {
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
}

// gateway is one Caddy config under test, the fake sgID behind it and the
// upstream in front of which it stands.
type gateway struct {
	t        *testing.T
	sgid     *sgidtest.Server
	upstream *httptest.Server
	tester   *caddytest.Tester
	base     string // http://127.0.0.1:<port>
	storage  string
}

type gatewayOptions struct {
	directives   string // extra lines inside the sgid block
	scope        string // default: openid myinfo.name myinfo.email myinfo.is_age_above_18
	siteExtra    string // extra site-level directives, before reverse_proxy
	globalExtra  string // extra global options
	storage      string // storage dir; default a new temp dir
	sgid         *sgidtest.Server
	httpPort     int
	noSgIDBlock  bool   // the gateway's site is a bare reverse_proxy
	sgidBlockRaw string // replaces the generated sgid block
	https        bool   // serve the site over HTTPS with Caddy's internal CA
	extraSites   string // more site blocks, after the gateway's; $UPSTREAM is the echo upstream's URL
}

func newGateway(t *testing.T, o gatewayOptions) *gateway {
	t.Helper()
	adminPortOnce.Do(func() { adminPort = freePort(t) })
	g := &gateway{t: t, sgid: o.sgid, storage: o.storage}
	if g.sgid == nil {
		srv := sgidtest.Start(t, sgidtest.Options{})
		g.sgid = srv
	}
	g.upstream = echoUpstream(t)
	if g.storage == "" {
		g.storage = tempDir(t)
	}
	port := o.httpPort
	if port == 0 {
		port = freePort(t)
	}
	httpsPort := freePort(t)
	g.base = fmt.Sprintf("http://127.0.0.1:%d", port)
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
%s {
	%s
	%s
	%s
	reverse_proxy %s
}
%s
`, adminPort, port, httpsPort, g.storage, o.globalExtra, g.base, tlsLine, block, o.siteExtra, g.upstream.URL,
		strings.ReplaceAll(o.extraSites, "$UPSTREAM", g.upstream.URL))
	g.tester = caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{
		AdminPort: adminPort, LoadRequestTimeout: 10 * time.Second, TestRequestTimeout: 20 * time.Second,
	})
	g.tester.InitServer(cfg, "caddyfile")
	if o.https {
		g.waitForCertificate()
	}
	return g
}

// echoUpstream is the app behind a gateway: it answers with what reached it
// (seen), as JSON.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{Path: r.URL.RequestURI(), Headers: r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// defaultScope is the scope of the harness's sgid blocks.
const defaultScope = "openid myinfo.name myinfo.email myinfo.is_age_above_18"

// sgidBlock is the harness's sgid block against srv, with the credentials
// newGateway puts in the environment, the default scope and directives added:
// the one template for every site of a test config.
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
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(body)
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

// login logs b in through the whole redirect chain, landing on path.
func (g *gateway) login(b *browser, path string) seen {
	g.t.Helper()
	resp, body := b.get(g.base + path)
	return upstreamSaw(g.t, resp, body)
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

func mustURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitForCertificate waits until Caddy's internal CA has issued the site's
// certificate, which happens in the background after a config loads.
func (g *gateway) waitForCertificate() {
	g.t.Helper()
	addr := mustURL(g.t, g.base).Host
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no certificate for %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
