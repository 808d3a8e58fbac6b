package session

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/sgidproxy/caddy-sgid/internal/fuzzcorpus"
)

func TestNewRejectsBadConfig(t *testing.T) {
	ok := [][]byte{secret(1)}
	tests := []struct {
		name string
		cfg  Config
		want string // part of the error
	}{
		{"no secrets", Config{}, "no secrets"},
		{"short secret", Config{Secrets: [][]byte{secret(1), []byte("too short")}}, "secret 1 is 9 bytes"},
		{"name with a space", Config{Secrets: ok, Name: "my session"}, "only letters"},
		{"name with a dot", Config{Secrets: ok, Name: "a.b"}, "only letters"},
		{"name with a browser prefix", Config{Secrets: ok, Name: "__Host-s"}, "must not start"},
		{"name too long", Config{Secrets: ok, Name: strings.Repeat("n", 65)}, "at most 64"},
		{"idle timeout beyond lifetime", Config{Secrets: ok, Lifetime: time.Hour, IdleTimeout: 2 * time.Hour}, "exceeds lifetime"},
		{"negative lifetime", Config{Secrets: ok, Lifetime: -time.Hour}, "lifetime"},
		{"negative attempt TTL", Config{Secrets: ok, AttemptTTL: -time.Minute}, "attempt TTL"},
		{"too many attempts", Config{Secrets: ok, MaxAttempts: 21}, "max attempts"},
		{"negative attempts", Config{Secrets: ok, MaxAttempts: -1}, "max attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{Secrets: [][]byte{secret(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if c.name != "sgid_session" || c.lifetime != 12*time.Hour || c.idle != 30*time.Minute ||
		c.attemptTTL != 10*time.Minute || c.maxAttempts != 5 || c.now == nil {
		t.Errorf("defaults: name %q lifetime %v idle %v attempt TTL %v max attempts %d",
			c.name, c.lifetime, c.idle, c.attemptTTL, c.maxAttempts)
	}
}

func TestDeriveKeysGivesIndependentKeys(t *testing.T) {
	h1, b1, err := deriveKeys(secret(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	h2, b2, _ := deriveKeys(secret(2), nil)
	h1again, _, _ := deriveKeys(secret(1), nil)
	hBound, bBound, _ := deriveKeys(secret(1), []string{"https://id.singpass.gov.sg"})
	switch {
	case len(h1) != 32 || len(b1) != 32:
		t.Errorf("key lengths %d and %d, want 32 (HMAC-SHA256, AES-256)", len(h1), len(b1))
	case bytes.Equal(h1, b1):
		t.Error("hash and block keys are equal")
	case bytes.Equal(h1, secret(1)) || bytes.Equal(b1, secret(1)):
		t.Error("a key is the raw secret")
	case bytes.Equal(h1, h2) || bytes.Equal(b1, b2):
		t.Error("two secrets gave the same key")
	case bytes.Equal(h1, hBound) || bytes.Equal(b1, bBound):
		t.Error("two bindings gave the same key")
	case !bytes.Equal(h1, h1again):
		t.Error("derivation is not deterministic: servers sharing a secret would not share sessions")
	}
}

// A cookie is valid only for the binding it was sealed under (issuer, client, site),
// whatever secrets the two codecs share, and however the parts are split.
func TestCookiesAreBoundToTheBinding(t *testing.T) {
	site := []string{"https://id.singpass.gov.sg", "client-a", "https://app.example.sg"}
	tests := []struct {
		name          string
		write, read   []string
		wantSameLogin bool
	}{
		{"same binding", site, slices.Clone(site), true},
		{"empty binding is a binding too", nil, []string{}, true},
		{"another site", site, []string{site[0], site[1], "https://other.example.sg"}, false},
		{"another client", site, []string{site[0], "client-b", site[2]}, false},
		{"another issuer", site, []string{"https://sgid.example", site[1], site[2]}, false},
		{"parts split differently", []string{"a|b", "c"}, []string{"a", "b|c"}, false},
		{"parts joined", []string{"ab", "c"}, []string{"abc"}, false},
		{"an empty part is not no part", nil, []string{""}, false},
		{"order matters", []string{"a", "b"}, []string{"b", "a"}, false},
		{"unbound cookie at a bound site", nil, site, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writer, _ := newCodec(t, func(cfg *Config) { cfg.Binding = tt.write })
			reader, _ := newCodec(t, func(cfg *Config) { cfg.Binding = tt.read })
			for _, secure := range []bool{false, true} {
				b := newBrowser(t)
				b.write(writer, &Data{Sub: "u=1", Fields: []Field{{Name: "f", Value: bigValue(3 << 10)}}}, secure)
				b.startLogin(writer, newAttempt("st"), secure)
				var want error
				if !tt.wantSameLogin {
					want = ErrInvalid
				}
				if _, err := reader.Read(b.request()); !errors.Is(err, want) || (want != nil && kinds(err, ErrNoCookie, ErrExpired, ErrIdle) != 0) {
					t.Errorf("secure=%v: Read err = %v, want %v", secure, err, want)
				}
				if _, err := reader.ReadAttempt(b.request(), "st"); !errors.Is(err, want) || (want != nil && kinds(err, ErrNoCookie, ErrExpired) != 0) {
					t.Errorf("secure=%v: ReadAttempt err = %v, want %v", secure, err, want)
				}
			}
		})
	}
}

// v1Sealer opens cookies as the previous release did: HKDF info v1, no binding.
func v1Sealer(t *testing.T, s []byte) *securecookie.SecureCookie {
	t.Helper()
	hashKey, err1 := hkdf.Key(sha256.New, s, nil, "caddy-sgid session cookie hmac-sha256 v1", 32)
	blockKey, err2 := hkdf.Key(sha256.New, s, nil, "caddy-sgid session cookie aes-256 v1", 32)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return securecookie.New(hashKey, blockKey).SetSerializer(securecookie.NopEncoder{}).MaxLength(0).MaxAge(0)
}

// Cookies the previous release made (keys without a binding, HKDF info v1), kept
// in testdata as that release wrote them, are a plain ErrInvalid: log in again.
func TestPreviousReleaseCookiesAreNoSession(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz")
	tests := []struct {
		file      string
		tls       bool
		read      func(c *Codec, r *http.Request, state string) error
		wantKinds []error
	}{
		{"FuzzRead/previous-release-plain", false, readSession, sessionErrors},
		{"FuzzRead/previous-release-host", true, readSession, sessionErrors},
		{"FuzzReadAttempt/previous-release", false, readAttempt, attemptErrors},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			args := fuzzcorpus.Read(t, filepath.Join(dir, tt.file))
			header, state := args[len(args)-1], ""
			if len(args) == 2 {
				state = args[0]
			}
			request := func() *http.Request {
				r := cookieRequest(header)
				if tt.tls {
					r.TLS = &tls.ConnectionState{}
				}
				return r
			}
			// The fixture is genuine: the previous release's keys open it
			// (a session's payload is also of the format before ids).
			old, _ := newCodec(t, nil)
			old.sealers = []sealer{{legacy: v1Sealer(t, secret(1))}}
			if err := tt.read(old, request(), state); err != nil && !strings.Contains(err.Error(), "malformed payload") {
				t.Fatalf("setup: the v1 keys do not open the fixture: %v", err)
			}
			for _, binding := range [][]string{nil, {"https://id.singpass.gov.sg", "client", "https://app.example.sg"}} {
				c, _ := newCodec(t, func(cfg *Config) { cfg.Binding = binding })
				err := tt.read(c, request(), state)
				if !errors.Is(err, ErrInvalid) || kinds(err, tt.wantKinds...) != 1 {
					t.Errorf("binding %q: err = %v, want ErrInvalid alone", binding, err)
				}
			}
		})
	}
}

var (
	sessionErrors = []error{ErrNoCookie, ErrInvalid, ErrExpired, ErrIdle}
	attemptErrors = []error{ErrNoCookie, ErrInvalid, ErrExpired}
)

func readSession(c *Codec, r *http.Request, _ string) error {
	_, err := c.Read(r)
	return err
}

func readAttempt(c *Codec, r *http.Request, state string) error {
	_, err := c.ReadAttempt(r, state)
	return err
}

func TestCodecsSharingSecretsShareSessions(t *testing.T) {
	// Two servers behind a load balancer: each builds its own Codec from the same
	// secrets, with no other shared state.
	a, _ := newCodec(t, nil)
	b, _ := newCodec(t, nil)
	br := newBrowser(t)
	br.write(a, typicalData(), true)
	if _, err := b.Read(br.request()); err != nil {
		t.Errorf("second server: %v", err)
	}
}

// sessionOfSize is a session that encodes to exactly n bytes once Write has set its
// times to t0.
func sessionOfSize(t *testing.T, n int) *Data {
	t.Helper()
	for l := n; l >= 0; l-- {
		d := &Data{ID: NewID(), Sub: "u=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", Created: t0, Refreshed: t0,
			Fields: []Field{{Name: "myinfo.registered_address", Value: strings.Repeat("x", l)}}}
		if len(marshalSession(d)) == n {
			return d
		}
	}
	t.Fatalf("no session encodes to %d bytes", n)
	return nil
}

func TestMaxSessionDataIsTheLargestSessionWritten(t *testing.T) {
	if got, room := sealedLen(MaxSessionData), MaxChunks*chunkSize; got > room {
		t.Errorf("MaxSessionData %d seals to %d characters, more than the %d of %d cookies", MaxSessionData, got, room, MaxChunks)
	}
	c, _ := newCodec(t, func(cfg *Config) { cfg.Name = strings.Repeat("n", maxNameLen) })
	b := newBrowser(t)
	// browser.apply fails the test on any Set-Cookie header of 4096 bytes or more.
	if set := b.write(c, sessionOfSize(t, MaxSessionData), true); len(set) != MaxChunks {
		t.Errorf("the largest session took %d cookies, want %d", len(set), MaxChunks)
	}
	if _, err := c.Read(b.request()); err != nil {
		t.Errorf("the largest session does not read back: %v", err)
	}
	rec := httptest.NewRecorder()
	if err := c.Write(rec, b.request(), sessionOfSize(t, MaxSessionData+1), true); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte more: Write err = %v, want ErrTooLarge", err)
	}
}

