package session

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/internal/fuzzcorpus"
)

// The fuzz targets use newCodec: secret(1) and a clock stopped at t0, so the cookies
// in testdata/fuzz stay valid for ever and the fuzzer starts from sessions that decode.
// go test -update-fuzz-corpus ./session rewrites the codec-made seeds there.

var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite the codec-made seeds in testdata/fuzz/")

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
	b.write(c, &Data{Sub: "u=1", Fields: map[string]string{"f": bigValue(3 << 10)}}, false)
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
			tooLarge := sealedLen(len(marshalAttempt(want))) > MaxAttemptValue
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
		d := &Data{Sub: sub, Fields: map[string]string{}}
		parts := strings.Split(fields, "\x00")
		for i := 0; i+1 < len(parts); i += 2 {
			d.Fields[parts[i]] = parts[i+1]
		}
		b := newBrowser(t)
		b.tls = secure
		// A session already in the jar, chunked, under the same name form or the
		// other: its leftover chunks must not change what is read.
		if prior%3 != 0 {
			b.write(c, &Data{Sub: "prior", Fields: map[string]string{"x": bigValue(3 << 10)}}, secure == (prior%3 == 1))
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
		want.Created, want.Refreshed = t0, t0
		if !sameData(got, want) {
			t.Fatalf("Read returned a different session than was written")
		}
	})
}

type sessionSeed struct{ name, header string }

// sessionSeeds are Cookie headers holding sessions the codec made: valid ones, and
// the same chunks reordered, repeated, renamed and cut.
func sessionSeeds(t testing.TB, c *Codec) []sessionSeed {
	small := newBrowser(t)
	small.write(c, typicalData(), false)
	host := newBrowser(t)
	host.write(c, typicalData(), true)
	big := newBrowser(t)
	big.write(c, &Data{Sub: "u=big", Fields: map[string]string{"myinfo.registered_address": bigValue(3 << 10), "myinfo.name": "Ñandú"}}, false)
	header := func(b *browser, names ...string) string {
		var parts []string
		for _, n := range names {
			parts = append(parts, n+"="+b.jar[n])
		}
		return strings.Join(parts, "; ")
	}
	names := c.chunkNames[plainForm][:len(big.jar)] // MaxChunks chunks
	n0, h0 := names[0], c.chunkNames[hostForm][0]
	return []sessionSeed{
		{"valid-one-chunk", header(small, n0)},
		{"valid-host-prefixed", header(host, h0)},
		{"valid-chunked", header(big, names...)},
		{"valid-chunks-reordered", header(big, names[1], names[0])},
		{"valid-both-forms", header(host, h0) + "; " + header(small, n0)},
		{"valid-across-header-lines", header(big, names[:1]...) + "\n" + header(big, names[1:]...)},
		{"chunk-missing", header(big, names[0])},
		{"chunks-from-two-sessions", header(big, names[0]) + "; " + names[1] + "=" + small.jar[n0]},
		{"host-value-under-plain-name", n0 + "=" + host.jar[h0]},
		{"first-chunk-count-cut", n0 + "=" + strings.TrimPrefix(small.jar[n0], "1.")},
	}
}

// roundTripSeeds are sessions shaped like sgID's data: sub, myinfo fields with
// multi-line addresses, stringified JSON and non-ASCII names.
var roundTripSeeds = []struct {
	name, sub, fields string
	secure            bool
	prior             byte
}{
	{"persona-fields", "u=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", strings.Join([]string{
		"myinfo.name", "TAN AH KOW", "myinfo.nric_number", "S1234567D",
		"myinfo.registered_address", "BLK 123\nANG MO KIO AVENUE 3\n#12-34\nSINGAPORE 560123",
		"myinfo.child_records", `[{"name":"TAN XIAO MING","birth_certificate_number":"T1234567J"}]`,
	}, "\x00"), true, 0},
	{"non-ascii-over-old-chunks", "u=ñ", "myinfo.name\x00Nguyễn Thị 阮氏\r\nO'Brien\x00myinfo.email\x00", false, 1},
	{"chunked-over-other-form", "u=big", "myinfo.registered_address\x00" + strings.Repeat("Ünit #01-02, 新加坡\n", 150), false, 2},
}

