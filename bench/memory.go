package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// memFigures is the memory comparison: two fresh Caddies, one serving only
// the bare site and one only the sgid site (with the run's revocations
// loaded), given the same load, their resident set sizes taken at the same
// points. A Caddy that also served the other site, other protocols or
// logins would hold what those cost too, so neither shares a process with
// anything else.
type memFigures struct {
	sessions int
	// After the one-session load, after the first half of the distinct
	// sessions, and after all of them.
	bare, sgid [3]int64
	// The same points' loads sent to both Caddies at once (together), in
	// rounds: [point] → each round's bare and sgid run.
	atOnceBare, atOnceSgid [3][]wrkResult
	// The same at one fixed rate for both (pacedPair), if -paced-rate.
	pacedBare, pacedSgid [3][]pacedRun
	pacedRate            int
}

// memoryConfig is what the memory phase starts its two Caddies with.
type memoryConfig struct {
	proxy, gated        string // the site bodies
	env                 []string
	issuer, clientID    string
	secret              string
	sessions, revokeAll int
}

// memory runs the memory phase: the one-session wrk load, then the first
// half of the distinct sessions (each session's first request goes to the
// sgid Caddy, which must answer it with the identity; then a wrk round
// robin over that half goes to both), then the second half the same way.
// If the gateway's memory is bounded, the second half adds nothing.
func (b *bench) memory(mc memoryConfig) (memFigures, error) {
	f := memFigures{sessions: mc.sessions, pacedRate: b.pacedRate}
	var addrs [4]string
	for i := range addrs {
		var err error
		if addrs[i], err = freeAddr(); err != nil {
			return f, err
		}
	}
	bareURL, sgidURL, bareAdmin, admin := "http://"+addrs[0], "http://"+addrs[1], addrs[2], addrs[3]
	bare, err := startCaddy(b.caddy, b.dir, "memory-bare", bareAdmin, []site{{addr: addrs[0], body: mc.proxy}}, mc.env)
	if err != nil {
		return f, err
	}
	defer bare.stop()
	gated, err := startCaddy(b.caddy, b.dir, "memory-sgid", admin, []site{{addr: addrs[1], body: mc.gated}}, mc.env)
	if err != nil {
		return f, err
	}
	defer gated.stop()
	if mc.revokeAll > 0 {
		if err := loadRevocations(admin, mc.revokeAll, sgidURL); err != nil {
			return f, fmt.Errorf("loading revocations: %w", err)
		}
	}
	cookie, _, _, err := login(sgidURL)
	if err != nil {
		return f, fmt.Errorf("logging in: %w", err)
	}
	withIdentity := check{status: 200, header: identityHeader, value: "1"}
	if _, err := b.load.run(bare.pid, bareURL, check{status: 200}, "Cookie: "+cookie); err != nil {
		return f, err
	}
	if _, err := b.load.run(gated.pid, sgidURL, withIdentity, "Cookie: "+cookie); err != nil {
		return f, err
	}
	take := func(i int) error {
		if err := f.take(i, bare.pid, gated.pid); err != nil {
			return err
		}
		if b.profileDir == "" {
			return nil
		}
		// Heap profiles at the same points, to tell what the difference is.
		for name, a := range map[string]string{"bare": bareAdmin, "sgid": admin} {
			if err := fetchTo("http://"+a+"/debug/pprof/heap", filepath.Join(b.profileDir, fmt.Sprintf("memory-%s-%d.heap", name, i))); err != nil {
				return err
			}
		}
		return nil
	}
	if err := take(0); err != nil {
		return f, err
	}
	if err := b.atOnce(&f, 0, [2]int{bare.pid, gated.pid}, [2]string{bareAdmin, admin}, bareURL, sgidURL, "", "Cookie: "+cookie); err != nil {
		return f, err
	}
	if err := b.pacedPair(&f, 0, [2]int{bare.pid, gated.pid}, [2]string{bareAdmin, admin}, bareURL, sgidURL, []string{cookie}); err != nil {
		return f, err
	}
	codec, err := minter(mc.issuer, mc.clientID, sgidURL, mc.secret)
	if err != nil {
		return f, err
	}
	half := mc.sessions / 2
	for i, part := range [][2]int{{0, half}, {half, mc.sessions - half}} {
		fmt.Fprintf(os.Stderr, "  sessions %d to %d\n", part[0]+1, part[0]+part[1])
		lines, err := warmLines(codec, sgidURL, part[0], part[1], &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}, false)
		if err != nil {
			return f, err
		}
		file := filepath.Join(b.dir, fmt.Sprintf("memory-%d.txt", i))
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return f, err
		}
		if _, err := b.load.runWith(bare.pid, bareURL, check{status: 200}, file); err != nil {
			return f, err
		}
		if _, err := b.load.runWith(gated.pid, sgidURL, withIdentity, file); err != nil {
			return f, err
		}
		if err := take(1 + i); err != nil {
			return f, err
		}
		// The cookies of every session so far, so that the sgid Caddy's
		// cache misses on nearly every request.
		all := file
		if i > 0 {
			all = filepath.Join(b.dir, fmt.Sprintf("memory-all-%d.txt", i))
			if err := concatFiles(all, filepath.Join(b.dir, "memory-0.txt"), file); err != nil {
				return f, err
			}
		}
		if err := b.atOnce(&f, 1+i, [2]int{bare.pid, gated.pid}, [2]string{bareAdmin, admin}, bareURL, sgidURL, all); err != nil {
			return f, err
		}
		cookies, err := cookieLines(all, "")
		if err != nil {
			return f, err
		}
		if err := b.pacedPair(&f, 1+i, [2]int{bare.pid, gated.pid}, [2]string{bareAdmin, admin}, bareURL, sgidURL, cookies); err != nil {
			return f, err
		}
	}
	return f, nil
}

