package session

import (
	"net/http"
	"testing"
)

// benchRequest is a request carrying a typical session (a subject and three short
// fields) among a few unrelated cookies, as a browser would send it.
func benchRequest(b *testing.B, c *Codec, data *Data) *http.Request {
	br := newBrowser(b)
	br.write(c, data, true)
	r := br.request()
	r.Header.Set("Cookie", "_ga=GA1.1.123456789.1700000000; theme=dark; "+r.Header.Get("Cookie")+"; lang=en")
	return r
}

func BenchmarkRead(b *testing.B) {
	for _, bc := range []struct {
		name    string
		secrets [][]byte
		data    *Data
	}{
		{"typical", [][]byte{secret(1)}, typicalData()},
		{"typical/sealed_with_second_secret", [][]byte{secret(2), secret(1)}, typicalData()},
		{"3KB_chunked", [][]byte{secret(1)}, &Data{Sub: "u=1", Fields: []Field{{Name: "address", Value: bigValue(3 << 10)}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			writer, _ := newCodec(b, nil)
			c, _ := newCodec(b, func(cfg *Config) { cfg.Secrets = bc.secrets })
			r := benchRequest(b, writer, bc.data)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Read(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWrite(b *testing.B) {
	c, _ := newCodec(b, nil)
	d := typicalData()
	r := benchRequest(b, c, d)
	w := discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		if err := c.Write(w, r, d, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFingerprint(b *testing.B) {
	c, _ := newCodec(b, nil)
	r := benchRequest(b, c, typicalData())
	b.ReportAllocs()
	for b.Loop() {
		c.Fingerprint(r)
	}
}

// discardWriter is a ResponseWriter that keeps headers only, so BenchmarkWrite
// measures the codec rather than httptest's recorder.
type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w discardWriter) WriteHeader(int)             {}
