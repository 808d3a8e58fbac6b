package session

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newAttempt(state string) *Attempt {
	return &Attempt{
		State:        state,
		Nonce:        "nonce-" + state,
		CodeVerifier: strings.Repeat("v", 64),
		RedirectURI:  "https://app.example.sg/.sgid/callback",
		ReturnTo:     "/reports?q=" + state + "&lang=zh",
	}
}

// startLogin writes an attempt into the browser, as a tab starting a login does.
func (b *browser) startLogin(c *Codec, a *Attempt, secure bool) []*http.Cookie {
	b.t.Helper()
	return b.respond(secure, "WriteAttempt", func(w http.ResponseWriter, r *http.Request) error {
		return c.WriteAttempt(w, r, a, secure)
	})
}

func TestAttemptsInSeveralTabs(t *testing.T) {
	for _, secure := range []bool{false, true} {
		c, clock := newCodec(t, nil)
		b := newBrowser(t)
		states := []string{"tab-one", "tab-two", "tab-three"}
		for _, s := range states {
			set := b.startLogin(c, newAttempt(s), secure)
			wantPrefix := c.loginPrefix[formOf(secure)]
			if len(set) != 1 || !strings.HasPrefix(set[0].Name, wantPrefix) || set[0].MaxAge != 600 {
				t.Fatalf("secure=%v: WriteAttempt set %v, want one %s* cookie with Max-Age=600", secure, set, wantPrefix)
			}
			clock.advance(time.Second)
		}
		for i, s := range states {
			a, err := c.ReadAttempt(b.request(), s)
			if err != nil {
				t.Fatalf("secure=%v: ReadAttempt(%s): %v", secure, s, err)
			}
			want := newAttempt(s)
			if a.State != s || a.Nonce != want.Nonce || a.CodeVerifier != want.CodeVerifier ||
				a.RedirectURI != want.RedirectURI || a.ReturnTo != want.ReturnTo ||
				!a.Created.Equal(t0.Add(time.Duration(i)*time.Second)) {
				t.Errorf("secure=%v: ReadAttempt(%s) = %+v, want %+v", secure, s, a, want)
			}
		}
	}
}

func TestWriteAttemptEvictsOldest(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		unreadable  int // junk attempt cookies planted before the logins
		logins      int
		wantGone    []int // logins (by order) evicted
	}{
		{"under the limit", 5, 0, 5, nil},
		{"one over evicts the oldest", 5, 0, 6, []int{0}},
		{"limit of one keeps only the newest", 1, 0, 3, []int{0, 1}},
		{"unreadable cookies go first", 5, 2, 5, nil},
		{"then the oldest", 5, 2, 6, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clock := newCodec(t, func(cfg *Config) { cfg.MaxAttempts = tt.maxAttempts })
			b := newBrowser(t)
			for i := range tt.unreadable {
				b.jar["sgid_session_login_junk"+strconv.Itoa(i)] = "1.AAAA"
			}
			for i := range tt.logins {
				b.startLogin(c, newAttempt("s"+strconv.Itoa(i)), false)
				clock.advance(time.Minute)
			}
			if got := len(b.names("sgid_session_login_")); got > tt.maxAttempts {
				t.Errorf("%d attempt cookies remain, want at most %d", got, tt.maxAttempts)
			}
			for i := range tt.logins {
				_, err := c.ReadAttempt(b.request(), "s"+strconv.Itoa(i))
				gone := false
				for _, g := range tt.wantGone {
					gone = gone || g == i
				}
				if gone != errors.Is(err, ErrNoCookie) || (!gone && err != nil) {
					t.Errorf("login %d: ReadAttempt err = %v, evicted should be %v", i, err, gone)
				}
			}
		})
	}
}

