package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// trailerSpoofs are trailers a client sends to pass itself off as someone:
// each kind of name the gateway owns, in the spellings net/http keeps apart
// and a CGI upstream folds together, and one look-alike it must let through.
var trailerSpoofs = []spoof{
	{"owned", "X-Sgid-Sub", "spoofed-t1"},
	{"owned", "X-Sgid-Assertion", "spoofed-t2"},
	{"owned", "X-Email", "spoofed-t3"},
	{"owned", "x-sgid-myinfo-name", "spoofed-t4"},
	{"owned", "X_Sgid_Sub", "spoofed-t5"},
	{"owned", "x.email", "spoofed-t6"},
	{"owned", "X-Sgid-Anything", "spoofed-t7"},
}

var trailerKeep = spoof{"keep", "X-Checksum", "kept-t"}

// lateTrailers is a request body that adds trailers to its request just
// before it ends, after the request's header went out: trailers the client
// never declared.
type lateTrailers struct {
	r    io.Reader
	req  *http.Request
	late []spoof
}

func (b *lateTrailers) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		for _, s := range b.late {
			b.req.Trailer[s.name] = []string{s.value}
		}
		b.late = nil
	}
	return n, err
}

// sendTrailers POSTs a chunked body to rawURL over proto (1 or 2) with
// trailers: declared lists them in the Trailer header, late adds them
// undeclared as the body ends. It returns what the upstream received.
func sendTrailers(t *testing.T, jar http.CookieJar, proto int, rawURL string, declared, late []spoof) seen {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(proto == 1)
	tr.Protocols.SetHTTP2(proto == 2)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second}
	req, err := http.NewRequest(http.MethodPost, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Trailer = http.Header{}
	for _, s := range declared {
		req.Trailer[s.name] = []string{s.value}
	}
	// Not a type net/http knows the length of: the body goes chunked.
	req.Body = io.NopCloser(&lateTrailers{r: strings.NewReader("payload"), req: req, late: late})
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s over HTTP/%d: %v", rawURL, proto, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != proto {
		t.Fatalf("the gateway answered over %s, want HTTP/%d", resp.Proto, proto)
	}
	var saw seen
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &saw) != nil || saw.Body != "payload" {
		t.Fatalf("POST %s over HTTP/%d: %d %.300s, want the upstream's report of the body", rawURL, proto, resp.StatusCode, body)
	}
	return saw
}

