package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	caddysgid "github.com/sgidproxy/caddy-sgid"
	"github.com/sgidproxy/caddy-sgid/session"
)

// loginHops names the requests of a login, in the order a browser makes them.
var loginHops = [...]string{"gateway redirect", "sgID authorize", "gateway callback", "first app request"}

// login runs one whole login through the gateway against the fake sgID, the
// redirect chain a browser follows, and returns the session's Cookie header,
// the whole time and the time of each request in loginHops.
func login(siteURL string) (cookie string, took time.Duration, hops []time.Duration, err error) {
	jar, _ := cookiejar.New(nil)
	var marks []time.Time
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(_ *http.Request, via []*http.Request) error {
		marks = append(marks, time.Now())
		if len(via) >= 10 {
			return errors.New("more than 10 redirects")
		}
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, siteURL+"/", nil)
	req.Header.Set("Accept", "text/html")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	end := time.Now()
	took = end.Sub(start)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(identityHeader) != "1" {
		return "", took, nil, fmt.Errorf("login ended with %d and no identity at the upstream", resp.StatusCode)
	}
	if len(marks) != len(loginHops)-1 {
		return "", took, nil, fmt.Errorf("login took %d redirects, not %d", len(marks), len(loginHops)-1)
	}
	prev := start
	for _, m := range append(marks, end) {
		hops = append(hops, m.Sub(prev))
		prev = m
	}
	u, _ := url.Parse(siteURL)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; "), took, hops, nil
}

type loginFigures struct {
	median     time.Duration
	hops       [len(loginHops)]time.Duration // the median of each
	cpuPerOp   time.Duration
	rsaDecrypt time.Duration
}

// measureLogins times n logins one after another, and takes the gateway's CPU
// over cpuN of them: /proc counts CPU in 10 ms ticks, so a per-login figure
// needs a few hundred.
func measureLogins(pid int, siteURL string, n, cpuN int, key *rsa.PrivateKey) (loginFigures, error) {
	var f loginFigures
	before, err := cpuTime(pid)
	if err != nil {
		return f, err
	}
	var times []time.Duration
	var hops [len(loginHops)][]time.Duration
	for range max(n, cpuN) {
		_, took, hs, err := login(siteURL)
		if err != nil {
			return f, err
		}
		times = append(times, took)
		for i, h := range hs {
			hops[i] = append(hops[i], h)
		}
	}
	after, err := cpuTime(pid)
	if err != nil {
		return f, err
	}
	f.median = median(times[:n])
	for i := range hops {
		f.hops[i] = median(hops[i][:n])
	}
	f.cpuPerOp = (after - before) / time.Duration(len(times))
	f.rsaDecrypt, err = rsaDecryptTime(key)
	return f, err
}

// rsaDecryptTime is the median time of one RSA-OAEP (SHA-256) decryption with
// the client's 2048-bit key: the one private-key operation a login cannot avoid.
func rsaDecryptTime(key *rsa.PrivateKey) (time.Duration, error) {
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &key.PublicKey, make([]byte, 32), nil)
	if err != nil {
		return 0, err
	}
	var times []time.Duration
	for range 51 {
		start := time.Now()
		if _, err := rsa.DecryptOAEP(sha256.New(), nil, key, ct, nil); err != nil {
			return 0, err
		}
		times = append(times, time.Since(start))
	}
	return median(times), nil
}

// minter is the gateway's own session codec for the site at siteURL, with its
// session secret and bound as its cookies are, to mint sessions without logins.
func minter(issuer, clientID, siteURL, secret string) (*session.Codec, error) {
	return session.New(session.Config{Binding: caddysgid.SessionBinding(issuer, clientID, siteURL),
		Secrets: [][]byte{[]byte(secret)}})
}

func oneSession(c *http.Client, codec *session.Codec, siteURL string, i int64) error {
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest(http.MethodGet, siteURL+"/", nil)
	d := &session.Data{Sub: fmt.Sprintf("bench-user-%07d", i), Fields: []session.Field{{Name: "myinfo.name", Value: fmt.Sprintf("USER %d", i)}}}
	if err := codec.Write(rec, req, d, false); err != nil {
		return err
	}
	for _, ck := range rec.Result().Cookies() {
		req.AddCookie(ck)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(identityHeader) != "1" {
		return fmt.Errorf("session %d: status %d, identity %q", i, resp.StatusCode, resp.Header.Get(identityHeader))
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// loadRevocations ends every session of n made-up subs at siteURL through
// the admin API, as an operator would, from four clients at once: n live
// revocations that every request to that site is checked against.
func loadRevocations(admin string, n int, siteURL string) error {
	var next atomic.Int64
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					errs <- nil
					return
				}
				body := fmt.Sprintf(`{"sub": "bench-revoked-%d", "site": %q}`, i, siteURL)
				resp, err := http.Post("http://"+admin+"/sgid/revoke", "application/json", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("POST /sgid/revoke: %s", resp.Status)
					return
				}
			}
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// revokedSession fails unless a session of sub, made before its revocation,
// gets no identity from the site.
func revokedSession(codec *session.Codec, siteURL, sub string) error {
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest(http.MethodGet, siteURL+"/", nil)
	d := &session.Data{Sub: sub, Created: time.Now().Add(-time.Minute)}
	if err := codec.Write(rec, req, d, false); err != nil {
		return err
	}
	for _, ck := range rec.Result().Cookies() {
		req.AddCookie(ck)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("a session of the revoked %s: status %d, want 401", sub, resp.StatusCode)
	}
	return nil
}

// checkRevocationCounts fails unless GET /sgid/sites shows each site with the
// number of live revocations want gives it.
func checkRevocationCounts(admin string, want map[string]int) error {
	resp, err := http.Get("http://" + admin + "/sgid/sites")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var sites []struct {
		Site        string `json:"site"`
		Revocations int    `json:"revocations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sites); err != nil {
		return fmt.Errorf("GET /sgid/sites: %w", err)
	}
	got := map[string]int{}
	for _, s := range sites {
		got[s.Site] = s.Revocations
	}
	for site, n := range want {
		if got[site] != n {
			return fmt.Errorf("%s holds %d live revocations, want %d (GET /sgid/sites: %v)", site, got[site], n, got)
		}
	}
	return nil
}
