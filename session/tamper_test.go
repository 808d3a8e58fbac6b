package session

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// flip changes one character in the middle of v, where every bit of a base64
// character counts.
func flip(v string) string {
	i := len(v) / 2
	c := byte('A')
	if v[i] == 'A' {
		c = 'B'
	}
	return v[:i] + string(c) + v[i+1:]
}

func TestReadRejectsTampering(t *testing.T) {
	c, _ := newCodec(t, nil)
	victim := newBrowser(t)
	victim.write(c, &Data{Sub: "victim-sub", Fields: []Field{{Name: "address", Value: bigValue(3 << 10)}}}, false)
	other := newBrowser(t)
	other.write(c, &Data{Sub: "other-sub", Fields: []Field{{Name: "address", Value: bigValue(3 << 10)}}}, false)
	n := len(victim.jar)
	if n != MaxChunks || len(other.jar) != n {
		t.Fatalf("setup: sessions of %d and %d chunks, want %d", n, len(other.jar), MaxChunks)
	}
	name := func(i int) string { return c.chunkNames[plainForm][i] }
	recount := func(jar map[string]string, count string) {
		_, rest, _ := strings.Cut(jar[name(0)], ".")
		jar[name(0)] = count + rest
	}
	attempt := newBrowser(t)
	attempt.startLogin(c, &Attempt{State: "st"}, false)

	type tamper struct {
		name string
		edit func(jar map[string]string)
	}
	tests := []tamper{
		{"last chunk truncated", func(j map[string]string) { j[name(n-1)] = j[name(n-1)][:len(j[name(n-1)])-8] }},
		{"first chunk truncated", func(j map[string]string) { j[name(0)] = j[name(0)][:40] }},
		{"last chunk missing", func(j map[string]string) { delete(j, name(n-1)) }},
		{"last chunk empty", func(j map[string]string) { j[name(n-1)] = "" }},
		{"chunks reordered, count kept first", func(j map[string]string) {
			count, first, _ := strings.Cut(j[name(0)], ".")
			j[name(0)], j[name(1)] = count+"."+j[name(1)], first
		}},
		{"chunk swapped in from another session", func(j map[string]string) { j[name(1)] = other.jar[name(1)] }},
		{"first chunk swapped in from another session", func(j map[string]string) { j[name(0)] = other.jar[name(0)] }},
		{"count lowered", func(j map[string]string) { recount(j, strconv.Itoa(n-1)+".") }},
		{"count raised with an extra chunk", func(j map[string]string) {
			recount(j, strconv.Itoa(n+1)+".")
			j[name(n)] = other.jar[name(n-1)]
		}},
		{"count removed", func(j map[string]string) { recount(j, "") }},
		{"count zero", func(j map[string]string) { recount(j, "0.") }},
		{"count past MaxChunks", func(j map[string]string) {
			recount(j, strconv.Itoa(MaxChunks+1)+".")
			j[name(n)] = other.jar[name(n-1)]
		}},
		{"count of the previous release's ten", func(j map[string]string) { recount(j, "10.") }},
		{"count not a number", func(j map[string]string) { recount(j, "x.") }},
		{"login attempt value as the session", func(j map[string]string) {
			clear(j)
			for _, v := range attempt.jar {
				j[name(0)] = "1." + v
			}
		}},
	}
	for i := range n {
		tests = append(tests, tamper{"bit flip in chunk " + strconv.Itoa(i), func(j map[string]string) { j[name(i)] = flip(j[name(i)]) }})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := victim.clone()
			tt.edit(b.jar)
			d, err := c.Read(b.request())
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Read = %v, %v; want ErrInvalid", d, err)
			}
			msg := err.Error()
			if strings.Contains(msg, "victim") || strings.Contains(msg, "línea") {
				t.Errorf("error %q holds session data", msg)
			}
			for _, v := range b.jar {
				if len(v) > 8 && strings.Contains(msg, v[len(v)/2:len(v)/2+8]) {
					t.Errorf("error %q holds cookie contents", msg)
				}
			}
		})
	}
}

func TestReadRejectsGarbage(t *testing.T) {
	c, _ := newCodec(t, nil)
	forged := base64.URLEncoding.EncodeToString([]byte("1767225600|" +
		base64.URLEncoding.EncodeToString([]byte("0123456789abcdefghij")) + "|" + strings.Repeat("m", 32)))
	many := make([]string, 2000)
	for i := range many {
		many[i] = "sgid_session_" + strconv.Itoa(i%9+1) + "=" + strings.Repeat("A", 500)
	}
	tests := []struct {
		name   string
		header string
		want   error
	}{
		{"no cookies of ours", "other=1; sgid_sessionx=2", ErrNoCookie},
		{"only a later chunk", "sgid_session_1=AAAA", ErrNoCookie},
		{"no value", "sgid_session", ErrInvalid},
		{"empty value", "sgid_session=", ErrInvalid},
		{"plain text", "sgid_session=hello", ErrInvalid},
		{"count and text", "sgid_session=1.hello world", ErrInvalid},
		{"count only", "sgid_session=1.", ErrInvalid},
		{"not base64", "sgid_session=1.%%%%****", ErrInvalid},
		{"padding only", "sgid_session=1.====", ErrInvalid},
		{"quoted", `sgid_session="1.AAAA"`, ErrInvalid},
		{"negative count", "sgid_session=-1.AAAA", ErrInvalid},
		{"huge count", "sgid_session=99999999999999999999.AAAA", ErrInvalid},
		{"forged structure without the key", "sgid_session=1." + forged, ErrInvalid},
		{"oversized first chunk", "sgid_session=1." + strings.Repeat("A", 100_000), ErrInvalid},
		{"oversized later chunk", "sgid_session=2.AAAA; sgid_session_1=" + strings.Repeat("A", 100_000), ErrInvalid},
		{"huge header of chunks", "sgid_session=10.AAAA; " + strings.Join(many, "; "), ErrInvalid},
		{"control bytes", "sgid_session=1.\x00\x01\xff", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Cookie", tt.header)
			if _, err := c.Read(r); !errors.Is(err, tt.want) {
				t.Errorf("Read err = %v, want %v", err, tt.want)
			}
		})
	}
}
