package caddysgid

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// A fingerprint names a secret the same way every time and in every release
// (the pinned value: instances of two versions must print the same), differs
// between secrets, has one length whatever the secret, and is neither the
// secret nor a plain hash of it.
func TestFingerprintIsStableDistinctAndRevealsNothing(t *testing.T) {
	const pinned = "0123456789abcdef0123456789abcdef0123456789a"
	if got, want := fingerprint([]byte(pinned)), "JLYbHi_VKHA"; got != want {
		t.Errorf("fingerprint(pinned secret) = %s, want %s: every instance of every version must agree", got, want)
	}
	seen := map[string]string{}
	for _, secret := range []string{pinned, pinned + "b", strings.Repeat("x", 32), strings.Repeat("x", 33), NewSessionSecret(), NewSessionSecret(), strings.Repeat("long", 1000)} {
		fp := fingerprint([]byte(secret))
		if again := fingerprint([]byte(secret)); again != fp {
			t.Errorf("two fingerprints of one secret: %s, %s", fp, again)
		}
		if len(fp) != 11 {
			t.Errorf("fingerprint %q is %d characters, want 11 (8 bytes, base64url) for every secret", fp, len(fp))
		}
		if other, ok := seen[fp]; ok && other != secret {
			t.Errorf("two secrets share the fingerprint %s", fp)
		}
		seen[fp] = secret
		plain := sha256.Sum256([]byte(secret))
		if strings.Contains(secret, fp) || fp == base64.RawURLEncoding.EncodeToString(plain[:8]) {
			t.Errorf("fingerprint %s is part of the secret or of its plain SHA-256", fp)
		}
	}
}