// TestTrustTrailersNeverCarryIdentity sends every owned name as a request
// trailer, declared and undeclared, over HTTP/1.1 chunked and HTTP/2, to an
// authenticated site, an anonymous one and, as the control, a site without
// sgid: there each spoof reaches the upstream (so the others test the
// gateway, not Caddy); through the gateway none does, while the look-alike
// trailer still arrives and the real identity headers are intact.
func TestTrustTrailersNeverCarryIdentity(t *testing.T) {
	srv := sgidtest.Start(t, sgidtest.Options{})
	ports := freePorts(t, 2)
	anon, bypass := fmt.Sprintf("https://127.0.0.1:%d", ports[0]), fmt.Sprintf("https://127.0.0.1:%d", ports[1])
	g := newGateway(t, gatewayOptions{
		sgid: srv, https: true,
		extraSites: site(anon, "$UPSTREAM", "tls internal", sgidBlock(srv, "anonymous")) +
			site(bypass, "$UPSTREAM", "tls internal"),
	})
	for _, base := range []string{anon, bypass} {
		waitForCertificate(t, base)
	}
	b := g.newBrowser()
	first := g.login(b, "/")
	sub, email, name := first.header("X-Sgid-Sub"), first.header("X-Email"), first.header("X-Sgid-Myinfo-Name")
	if sub == "" || email == "" || name == "" {
		t.Fatalf("the login gave sub %q, email %q, name %q", sub, email, name)
	}
	shapes := []struct {
		name           string
		declared, late []spoof
	}{
		{"declared", append(slices.Clone(trailerSpoofs), trailerKeep), nil},
		{"undeclared beside a declared one", []spoof{trailerKeep}, trailerSpoofs},
	}
	delivered := map[string]bool{}
	for _, proto := range []int{1, 2} {
		for _, shape := range shapes {
			where := fmt.Sprintf("HTTP/%d, %s", proto, shape.name)
			control := sendTrailers(t, nil, proto, bypass+"/trailers/x", shape.declared, shape.late)
			for _, v := range leaked(control.Trailers) {
				delivered[v[strings.Index(v, ": ")+2:]] = true
			}
			for _, site := range []struct {
				name, url string
				jar       http.CookieJar
			}{
				{"authenticated", g.base + "/trailers/x", b.client.Jar},
				{"anonymous", anon + "/trailers/x", nil},
			} {
				saw := sendTrailers(t, site.jar, proto, site.url, shape.declared, shape.late)
				if l := leaked(saw.Trailers); len(l) > 0 {
					t.Errorf("%s, %s: the upstream received spoofed trailers %v", where, site.name, l)
				}
				for k := range saw.Trailers {
					if slices.ContainsFunc(trailerSpoofs, func(s spoof) bool { return foldName(s.name) == foldName(k) }) {
						t.Errorf("%s, %s: the upstream was announced trailer %s", where, site.name, k)
					}
				}
				if l := leaked(saw.Headers); len(l) > 0 {
					t.Errorf("%s, %s: the upstream received spoofed headers %v", where, site.name, l)
				}
				if got := saw.Trailers[trailerKeep.name]; !slices.Equal(got, []string{trailerKeep.value}) {
					t.Errorf("%s, %s: the look-alike trailer arrived as %q; trailers %v", where, site.name, got, saw.Trailers)
				}
				s := saw
				if site.name == "anonymous" {
					if s.hasHeader("X-Sgid-Sub") || s.hasHeader("X-Sgid-Assertion") || s.hasHeader("X-Email") {
						t.Errorf("%s, anonymous: the upstream received identity headers %v", where, saw.Headers)
					}
					continue
				}
				if s.header("X-Sgid-Sub") != sub || s.header("X-Email") != email || s.header("X-Sgid-Myinfo-Name") != name ||
					!strings.HasPrefix(s.header("X-Sgid-Assertion"), "ey") {
					t.Errorf("%s, authenticated: identity headers changed: sub %q, email %q, name %q, assertion %.20q", where,
						s.header("X-Sgid-Sub"), s.header("X-Email"), s.header("X-Sgid-Myinfo-Name"), s.header("X-Sgid-Assertion"))
				}
			}
		}
	}
	for _, sp := range trailerSpoofs {
		if !delivered[sp.value] {
			t.Errorf("trailer %s reached no upstream without sgid: Caddy dropped it, so the gateway was never tested on it", sp.name)
		}
	}
}

// foldName reads a header name as a CGI upstream does.
func foldName(name string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
}

// TestTrustConnectionTokensCannotDropIdentity sends, with a valid session,
// a Connection header that names the gateway's headers in several spellings:
// reverse_proxy deletes the headers Connection names, so the upstream would
// get a sub without its fields or assertion. It must get all of them, while
// an ordinary Connection token still works (X-Hop is removed) and the rest of
// the header stays.
func TestTrustConnectionTokensCannotDropIdentity(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	b := g.newBrowser()
	first := g.login(b, "/")
	want := map[string]string{}
	for _, h := range []string{"X-Sgid-Sub", "X-Email", "X-Sgid-Myinfo-Name", "X-Sgid-Assertion"} {
		if want[h] = first.header(h); want[h] == "" {
			t.Fatalf("the login gave no %s", h)
		}
	}
	for _, conn := range [][]string{
		{"Connection: keep-alive, X-Sgid-Sub, x_sgid_assertion, X-Email"},
		{"Connection: x-sgid-assertion,X-SGID-MYINFO-NAME", "Connection: keep-alive"},
		{"Connection: X-Hop,  x-email ,x.sgid.sub", "Connection: X-Sgid-Myinfo-Name"},
	} {
		resp, body := b.api(http.MethodGet, g.base+"/page", append(conn, "X-Hop: hop")...)
		saw := upstreamSaw(t, resp, body)
		for h, v := range want {
			// The assertion is re-signed only when half its lifetime is past:
			// within this test it is the same token.
			if got := saw.header(h); got != v {
				t.Errorf("%q: the upstream got %s %.40q, want %.40q", conn, h, got, v)
			}
		}
		if strings.Contains(strings.Join(conn, ","), "X-Hop") && saw.hasHeader("X-Hop") {
			t.Errorf("%q: X-Hop reached the upstream: Connection tokens no longer work", conn)
		}
	}
}
