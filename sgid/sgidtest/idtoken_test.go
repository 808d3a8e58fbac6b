package sgidtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestIDTokenClaims(t *testing.T) {
	c := newClock()
	s := Start(t, Options{Now: c.Now, Persona: "chen-mei-ling"})
	tr := login(t, s, "openid myinfo.name")
	claims, err := verifyIDToken(t, s, tr.IDToken)
	if err != nil {
		t.Fatalf("verifying: %v", err)
	}
	want := map[string]any{
		"iss":     s.Issuer(),
		"sub":     PairwiseSub(s.ClientID(), "chen-mei-ling"),
		"aud":     s.ClientID(),
		"nonce":   "nonce-456",
		"at_hash": atHash(tr.AccessToken),
		"iat":     float64(c.Now().Unix()),
		"exp":     float64(c.Now().Add(5 * time.Minute).Unix()),
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("%s = %v, want %v", k, claims[k], v)
		}
	}
	header, _ := unverifiedClaims(t, tr.IDToken)
	if header["alg"] != "RS256" || header["kid"] != s.SigningKeyIDs()[0] {
		t.Errorf("header %v", header)
	}
	// at_hash by the OIDC definition, computed independently of atHash.
	sum := sha256.Sum256([]byte(tr.AccessToken))
	if claims["at_hash"] != base64.RawURLEncoding.EncodeToString(sum[:16]) {
		t.Errorf("at_hash %v", claims["at_hash"])
	}

	t.Run("no nonce sent, none in the token", func(t *testing.T) {
		p := newPKCE()
		q := authorizeQuery(s, "openid", p)
		q.Del("nonce")
		resp := postToken(t, s, tokenForm(s, getCode(t, s, q), p))
		var tr tokenResponse
		mustUnmarshal(t, resp.body, &tr)
		if _, claims := unverifiedClaims(t, tr.IDToken); claims["nonce"] != nil {
			t.Errorf("nonce %v", claims["nonce"])
		}
	})
	t.Run("sub is pairwise", func(t *testing.T) {
		if PairwiseSub("a", "tan-ah-kow") == PairwiseSub("b", "tan-ah-kow") || PairwiseSub("a", "tan-ah-kow") == PairwiseSub("a", "nur-aisyah") {
			t.Error("sub does not depend on both client and persona")
		}
		_, again := unverifiedClaims(t, login(t, s, "openid").IDToken)
		if again["sub"] != claims["sub"] {
			t.Errorf("sub changed between logins: %v, then %v", claims["sub"], again["sub"])
		}
	})
}

