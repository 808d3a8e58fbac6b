package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// check is what every response of a run must be; wrk's Lua hook counts the
// responses that are not, so a run that measured redirects or errors instead of
// proxied requests says so.
type check struct {
	status int
	header string // a response header that must be present; "" for none
	value  string // the value header must have; "" for any
}

// The Lua script counts good and bad responses per thread and prints the sums.
const checkScript = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  local v = headers[%q]
  if status == %d and (%q == "" or (v ~= nil and (%q == "" or v == %q))) then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
  io.write(string.format("CHECK ok=%%d bad=%%d\n", o, b))
end
`

// wrkResult is one wrk run against one Caddy, with the Caddy's CPU over it.
type wrkResult struct {
	requests  int
	rps       float64
	p50, p99  time.Duration
	ok, bad   int
	cpuPerReq time.Duration
}

// report prints the run on stderr, so each round's spread is visible next to the
// medians in the table.
func (r wrkResult) report(name string) {
	fmt.Fprintf(os.Stderr, "%s: %.0f req/s, %.1f µs CPU/request, p50 %v\n", name, r.rps, us(r.cpuPerReq), r.p50)
}

type loadRun struct {
	wrk      string
	dir      string
	threads  int
	conns    int
	duration time.Duration
}

// cookieScript, added to checkScript, sends each request with the next of
// the cookies in a file, one Cookie header per line, round robin: each
// thread starts at its own place in the list.
const cookieScript = `
local cookies = {}
local next_cookie = 1
local base_init = init
function init(args)
  base_init(args)
  for line in io.lines(%q) do cookies[#cookies + 1] = line end
  next_cookie = math.random(#cookies)
end
function request()
  next_cookie = next_cookie %% #cookies + 1
  return wrk.format(nil, nil, {["Cookie"] = cookies[next_cookie]})
end
`

func (l loadRun) run(pid int, url string, want check, headers ...string) (wrkResult, error) {
	return l.runWith(pid, url, want, "", headers...)
}

// runWith is run, presenting the cookies in cookieFile round robin when it
// is not "".
func (l loadRun) runWith(pid int, url string, want check, cookieFile string, headers ...string) (wrkResult, error) {
	lua := fmt.Sprintf(checkScript, want.header, want.status, want.header, want.value, want.value)
	if cookieFile != "" {
		lua += fmt.Sprintf(cookieScript, cookieFile)
	}
	// A file of its own for each run: two runs at once (the memory phase's
	// pair) with the same script would otherwise write one file, and a wrk
	// could read it half written.
	f, err := os.CreateTemp(l.dir, "check-*.lua")
	if err != nil {
		return wrkResult{}, err
	}
	script := f.Name()
	defer os.Remove(script)
	_, err = f.WriteString(lua)
	if err = errors.Join(err, f.Close()); err != nil {
		return wrkResult{}, err
	}
	args := []string{"-t", strconv.Itoa(l.threads), "-c", strconv.Itoa(l.conns), "-d", l.duration.String(), "--latency", "-s", script}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	args = append(args, url)
	before, err := cpuTime(pid)
	if err != nil {
		return wrkResult{}, err
	}
	out, err := exec.Command(l.wrk, args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	after, err := cpuTime(pid)
	if err != nil {
		return wrkResult{}, err
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, err
	}
	if r.requests > 0 {
		r.cpuPerReq = (after - before) / time.Duration(r.requests)
	}
	return r, nil
}

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkCheck    = regexp.MustCompile(`CHECK ok=(\d+) bad=(\d+)`)
)

func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkRequests.FindStringSubmatch(out)
	m2 := wrkRPS.FindStringSubmatch(out)
	m3 := wrkCheck.FindStringSubmatch(out)
	if m == nil || m2 == nil || m3 == nil {
		return r, fmt.Errorf("wrk output not understood:\n%s", out)
	}
	r.requests, _ = strconv.Atoi(m[1])
	r.rps, _ = strconv.ParseFloat(m2[1], 64)
	r.ok, _ = strconv.Atoi(m3[1])
	r.bad, _ = strconv.Atoi(m3[2])
	for _, p := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p[3]]
		d := time.Duration(v * float64(unit))
		if p[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if strings.Contains(out, "Socket errors") {
		return r, fmt.Errorf("wrk saw socket errors:\n%s", out)
	}
	return r, nil
}