func TestReadAttemptRejects(t *testing.T) {
	c, clock := newCodec(t, nil)
	b := newBrowser(t)
	b.startLogin(c, newAttempt("mine"), false)
	b.startLogin(c, newAttempt("theirs"), false)
	session := newBrowser(t)
	session.write(c, typicalData(), false)

	tests := []struct {
		name  string
		edit  func(jar map[string]string)
		state string
		wait  time.Duration
		want  error
	}{
		{"unknown state", nil, "guessed", 0, ErrNoCookie},
		{"empty state", nil, "", 0, ErrNoCookie},
		{"expired attempt", nil, "mine", 10 * time.Minute, ErrExpired},
		{"another attempt's value under this state's name", func(j map[string]string) {
			j[c.attemptName(plainForm, "mine")] = j[c.attemptName(plainForm, "theirs")]
		}, "mine", 0, ErrInvalid},
		{"session value as the attempt", func(j map[string]string) {
			_, v, _ := strings.Cut(session.jar["sgid_session"], ".")
			j[c.attemptName(plainForm, "mine")] = v
		}, "mine", 0, ErrInvalid},
		{"bit flip", func(j map[string]string) {
			j[c.attemptName(plainForm, "mine")] = flip(j[c.attemptName(plainForm, "mine")])
		}, "mine", 0, ErrInvalid},
		{"oversized", func(j map[string]string) {
			j[c.attemptName(plainForm, "mine")] = strings.Repeat("A", 10_000)
		}, "mine", 0, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jar := b.clone()
			if tt.edit != nil {
				tt.edit(jar.jar)
			}
			clock.t = t0.Add(tt.wait)
			a, err := c.ReadAttempt(jar.request(), tt.state)
			if !errors.Is(err, tt.want) {
				t.Errorf("ReadAttempt = %+v, %v; want %v", a, err, tt.want)
			}
		})
	}
}

func TestClearAttemptRemovesOnlyThatAttempt(t *testing.T) {
	c, _ := newCodec(t, nil)
	b := newBrowser(t)
	b.startLogin(c, newAttempt("done"), true)
	b.startLogin(c, newAttempt("pending"), true)
	b.jar[c.attemptName(plainForm, "done")] = "left from HTTP"
	rec := httptest.NewRecorder()
	c.ClearAttempt(rec, b.request(), "done", true)
	b.apply(rec)
	if _, err := c.ReadAttempt(b.request(), "done"); !errors.Is(err, ErrNoCookie) {
		t.Errorf("cleared attempt: err = %v, want ErrNoCookie", err)
	}
	if _, err := c.ReadAttempt(b.request(), "pending"); err != nil {
		t.Errorf("other attempt: %v", err)
	}
}

// largestAttempt is an attempt with every field at the size MaxAttemptValue is
// computed for.
func largestAttempt(state string) *Attempt {
	pad := func(s string, n int) string { return s + strings.Repeat("x", n-len(s)) }
	return &Attempt{
		State:        pad(state, maxTokenLen),
		Nonce:        strings.Repeat("n", maxTokenLen),
		CodeVerifier: strings.Repeat("v", maxTokenLen),
		RedirectURI:  pad("https://app.example.sg/.sgid/callback?", MaxRedirectURI),
		ReturnTo:     pad("/reports?q=", MaxReturnTo),
	}
}

func TestMaxAttemptValueIsTheLargestAttemptSealed(t *testing.T) {
	a := largestAttempt("s")
	a.Created = time.Unix(1<<34-1, 0) // the longest created varint until the year 2514
	if n := len(marshalAttempt(a)); n > maxAttemptPayload {
		t.Errorf("the largest attempt encodes to %d bytes, more than maxAttemptPayload %d", n, maxAttemptPayload)
	}
	if got := sealedLen(maxAttemptPayload); got != MaxAttemptValue {
		t.Errorf("maxAttemptPayload seals to %d characters, MaxAttemptValue says %d", got, MaxAttemptValue)
	}
}

