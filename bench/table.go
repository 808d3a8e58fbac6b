package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// table holds a run's figures.
type table struct {
	bare, gated             []wrkResult
	control                 []wrkResult // the bare site, sent sgid's identity headers by the client; empty without -control
	norev                   []wrkResult // a second sgid site without revocations; empty with -revocations 0
	rr                      []rrFigures // -sessions-rr
	h2                      []rrFigures // -h2: the same over HTTPS with HTTP/2
	unauthBare, unauthGated wrkResult
	logins                  loginFigures
	revocations             int // live revocations loaded before the load rounds
	memory                  memFigures
}

func medianOf(rs []wrkResult, f func(wrkResult) float64) float64 {
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = time.Duration(f(r) * 1000) // keep three decimals through median
	}
	return float64(median(ds)) / 1000
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

func (t *table) print(w io.Writer, l loadRun) {
	rps := func(r wrkResult) float64 { return r.rps }
	cpu := func(r wrkResult) float64 { return us(r.cpuPerReq) }
	p50 := func(r wrkResult) float64 { return ms(r.p50) }
	p99 := func(r wrkResult) float64 { return ms(r.p99) }
	bRPS, gRPS := medianOf(t.bare, rps), medianOf(t.gated, rps)
	bCPU, gCPU := medianOf(t.bare, cpu), medianOf(t.gated, cpu)
	// The machine's speed drifts between rounds more than the sites differ, so
	// the comparisons are the medians of each round's own ratio and difference.
	ratio, extra := t.paired(rps, func(g, b float64) float64 { return g / b }), t.paired(cpu, func(g, b float64) float64 { return g - b })

	fmt.Fprintf(w, "\nwrk -t%d -c%d -d%s, loopback; one Caddy serving every site; %d alternating rounds;\n"+
		"%d live revocations loaded on the sgid site:\n"+
		"medians of each site, and the median of each round's ratio or difference\n\n",
		l.threads, l.conns, l.duration, len(t.bare), t.revocations)
	fmt.Fprintf(w, "%-44s %12s %12s %10s\n", "", "bare", "sgid", "ratio")
	fmt.Fprintf(w, "%-44s %12.0f %12.0f %9.2fx   target >= 0.90x: %s\n", "authenticated req/s", bRPS, gRPS, ratio, mark(ratio >= 0.90))
	fmt.Fprintf(w, "%-44s %12.1f %12.1f %+9.1f    target <= +8 µs: %s\n", "proxy CPU µs/request", bCPU, gCPU, extra, mark(extra <= 8))
	if len(t.norev) > 0 {
		nr := pairedOf(t.norev, t.bare, rps, func(g, b float64) float64 { return g / b })
		fmt.Fprintf(w, "%-44s %12s %12.0f %9.2fx\n", "  sgid without revocations: req/s", "", medianOf(t.norev, rps), nr)
		fmt.Fprintf(w, "%-44s %12s %12.1f %+9.1f\n", "  sgid without revocations: CPU µs/request", "", medianOf(t.norev, cpu), pairedOf(t.norev, t.bare, cpu, func(g, b float64) float64 { return g - b }))
		fmt.Fprintf(w, "%-44s %12s %12s %+9.1f    (each round's sgid minus sgid without)\n", "  the revocations' cost, CPU µs/request", "", "", pairedOf(t.gated, t.norev, cpu, func(g, b float64) float64 { return g - b }))
	}
	if len(t.control) > 0 {
		diff := func(x, y float64) float64 { return x - y }
		fmt.Fprintf(w, "%-44s %12.1f %12s %+9.1f    (carrying the identity)\n", "  control: bare sent sgid's headers, minus bare", medianOf(t.control, cpu), "", pairedOf(t.control, t.bare, cpu, diff))
		fmt.Fprintf(w, "%-44s %12s %12.1f %+9.1f    (the gateway's own share)\n", "  sgid, minus the control", "", gCPU, pairedOf(t.gated, t.control, cpu, diff))
	}
	fmt.Fprintf(w, "%-44s %12.2f %12.2f %9.2fx\n", "p50 latency ms", medianOf(t.bare, p50), medianOf(t.gated, p50), medianOf(t.gated, p50)/medianOf(t.bare, p50))
	fmt.Fprintf(w, "%-44s %12.2f %12.2f %9.2fx\n", "p99 latency ms", medianOf(t.bare, p99), medianOf(t.gated, p99), medianOf(t.gated, p99)/medianOf(t.bare, p99))
	ur := t.unauthGated.rps / t.unauthBare.rps
	fmt.Fprintf(w, "%-44s %12.0f %12.0f %9.2fx   target >= 1.0x: %s\n", "unauthenticated req/s (bare 200, sgid 302)", t.unauthBare.rps, t.unauthGated.rps, ur, mark(ur >= 1.0))
	fmt.Fprintf(w, "%-44s %12.1f %12.1f %+9.1f\n", "unauthenticated proxy CPU µs/request", us(t.unauthBare.cpuPerReq), us(t.unauthGated.cpuPerReq), us(t.unauthGated.cpuPerReq)-us(t.unauthBare.cpuPerReq))
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-44s %12.2f   target <= 3.3 ms: %s\n", "login round trip ms (median)", ms(t.logins.median), mark(ms(t.logins.median) <= 3.3))
	for i, name := range loginHops {
		fmt.Fprintf(w, "  %-42s %12.2f\n", name, ms(t.logins.hops[i]))
	}
	lr := float64(t.logins.cpuPerOp) / float64(t.logins.rsaDecrypt)
	fmt.Fprintf(w, "%-44s %12.2f   = %.2fx one RSA-2048 OAEP decryption (%.2f ms); target <= 1.25x: %s\n", "gateway CPU ms per login", ms(t.logins.cpuPerOp), lr, ms(t.logins.rsaDecrypt), mark(lr <= 1.25))
	printRR(w, "HTTP/1.1 (wrk)", t.rr)
	printRR(w, "HTTPS with HTTP/2 (tls internal; Go client)", t.h2)
	t.memory.print(w)
	fmt.Fprintf(w, "\nevery response checked: bare %d, sgid %d with identity headers, sgid unauthenticated %d redirects",
		sum(t.bare, func(r wrkResult) int { return r.ok }), sum(t.gated, func(r wrkResult) int { return r.ok }), t.unauthGated.ok)
	if len(t.norev) > 0 {
		fmt.Fprintf(w, ", sgid without revocations %d with identity headers", sum(t.norev, func(r wrkResult) int { return r.ok }))
	}
	if len(t.control) > 0 {
		fmt.Fprintf(w, ", control %d with identity headers", sum(t.control, func(r wrkResult) int { return r.ok }))
	}
	fmt.Fprintln(w)
}

