package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Options say what a valid assertion is.
type Options struct {
	// Issuer is the gateway site's origin, e.g. https://app.example.gov.sg.
	Issuer string
	// Audience is the gateway's `audience`, or by default the site's host
	// (app.example.gov.sg).
	Audience string
	// Keys verifies ES256 assertions with the gateway's published keys. Give
	// Keys or Secret, not both.
	Keys *RemoteKeySet
	// Secret verifies HS256 assertions (the gateway's signing_secret).
	Secret []byte
	// Leeway tolerates clock differences on exp and iat. Default: 30s.
	Leeway time.Duration
}

// ErrInvalid is wrapped by every error that means "do not trust this request".
var ErrInvalid = errors.New("invalid assertion")

// Verify checks an X-Sgid-Assertion header value: the algorithm (ES256 with
// Keys, HS256 with Secret, nothing else), the signature, iss, aud, exp and iat.
// It returns all the claims: sub, and each forwarded field by its name
// ("myinfo.name").
func Verify(ctx context.Context, token string, o Options) (map[string]any, error) {
	if (o.Keys == nil) == (len(o.Secret) == 0) {
		return nil, errors.New("verify: give Keys or Secret")
	}
	alg := jose.ES256
	if o.Keys == nil {
		alg = jose.HS256
	}
	// The allowlist is what stops "alg": "none" and algorithm confusion.
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{alg})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var key any = o.Secret
	if o.Keys != nil {
		pub, err := o.Keys.Key(ctx, tok.Headers[0].KeyID)
		if err != nil {
			return nil, err
		}
		key = pub
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(key, &std, &all); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if std.Expiry == nil || std.IssuedAt == nil || std.Subject == "" {
		return nil, fmt.Errorf("%w: exp, iat and sub are required", ErrInvalid)
	}
	leeway := o.Leeway
	if leeway == 0 {
		leeway = 30 * time.Second
	}
	want := jwt.Expected{Issuer: o.Issuer, AnyAudience: jwt.Audience{o.Audience}, Time: time.Now()}
	if err := std.ValidateWithLeeway(want, leeway); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return all, nil
}

// RemoteKeySet is the gateway's public keys, fetched from
// https://<site>/.sgid/jwks.json and cached. A key id it does not know makes it
// fetch again (the gateway rotated its key), at most every MinRefresh.
type RemoteKeySet struct {
	URL    string
	Client *http.Client // default: a client with a 10s timeout
	// MaxAge is how long fetched keys are used. Default: 5m.
	MaxAge time.Duration
	// MinRefresh is the least time between two fetches. Default: 10s.
	MinRefresh time.Duration

	mu      sync.Mutex
	keys    map[string]*ecdsa.PublicKey
	fetched time.Time
}

// Key returns the P-256 public key with this key id.
func (s *RemoteKeySet) Key(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	if kid == "" {
		return nil, fmt.Errorf("%w: no kid in the header", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	maxAge, minRefresh := s.MaxAge, s.MinRefresh
	if maxAge == 0 {
		maxAge = 5 * time.Minute
	}
	if minRefresh == 0 {
		minRefresh = 10 * time.Second
	}
	age := time.Since(s.fetched)
	if k, ok := s.keys[kid]; ok && age < maxAge {
		return k, nil
	}
	if s.keys == nil || age >= minRefresh {
		keys, err := s.fetch(ctx)
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", s.URL, err)
		}
		s.keys, s.fetched = keys, time.Now()
	}
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: unknown kid %q", ErrInvalid, kid)
}

func (s *RemoteKeySet) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, err
	}
	keys := map[string]*ecdsa.PublicKey{}
	for _, k := range set.Keys {
		pub, ok := k.Key.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() || (k.Algorithm != "" && k.Algorithm != string(jose.ES256)) || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys[k.KeyID] = pub
	}
	return keys, nil
}
