package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// legacyApp stands for an application that knows nothing about sgID or OIDC: it
// reads the identity headers the gateway adds, and checks the signed assertion
// the way an upstream that does not trust its network path would.
type legacyApp struct {
	issuers []string // the gateway origins whose assertions the app accepts; the first is linked to
	jwksURL string   // where the gateway publishes its assertion keys
	asked   []string // the fields the gateway asks sgID for (shown, not used to decide anything)
	client  *http.Client

	mu       sync.Mutex
	keys     jose.JSONWebKeySet
	fetched  time.Time
	fetchErr error // of the last fetch
}

// refetchAfter stops a stream of assertions with unknown key IDs from turning
// into a stream of requests for keys.
const refetchAfter = 5 * time.Second

// assertionLeeway tolerates clock differences between gateway and app; both run
// in this process, so it only matters for the habit it shows.
const assertionLeeway = 30 * time.Second

func newLegacyApp(issuers []string, jwksURL string, asked []string) *legacyApp {
	return &legacyApp{
		issuers: issuers,
		jwksURL: jwksURL,
		asked:   asked,
		client:  &http.Client{Timeout: 5 * time.Second},
	}
}

// headerRow is one identity header as received and as decoded.
type headerRow struct {
	Name, Raw, Value string
	Encoded          bool // Raw held percent-escapes
	Invalid          bool // Raw was not valid percent-encoding; Value is Raw
}

type pageData struct {
	Path      string
	Gateway   string // the gateway's origin, where logging in and out happen
	Sub       string
	Name      string
	Headers   []headerRow
	Asked     []string
	Verified  bool
	Reason    string
	Claims    jwt.Claims
	ExpiresIn time.Duration
	Assertion string
	Sent      []sentField // what the form below sent, on a POST
	Token     string      // the form's CSRF token: the app's own, as a legacy app has one
}

// sentField is one field the demo's form sent.
type sentField struct{ Name, Value string }

// formToken is the demo form's CSRF token for a user: an app's own, which the
// gateway knows nothing of. A form the gateway kept across a login comes back
// with it, and the app accepts it.
func formToken(sub string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte("demo csrf "+sub)))[:32]
}

func (a *legacyApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/favicon.ico" {
		http.NotFound(w, r)
		return
	}
	d := pageData{Path: r.URL.RequestURI(), Asked: a.asked}
	if len(a.issuers) > 0 {
		d.Gateway = a.issuers[0]
	}
	for name, values := range r.Header {
		if !strings.HasPrefix(name, "X-Sgid-") || name == "X-Sgid-Assertion" {
			continue
		}
		for _, raw := range values {
			row := headerRow{Name: name, Raw: raw, Value: raw}
			if v, err := url.PathUnescape(raw); err != nil {
				row.Invalid = true
			} else {
				row.Value, row.Encoded = v, v != raw
			}
			d.Headers = append(d.Headers, row)
		}
	}
	sort.SliceStable(d.Headers, func(i, j int) bool { return d.Headers[i].Name < d.Headers[j].Name })
	for _, h := range d.Headers {
		switch h.Name {
		case "X-Sgid-Sub":
			d.Sub = h.Value
		case "X-Sgid-Myinfo-Name":
			d.Name = h.Value
		}
	}
	d.Token = formToken(d.Sub)
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("csrf_token") != d.Token {
			http.Error(w, "the form's CSRF token does not match", http.StatusForbidden)
			return
		}
		for _, name := range []string{"subject", "message"} {
			d.Sent = append(d.Sent, sentField{name, r.PostForm.Get(name)})
		}
	}
	d.Assertion = r.Header.Get("X-Sgid-Assertion")
	now := time.Now()
	claims, err := a.verify(d.Assertion, now)
	if err != nil {
		d.Reason = err.Error()
	} else {
		d.Verified, d.Claims = true, *claims
		d.ExpiresIn = claims.Expiry.Time().Sub(now).Round(time.Second)
	}

	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	if err := appPage.Execute(w, d); err != nil {
		// Headers are gone; nothing better to do than stop writing.
		return
	}
}

// verify checks an X-Sgid-Assertion value: ES256 signature by a key the gateway
// publishes, iss one of the gateway's origins, aud that origin's host[:port], exp in the
// future. It says why when it does not verify.
func (a *legacyApp) verify(raw string, now time.Time) (*jwt.Claims, error) {
	if raw == "" {
		return nil, errors.New("no X-Sgid-Assertion header: this request did not come through the gateway")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("not an ES256 JWT: %v", err)
	}
	kid := tok.Headers[0].KeyID
	key, err := a.key(kid)
	if err != nil {
		return nil, err
	}
	var c jwt.Claims
	if err := tok.Claims(key, &c); err != nil {
		return nil, fmt.Errorf("signature does not verify with the gateway's key %q", kid)
	}
	if !slices.Contains(a.issuers, c.Issuer) {
		return nil, fmt.Errorf("iss %q is not the gateway (%s)", c.Issuer, strings.Join(a.issuers, " or "))
	}
	u, err := url.Parse(c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("iss %q: %v", c.Issuer, err)
	}
	// The gateway's default aud is its site's host, with the port unless it
	// is the scheme's default, as in its iss.
	if !c.Audience.Contains(u.Host) {
		return nil, fmt.Errorf("aud %q does not name this site (%s)", []string(c.Audience), u.Host)
	}
	if c.Expiry == nil {
		return nil, errors.New("no exp: an assertion must expire")
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Time: now}, assertionLeeway); err != nil {
		return nil, fmt.Errorf("times: %v", err)
	}
	return &c, nil
}