// paired is the median over the rounds of cmp(sgid's figure, bare's figure).
func (t *table) paired(f func(wrkResult) float64, cmp func(g, b float64) float64) float64 {
	return pairedOf(t.gated, t.bare, f, cmp)
}

// pairedOf is the median over the rounds of cmp(a's figure, b's figure).
func pairedOf(a, b []wrkResult, f func(wrkResult) float64, cmp func(x, y float64) float64) float64 {
	ds := make([]time.Duration, len(a))
	for i := range a {
		ds[i] = time.Duration(cmp(f(a[i]), f(b[i])) * 1000)
	}
	return float64(median(ds)) / 1000
}

func sum(rs []wrkResult, f func(wrkResult) int) int {
	n := 0
	for _, r := range rs {
		n += f(r)
	}
	return n
}

// verdict fails the run if any response was not what was measured for.
func (t *table) verdict() error {
	bad := sum(t.bare, func(r wrkResult) int { return r.bad }) + sum(t.gated, func(r wrkResult) int { return r.bad }) +
		sum(t.control, func(r wrkResult) int { return r.bad }) + sum(t.norev, func(r wrkResult) int { return r.bad }) + t.unauthBare.bad + t.unauthGated.bad
	for _, f := range append(slices.Clone(t.rr), t.h2...) {
		bad += sum(f.bare, func(r wrkResult) int { return r.bad }) + sum(f.gated, func(r wrkResult) int { return r.bad })
	}
	if bad > 0 {
		return fmt.Errorf("%d responses were not the expected status and headers: the figures above are not valid", bad)
	}
	if len(t.gated) == 0 || t.gated[0].ok == 0 {
		return errors.New("no responses measured")
	}
	return nil
}