// atOnce loads the bare-only and the sgid-only Caddy at the same time, each
// with its own wrk of half the connections, for b.rounds rounds after the
// memory was taken at point i. Both Caddies are on the same core (-pin) for
// the same seconds, so the machine's drift, which between rounds of the
// alternating mode moves one site by more than the two differ, falls on both
// alike; each one's CPU per request is its own process's. The two runs'
// windows differ only by when the two wrk processes start and end. With
// -profile, the first round at each point is profiled, both Caddies.
func (b *bench) atOnce(f *memFigures, i int, pids [2]int, admins [2]string, bareURL, sgidURL, file string, headers ...string) error {
	barePID, sgidPID := pids[0], pids[1]
	half := b.load
	half.conns = max(b.load.conns/2, 1)
	half.threads = max(b.load.threads/2, 1)
	for round := range b.rounds {
		var rb, rs wrkResult
		var errB, errS error
		var wg sync.WaitGroup
		wg.Go(func() { rb, errB = half.runWith(barePID, bareURL, check{status: 200}, file, headers...) })
		wg.Go(func() {
			rs, errS = half.runWith(sgidPID, sgidURL, check{status: 200, header: identityHeader, value: "1"}, file, headers...)
		})
		profs := func() error { return nil }
		if round == 0 {
			profs = b.profilePair(admins, "atonce", i)
		}
		wg.Wait()
		if err := errors.Join(errB, errS, profs()); err != nil {
			return err
		}
		rb.report(fmt.Sprintf("    at once, round %d: bare", round+1))
		rs.report(fmt.Sprintf("    at once, round %d: sgid", round+1))
		f.atOnceBare[i] = append(f.atOnceBare[i], rb)
		f.atOnceSgid[i] = append(f.atOnceSgid[i], rs)
	}
	return nil
}

// concatFiles writes the files' contents, in order, to dst.
func concatFiles(dst string, srcs ...string) error {
	var all []byte
	for _, src := range srcs {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		all = append(all, b...)
	}
	return os.WriteFile(dst, all, 0o600)
}

// take records both processes' RSS at point i.
func (f *memFigures) take(i, barePID, sgidPID int) error {
	var err error
	if f.bare[i], err = rss(barePID); err != nil {
		return err
	}
	f.sgid[i], err = rss(sgidPID)
	return err
}

