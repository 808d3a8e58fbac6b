package e2e

// A goroutine count for leak tests that does not depend on what ran before:
// it counts only goroutines started after a snapshot, and only those a login
// could leave behind.

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"
)

// goroutines is every live goroutine's stack by goroutine ID. The runtime
// never hands an ID out twice, so an ID missing from an earlier snapshot is a
// goroutine started after it.
func goroutines() map[int64]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[int64]string{}
	for _, stack := range strings.Split(string(buf), "\n\n") {
		var id int64
		if _, err := fmt.Sscanf(stack, "goroutine %d ", &id); err == nil {
			out[id] = stack
		}
	}
	return out
}

// stackFuncs is a stack's function names, innermost first, with the
// arguments, file lines and goroutine numbers left out.
func stackFuncs(stack string) []string {
	var funcs []string
	for _, line := range strings.Split(stack, "\n")[1:] {
		if line == "" || line[0] == '\t' {
			continue
		}
		line, _, _ = strings.Cut(line, " in goroutine ")
		if i := strings.LastIndexByte(line, '('); i > 0 && strings.HasSuffix(line, ")") {
			line = line[:i]
		}
		funcs = append(funcs, line)
	}
	return funcs
}

// loginSide reports whether a goroutine is one a login could leave behind:
// it runs this module's code (the handler, the sgID client, the fake sgID) or
// holds a net/http connection, client or server side. Caddy's background
// workers, the runtime's and the testing package's are not.
func loginSide(stack string) bool {
	for _, f := range stackFuncs(stack) {
		if strings.HasPrefix(f, "github.com/sgidproxy/caddy-sgid") || strings.HasPrefix(f, "net/http.") || strings.HasPrefix(f, "created by net/http.") {
			return true
		}
	}
	return false
}

// leftSince returns, once their number has stopped moving, the login-side
// goroutines started after the before snapshot and still running, as stack
// signature and count. Goroutines from before, including whatever earlier
// tests left running, are not counted, so the result does not depend on the
// test order.
func leftSince(before map[int64]string) (total int, bySignature map[string]int) {
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	count := func() (int, map[string]int) {
		n, by := 0, map[string]int{}
		for id, stack := range goroutines() {
			if _, old := before[id]; !old && loginSide(stack) {
				n++
				by[signature(stack)]++
			}
		}
		return n, by
	}
	total, bySignature = count()
	for deadline, stable := time.Now().Add(10*time.Second), 0; stable < 5 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		n, by := count()
		if n == total {
			stable++
		} else {
			stable = 0
		}
		total, bySignature = n, by
	}
	return total, bySignature
}

// signature names a goroutine by its two innermost frames above the
// plumbing it blocks in (runtime, poller, net, bufio, sync) and by the
// function that started it.
func signature(stack string) string {
	var frames []string
	for _, f := range stackFuncs(stack) {
		switch {
		case strings.HasPrefix(f, "created by "):
			frames = append(frames, f)
		case len(frames) < 2 && !plumbing(f):
			frames = append(frames, f)
		}
	}
	return strings.Join(frames, " < ")
}

func plumbing(f string) bool {
	for _, p := range []string{"runtime.", "internal/", "net.", "bufio.", "sync.", "syscall.", "io.", "net/textproto."} {
		if strings.HasPrefix(f, p) {
			return true
		}
	}
	return false
}

// leakReport lists the commonest stacks first, for the failure message.
func leakReport(bySignature map[string]int) string {
	sigs := slices.SortedFunc(maps.Keys(bySignature), func(a, b string) int {
		return cmp.Or(bySignature[b]-bySignature[a], strings.Compare(a, b))
	})
	var b strings.Builder
	for i, s := range sigs {
		if i == 5 {
			fmt.Fprintf(&b, "\n\t... and %d more kinds", len(sigs)-i)
			break
		}
		fmt.Fprintf(&b, "\n\t%d × %s", bySignature[s], s)
	}
	return b.String()
}
