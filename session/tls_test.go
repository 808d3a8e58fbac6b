package session

import (
	"crypto/tls"
	"errors"
	"net/http/httptest"
	"testing"
)

// Over TLS only __Host- cookies count: a plain-named one may have been set by a
// sibling subdomain, with a session minted by a plain-HTTP site sharing secrets.
func TestOverTLSPlainNamedCookiesAreNoSession(t *testing.T) {
	c, _ := newCodec(t, nil)
	b := newBrowser(t)
	b.write(c, typicalData(), false)
	rec := httptest.NewRecorder()
	if err := c.WriteAttempt(rec, b.request(), &Attempt{State: "st", Nonce: "n", CodeVerifier: "v", RedirectURI: "http://x/cb", ReturnTo: "/"}, false); err != nil {
		t.Fatal(err)
	}
	b.apply(rec)

	plain := b.request()
	if _, err := c.Read(plain); err != nil {
		t.Fatalf("over plain HTTP the plain-named session should read: %v", err)
	}
	if _, err := c.ReadAttempt(plain, "st"); err != nil {
		t.Fatalf("over plain HTTP the plain-named attempt should read: %v", err)
	}
	overTLS := b.request()
	overTLS.TLS = &tls.ConnectionState{}
	if _, err := c.Read(overTLS); !errors.Is(err, ErrNoCookie) {
		t.Errorf("Read over TLS of a plain-named session: %v, want ErrNoCookie", err)
	}
	if _, ok := c.Fingerprint(overTLS); ok {
		t.Error("Fingerprint over TLS took a plain-named session")
	}
	if _, err := c.ReadAttempt(overTLS, "st"); !errors.Is(err, ErrNoCookie) {
		t.Errorf("ReadAttempt over TLS of a plain-named attempt: %v, want ErrNoCookie", err)
	}
}
