package session

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/internal/fuzzcorpus"
)

var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite the codec-made seeds in testdata/fuzz/")

type sessionSeed struct{ name, header string }

// sessionSeeds are Cookie headers holding sessions the codec made: valid ones, and
// the same chunks reordered, repeated, renamed and cut.
func sessionSeeds(t testing.TB, c *Codec) []sessionSeed {
	small := newBrowser(t)
	small.write(c, typicalData(), false)
	host := newBrowser(t)
	host.write(c, typicalData(), true)
	big := newBrowser(t)
	big.write(c, &Data{Sub: "u=big", Fields: []Field{{Name: "myinfo.registered_address", Value: bigValue(3 << 10)}, {Name: "myinfo.name", Value: "Ñandú"}}}, false)
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
		forms[formOf(secure)].startLogin(c, newAttempt("tab-"+strconv.Itoa(i)), secure)
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
