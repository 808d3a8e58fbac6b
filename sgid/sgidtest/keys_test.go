package sgidtest

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"slices"
	"testing"
)

func TestJWKSRotation(t *testing.T) {
	s := Start(t, Options{})
	first := s.SigningKeyIDs()[0]
	before := login(t, s, "openid").IDToken

	second, err := s.RotateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("rotation kept the kid")
	}
	set := fetchJWKS(t, s)
	if len(set.Keys) != 2 || len(set.Key(first)) != 1 || len(set.Key(second)) != 1 {
		t.Fatalf("jwks after rotation has %d keys, want the old and the new", len(set.Keys))
	}
	after := login(t, s, "openid").IDToken
	if h, _ := unverifiedClaims(t, after); h["kid"] != second {
		t.Errorf("new token kid %v, want %s", h["kid"], second)
	}
	for name, tok := range map[string]string{"old": before, "new": after} {
		if _, err := verifyIDToken(t, s, tok); err != nil {
			t.Errorf("%s token during the overlap: %v", name, err)
		}
	}

	s.RetireOldSigningKeys()
	if ids := fetchJWKS(t, s); len(ids.Keys) != 1 || ids.Keys[0].KeyID != second {
		t.Errorf("after retiring: %d keys", len(ids.Keys))
	}
	if _, err := verifyIDToken(t, s, before); err == nil {
		t.Error("token signed by a retired key still verifies")
	}
}

func TestJWKSShape(t *testing.T) {
	s := Start(t, Options{})
	resp := get(t, s.Issuer()+"/.well-known/jwks.json", nil)
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	mustUnmarshal(t, resp.body, &raw)
	if len(raw.Keys) != 1 {
		t.Fatalf("%d keys", len(raw.Keys))
	}
	k := raw.Keys[0]
	if _, ok := k["alg"]; ok {
		t.Error(`key has "alg"; the real server's keys lack it`)
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := k[private]; ok {
			t.Errorf("JWKS publishes private member %q", private)
		}
	}
	if k["kty"] != "RSA" || k["use"] != "sig" || k["kid"] != s.SigningKeyIDs()[0] || k["n"] == nil || k["e"] != "AQAB" {
		t.Errorf("key %v", k)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
}

func TestNewRSAKeyNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 4 {
		k, err := NewRSAKey()
		if err != nil {
			t.Fatal(err)
		}
		if k.N.BitLen() != 2048 {
			t.Errorf("%d-bit key", k.N.BitLen())
		}
		if seen[k.N.String()] {
			t.Fatal("NewRSAKey returned a key twice")
		}
		seen[k.N.String()] = true
	}
}

func TestPooledKeysAreValidAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i, primes := range pooledKeyPrimes {
		k, err := rebuildRSAKey(primes)
		if err != nil {
			t.Fatalf("pooled key %d: %v", i, err)
		}
		if k.N.BitLen() != 2048 || k.E != 65537 {
			t.Errorf("pooled key %d: %d bits, e=%d", i, k.N.BitLen(), k.E)
		}
		if seen[k.N.String()] {
			t.Errorf("pooled key %d repeats an earlier one", i)
		}
		seen[k.N.String()] = true
	}
	if _, err := rebuildRSAKey("not:primes!"); err == nil {
		t.Error("rebuilt a key from garbage")
	}
}

func TestEncodePEM(t *testing.T) {
	k, err := NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, pem, wantType string
		parse               func([]byte) (any, error)
	}{
		{"pkcs1", EncodePKCS1(k), "RSA PRIVATE KEY", func(b []byte) (any, error) { return x509.ParsePKCS1PrivateKey(b) }},
		{"pkcs8", EncodePKCS8(k), "PRIVATE KEY", x509.ParsePKCS8PrivateKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			block, rest := pem.Decode([]byte(tc.pem))
			if block == nil || block.Type != tc.wantType || len(rest) != 0 {
				t.Fatalf("PEM %.40q: want one %q block", tc.pem, tc.wantType)
			}
			got, err := tc.parse(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if rk, ok := got.(*rsa.PrivateKey); !ok || !rk.Equal(k) {
				t.Error("decoded key differs")
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	s := Start(t, Options{})
	resp := get(t, s.Issuer()+"/.well-known/openid-configuration", nil)
	var doc map[string]json.RawMessage
	mustUnmarshal(t, resp.body, &doc)
	iss := s.Issuer()
	want := map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/oauth/authorize",
		"token_endpoint":                        iss + "/oauth/token",
		"userinfo_endpoint":                     iss + "/oauth/userinfo",
		"jwks_uri":                              iss + "/.well-known/jwks.json",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code"},
		"scopes_supported":                      Catalog(),
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
		"subject_types_supported":               []string{"pairwise"},
	}
	for k, v := range want {
		b, _ := json.Marshal(v)
		if string(doc[k]) != string(b) {
			t.Errorf("%s = %s, want %s", k, doc[k], b)
		}
	}
	// Every advertised endpoint is really served.
	for _, k := range []string{"jwks_uri", "userinfo_endpoint"} {
		var u string
		mustUnmarshal(t, doc[k], &u)
		if r := get(t, u, nil); slices.Contains([]int{404, 405}, r.StatusCode) {
			t.Errorf("%s %s: status %d", k, u, r.StatusCode)
		}
	}
}
