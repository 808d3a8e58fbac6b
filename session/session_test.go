package session

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestSessionRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		data       *Data
		secure     bool
		wantChunks int // 0: at least 2
	}{
		{"typical session over HTTP", typicalData(), false, 1},
		{"typical session over HTTPS", typicalData(), true, 1},
		{"subject only", &Data{Sub: "u=1"}, false, 1},
		{"3 KB multi-line UTF-8 field is chunked", &Data{Sub: "u=2", Fields: []Field{
			{Name: "myinfo.registered_address", Value: bigValue(3 << 10)},
			{Name: "myinfo.name", Value: "Ñandú\nO'Brien"},
		}}, true, 0},
		{"empty field values survive", &Data{Sub: "u=3", Fields: []Field{{Name: "a", Value: ""}, {Name: "", Value: "b"}}}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clock := newCodec(t, nil)
			b := newBrowser(t)
			b.write(c, tt.data, tt.secure)
			chunks := b.names(c.CookieName(tt.secure))
			switch {
			case tt.wantChunks == 0 && len(chunks) < 2:
				t.Errorf("got %d cookies, want the value split across several", len(chunks))
			case tt.wantChunks > 0 && len(chunks) != tt.wantChunks:
				t.Errorf("got %d cookies, want %d", len(chunks), tt.wantChunks)
			}
			if len(chunks) != len(b.jar) {
				t.Errorf("jar holds %d cookies, only %d under %s", len(b.jar), len(chunks), c.CookieName(tt.secure))
			}
			clock.advance(time.Minute)
			got, err := c.Read(b.request())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !sameData(got, tt.data) {
				t.Errorf("Read returned a different session than was written")
			}
			if !got.Created.Equal(t0) || !got.Refreshed.Equal(t0) {
				t.Errorf("Created, Refreshed = %v, %v; want both %v", got.Created, got.Refreshed, t0)
			}
		})
	}
}

func TestCookieNameAndAttributesFollowSecure(t *testing.T) {
	tests := []struct {
		secure     bool
		wantName   string
		wantSecure bool
	}{
		{false, "sgid_session", false},
		{true, "__Host-sgid_session", true},
	}
	for _, tt := range tests {
		c, _ := newCodec(t, nil)
		if got := c.CookieName(tt.secure); got != tt.wantName {
			t.Errorf("CookieName(%v) = %q, want %q", tt.secure, got, tt.wantName)
		}
		set := newBrowser(t).write(c, typicalData(), tt.secure)
		if len(set) != 1 {
			t.Fatalf("secure=%v: %d cookies set, want 1", tt.secure, len(set))
		}
		// browser.apply has checked HttpOnly, SameSite=Lax, Path=/, no Domain.
		if got := set[0]; got.Name != tt.wantName || got.Secure != tt.wantSecure || got.MaxAge != 43200 {
			t.Errorf("secure=%v: cookie %s Secure=%v Max-Age=%d; want %s Secure=%v Max-Age=43200 (the lifetime)",
				tt.secure, got.Name, got.Secure, got.MaxAge, tt.wantName, tt.wantSecure)
		}
	}
}

// A value sealed for one name form, replayed under the other (as a cookie-tossing
// sibling could), does not authenticate: the MAC binds the full name.
func TestTheMACBindsTheNameForm(t *testing.T) {
	c, _ := newCodec(t, nil)
	plain, host := newBrowser(t), newBrowser(t)
	plain.write(c, &Data{Sub: "plain"}, false)
	host.write(c, &Data{Sub: "host"}, true)

	moved := newBrowser(t)
	moved.jar["sgid_session"] = host.jar["__Host-sgid_session"]
	if _, err := c.Read(moved.request()); !errors.Is(err, ErrInvalid) {
		t.Errorf("__Host- value under the plain name: err = %v, want ErrInvalid", err)
	}
	moved = newBrowser(t)
	moved.tls = true
	moved.jar["__Host-sgid_session"] = plain.jar["sgid_session"]
	if _, err := c.Read(moved.request()); !errors.Is(err, ErrInvalid) {
		t.Errorf("plain value under the __Host- name: err = %v, want ErrInvalid", err)
	}
}

