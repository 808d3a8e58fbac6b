package sgidtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// signingKey is one ID token signing key; the JWKS publishes its public half.
type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

func newSigningKey() (signingKey, error) {
	k, err := NewRSAKey()
	if err != nil {
		return signingKey{}, err
	}
	return signingKey{kid: "sgidtest-" + randomHex(8), key: k}, nil
}

// RotateSigningKey makes a new signing key current and returns its kid. The
// old keys stay in the JWKS, as a real server keeps them during a rotation,
// until RetireOldSigningKeys. If no key can be made, the keys stay as they
// were.
func (s *Server) RotateSigningKey() (kid string, err error) {
	k, err := newSigningKey()
	if err != nil {
		return "", fmt.Errorf("rotating signing key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
	return k.kid, nil
}

// RetireOldSigningKeys drops every key but the current one from the JWKS, so
// ID tokens signed before the last rotation no longer verify.
func (s *Server) RetireOldSigningKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = s.keys[len(s.keys)-1:]
}

// SigningKeyIDs returns the kids in the JWKS, oldest first; the last one
// signs new ID tokens.
func (s *Server) SigningKeyIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.keys))
	for i, k := range s.keys {
		ids[i] = k.kid
	}
	return ids
}

func (s *Server) currentSigningKey() signingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1]
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(s.keys))}
	for i, k := range s.keys {
		// No Algorithm: the real server's keys carry no "alg" member, and
		// a client that insists on one must fail here, not in production.
		set.Keys[i] = jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: k.kid, Use: "sig"}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// strangerKey is a key that belongs to no server or client: it signs
// UnknownKID tokens and receives KeyForOtherClient JWEs. One per process
// suffices because NewRSAKey never hands it to anyone else.
var strangerKey = sync.OnceValues(func() (signingKey, error) {
	k, err := newSigningKey()
	if err != nil {
		return signingKey{}, err
	}
	k.kid = "sgidtest-unknown-" + randomHex(8)
	return k, nil
})

// thumbprint is the RFC 7638 SHA-256 thumbprint of a public key, base64url;
// ProfileObserved uses it as the kid of the client's encryption key.
func thumbprint(pub *rsa.PublicKey) string {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		// Only unsupported key types fail, and this is always RSA.
		panic(fmt.Sprintf("sgidtest: thumbprint: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// EncodePKCS1 returns k as a PEM "RSA PRIVATE KEY" block, the form sgID's
// developer portal hands out.
func EncodePKCS1(k *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// EncodePKCS8 returns k as a PEM "PRIVATE KEY" block, the form the SDKs
// convert keys to.
func EncodePKCS8(k *rsa.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		// Only unsupported key types fail, and this is always RSA.
		panic(fmt.Sprintf("sgidtest: marshalling pkcs8: %v", err))
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// randomToken returns n random bytes as base64url, for codes, tokens and
// pending-consent ids.
func randomToken(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))
}

func randomHex(n int) string {
	return hex.EncodeToString(randomBytes(n))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	// crypto/rand.Read never fails on supported platforms (it panics itself).
	_, _ = rand.Read(b)
	return b
}
