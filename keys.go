package caddysgid

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/caddyserver/certmagic"
	"github.com/sgidproxy/caddy-sgid/internal/gateway"
	"github.com/sgidproxy/caddy-sgid/session"
)

// keyStore generates the gateway's own secrets once and keeps them in Caddy's
// storage, so a reload or restart logs nobody out and every instance sharing
// the storage (file system, Redis, Consul, S3...) shares the keys.
type keyStore struct {
	storage  certmagic.Storage
	ctx      context.Context
	issuer   string // sgID's issuer URL
	clientID string
}

// prefix keeps each sgID client's keys apart, per issuer as well as per client
// id: a staging site pointed at a test IdP with the production client id must
// not share the production site's keys. Issuer and client id are hashed
// (length-prefixed, so no two pairs collide): neither is a secret, but storage
// keys are file names on some backends.
func (k *keyStore) prefix() string {
	return "sgid/" + digest(k.issuer, k.clientID) + "/"
}

// digest is a short hex name for a tuple of strings, each length-prefixed.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// loadOrCreate returns the value under name, making it with create the first
// time. A storage lock makes instances that start together agree on one value:
// the second read, under the lock, sees what another instance made while this
// one waited. Only fs.ErrNotExist (which certmagic.Storage returns for a
// missing key) lets it generate: after any other error the key may well
// exist, and replacing it would log out every user of the instances that
// hold it.
func (k *keyStore) loadOrCreate(name string, create func() ([]byte, error)) ([]byte, error) {
	key := k.prefix() + name
	if v, err := k.storage.Load(k.ctx, key); err == nil {
		return v, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("loading %s: %w", key, err)
	}
	if err := k.storage.Lock(k.ctx, key+".lock"); err != nil {
		return nil, fmt.Errorf("locking %s: %w", key, err)
	}
	defer k.storage.Unlock(context.WithoutCancel(k.ctx), key+".lock")
	switch v, err := k.storage.Load(k.ctx, key); {
	case err == nil:
		return v, nil // another instance made it while this one waited
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("loading %s again under its lock: %w; not generating it, as another instance may just have stored it", key, err)
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	if err := k.storage.Store(k.ctx, key, v); err != nil {
		return nil, fmt.Errorf("storing %s: %w", key, err)
	}
	return v, nil
}

// sessionSecret is 32 random bytes, stored base64url-encoded.
func (k *keyStore) sessionSecret() ([]byte, error) {
	v, err := k.loadOrCreate("session.secret", func() ([]byte, error) {
		return []byte(NewSessionSecret()), nil
	})
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(v))
	if session.CheckSecret("the stored session secret", s) != nil {
		return nil, errors.New("the stored session secret is too short; delete it to have a new one made")
	}
	return []byte(s), nil
}

// signingKey is the ES256 assertion key of one site and audience, stored as
// PKCS#8 PEM: each site has its own key and JWKS, so an assertion minted by one
// site's gateway never verifies against another's keys.
func (k *keyStore) signingKey(s *gateway.Site) (*ecdsa.PrivateKey, error) {
	v, err := k.loadOrCreate("assertion-"+digest(s.Origin(), s.Audience())+".key", func() ([]byte, error) {
		pemText, err := NewSigningKeyPEM()
		return []byte(pemText), err
	})
	if err != nil {
		return nil, err
	}
	return parseECKey(string(v))
}

// NewSessionSecret returns a random session secret: 32 bytes, base64url (43
// characters).
func NewSessionSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NewSigningKeyPEM returns a new ECDSA P-256 private key as PKCS#8 PEM.
func NewSigningKeyPEM() (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// parseECKey reads a P-256 private key from PEM (PKCS#8 or SEC 1), with real or
// escaped newlines. Errors never echo the key.
func parseECKey(text string) (*ecdsa.PrivateKey, error) {
	text = strings.TrimSpace(strings.ReplaceAll(text, `\n`, "\n"))
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("signing_key is not PEM text")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		// The label is not echoed: in a mangled key it can be key text.
		return nil, errors.New("signing_key: the PEM block is not an EC private key (want PRIVATE KEY or EC PRIVATE KEY)")
	}
	if err != nil {
		return nil, errors.New("signing_key: the PEM block does not parse as a private key")
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("signing_key must be an ECDSA P-256 key (ES256)")
	}
	return ec, nil
}

// signingKeys resolves the assertion's keys: the HS256 secret, the configured
// ES256 keys, or the site's key generated into storage.
func (h *Handler) signingKeys(expand func(string, string) (string, error), keys *keyStore, s *gateway.Site) ([]*ecdsa.PrivateKey, []byte, error) {
	if h.SigningSecret != "" {
		secret, err := expand("signing_secret", h.SigningSecret)
		if err != nil {
			return nil, nil, err
		}
		return nil, []byte(secret), nil
	}
	if len(h.SigningKeys) == 0 {
		k, err := keys.signingKey(s)
		if err != nil {
			return nil, nil, fmt.Errorf("assertion signing key from storage: %w", err)
		}
		return []*ecdsa.PrivateKey{k}, nil, nil
	}
	var ecKeys []*ecdsa.PrivateKey
	for i, text := range h.SigningKeys {
		v, err := expand(fmt.Sprintf("signing_key #%d", i+1), text)
		if err != nil {
			return nil, nil, err
		}
		k, err := parseECKey(v)
		if err != nil {
			return nil, nil, fmt.Errorf("signing_key #%d: %w", i+1, err)
		}
		ecKeys = append(ecKeys, k)
	}
	return ecKeys, nil, nil
}