type attemptSeed struct{ name, state, header string }

// attemptSeeds are states and Cookie headers holding attempts the codec made.
func attemptSeeds(t testing.TB, c *Codec) []attemptSeed {
	// Odd tabs log in over HTTPS, even ones over HTTP: each transport's writes
	// delete the other form's attempts, so the two are kept apart, then joined.
	forms := [2]*browser{newBrowser(t), newBrowser(t)}
	for i := range 7 {
		secure := i%2 == 1
		b := forms[formOf(secure)]
		b.tls = secure
		rec := httptest.NewRecorder()
		if err := c.WriteAttempt(rec, b.request(), newAttempt("tab-"+strconv.Itoa(i)), secure); err != nil {
			t.Fatal(err)
		}
		b.apply(rec)
	}
	b := forms[plainForm].clone()
	maps.Copy(b.jar, forms[hostForm].jar)
	var all []string
	for name, value := range b.jar {
		all = append(all, name+"="+value)
	}
	one := c.attemptName(plainForm, "tab-4")
	return []attemptSeed{
		{"valid-one", "tab-4", one + "=" + b.jar[one]},
		{"valid-among-tabs", "tab-3", strings.Join(all, "; ")},
		{"wrong-state", "tab-5", one + "=" + b.jar[one]},
		{"value-under-other-name", "tab-2", c.attemptName(plainForm, "tab-2") + "=" + b.jar[one]},
		{"many-tabs-one-line-each", "tab-9", strings.Join(all, "\n")},
	}
}

// TestFuzzCorpusValidSeedsStillDecode guards the committed seeds: a change to the
// cookie format would leave the fuzzer starting from cookies that no longer decode.
func TestFuzzCorpusValidSeedsStillDecode(t *testing.T) {
	c, _ := newCodec(t, nil)
	if *updateFuzzCorpus {
		for _, s := range sessionSeeds(t, c) {
			fuzzcorpus.Write(t, "FuzzRead", s.name, s.header)
		}
		for _, s := range attemptSeeds(t, c) {
			fuzzcorpus.Write(t, "FuzzReadAttempt", s.name, s.state, s.header)
		}
		for _, s := range roundTripSeeds {
			fuzzcorpus.Write(t, "FuzzSessionRoundTrip", s.name, s.sub, s.fields, s.secure, s.prior)
		}
	}
	check := func(target string, decode func(args []string) error) {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "valid-*"))
		if len(files) == 0 {
			t.Errorf("no valid-* seeds for %s: run go test -update-fuzz-corpus ./session", target)
		}
		for _, file := range files {
			if err := decode(fuzzcorpus.Read(t, file)); err != nil {
				t.Errorf("%s no longer decodes (%v): run go test -update-fuzz-corpus ./session", file, err)
			}
		}
	}
	// A seed is decoded over each transport whose name form it carries: over TLS
	// the __Host- form, over plain HTTP the plain one.
	check("FuzzRead", func(args []string) error {
		return decodeOverCarriedForms(func(tls bool) (bool, error) {
			var k carried
			c.scan(cookieRequest(args[0]), &k)
			_, err := c.Read(over(cookieRequest(args[0]), tls))
			return k.seen[formOf(tls)]&1 != 0, err
		})
	})
	check("FuzzReadAttempt", func(args []string) error {
		return decodeOverCarriedForms(func(tls bool) (bool, error) {
			name := c.attemptName(formOf(tls), args[0])
			_, err := c.ReadAttempt(over(cookieRequest(args[1]), tls), args[0])
			carries := false
			for n := range cookiePairs(cookieRequest(args[1]).Header) {
				carries = carries || n == name
			}
			return carries, err
		})
	})
}

// decodeOverCarriedForms runs decode over plain HTTP and over TLS, and fails unless
// it decodes wherever the seed carries that transport's name form, and somewhere.
func decodeOverCarriedForms(decode func(tls bool) (carries bool, err error)) error {
	some := false
	for _, tls := range []bool{false, true} {
		carries, err := decode(tls)
		if !carries {
			continue
		}
		if err != nil {
			return fmt.Errorf("tls=%v: %w", tls, err)
		}
		some = true
	}
	if !some {
		return errors.New("the seed carries neither name form")
	}
	return nil
}