func TestWriteAttemptSizeLimit(t *testing.T) {
	withReturnTo := func(a *Attempt, returnTo string) *Attempt {
		a.ReturnTo = returnTo
		return a
	}
	tests := []struct {
		name    string
		attempt *Attempt
		want    error
	}{
		{"every field at its size", largestAttempt("s"), nil},
		{"a typical attempt", newAttempt("s"), nil},
		{"a return path of 1 KB", withReturnTo(newAttempt("s"), "/?q="+strings.Repeat("x", 1020)), ErrTooLarge},
		{"a return path of a few KB", withReturnTo(newAttempt("s"), "/?q="+strings.Repeat("x", 3000)), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newCodec(t, func(cfg *Config) { cfg.Name = strings.Repeat("n", maxNameLen) })
			rec := httptest.NewRecorder()
			err := c.WriteAttempt(rec, httptest.NewRequest(http.MethodGet, "/", nil), tt.attempt, true)
			set := rec.Header().Values("Set-Cookie")
			switch {
			case !errors.Is(err, tt.want):
				t.Errorf("WriteAttempt err = %v, want %v", err, tt.want)
			case tt.want != nil && len(set) != 0:
				t.Errorf("a refused WriteAttempt set %d cookies", len(set))
			case tt.want == nil:
				b := newBrowser(t)
				b.tls = true
				b.apply(rec)
				if _, err := c.ReadAttempt(b.request(), tt.attempt.State); err != nil {
					t.Errorf("the attempt does not read back: %v", err)
				}
			}
		})
	}
}

// attemptBytes is what the jar's attempt cookies add to the Cookie header, as
// name=value pairs, and how many there are.
func (b *browser) attemptBytes(c *Codec) (total, count int) {
	for name, value := range b.jar {
		if _, ok := c.attemptForm(name); ok {
			total += len(name) + 1 + len(value)
			count++
		}
	}
	return total, count
}

// However many large logins a cross-site page starts, and whatever junk attempt
// cookies the browser already holds, the evictions leave the attempt cookies within
// AttemptBudget; typical logins in MaxAttempts tabs all survive.
func TestAttemptCookiesStayWithinBudget(t *testing.T) {
	c, clock := newCodec(t, func(cfg *Config) { cfg.Name = strings.Repeat("n", maxNameLen) })
	b := newBrowser(t)
	// Left by the previous release (one cookie of up to 3,600 characters each) or
	// planted: unreadable, and of both forms.
	for i := range 3 {
		b.jar[c.loginPrefix[hostForm]+"old"+strconv.Itoa(i)] = strings.Repeat("A", chunkSize)
	}
	b.jar[c.loginPrefix[plainForm]+"plain"] = strings.Repeat("B", chunkSize)
	for i := range 12 {
		a := largestAttempt("big-" + strconv.Itoa(i))
		a.ReturnTo = a.ReturnTo[:MaxReturnTo-i*37] // sizes vary, as long paths do
		b.startLogin(c, a, true)
		clock.advance(time.Second)
		total, count := b.attemptBytes(c)
		if total > AttemptBudget || count > c.maxAttempts {
			t.Fatalf("after login %d the attempt cookies are %d bytes in %d cookies, want at most %d in %d",
				i, total, count, AttemptBudget, c.maxAttempts)
		}
		if _, err := c.ReadAttempt(b.request(), a.State); err != nil {
			t.Fatalf("the newest login was evicted: %v", err)
		}
	}
	if total, _ := b.attemptBytes(c); total < AttemptBudget/2 {
		t.Errorf("only %d bytes of attempts kept: the budget should hold two of the largest", total)
	}

	for i := range c.maxAttempts {
		b.startLogin(c, newAttempt("tab-"+strconv.Itoa(i)), true)
		clock.advance(time.Second)
	}
	for i := range c.maxAttempts {
		if _, err := c.ReadAttempt(b.request(), "tab-"+strconv.Itoa(i)); err != nil {
			t.Errorf("typical login %d of %d: %v", i, c.maxAttempts, err)
		}
	}
}