func TestIDTokenFaults(t *testing.T) {
	c := newClock()
	s := Start(t, Options{Now: c.Now})
	now := float64(c.Now().Unix())
	tests := []struct {
		name   string
		faults Faults
		// signed: the token still verifies against the JWKS.
		signed bool
		check  func(t *testing.T, header, claims map[string]any, token string, verifyErr error)
	}{
		{"WrongIssuer", Faults{WrongIssuer: true}, true, func(t *testing.T, _, c map[string]any, _ string, _ error) {
			if c["iss"] == s.Issuer() || !strings.HasPrefix(c["iss"].(string), s.URL()) {
				t.Errorf("iss %v", c["iss"])
			}
		}},
		{"WrongAudience", Faults{WrongAudience: true}, true, func(t *testing.T, _, c map[string]any, _ string, _ error) {
			if c["aud"] == s.ClientID() {
				t.Errorf("aud %v", c["aud"])
			}
		}},
		{"WrongNonce", Faults{WrongNonce: true}, true, func(t *testing.T, _, c map[string]any, _ string, _ error) {
			if c["nonce"] == "nonce-456" || c["nonce"] == nil {
				t.Errorf("nonce %v", c["nonce"])
			}
		}},
		{"ExpiredIDToken", Faults{ExpiredIDToken: true}, true, func(t *testing.T, _, c map[string]any, _ string, _ error) {
			if exp := c["exp"].(float64); exp > now-3600 || c["iat"].(float64) >= exp {
				t.Errorf("exp %v iat %v, want exp at least 1h before %v", exp, c["iat"], now)
			}
		}},
		{"FutureIDToken", Faults{FutureIDToken: true}, true, func(t *testing.T, _, c map[string]any, _ string, _ error) {
			if iat := c["iat"].(float64); iat < now+3600 {
				t.Errorf("iat %v, want at least 1h after %v", iat, now)
			}
		}},
		{"MissingIssuedAt", Faults{MissingIssuedAt: true}, true, func(t *testing.T, _, c map[string]any, _ string, _ error) {
			if _, ok := c["iat"]; ok || c["exp"] == nil {
				t.Errorf("iat %v exp %v", c["iat"], c["exp"])
			}
		}},
		{"MissingSub", Faults{MissingSub: true}, true, func(t *testing.T, _, c map[string]any, _ string, _ error) {
			if _, ok := c["sub"]; ok {
				t.Errorf("sub %v", c["sub"])
			}
		}},
		{"WrongATHash", Faults{WrongATHash: true}, true, func(t *testing.T, _, c map[string]any, _ string, _ error) {
			if c["at_hash"] == nil || len(c["at_hash"].(string)) != 22 {
				t.Errorf("at_hash %v, want a plausible wrong value", c["at_hash"])
			}
		}},
		{"BadSignature", Faults{BadSignature: true}, false, func(t *testing.T, h, _ map[string]any, _ string, err error) {
			if err == nil || errors.Is(err, errNoKey) || h["kid"] != s.SigningKeyIDs()[0] {
				t.Errorf("verify error %v, kid %v: want a signature failure with the current kid", err, h["kid"])
			}
		}},
		{"UnknownKID", Faults{UnknownKID: true}, false, func(t *testing.T, h, _ map[string]any, _ string, err error) {
			if !errors.Is(err, errNoKey) || h["alg"] != "RS256" {
				t.Errorf("verify error %v, header %v: want an RS256 token with a kid outside the JWKS", err, h)
			}
		}},
		{"AlgNone", Faults{AlgNone: true}, false, func(t *testing.T, h, _ map[string]any, token string, err error) {
			if h["alg"] != "none" || !strings.HasSuffix(token, ".") || err == nil {
				t.Errorf("header %v, token ends %q", h, token[len(token)-3:])
			}
		}},
		{"HS256IDToken", Faults{HS256IDToken: true}, false, func(t *testing.T, h, _ map[string]any, token string, err error) {
			if h["alg"] != "HS256" || h["kid"] != s.SigningKeyIDs()[0] || err == nil {
				t.Fatalf("header %v, verify error %v", h, err)
			}
			i := strings.LastIndexByte(token, '.')
			m := hmac.New(sha256.New, []byte(s.ClientSecret()))
			m.Write([]byte(token[:i]))
			if token[i+1:] != base64.RawURLEncoding.EncodeToString(m.Sum(nil)) {
				t.Error("not an HMAC with the client secret")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.SetFaults(tc.faults)
			defer s.SetFaults(Faults{})
			tr := login(t, s, "openid")
			header, claims := unverifiedClaims(t, tr.IDToken)
			verified, err := verifyIDToken(t, s, tr.IDToken)
			if tc.signed && err != nil {
				t.Errorf("token should still carry a valid signature: %v", err)
			}
			if verified != nil && !tc.signed {
				t.Errorf("token verified against the JWKS")
			}
			tc.check(t, header, claims, tr.IDToken, err)
			// Each fault breaks one thing: the other claims stay right.
			breaks := map[string]string{"WrongIssuer": "iss", "WrongAudience": "aud", "WrongNonce": "nonce", "MissingSub": "sub"}[tc.name]
			for k, v := range map[string]any{"iss": s.Issuer(), "aud": s.ClientID(), "nonce": "nonce-456", "sub": PairwiseSub(s.ClientID(), "tan-ah-kow")} {
				if k != breaks && claims[k] != v {
					t.Errorf("%s = %v, want %v", k, claims[k], v)
				}
			}
		})
	}
}

func TestHS256FaultWithShortSecret(t *testing.T) {
	// go-jose refuses HMAC keys under 32 bytes; the forgery must not.
	s := Start(t, Options{Client: Client{Secret: "tiny"}, Persona: "lee-jun-wei"})
	s.SetFaults(Faults{HS256IDToken: true})
	token := login(t, s, "openid").IDToken
	if _, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.HS256}); err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(token, '.')
	m := hmac.New(sha256.New, []byte("tiny"))
	m.Write([]byte(token[:i]))
	if token[i+1:] != base64.RawURLEncoding.EncodeToString(m.Sum(nil)) {
		t.Error("not an HMAC with the client secret")
	}
}