// cookieHeader is the Cookie header the browser sends: every cookie, "; " between.
func (b *browser) cookieHeader() string {
	return b.request().Header.Get("Cookie")
}

// The most the gateway can make a browser send in its Cookie header: the largest
// session Write accepts under the longest name in the __Host- form, and as many
// login attempts of any size as the eviction lets stay (MaxAttempts at its limit of
// 20, so the most "; " too). It must stay well under Caddy's 16 KB limit on request
// headers, leaving room for the application's own cookies.
func TestWorstCaseCookieHeader(t *testing.T) {
	const limit = 12 << 10
	if MaxCookieHeaderBytes > limit {
		t.Errorf("MaxCookieHeaderBytes is %d, want at most %d", MaxCookieHeaderBytes, limit)
	}
	c, clock := newCodec(t, func(cfg *Config) {
		cfg.Name = strings.Repeat("n", maxNameLen)
		cfg.MaxAttempts = maxAttemptsLimit
	})
	b := newBrowser(t)
	b.write(c, sessionOfSize(t, MaxSessionData), true)
	// MaxSessionBytes is the two full chunks the release before could write;
	// a session written now takes less.
	if n := len(b.cookieHeader()); n > MaxSessionBytes {
		t.Errorf("the largest session adds %d bytes to the Cookie header, past MaxSessionBytes %d", n, MaxSessionBytes)
	}
	// Small attempts fill MaxAttempts, large ones the budget, mixed ones both.
	var attempts []*Attempt
	for i := range 3 * maxAttemptsLimit {
		a := &Attempt{State: strconv.Itoa(i)}
		switch {
		case i < maxAttemptsLimit:
		case i < 2*maxAttemptsLimit:
			a = largestAttempt(a.State)
		default:
			a = largestAttempt(a.State)
			a.ReturnTo = a.ReturnTo[:(i*97)%MaxReturnTo]
		}
		attempts = append(attempts, a)
	}
	worst := 0
	for _, a := range attempts {
		b.startLogin(c, a, true)
		clock.advance(time.Second)
		worst = max(worst, len(b.cookieHeader()))
	}
	t.Logf("worst Cookie header seen: %d bytes; bound MaxCookieHeaderBytes: %d", worst, MaxCookieHeaderBytes)
	if worst > MaxCookieHeaderBytes {
		t.Errorf("a Cookie header of %d bytes, past MaxCookieHeaderBytes %d", worst, MaxCookieHeaderBytes)
	}
	if _, err := c.Read(b.request()); err != nil {
		t.Errorf("the session did not survive the logins: %v", err)
	}
}

