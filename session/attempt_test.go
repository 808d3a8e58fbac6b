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
	b.tls = secure
	rec := httptest.NewRecorder()
	if err := c.WriteAttempt(rec, b.request(), a, secure); err != nil {
		b.t.Fatalf("WriteAttempt: %v", err)
	}
	return b.apply(rec)
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

func TestWriteAttemptRefusesOversizedReturnTo(t *testing.T) {
	c, _ := newCodec(t, nil)
	a := newAttempt("s")
	a.ReturnTo = "/?q=" + strings.Repeat("x", 3000)
	rec := httptest.NewRecorder()
	err := c.WriteAttempt(rec, httptest.NewRequest(http.MethodGet, "/", nil), a, false)
	if !errors.Is(err, ErrTooLarge) || len(rec.Header().Values("Set-Cookie")) != 0 {
		t.Errorf("WriteAttempt err = %v, %d cookies set; want ErrTooLarge and none", err, len(rec.Header().Values("Set-Cookie")))
	}
}
