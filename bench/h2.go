package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// h2Load is the load generator over HTTPS with HTTP/2: conns connections,
// each carrying streams requests at a time, every request with the next of
// the cookies, round robin. A Go client rather than h2load, which sends the
// same headers with every request and so cannot present distinct sessions.
type h2Load struct {
	conns, streams int
	duration       time.Duration
}

// tlsClient trusts the bench's own Caddy on loopback, whose certificate its
// internal CA issued.
func tlsClient(h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: h2, MaxIdleConnsPerHost: 8}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (l h2Load) run(pid int, url string, want check, cookies []string) (wrkResult, error) {
	var ok, bad atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var once sync.Once
	before, err := cpuTime(pid)
	if err != nil {
		return wrkResult{}, err
	}
	start := time.Now()
	deadline := start.Add(l.duration)
	var wg sync.WaitGroup
	for c := range l.conns {
		client := tlsClient(true) // one Transport, so one HTTP/2 connection, per conn
		defer client.Transport.(*http.Transport).CloseIdleConnections()
		for s := range l.streams {
			wg.Go(func() {
				var mine []time.Duration
				i := (c*l.streams + s) * len(cookies) / (l.conns * l.streams)
				for time.Now().Before(deadline) {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header.Set("Cookie", cookies[i%len(cookies)])
					i++
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						once.Do(func() { firstErr = err })
						bad.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mine = append(mine, time.Since(t0))
					if resp.ProtoMajor == 2 && resp.StatusCode == want.status && (want.header == "" || (resp.Header.Get(want.header) != "" && (want.value == "" || resp.Header.Get(want.header) == want.value))) {
						ok.Add(1)
					} else {
						bad.Add(1)
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, err := cpuTime(pid)
	if err != nil {
		return wrkResult{}, err
	}
	if firstErr != nil {
		return wrkResult{}, fmt.Errorf("HTTP/2 load: %w", firstErr)
	}
	r := wrkResult{requests: len(lat), ok: int(ok.Load()), bad: int(bad.Load())}
	r.rps = float64(r.requests) / elapsed.Seconds()
	if r.requests > 0 {
		slices.Sort(lat)
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
		r.cpuPerReq = (after - before) / time.Duration(r.requests)
	}
	return r, nil
}
