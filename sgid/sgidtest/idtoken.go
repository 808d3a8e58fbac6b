package sgidtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// PairwiseSub is the "sub" the server gives persona personaID at client
// clientID. Like sgID's, it differs between clients and is stable across
// logins and across server instances, so tests can expect a fixed value.
func PairwiseSub(clientID, personaID string) string {
	m := hmac.New(sha256.New, []byte("sgidtest pairwise subject"))
	m.Write([]byte(clientID))
	m.Write([]byte{0})
	m.Write([]byte(personaID))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(m.Sum(nil)[:20]))
}

// atHash is OIDC Core 3.1.3.6's at_hash for RS256: the left half of the
// access token's SHA-256, base64url.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// idToken issues the ID token for a redeemed code, with the ID token faults
// in force applied.
func (s *Server) idToken(code *authCode, accessToken string) (string, error) {
	f, _, _, _ := s.snapshot()
	now := s.now()
	iat := now
	switch {
	case f.ExpiredIDToken:
		iat = now.Add(-time.Hour - s.tokenTTL)
	case f.FutureIDToken:
		iat = now.Add(time.Hour)
	}
	claims := map[string]any{
		"iss":     s.Issuer(),
		"sub":     PairwiseSub(s.client.ID, code.persona),
		"aud":     s.client.ID,
		"iat":     iat.Unix(),
		"exp":     iat.Add(s.tokenTTL).Unix(),
		"at_hash": atHash(accessToken),
	}
	if code.req.nonce != "" {
		claims["nonce"] = code.req.nonce
	}
	if f.WrongIssuer {
		// Same origin, other path: a client comparing only the host, or
		// only a prefix, still notices nothing.
		claims["iss"] = s.URL() + "/v1"
	}
	if f.WrongAudience {
		claims["aud"] = "sgidtest-other-client"
	}
	if f.WrongNonce {
		claims["nonce"] = "sgidtest-wrong-nonce-" + randomHex(8)
	}
	if f.MissingIssuedAt {
		delete(claims, "iat")
	}
	if f.MissingSub {
		delete(claims, "sub")
	}
	if f.WrongATHash {
		claims["at_hash"] = atHash("not-" + accessToken)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding id token claims: %w", err)
	}

	key := s.currentSigningKey()
	switch {
	case f.AlgNone:
		return unsignedJWT(payload), nil
	case f.HS256IDToken:
		return hmacJWT(payload, s.client.Secret, key.kid)
	case f.UnknownKID:
		if key, err = strangerKey(); err != nil {
			return "", err
		}
	}
	token, err := signJWT(payload, key)
	if err != nil {
		return "", err
	}
	if f.BadSignature {
		token = corruptSignature(token)
	}
	return token, nil
}

func signJWT(payload []byte, key signingKey) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key.key, KeyID: key.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("making id token signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing id token: %w", err)
	}
	return jws.CompactSerialize()
}

// unsignedJWT is hand-built: go-jose rightly refuses to make alg "none".
func unsignedJWT(payload []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + "."
}

// hmacJWT signs with the client secret as an HMAC key, the classic
// algorithm-confusion forgery. The kid names the current RSA key so that a
// client picking the key by kid and the algorithm from the header is fooled.
func hmacJWT(payload []byte, secret, kid string) (string, error) {
	if len(secret) >= sha256.Size {
		signer, err := jose.NewSigner(
			jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)},
			// go-jose puts a kid in the header only for asymmetric JWKs.
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
		if err != nil {
			return "", fmt.Errorf("making hs256 signer: %w", err)
		}
		jws, err := signer.Sign(payload)
		if err != nil {
			return "", fmt.Errorf("signing hs256 id token: %w", err)
		}
		return jws.CompactSerialize()
	}
	// go-jose refuses HMAC keys shorter than the hash; a forger would not.
	enc := base64.RawURLEncoding
	header, err := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid})
	if err != nil {
		return "", err
	}
	signingInput := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signingInput))
	return signingInput + "." + enc.EncodeToString(m.Sum(nil)), nil
}

// corruptSignature flips bits in the middle of the signature, keeping its
// length and encoding valid so only the cryptographic check can catch it.
func corruptSignature(token string) string {
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) == 0 {
		return token + "AAAA"
	}
	sig[len(sig)/2] ^= 0xff
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}