func TestSecretRotation(t *testing.T) {
	s1, s2 := secret(1), secret(2)
	tests := []struct {
		name        string
		write, read [][]byte
		wantErr     error
	}{
		{"same secret", [][]byte{s1}, [][]byte{s1}, nil},
		{"old secret moved to Secrets[1] still opens", [][]byte{s1}, [][]byte{s2, s1}, nil},
		{"new writes are sealed with Secrets[0]", [][]byte{s2, s1}, [][]byte{s2}, nil},
		{"new writes do not use Secrets[1]", [][]byte{s2, s1}, [][]byte{s1}, ErrInvalid},
		{"removed secret no longer opens", [][]byte{s1}, [][]byte{s2}, ErrInvalid},
	}
	for _, tt := range tests {
		for _, size := range []int{0, 3 << 10} {
			t.Run(fmt.Sprintf("%s/%d bytes", tt.name, size), func(t *testing.T) {
				writer, _ := newCodec(t, func(cfg *Config) { cfg.Secrets = tt.write })
				reader, _ := newCodec(t, func(cfg *Config) { cfg.Secrets = tt.read })
				b := newBrowser(t)
				b.write(writer, &Data{Sub: "u=1", Fields: []Field{{Name: "f", Value: bigValue(size)}}}, false)
				_, err := reader.Read(b.request())
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Read err = %v, want %v", err, tt.wantErr)
				}
			})
		}
	}
}