// The cookies the release before wrote (securecookie: AES-256-CTR and
// HMAC-SHA256 under keys from the same secret and binding), kept in testdata as
// it wrote them, still read: the session with everything in it, and a login
// started before the upgrade completes after it. The next write is in the
// current form.
func TestCookiesTheReleaseBeforeWroteStillRead(t *testing.T) {
	binding := []string{"https://id.singpass.gov.sg", "client", "https://app.example.sg"}
	for _, form := range []string{"plain", "host"} {
		t.Run(form, func(t *testing.T) {
			header, err := os.ReadFile(filepath.Join("testdata", "securecookie-release-"+form+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(header), "="+sealMarker) || strings.Contains(string(header), "."+sealMarker) {
				t.Fatal("setup: the fixture is in the current form")
			}
			r := over(cookieRequest(strings.TrimSpace(string(header))), form == "host")
			c, _ := newCodec(t, func(cfg *Config) { cfg.Binding = binding })
			d, err := c.Read(r)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			want := typicalData()
			if d.Sub != want.Sub || !slices.Equal(d.Fields, want.Fields) || d.Carried != "carried-assertion-signature" ||
				!d.Created.Equal(t0) || d.ID == "" || d.oldSecret {
				t.Errorf("Read = %+v, want %+v as written at %v, carrying its value, sealed with the current secret", d, want, t0)
			}
			a, err := c.ReadAttempt(r, "state-0123456789")
			if err != nil || a.ReturnTo != "/forms/42?step=2" || a.CodeVerifier != "verifier-0123456789" {
				t.Errorf("ReadAttempt = %+v, %v", a, err)
			}
			rec := httptest.NewRecorder()
			if err := c.Write(rec, r, d, form == "host"); err != nil {
				t.Fatal(err)
			}
			for _, ck := range rec.Result().Cookies() {
				if ck.MaxAge >= 0 && !strings.HasPrefix(ck.Value, "1."+sealMarker) {
					t.Errorf("Write set %s=%.20s..., not the current form", ck.Name, ck.Value)
				}
			}
			// The other binding still opens neither.
			other, _ := newCodec(t, nil)
			if _, err := other.Read(r); !errors.Is(err, ErrInvalid) {
				t.Errorf("another binding's Read: %v, want ErrInvalid", err)
			}
		})
	}
}
