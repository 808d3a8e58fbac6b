package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sgidproxy/caddy-sgid/session"
)

// signer makes the assertion: a JWT carrying sub and the forwarded fields, for
// upstreams that verify instead of trusting the network path.
type signer struct {
	sign jose.Signer
	jwks []byte // the public keys as a JWK Set; nil for HS256
}

// newSigner signs with the HS256 secret if there is one, else with the first
// ES256 key, publishing every key's public half.
func newSigner(ecKeys []*ecdsa.PrivateKey, secret []byte) (*signer, error) {
	if secret != nil {
		if err := session.CheckSecret("signing_secret", string(secret)); err != nil {
			return nil, err
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
			(&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			return nil, fmt.Errorf("signing_secret: %w", err)
		}
		return &signer{sign: s}, nil
	}
	if len(ecKeys) == 0 {
		return nil, errors.New("no assertion signing key")
	}
	set := jose.JSONWebKeySet{}
	for _, k := range ecKeys {
		kid, err := KeyID(&k.PublicKey)
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ecKeys[0]},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", set.Keys[0].KeyID))
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return &signer{sign: s, jwks: jwks}, nil
}

// KeyID is the kid of an ES256 signing key, in the JWKS and the assertion's
// header: the base64url JWK thumbprint (RFC 7638, SHA-256) of its public key.
// Exported so that what an instance logs about its keys is the kid apps see.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	thumb, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(thumb), nil
}

// assertion signs the claims for one session, valid from now for ttl.
func (s *signer) assertion(d *session.Data, fields []Forward, issuer, audience string, now time.Time, ttl time.Duration) (string, error) {
	claims := make(map[string]any, len(fields)+5)
	for _, f := range fields {
		if v, ok := d.Fields[f.Field]; ok {
			claims[f.Field] = v
		}
	}
	claims["iss"] = issuer
	claims["aud"] = audience
	claims["sub"] = d.Sub
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(ttl).Unix()
	out, err := jwt.Signed(s.sign).Claims(claims).Serialize()
	if err != nil {
		return "", errors.New("signing the assertion failed")
	}
	return out, nil
}
