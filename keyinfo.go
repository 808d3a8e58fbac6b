package caddysgid

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
)

// fingerprintInfo separates the fingerprint from every key the session
// package derives from the same secret (its HKDF infos differ).
const fingerprintInfo = "caddy-sgid session secret fingerprint v1"

// fingerprint names a secret without helping anyone guess it: 8 bytes of
// SHA-256 over a key HKDF derives from the secret for this use alone, as
// base64url (11 characters whatever the secret). Any two instances holding the
// same secret print the same fingerprint, whatever their version.
func fingerprint(secret []byte) string {
	derived, err := hkdf.Key(sha256.New, secret, nil, fingerprintInfo, sha256.Size)
	if err != nil {
		panic("hkdf: " + err.Error()) // only for an output longer than 255 hashes
	}
	sum := sha256.Sum256(derived)
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}