// print writes the memory rows.
func (f memFigures) print(w io.Writer) {
	if f.sessions == 0 {
		return
	}
	fmt.Fprintf(w, "\nmemory: a bare-only and an sgid-only Caddy, the same load to each (RSS MiB):\n\n")
	fmt.Fprintf(w, "| after | bare | sgid | difference |\n|---|---|---|---|\n")
	points := []string{"the one-session load", fmt.Sprintf("%d distinct sessions", f.sessions/2), fmt.Sprintf("%d distinct sessions", f.sessions)}
	for i, p := range points {
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %+.1f |\n", p, mib(f.bare[i]), mib(f.sgid[i]), mib(f.sgid[i]-f.bare[i]))
	}
	fmt.Fprintf(w, "\nthe same two Caddies loaded at once, on the same core (-pin), at each point (%d rounds; Caddy CPU µs per request, medians, and the median of each round's difference with its quartiles; the capacity ratio, bare's CPU per request over sgid's, each round's median):\n\n", len(f.atOnceBare[0]))
	fmt.Fprintf(w, "| load | bare | sgid | difference | quartiles | ratio |\n|---|---|---|---|---|---|\n")
	loads := []string{"one session", fmt.Sprintf("%d distinct sessions", f.sessions/2), fmt.Sprintf("%d distinct sessions", f.sessions)}
	cpu := func(r wrkResult) float64 { return us(r.cpuPerReq) }
	for i, l := range loads {
		rb, rs := f.atOnceBare[i], f.atOnceSgid[i]
		if len(rb) == 0 {
			continue
		}
		diffs := make([]float64, len(rb))
		for j := range rb {
			diffs[j] = cpu(rs[j]) - cpu(rb[j])
		}
		slices.Sort(diffs)
		ratio := pairedOf(rs, rb, cpu, func(g, b float64) float64 { return b / g })
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %+.1f | %+.1f to %+.1f | %.2fx |\n", l, medianOf(rb, cpu), medianOf(rs, cpu),
			pairedOf(rs, rb, cpu, func(g, b float64) float64 { return g - b }), diffs[len(diffs)/4], diffs[len(diffs)*3/4], ratio)
	}
	if len(f.pacedBare[0]) > 0 {
		fmt.Fprintf(w, "\nthe same two Caddies at once, both paced at %d requests a second (%d rounds; Caddy CPU µs per request, medians, and the median of each round's difference with its quartiles; the capacity ratio, bare's CPU per request over sgid's):\n\n", f.pacedRate, len(f.pacedBare[0]))
		fmt.Fprintf(w, "| load | bare | sgid | difference | quartiles | ratio |\n|---|---|---|---|---|---|\n")
		for i, l := range loads {
			rb, rs := f.pacedBare[i], f.pacedSgid[i]
			if len(rb) == 0 {
				continue
			}
			diffs := make([]float64, len(rb))
			var cb, cs, ratios []float64
			for j := range rb {
				b, s := us(rb[j].cpuPerReq), us(rs[j].cpuPerReq)
				diffs[j], cb, cs, ratios = s-b, append(cb, b), append(cs, s), append(ratios, b/s)
			}
			fmt.Fprintf(w, "| %s | %.1f | %.1f | %+.1f | %+.1f to %+.1f | %.2fx |\n", l, medianFloat(cb), medianFloat(cs), medianFloat(diffs),
				quartile(diffs, 1), quartile(diffs, 3), medianFloat(ratios))
		}
	}
	extra := mib(f.sgid[2] - f.bare[2])
	second := mib((f.sgid[2] - f.bare[2]) - (f.sgid[1] - f.bare[1]))
	fmt.Fprintf(w, "\nRSS over bare after %d sessions: %+.1f MiB, target <= +32 MiB: %s; the second %d sessions added %+.1f MiB over bare\n",
		f.sessions, extra, mark(extra <= 32), f.sessions-f.sessions/2, second)
}

// medianFloat is the median of v (the upper one of an even count).
func medianFloat(v []float64) float64 { return quartile(v, 2) }

// quartile is v's q-th quartile, by the same rank as the other tables'.
func quartile(v []float64, q int) float64 {
	s := slices.Sorted(slices.Values(v))
	return s[len(s)*q/4]
}

// profilePair starts CPU profiles of the memory phase's two Caddies (admins:
// bare, sgid) for the load now running, if -profile, named kind-bare-i and
// kind-sgid-i; the function it returns waits for both.
func (b *bench) profilePair(admins [2]string, kind string, i int) func() error {
	if b.profileDir == "" {
		return func() error { return nil }
	}
	var profs []<-chan error
	for j, name := range []string{"bare", "sgid"} {
		profs = append(profs, profile(admins[j], filepath.Join(b.profileDir, fmt.Sprintf("%s-%s-%d.pprof", kind, name, i)), b.load.duration-time.Second))
	}
	return func() error {
		var err error
		for _, p := range profs {
			err = errors.Join(err, <-p)
		}
		return err
	}
}