// key returns the gateway's public key with this kid, fetching the key set again
// when the kid is new (the gateway has rotated keys) and the last fetch is not
// too recent.
func (a *legacyApp) key(kid string) (*jose.JSONWebKey, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ks := a.keys.Key(kid); len(ks) > 0 {
		return &ks[0], nil
	}
	if time.Since(a.fetched) >= refetchAfter {
		a.fetched = time.Now()
		var set jose.JSONWebKeySet
		if set, a.fetchErr = a.fetchKeys(); a.fetchErr == nil {
			a.keys = set
		}
	}
	if a.fetchErr != nil {
		return nil, fmt.Errorf("fetching the gateway's keys: %v", a.fetchErr)
	}
	if ks := a.keys.Key(kid); len(ks) > 0 {
		return &ks[0], nil
	}
	return nil, fmt.Errorf("signed with key %q, which %s does not publish", kid, a.jwksURL)
}

func (a *legacyApp) fetchKeys() (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	resp, err := a.client.Get(a.jwksURL)
	if err != nil {
		return set, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return set, fmt.Errorf("%s: status %d", a.jwksURL, resp.StatusCode)
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&set); err != nil {
		return set, fmt.Errorf("%s: %v", a.jwksURL, err)
	}
	return set, nil
}

var appPage = template.Must(template.New("app").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Legacy app</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.6rem; } .note { color: #555; font-size: .9rem; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; vertical-align: top; padding: .3rem .5rem; border-bottom: 1px solid #ddd; }
td.value { white-space: pre-wrap; } code { font-size: .85rem; } .raw { color: #777; font-size: .8rem; }
.ok { color: #0a6b2d; font-weight: 600; } .bad { color: #b00020; font-weight: 600; }
details code { word-break: break-all; }
</style></head>
<body>
{{if .Verified}}<h1>{{if .Name}}Hello, {{.Name}}{{else}}Hello{{end}}</h1>
<p class="note">This page is a plain <code>net/http</code> app that knows nothing about sgID. The
gateway in front of it logged you in and added the headers below to the request for
<code>{{.Path}}</code>.</p>
{{else}}<h1>This request did not come through the gateway</h1>
<p class="bad" id="not-logged-in">Nobody is logged in here: the app has no assertion from the gateway
that verifies, so it treats the identity headers below as forged, whatever they say.</p>
<p class="note">This page is a plain <code>net/http</code> app that knows nothing about sgID, reached
without the gateway in front of it. Log in through the gateway:
<a href="{{.Gateway}}/">{{.Gateway}}/</a>.</p>
{{end}}

<h2>Assertion</h2>
{{if .Verified}}<p class="ok" id="assertion">assertion verified</p>
<p class="note">ES256 signature by the gateway's key (<code>/.sgid/jwks.json</code>),
iss <code>{{.Claims.Issuer}}</code>, aud <code>{{range .Claims.Audience}}{{.}}{{end}}</code>,
expires in {{.ExpiresIn}}.</p>
{{else}}<p class="bad" id="assertion">assertion not verified: {{.Reason}}</p>
<p class="note">An app that acts on identity must not trust these headers without a verified assertion
(or a network path only the gateway can use).</p>{{end}}

<h2>Identity headers received</h2>
{{if .Headers}}<table>
<tr><th>header</th><th>value (percent-decoded)</th></tr>
{{range .Headers}}<tr><td><code>{{.Name}}</code></td><td class="value">{{.Value}}{{if .Encoded}}<br><span class="raw">as sent: {{.Raw}}</span>{{end}}{{if .Invalid}}<br><span class="bad">(not valid percent-encoding)</span>{{end}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}

<h2>The fields asked for</h2>
<p>The gateway's Caddyfile asks sgID for:{{range .Asked}} <code>{{.}}</code>{{end}}.
sgID sends <code>NA</code> for a field it has no data on.</p>

<h2>A form</h2>
{{if .Sent}}<div id="sent"><p class="ok">The app received your form:</p><table>
{{range .Sent}}<tr><td><code>{{.Name}}</code></td><td class="value">{{.Value}}</td></tr>
{{end}}</table></div>{{end}}
<p class="note">Fill it in, wait past the gateway's idle timeout, then send it: the gateway keeps it
across the login and offers it back.</p>
<form method="post" action="/feedback"><input type="hidden" name="csrf_token" value="{{.Token}}">
<p><label>Subject <input name="subject" size="40"></label></p>
<p><label>Message<br><textarea name="message" rows="4" cols="60"></textarea></label></p>
<p><button type="submit">Send</button></p></form>

{{if .Assertion}}<details><summary>The raw assertion</summary><p><code>{{.Assertion}}</code></p></details>{{end}}

<p><a href="{{.Gateway}}/.sgid/logout">Log out</a> (at the gateway)</p>
</body></html>
`))
