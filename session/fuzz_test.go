package session

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The fuzz targets use newCodec: secret(1) and a clock stopped at t0, so the cookies
// in testdata/fuzz stay valid for ever and the fuzzer starts from sessions that decode.
// go test -update-fuzz-corpus ./session rewrites the codec-made seeds there.

// readErrorText is every error text Read and ReadAttempt may return: fixed words,
// chunk numbers and colons. A cookie value is base64url with upper case, so one
// echoed into an error cannot match; cookie contents must never reach a log line.
var readErrorText = regexp.MustCompile(`^[a-z0-9 :]{1,120}$`)

// cookieRequest is a request whose Cookie header lines are header split at
// newlines: several lines exercise the scan across header values.
func cookieRequest(header string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for line := range strings.SplitSeq(header, "\n") {
		r.Header.Add("Cookie", line)
	}
	return r
}

// kinds counts the sentinels err matches.
func kinds(err error, sentinels ...error) int {
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	return n
}

func FuzzRead(f *testing.F) {
	for _, h := range []string{
		"", "sgid_session=", "sgid_session=1.", "sgid_session=10.x", "sgid_session=2.AAAA; sgid_session_1=BBBB",
		"__Host-sgid_session=1.AAAA; sgid_session=1.BBBB", `sgid_session="1.AAAA"`, "sgid_session_9=x; sgid_session_0=y",
		"a=b; ;; =; sgid_session", "sgid_session=1.AAAA\nsgid_session_1=x", "__Host-sgid_session=1.QUFBQQ==; sgid_session=3.",
	} {
		f.Add(h)
	}
	c, _ := newCodec(f, nil)
	b := newBrowser(f)
	b.write(c, &Data{Sub: "u=1", Fields: []Field{{Name: "f", Value: bigValue(3 << 10)}}}, false)
	f.Add(b.request().Header.Get("Cookie"))
	for _, s := range sessionSeeds(f, c) {
		f.Add(s.header)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := cookieRequest(header)
		for _, tls := range []bool{false, true} {
			r := over(cookieRequest(header), tls)
			d, err := c.Read(r)
			_, carried := c.Fingerprint(r)
			if err != nil {
				if n := kinds(err, ErrNoCookie, ErrInvalid, ErrExpired, ErrIdle); n != 1 {
					t.Fatalf("Read error %q matches %d of the four kinds, want exactly 1", err, n)
				}
				if !readErrorText.MatchString(err.Error()) {
					t.Fatalf("Read error %q is not fixed text", err)
				}
				if errors.Is(err, ErrNoCookie) == carried {
					t.Fatalf("Read (tls=%v) says %v but Fingerprint says carried=%v", tls, err, carried)
				}
				continue
			}
			if !carried {
				t.Fatalf("Read (tls=%v) decoded a session Fingerprint says is not there", tls)
			}
			if err := c.Check(d); err != nil {
				t.Fatalf("Read returned a session that fails Check: %v", err)
			}
			// What decodes must encode again, to the same session.
			b := newBrowser(t)
			again := *d
			b.write(c, &again, tls)
			got, err := c.Read(b.request())
			if err != nil || !sameData(got, d) {
				t.Fatalf("a decoded session written again reads back as %+v, %v", got, err)
			}
		}
		for _, secure := range []bool{false, true} {
			rec := httptest.NewRecorder()
			c.Clear(rec, r, secure)
			for _, line := range rec.Header().Values("Set-Cookie") {
				if sc, err := http.ParseSetCookie(line); err != nil || sc.MaxAge >= 0 {
					t.Fatalf("Clear set %q, want only deletions", line)
				}
			}
		}
	})
}

