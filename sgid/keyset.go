package sgid

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// keySet is sgID's JWKS, cached. It implements go-oidc's KeySet. A token whose kid
// is not in the cache causes one refetch (the OpenID Connect way of learning about
// a rotation), no more often than minRefresh; concurrent refetches are merged.
//
// go-oidc's RemoteKeySet is not used because it neither bounds the JWKS body nor
// rate-limits refetches, and its errors lose their type.
type keySet struct {
	client     *Client
	minRefresh time.Duration

	cache atomic.Pointer[jwksSnapshot]
	mu    sync.Mutex // serialises fetches
}

type jwksSnapshot struct {
	keys    map[string]*rsa.PublicKey // by kid; "" for a key without one
	fetched time.Time
}

// maxJWKSAge bounds how long a key set is trusted without a refetch, so a key sgID
// withdrew stops verifying within a day even if no new kid appears.
const maxJWKSAge = 24 * time.Hour

// sigFailure carries a typed signature-verification failure past go-oidc, which
// formats the KeySet's error with %v and so drops its type.
type sigFailure struct{ err error }

type sigFailureKey struct{}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	payload, err := k.verifySignature(ctx, raw)
	if err != nil {
		if slot, ok := ctx.Value(sigFailureKey{}).(*sigFailure); ok {
			slot.err = err
		}
		return nil, err
	}
	return payload, nil
}

func (k *keySet) verifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, &IDTokenError{Reason: "not an RS256-signed JWT", Err: err}
	}
	if len(jws.Signatures) != 1 {
		return nil, &IDTokenError{Reason: "not exactly one signature"}
	}
	kid := jws.Signatures[0].Header.KeyID

	snap := k.cache.Load()
	if snap == nil || len(snap.candidates(kid)) == 0 || k.client.now().Sub(snap.fetched) > maxJWKSAge {
		if snap, err = k.refresh(ctx, kid); err != nil {
			return nil, err
		}
	}
	candidates := snap.candidates(kid)
	if len(candidates) == 0 {
		return nil, &IDTokenError{Reason: "signed with a key that is not in sgID's JWKS"}
	}
	for _, pub := range candidates {
		if payload, err := jws.Verify(pub); err == nil {
			return payload, nil
		}
	}
	return nil, &IDTokenError{Reason: "signature does not verify"}
}

// candidates are the keys that may have signed a token with this kid: the one key
// with that id, or, for a token without a kid, every key.
func (s *jwksSnapshot) candidates(kid string) []*rsa.PublicKey {
	if s == nil {
		return nil
	}
	if kid != "" {
		if pub := s.keys[kid]; pub != nil {
			return []*rsa.PublicKey{pub}
		}
		return nil
	}
	out := make([]*rsa.PublicKey, 0, len(s.keys))
	for _, pub := range s.keys {
		out = append(out, pub)
	}
	return out
}

// refresh fetches the JWKS unless another caller just did, or the last fetch was
// less than minRefresh ago. A failed fetch keeps the old keys: a stale set that
// holds the kid still verifies while sgID's JWKS endpoint is down.
func (k *keySet) refresh(ctx context.Context, kid string) (*jwksSnapshot, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := k.cache.Load()
	now := k.client.now()
	if cur != nil {
		age := now.Sub(cur.fetched)
		if len(cur.candidates(kid)) > 0 && age <= maxJWKSAge {
			return cur, nil // another caller fetched it while this one waited
		}
		if age < k.minRefresh {
			return cur, nil // rate limited: the caller fails on the unknown kid
		}
	}
	fresh, err := k.fetch(ctx)
	if err != nil {
		if cur != nil && len(cur.candidates(kid)) > 0 {
			return cur, nil
		}
		return nil, err
	}
	fresh.fetched = now
	k.cache.Store(fresh)
	return fresh, nil
}

func (k *keySet) fetch(ctx context.Context) (*jwksSnapshot, error) {
	const endpoint = "jwks"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.client.jwksURL, nil)
	if err != nil {
		return nil, &UnavailableError{Endpoint: endpoint, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, body, err := k.client.do(ctx, endpoint, req, maxJWKSBody)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &ResponseError{Endpoint: endpoint, Reason: "HTTP " + resp.Status}
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := decodeJSON(endpoint, body, &set); err != nil {
		return nil, err
	}
	snap := &jwksSnapshot{keys: make(map[string]*rsa.PublicKey, len(set.Keys))}
	for _, raw := range set.Keys {
		// Keys sgID does not sign ID tokens with (other types, other uses) are
		// skipped, not fatal: a JWKS may carry more than this client needs.
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			continue
		}
		pub, ok := jwk.Key.(*rsa.PublicKey)
		if !ok || (jwk.Use != "" && jwk.Use != "sig") || (jwk.Algorithm != "" && jwk.Algorithm != "RS256") {
			continue
		}
		if pub.N.BitLen() < minKeyBits {
			continue
		}
		snap.keys[jwk.KeyID] = pub
	}
	if len(snap.keys) == 0 {
		return nil, &ResponseError{Endpoint: endpoint, Reason: "no usable RS256 signing key"}
	}
	return snap, nil
}