func TestReadEnforcesIdleTimeoutAndLifetime(t *testing.T) {
	every20m := func(n int) []time.Duration {
		gaps := make([]time.Duration, n)
		for i := range gaps {
			gaps[i] = 20 * time.Minute
		}
		return gaps
	}
	tests := []struct {
		name     string
		rewrites []time.Duration // gaps between the rewrites that follow the login
		wait     time.Duration   // idle time after the last write
		want     error
	}{
		{"fresh", nil, 0, nil},
		{"idle just under the timeout", nil, 30*time.Minute - time.Second, nil},
		{"idle for the whole timeout", nil, 30 * time.Minute, ErrIdle},
		{"rewrites slide the idle window", every20m(3), 29 * time.Minute, nil},
		{"activity cannot outlast the lifetime", every20m(35), 20 * time.Minute, ErrExpired},
		{"active until just before the lifetime", every20m(35), 19 * time.Minute, nil},
		{"past both: lifetime is reported", every20m(35), time.Hour, ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clock := newCodec(t, nil)
			b := newBrowser(t)
			d := typicalData()
			b.write(c, d, false)
			for _, gap := range tt.rewrites {
				clock.advance(gap)
				got, err := c.Read(b.request())
				if err != nil {
					t.Fatalf("Read during activity: %v", err)
				}
				b.write(c, got, false)
			}
			clock.advance(tt.wait)
			_, err := c.Read(b.request())
			if !errors.Is(err, tt.want) {
				t.Errorf("Read err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWriteSetsMaxAgeToTimeLeft(t *testing.T) {
	tests := []struct {
		sinceLogin time.Duration
		want       int
	}{
		{0, 43200},
		{11*time.Hour + 20*time.Minute, 2400},
		{11*time.Hour + 40*time.Minute, 1200},
		{11*time.Hour + 59*time.Minute + 59*time.Second, 1},
	}
	for _, tt := range tests {
		c, clock := newCodec(t, nil)
		clock.advance(tt.sinceLogin)
		set := newBrowser(t).write(c, &Data{Sub: "u=1", Created: t0}, false)
		if got := set[0].MaxAge; got != tt.want {
			t.Errorf("%v after login: Max-Age = %d, want %d", tt.sinceLogin, got, tt.want)
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	tests := []struct {
		name string
		data *Data
		want error
	}{
		{"a session past its lifetime", &Data{Sub: "u=1", Created: t0.Add(-12 * time.Hour)}, ErrExpired},
		{"more data than MaxChunks cookies hold", &Data{Sub: "u=1", Fields: []Field{{Name: "f", Value: bigValue(24 << 10)}}}, ErrTooLarge},
		{"5 KB of fields", &Data{Sub: "u=1", Fields: []Field{{Name: "f", Value: bigValue(5 << 10)}}}, ErrTooLarge},
		{"a session without a subject", &Data{}, nil},
		// Read refuses a name twice, so Write must not write one.
		{"a field named twice", &Data{Sub: "u=1", Fields: []Field{{Name: "f", Value: "a"}, {Name: "g", Value: "b"}, {Name: "f", Value: "c"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newCodec(t, nil)
			rec := httptest.NewRecorder()
			err := c.Write(rec, httptest.NewRequest(http.MethodGet, "/", nil), tt.data, false)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Write err = %v, want %v", err, tt.want)
			}
			if n := len(rec.Header().Values("Set-Cookie")); n != 0 {
				t.Errorf("a refused Write set %d cookies", n)
			}
		})
	}
}

func TestNeedsRefresh(t *testing.T) {
	tests := []struct {
		name         string
		idle         time.Duration
		sinceLogin   time.Duration
		sinceRefresh time.Duration
		want         bool
	}{
		{"just written", 30 * time.Minute, time.Hour, 0, false},
		{"under a quarter of the idle timeout", 30 * time.Minute, time.Hour, 7 * time.Minute, false},
		{"a quarter of the idle timeout", 30 * time.Minute, time.Hour, 450 * time.Second, true},
		{"short timeout: one minute floor", 2 * time.Minute, time.Hour, 59 * time.Second, false},
		{"short timeout: after one minute", 2 * time.Minute, time.Hour, time.Minute, true},
		{"tiny timeout: under half of it", time.Minute, time.Hour, 29 * time.Second, false},
		{"tiny timeout: half of it at most", time.Minute, time.Hour, 30 * time.Second, true},
		{"idle window already reaches the lifetime's end", 30 * time.Minute, 11*time.Hour + 45*time.Minute, 10 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clock := newCodec(t, func(cfg *Config) { cfg.IdleTimeout = tt.idle })
			clock.advance(24 * time.Hour)
			now := clock.Now()
			d := &Data{Sub: "u=1", Created: now.Add(-tt.sinceLogin), Refreshed: now.Add(-tt.sinceRefresh)}
			if got := c.NeedsRefresh(d); got != tt.want {
				t.Errorf("NeedsRefresh = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWriteDeletesStaleChunks(t *testing.T) {
	tests := []struct {
		name                   string
		firstSecure, nowSecure bool
		legacy                 bool // chunks up to _9 in the jar, as the previous release wrote
	}{
		{"session shrinks", false, false, false},
		{"session shrinks over HTTPS", true, true, false},
		{"leftovers of the other name form", false, true, false},
		{"leftovers of a ten-chunk session", true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newCodec(t, nil)
			b := newBrowser(t)
			b.write(c, &Data{Sub: "u=1", Fields: []Field{{Name: "f", Value: bigValue(3 << 10)}}}, tt.firstSecure)
			if n := len(b.jar); n != MaxChunks {
				t.Fatalf("big session took %d cookies, want %d", n, MaxChunks)
			}
			if tt.legacy {
				for i := MaxChunks; i < chunkNameSlots; i++ {
					b.jar[c.chunkNames[formOf(tt.firstSecure)][i]] = "left by a release that wrote ten"
				}
			}
			b.write(c, typicalData(), tt.nowSecure)
			if len(b.jar) != 1 || b.jar[c.CookieName(tt.nowSecure)] == "" {
				t.Errorf("after shrinking, jar holds %v, want only %s", b.names(""), c.CookieName(tt.nowSecure))
			}
			if d, err := c.Read(b.request()); err != nil || d.Sub != "u=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" {
				t.Errorf("Read after shrinking = %v, %v", d, err)
			}
		})
	}
}

func TestTrailingChunkFromAnotherWriteIsIgnoredThenDeleted(t *testing.T) {
	// Two tabs finish logging in at once: the second response, whose request carried
	// no session, writes a one-cookie session over the first one's two.
	c, _ := newCodec(t, nil)
	b := newBrowser(t)
	b.write(c, &Data{Sub: "first", Fields: []Field{{Name: "f", Value: bigValue(3 << 10)}}}, false)
	stale := b.jar["sgid_session_1"]
	rec := httptest.NewRecorder()
	if err := c.Write(rec, httptest.NewRequest(http.MethodGet, "/", nil), &Data{Sub: "second"}, false); err != nil {
		t.Fatal(err)
	}
	b.apply(rec)
	if b.jar["sgid_session_1"] != stale {
		t.Fatal("setup: the stale chunk should have survived")
	}
	d, err := c.Read(b.request())
	if err != nil || d.Sub != "second" {
		t.Fatalf("Read = %v, %v; want the second session", d, err)
	}
	b.write(c, d, false)
	if _, ok := b.jar["sgid_session_1"]; ok {
		t.Error("the next Write left the stale chunk in place")
	}
}

func TestClearExpiresEverySessionCookie(t *testing.T) {
	c, _ := newCodec(t, nil)
	b := newBrowser(t)
	b.write(c, &Data{Sub: "u=1", Fields: []Field{{Name: "f", Value: bigValue(3 << 10)}}}, true)
	b.jar["sgid_session"] = "1.leftover"
	b.jar["__Host-sgid_session_7"] = "left by a release that wrote ten"
	b.jar["sgid_session_login_abc"] = "attempt"
	b.jar["unrelated"] = "x"
	rec := httptest.NewRecorder()
	c.Clear(rec, b.request(), true)
	b.apply(rec)
	if got := b.names(""); len(got) != 2 || b.jar["unrelated"] == "" || b.jar["sgid_session_login_abc"] == "" {
		t.Errorf("after Clear, jar holds %v; want only the unrelated and attempt cookies", got)
	}

	// With nothing carried, Clear still expires the base name.
	rec = httptest.NewRecorder()
	c.Clear(rec, httptest.NewRequest(http.MethodGet, "/", nil), true)
	set := newBrowser(t).apply(rec)
	if len(set) != 1 || set[0].Name != "__Host-sgid_session" || set[0].MaxAge >= 0 {
		t.Errorf("Clear on an empty request set %v, want one deletion of __Host-sgid_session", set)
	}
}

func TestFingerprint(t *testing.T) {
	c, _ := newCodec(t, nil)
	a, b := newBrowser(t), newBrowser(t)
	a.write(c, typicalData(), false)
	b.write(c, typicalData(), false)
	fa, okA := c.Fingerprint(a.request())
	fa2, _ := c.Fingerprint(a.request())
	fb, _ := c.Fingerprint(b.request())
	if !okA || fa != fa2 {
		t.Error("the same cookies gave different fingerprints")
	}
	if fa == fb {
		t.Error("two sessions share a fingerprint")
	}
	a.jar["sgid_session_4"] = "ignored by Read"
	a.jar["other"] = "y"
	if f, _ := c.Fingerprint(a.request()); f != fa {
		t.Error("cookies Read ignores changed the fingerprint")
	}
	if _, ok := c.Fingerprint(httptest.NewRequest(http.MethodGet, "/", nil)); ok {
		t.Error("a request without a session has a fingerprint")
	}
}
