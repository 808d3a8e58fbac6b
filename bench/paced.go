package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pacedRun is one paced load of one Caddy: requests sent at a fixed rate,
// not as fast as the Caddy answers, with that Caddy's CPU over it.
type pacedRun struct {
	requests, bad int
	cpuPerReq     time.Duration
}

// paced sends rate requests a second to side's Caddy for d, from conns
// keep-alive connections, each request with the next of cookies as its
// Cookie header (round robin) and checks every answer against side.want. A request the Caddy is
// late answering delays only its own connection's next one, which then goes
// at once: the schedule is the rate, whatever the answers take.
func paced(side pairSide, cookies []string, rate, conns int, d time.Duration) (pacedRun, error) {
	pid, url, want := side.pid, side.url+"/", side.want
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	interval := time.Duration(conns) * time.Second / time.Duration(rate)
	var next, sent, bad atomic.Int64
	var firstErr error
	var once sync.Once
	before, err := cpuTime(pid)
	if err != nil {
		return pacedRun{}, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			at := start.Add(interval * time.Duration(c) / time.Duration(conns))
			for ; at.Sub(start) < d; at = at.Add(interval) {
				time.Sleep(time.Until(at))
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Host = side.host
				req.Header.Set("Cookie", cookies[int(next.Add(1)-1)%len(cookies)])
				resp, err := client.Do(req)
				sent.Add(1)
				if err != nil {
					bad.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want.status || (want.header != "" && resp.Header.Get(want.header) != want.value) {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	after, err := cpuTime(pid)
	if err != nil {
		return pacedRun{}, err
	}
	r := pacedRun{requests: int(sent.Load()), bad: int(bad.Load())}
	if r.requests > 0 {
		r.cpuPerReq = (after - before) / time.Duration(r.requests)
	}
	if r.bad > 0 {
		return r, fmt.Errorf("paced load of %s: %d of %d answers wrong; first error: %v", url, r.bad, r.requests, firstErr)
	}
	return r, nil
}

// cookieLines reads a cookie file (one Cookie header value per line), or
// returns the one cookie.
func cookieLines(file, cookie string) ([]string, error) {
	if file == "" {
		return []string{cookie}, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var lines []string
	for l := range strings.Lines(string(b)) {
		if l = strings.TrimRight(l, "\r\n"); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// pacedPair loads the bare-only and the sgid-only Caddy at once, both at
// the same fixed rate (-paced-rate), for b.rounds rounds: the same seconds
// on the same core, as atOnce, but at equal rates below what either serves
// flat out, so that what a process pays per wakeup rather than per request
// is spread over as many requests in each. With -profile, the first round at
// each point is profiled, both Caddies.
func (b *bench) pacedPair(f *memFigures, i int, sides [2]pairSide, cookies []string) error {
	if b.pacedRate == 0 {
		return nil
	}
	conns := max(b.load.conns/2, 1)
	for round := range b.rounds {
		r, err := bothAtOnce(b, sides, round == 0, "paced", i, func(side pairSide) (pacedRun, error) {
			return paced(side, cookies, b.pacedRate, conns, b.load.duration)
		})
		if err != nil {
			return err
		}
		rb, rs := r[0], r[1]
		fmt.Fprintf(os.Stderr, "    paced, round %d: %s %d requests, %.1f µs CPU/request; %s %d requests, %.1f µs CPU/request\n",
			round+1, sides[0].name, rb.requests, us(rb.cpuPerReq), sides[1].name, rs.requests, us(rs.cpuPerReq))
		f.pacedBare[i] = append(f.pacedBare[i], rb)
		f.pacedSgid[i] = append(f.pacedSgid[i], rs)
	}
	return nil
}
