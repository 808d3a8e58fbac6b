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

	cache    atomic.Pointer[jwksSnapshot]
	mu       sync.Mutex // guards inflight
	inflight *flight
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
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
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
//
// Concurrent callers share one fetch and its outcome, each waiting no longer than
// its own context allows. When the rate limit holds back a refetch for an
// unknown kid (sgID rotated just after the last fetch), a caller whose deadline
// leaves room waits the limit out instead of failing the login.
func (k *keySet) refresh(ctx context.Context, kid string) (*jwksSnapshot, error) {
	for {
		k.mu.Lock()
		cur := k.cache.Load()
		now := k.client.now()
		if cur != nil && len(cur.candidates(kid)) > 0 && now.Sub(cur.fetched) <= maxJWKSAge {
			k.mu.Unlock()
			return cur, nil // another caller fetched it
		}
		if f := k.inflight; f != nil {
			k.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, &UnavailableError{Endpoint: "jwks", Err: ctx.Err()}
			}
			if f.err != nil {
				if cur != nil && len(cur.candidates(kid)) > 0 {
					return cur, nil
				}
				return nil, f.err
			}
			continue
		}
		if cur != nil && now.Sub(cur.fetched) < k.minRefresh {
			k.mu.Unlock()
			wait := k.minRefresh - now.Sub(cur.fetched)
			// The wait and the fetch after it must fit the caller's deadline and
			// the configured timeout.
			budget := k.client.cfg.Timeout
			if deadline, ok := ctx.Deadline(); ok {
				budget = min(budget, time.Until(deadline))
			}
			if wait+time.Second > budget {
				return cur, nil // rate limited: the caller fails on the unknown kid
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return cur, nil
			}
			continue
		}
		f := &flight{done: make(chan struct{})}
		k.inflight = f
		k.mu.Unlock()

		fresh, err := k.fetch(ctx)
		k.mu.Lock()
		if err == nil {
			fresh.fetched = now
			k.cache.Store(fresh)
		}
		f.err = err
		k.inflight = nil
		close(f.done)
		k.mu.Unlock()
		if err != nil {
			if cur != nil && len(cur.candidates(kid)) > 0 {
				return cur, nil
			}
			return nil, err
		}
		return fresh, nil
	}
}

// flight is a JWKS fetch in progress; done closes when err is set.
type flight struct {
	done chan struct{}
	err  error
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