func FuzzReadAttempt(f *testing.F) {
	f.Add("", "")
	f.Add("st", "")
	f.Add("st", "sgid_session_login_AAAAAAAAAAAA=x")
	c, _ := newCodec(f, nil)
	for _, s := range attemptSeeds(f, c) {
		f.Add(s.state, s.header)
	}
	f.Fuzz(func(t *testing.T, state, header string) {
		r := cookieRequest(header)
		for _, tls := range []bool{false, true} {
			a, err := c.ReadAttempt(over(cookieRequest(header), tls), state)
			switch {
			case err != nil:
				if n := kinds(err, ErrNoCookie, ErrInvalid, ErrExpired); n != 1 {
					t.Fatalf("ReadAttempt error %q matches %d of the three kinds, want exactly 1", err, n)
				}
				if !readErrorText.MatchString(err.Error()) {
					t.Fatalf("ReadAttempt error %q is not fixed text", err)
				}
			case a.State != state:
				t.Fatalf("ReadAttempt(%q) returned the attempt of state %q", state, a.State)
			case !t0.Before(a.Created.Add(c.attemptTTL)):
				t.Fatalf("ReadAttempt returned an attempt created %v, past its TTL", a.Created)
			}
		}
		if state == "" {
			return
		}

		// A new attempt leaves, with it, at most MaxAttempts of its form within
		// AttemptBudget and none of the other form; it deletes none of its form when
		// they fit already; and it reads back.
		for _, secure := range []bool{false, true} {
			form := formOf(secure)
			keep := c.attemptName(form, state)
			type other struct{ form, size int }
			others := map[string]other{}
			for name, value := range cookiePairs(r.Header) {
				f := -1
				switch {
				case strings.HasPrefix(name, c.loginPrefix[hostForm]):
					f = hostForm
				case strings.HasPrefix(name, c.loginPrefix[plainForm]):
					f = plainForm
				}
				if _, dup := others[name]; f >= 0 && name != keep && !dup && len(others) < maxScannedAttempts {
					others[name] = other{f, len(name) + 1 + len(value)}
				}
			}
			want := &Attempt{State: state, Nonce: "fresh", ReturnTo: "/"}
			rec := httptest.NewRecorder()
			err := c.WriteAttempt(rec, r, want, secure)
			// A state of several hundred bytes may not fit (the gateway's are 43).
			tooLarge := sealedLen(len(marshalAttempt(want))) > attemptLimit(want)
			switch {
			case tooLarge && !errors.Is(err, ErrTooLarge):
				t.Fatalf("WriteAttempt of an attempt that seals past MaxAttemptValue: %v, want ErrTooLarge", err)
			case tooLarge && len(rec.Header().Values("Set-Cookie")) > 0:
				t.Fatal("a refused WriteAttempt set cookies")
			case tooLarge:
				continue
			case err != nil:
				t.Fatalf("WriteAttempt(secure=%v): %v", secure, err)
			}
			var set string
			deleted := map[string]bool{}
			for _, sc := range rec.Result().Cookies() {
				_, isOther := others[sc.Name]
				switch {
				case sc.Name == keep && sc.MaxAge > 0:
					set = sc.Value
				case sc.MaxAge < 0 && isOther:
					deleted[sc.Name] = true
				default:
					t.Fatalf("WriteAttempt set an unexpected cookie %s (Max-Age %d)", sc.Name, sc.MaxAge)
				}
			}
			count, total := 1, len(keep)+1+len(set) // what the browser holds of this form after
			allCount, allTotal, deletedOwn := count, total, 0
			for name, o := range others {
				// Names net/http cannot write cannot be deleted either.
				deletable := (&http.Cookie{Name: name}).Valid() == nil
				switch {
				case o.form != form && deletable && !deleted[name]:
					t.Fatalf("WriteAttempt(secure=%v) kept %s, an attempt of the other form", secure, name)
				case o.form != form:
				case deleted[name]:
					deletedOwn++
					allCount, allTotal = allCount+1, allTotal+o.size
				case deletable:
					count, total = count+1, total+o.size
					allCount, allTotal = allCount+1, allTotal+o.size
				default:
					allCount, allTotal = allCount+1, allTotal+o.size
				}
			}
			if count > c.maxAttempts || total > AttemptBudget {
				t.Fatalf("WriteAttempt(secure=%v) left %d attempts of %d bytes, want at most %d within %d", secure, count, total, c.maxAttempts, AttemptBudget)
			}
			if deletedOwn > 0 && allCount <= c.maxAttempts && allTotal <= AttemptBudget {
				t.Fatalf("WriteAttempt(secure=%v) deleted %d attempts though all %d (%d bytes) fit", secure, deletedOwn, allCount, allTotal)
			}
			// The new cookie comes first, as a browser sends a fresher cookie of a name.
			got, err := c.ReadAttempt(over(cookieRequest(keep+"="+set+"; "+header), secure), state)
			if err != nil || got.Nonce != want.Nonce {
				t.Fatalf("the attempt just written does not read back: %+v, %v", got, err)
			}
		}
	})
}

func FuzzSessionRoundTrip(f *testing.F) {
	f.Add("u=1", "", false, byte(0))
	f.Add("u=2", "myinfo.name\x00TAN AH KOW\x00myinfo.email\x00tan@example.gov.sg", true, byte(1))
	f.Add("u=3", "a\x00\x00\x00b", false, byte(2))
	f.Add("", "x\x00y", false, byte(0))
	f.Add("ü\r\n", "addr\x00"+bigValue(3<<10), true, byte(2))
	f.Add("u=4", "addr\x00"+bigValue(19<<10), false, byte(1))
	c, _ := newCodec(f, nil)
	f.Fuzz(func(t *testing.T, sub, fields string, secure bool, prior byte) {
		d := &Data{Sub: sub, Fields: []Field{}}
		parts := strings.Split(fields, "\x00")
		for i := 0; i+1 < len(parts); i += 2 {
			if j := slices.IndexFunc(d.Fields, func(f Field) bool { return f.Name == parts[i] }); j >= 0 {
				d.Fields[j].Value = parts[i+1] // the last of a name, as a map would keep
			} else {
				d.Fields = append(d.Fields, Field{Name: parts[i], Value: parts[i+1]})
			}
		}
		b := newBrowser(t)
		b.tls = secure
		// A session already in the jar, chunked, under the same name form or the
		// other: its leftover chunks must not change what is read.
		if prior%3 != 0 {
			b.write(c, &Data{Sub: "prior", Fields: []Field{{Name: "x", Value: bigValue(3 << 10)}}}, secure == (prior%3 == 1))
			b.tls = secure
		}
		want := &Data{Sub: d.Sub, Fields: d.Fields}
		rec := httptest.NewRecorder()
		err := c.Write(rec, b.request(), d, secure)
		size := len(marshalSession(d))
		switch {
		case sub == "":
			if err == nil {
				t.Fatal("Write accepted a session without a subject")
			}
			return
		case (size > MaxSessionData) != errors.Is(err, ErrTooLarge):
			t.Fatalf("Write of %d bytes of session data (at most %d fit): %v", size, MaxSessionData, err)
		case size > MaxSessionData:
			return
		case err != nil:
			t.Fatalf("Write of %d bytes of session data: %v", size, err)
		}
		b.apply(rec)
		if n := len(b.names(c.CookieName(secure))); n > MaxChunks {
			t.Fatalf("Write left %d session cookies", n)
		}
		got, err := c.Read(b.request())
		if err != nil {
			t.Fatalf("Read after Write: %v", err)
		}
		want.Created, want.Refreshed, want.ID = t0, t0, d.ID // Write made the id
		if len(got.ID) < IDLen || !sameData(got, want) {
			t.Fatalf("Read returned a different session than was written")
		}
	})
}
