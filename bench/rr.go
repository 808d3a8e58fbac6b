package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sgidproxy/caddy-sgid/session"
)

// rrFigures is one N of the distinct-session mode: alternating rounds of the
// bare and the sgid site, each presenting the same N cookies round robin.
type rrFigures struct {
	n           int
	bare, gated []wrkResult
}

// parseCounts reads "1,1000,100000".
func parseCounts(v string) ([]int, error) {
	if v == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-sessions-rr: %q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// warmCookies mints n sessions for the sgid site and sends each one request,
// as a browser's first request after its login: the Cookie headers written
// to the file are what a browser would send next (with the assertion the
// gateway carries in the cookie, if it rewrote it). Every answer must be 200
// with the identity.
func warmCookies(dir string, codec *session.Codec, siteURL string, n int) (string, error) {
	lines, err := warmLines(codec, siteURL, 0, n, &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}, false)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("cookies-%d.txt", n))
	return path, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// warmLines is warmCookies' Cookie headers for the n sessions from the
// from-th on, through c; secure mints the HTTPS form of the cookies.
func warmLines(codec *session.Codec, siteURL string, from, n int, c *http.Client, secure bool) ([]string, error) {
	lines := make([]string, n)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				line, err := warmOne(c, codec, siteURL, from+i, secure)
				if err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				lines[i] = line
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("%d of %d first requests failed; first: %w", failed.Load(), n, firstErr)
	}
	return lines, nil
}

func warmOne(c *http.Client, codec *session.Codec, siteURL string, i int, secure bool) (string, error) {
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest(http.MethodGet, siteURL+"/", nil)
	d := &session.Data{Sub: fmt.Sprintf("bench-rr-%07d", i), Fields: []session.Field{
		{Name: "myinfo.name", Value: fmt.Sprintf("USER %d", i)},
		{Name: "myinfo.email", Value: fmt.Sprintf("user%d@example.com", i)},
	}}
	if err := codec.Write(rec, req, d, secure); err != nil {
		return "", err
	}
	jar := map[string]string{}
	var order []string
	for _, ck := range rec.Result().Cookies() {
		req.AddCookie(ck)
		jar[ck.Name] = ck.Value
		order = append(order, ck.Name)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(identityHeader) != "1" {
		return "", fmt.Errorf("session %d: status %d, identity %q", i, resp.StatusCode, resp.Header.Get(identityHeader))
	}
	for _, ck := range resp.Cookies() {
		if _, ok := jar[ck.Name]; !ok {
			order = append(order, ck.Name)
		}
		jar[ck.Name] = ck.Value
		if ck.MaxAge < 0 {
			delete(jar, ck.Name)
		}
	}
	var parts []string
	for _, name := range order {
		if v, ok := jar[name]; ok {
			parts = append(parts, name+"="+v)
		}
	}
	return strings.Join(parts, "; "), nil
}

// printRR prints a distinct-session table under title.
func printRR(w io.Writer, title string, rr []rrFigures) {
	if len(rr) == 0 {
		return
	}
	rps := func(r wrkResult) float64 { return r.rps }
	cpu := func(r wrkResult) float64 { return us(r.cpuPerReq) }
	fmt.Fprintf(w, "\n%s, distinct sessions round robin (the same N cookies to both sites; medians, and the median of each round's ratio or difference):\n\n", title)
	fmt.Fprintf(w, "| N distinct sessions | bare req/s | sgid req/s | ratio | Caddy CPU µs/req bare / sgid | difference |\n|---|---|---|---|---|---|\n")
	for _, f := range rr {
		ratio := pairedOf(f.gated, f.bare, rps, func(g, b float64) float64 { return g / b })
		diff := pairedOf(f.gated, f.bare, cpu, func(g, b float64) float64 { return g - b })
		fmt.Fprintf(w, "| %d | %.0f | %.0f | %.2fx | %.1f / %.1f | %+.1f |\n", f.n, medianOf(f.bare, rps), medianOf(f.gated, rps), ratio, medianOf(f.bare, cpu), medianOf(f.gated, cpu), diff)
	}
}
