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

// A session only an old secret opens asks to be resealed, so every user seen
// while secrets rotate moves to the new one before the old one is removed.
func TestSessionOpenedByAnOldSecretNeedsRefresh(t *testing.T) {
	old, _ := newCodec(t, nil)
	b := newBrowser(t)
	b.write(old, typicalData(), false)

	rotating, _ := newCodec(t, func(c *Config) { c.Secrets = [][]byte{secret(9), c.Secrets[0]} })
	d, err := rotating.Read(b.request())
	if err != nil {
		t.Fatalf("the old secret no longer opens the session during rotation: %v", err)
	}
	if !rotating.NeedsRefresh(d) {
		t.Fatal("a session opened by an old secret does not ask to be resealed")
	}
	b.write(rotating, d, false)
	d, err = rotating.Read(b.request())
	if err != nil || rotating.NeedsRefresh(d) {
		t.Fatalf("after the reseal: err %v, still needs refresh %v", err, err == nil && rotating.NeedsRefresh(d))
	}
	rotated, _ := newCodec(t, func(c *Config) { c.Secrets = [][]byte{secret(9)} })
	if _, err := rotated.Read(b.request()); err != nil {
		t.Errorf("the resealed session does not open with the new secret alone: %v", err)
	}
}
