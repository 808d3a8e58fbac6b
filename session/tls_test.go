package session

import (
	"errors"
	"testing"
)

// The transport alone picks the name form. Over TLS only __Host- cookies count: a
// plain-named one may have been set by a sibling subdomain, with a session minted
// by a plain-HTTP site sharing secrets. Over plain HTTP only plain names count: a
// browser sends __Host- cookies only over HTTPS, so one arriving over HTTP is a
// replay of the HTTPS site's session. Fingerprint agrees with Read.
func TestNameFormIsStrictlyByTransport(t *testing.T) {
	c, _ := newCodec(t, nil)
	plain, host := newBrowser(t), newBrowser(t)
	plain.write(c, &Data{Sub: "plain"}, false)
	plain.startLogin(c, newAttempt("plain-tab"), false)
	host.write(c, &Data{Sub: "host"}, true)
	host.startLogin(c, newAttempt("host-tab"), true)
	both := plain.clone()
	for k, v := range host.jar {
		both.jar[k] = v
	}
	tests := []struct {
		name    string
		jar     *browser
		tls     bool
		wantSub string // "": no session
		wantTab string // "": no attempt
	}{
		{"plain cookies over plain HTTP", plain, false, "plain", "plain-tab"},
		{"plain cookies over TLS", plain, true, "", ""},
		{"__Host- cookies over TLS", host, true, "host", "host-tab"},
		{"__Host- cookies over plain HTTP", host, false, "", ""},
		{"both forms over TLS", both, true, "host", "host-tab"},
		{"both forms over plain HTTP", both, false, "plain", "plain-tab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.jar.clone()
			b.tls = tt.tls
			d, err := c.Read(b.request())
			switch {
			case tt.wantSub == "" && !errors.Is(err, ErrNoCookie):
				t.Errorf("Read = %v, %v; want ErrNoCookie", d, err)
			case tt.wantSub != "" && (err != nil || d.Sub != tt.wantSub):
				t.Errorf("Read = %v, %v; want the session of %q", d, err, tt.wantSub)
			}
			sum, ok := c.Fingerprint(b.request())
			if ok != (tt.wantSub != "") {
				t.Errorf("Fingerprint ok = %v, want %v as Read", ok, tt.wantSub != "")
			}
			if ok && tt.wantSub != "" {
				only := map[string]*browser{"plain": plain, "host": host}[tt.wantSub].clone()
				only.tls = tt.tls
				if want, _ := c.Fingerprint(only.request()); sum != want {
					t.Error("Fingerprint covers other cookies than the ones Read decodes")
				}
			}
			for _, tab := range []string{"plain-tab", "host-tab"} {
				a, err := c.ReadAttempt(b.request(), tab)
				switch {
				case tab != tt.wantTab && !errors.Is(err, ErrNoCookie):
					t.Errorf("ReadAttempt(%s) = %v, %v; want ErrNoCookie", tab, a, err)
				case tab == tt.wantTab && err != nil:
					t.Errorf("ReadAttempt(%s): %v", tab, err)
				}
			}
		})
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
