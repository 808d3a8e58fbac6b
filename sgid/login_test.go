package sgid_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// wantData is what a login for persona should yield for scopes: each scope but
// openid, with the persona's value or "NA".
func wantData(p sgidtest.Persona, scopes []string) map[string]string {
	want := map[string]string{}
	for _, s := range scopes {
		if s == "openid" {
			continue
		}
		v, ok := p.Data[s]
		if !ok {
			v = "NA"
		}
		want[s] = v
	}
	return want
}

func TestLoginDecryptsEveryPersonaForBothServerProfiles(t *testing.T) {
	key := testClientKey(t)
	keys := map[string]string{
		"pkcs1":                  sgidtest.EncodePKCS1(key),
		"pkcs8":                  sgidtest.EncodePKCS8(key),
		"pkcs8 escaped newlines": strings.ReplaceAll(sgidtest.EncodePKCS8(key), "\n", `\n`),
	}
	catalog := sgidtest.Catalog()
	for _, profile := range []struct {
		name string
		p    sgidtest.Profile
	}{{"sdk", sgidtest.ProfileSDK}, {"observed", sgidtest.ProfileObserved}} {
		for keyName, keyText := range keys {
			t.Run(profile.name+"/"+keyName, func(t *testing.T) {
				srv := newFakeSgID(t, sgidtest.Options{Profile: profile.p})
				c := clientFor(t, srv, catalog, func(c *sgid.Config) { c.PrivateKey = keyText })
				for _, persona := range sgidtest.Personas() {
					if err := srv.SetPersona(persona.ID); err != nil {
						t.Fatal(err)
					}
					id, err := login(t, c)
					if err != nil {
						t.Fatalf("%s: login: %v", persona.ID, err)
					}
					if id.Sub == "" {
						t.Fatalf("%s: empty sub", persona.ID)
					}
					if want := wantData(persona, catalog); !maps.Equal(id.Data, want) {
						for k, v := range want {
							if id.Data[k] != v {
								t.Errorf("%s: %s = %q, want %q", persona.ID, k, id.Data[k], v)
							}
						}
						t.Fatalf("%s: data has %d fields, want %d", persona.ID, len(id.Data), len(want))
					}
				}
			})
		}
	}
}

func TestPersonasExerciseTheHardValues(t *testing.T) {
	// The fake server must cover what real data looks like, or the decryption
	// tests above prove less than they seem to.
	var multiLine, nonASCII, na, big, jsonArray bool
	covered := map[string]bool{}
	for _, p := range sgidtest.Personas() {
		for k, v := range p.Data {
			covered[k] = true
			multiLine = multiLine || strings.Contains(v, "\n")
			na = na || v == "NA"
			big = big || len(v) >= 4096
			jsonArray = jsonArray || strings.HasPrefix(v, "[{")
			for _, r := range v {
				nonASCII = nonASCII || r > 0x7f
			}
		}
	}
	if !multiLine || !nonASCII || !na || !big || !jsonArray {
		t.Fatalf("personas lack hard values: multi-line %v, non-ASCII %v, NA %v, >=4KB %v, JSON array %v",
			multiLine, nonASCII, na, big, jsonArray)
	}
	for _, scope := range sgidtest.Catalog() {
		if scope != "openid" && !covered[scope] {
			t.Errorf("no persona has %s", scope)
		}
	}
}

func TestSubIsStableAcrossLogins(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{})
	c := clientFor(t, srv, nil, nil)
	a, err := login(t, c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := login(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if a.Sub != b.Sub {
		t.Fatalf("sub changed between logins of the same persona: %q, %q", a.Sub, b.Sub)
	}
	if a.Data["myinfo.name"] == "" {
		t.Fatal("default scopes did not yield myinfo.name")
	}
}

func TestOpenIDOnlyYieldsEmptyData(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{})
	c := clientFor(t, srv, []string{"openid"}, nil)
	id, err := login(t, c)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if id.Sub == "" || len(id.Data) != 0 {
		t.Fatalf("identity = %+v, want a sub and no data", id)
	}
}

func TestMisbehavingSgIDYieldsTypedErrors(t *testing.T) {
	tests := []struct {
		name   string
		faults sgidtest.Faults
		want   error
		says   string
	}{
		{"wrong issuer", sgidtest.Faults{WrongIssuer: true}, sgid.ErrInvalidIDToken, "issuer"},
		{"wrong audience", sgidtest.Faults{WrongAudience: true}, sgid.ErrInvalidIDToken, "audience"},
		{"wrong nonce", sgidtest.Faults{WrongNonce: true}, sgid.ErrInvalidIDToken, "nonce"},
		{"expired id token", sgidtest.Faults{ExpiredIDToken: true}, sgid.ErrInvalidIDToken, "expired"},
		{"id token from the future", sgidtest.Faults{FutureIDToken: true}, sgid.ErrInvalidIDToken, "future"},
		{"no iat", sgidtest.Faults{MissingIssuedAt: true}, sgid.ErrInvalidIDToken, "iat"},
		{"no sub", sgidtest.Faults{MissingSub: true}, sgid.ErrInvalidIDToken, "sub"},
		{"bad signature", sgidtest.Faults{BadSignature: true}, sgid.ErrInvalidIDToken, "signature"},
		{"unknown kid", sgidtest.Faults{UnknownKID: true}, sgid.ErrInvalidIDToken, "not in sgID's JWKS"},
		{"wrong at_hash", sgidtest.Faults{WrongATHash: true}, sgid.ErrInvalidIDToken, "at_hash"},
		{"alg none", sgidtest.Faults{AlgNone: true}, sgid.ErrInvalidIDToken, "RS256"},
		{"hs256 with the client secret", sgidtest.Faults{HS256IDToken: true}, sgid.ErrInvalidIDToken, "RS256"},
		{"userinfo sub mismatch", sgidtest.Faults{MismatchedSub: true}, sgid.ErrSubMismatch, "sub"},
		{"garbage key", sgidtest.Faults{GarbageKey: true}, sgid.ErrDecryption, "decrypting userinfo key"},
		{"garbage data field", sgidtest.Faults{GarbageData: true}, sgid.ErrDecryption, "decrypting userinfo "},
		{"key for another client", sgidtest.Faults{KeyForOtherClient: true}, sgid.ErrDecryption, "decrypting userinfo key"},
		{"data field as a JWS", sgidtest.Faults{DataAsJWS: true}, sgid.ErrDecryption, "decrypting userinfo "},
		{"key with RSA1_5", sgidtest.Faults{KeyRSA1_5: true}, sgid.ErrDecryption, "decrypting userinfo key"},
		{"token 500", sgidtest.Faults{Status: map[sgidtest.Endpoint]int{sgidtest.EndpointToken: 500}}, sgid.ErrUnavailable, "token endpoint answered HTTP 500"},
		{"userinfo 503", sgidtest.Faults{Status: map[sgidtest.Endpoint]int{sgidtest.EndpointUserInfo: 503}}, sgid.ErrUnavailable, "userinfo endpoint answered HTTP 503"},
		{"jwks 502", sgidtest.Faults{Status: map[sgidtest.Endpoint]int{sgidtest.EndpointJWKS: 502}}, sgid.ErrUnavailable, "jwks"},
		{"token malformed", sgidtest.Faults{Malformed: map[sgidtest.Endpoint]bool{sgidtest.EndpointToken: true}}, sgid.ErrBadResponse, "token"},
		{"userinfo malformed", sgidtest.Faults{Malformed: map[sgidtest.Endpoint]bool{sgidtest.EndpointUserInfo: true}}, sgid.ErrBadResponse, "userinfo"},
		{"jwks malformed", sgidtest.Faults{Malformed: map[sgidtest.Endpoint]bool{sgidtest.EndpointJWKS: true}}, sgid.ErrBadResponse, "jwks"},
		{"token oversized", sgidtest.Faults{Oversized: map[sgidtest.Endpoint]int{sgidtest.EndpointToken: 1 << 20}}, sgid.ErrBadResponse, "larger than"},
		{"userinfo oversized", sgidtest.Faults{Oversized: map[sgidtest.Endpoint]int{sgidtest.EndpointUserInfo: 20 << 20}}, sgid.ErrBadResponse, "larger than"},
		{"jwks oversized", sgidtest.Faults{Oversized: map[sgidtest.Endpoint]int{sgidtest.EndpointJWKS: 1 << 20}}, sgid.ErrBadResponse, "larger than"},
	}
	kinds := []error{sgid.ErrAccessDenied, sgid.ErrOAuth, sgid.ErrInvalidGrant, sgid.ErrInvalidClient,
		sgid.ErrUnavailable, sgid.ErrBadResponse, sgid.ErrInvalidIDToken, sgid.ErrSubMismatch,
		sgid.ErrDecryption, sgid.ErrBadCallback}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeSgID(t, sgidtest.Options{})
			c := clientFor(t, srv, sgidtest.Catalog(), nil)
			srv.SetFaults(tt.faults)
			id, err := login(t, c)
			if !errors.Is(err, tt.want) {
				t.Fatalf("login error = %v, want %v", err, tt.want)
			}
			if id != nil {
				t.Fatal("a failed login returned an identity")
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
			for _, k := range kinds {
				if k != tt.want && errors.Is(err, k) {
					t.Errorf("error also matches %v", k)
				}
			}
			assertNoSecrets(t, err, srv)

			// The same client logs in fine once sgID behaves again.
			srv.SetFaults(sgidtest.Faults{})
			if _, err := login(t, c); err != nil {
				t.Fatalf("login after the fault cleared: %v", err)
			}
		})
	}
}

// assertNoSecrets fails if err's text holds the client secret or any persona value.
func assertNoSecrets(t *testing.T, err error, srv *sgidtest.Server) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, srv.ClientSecret()) {
		t.Errorf("error holds the client secret: %q", msg)
	}
	for _, p := range sgidtest.Personas() {
		for field, v := range p.Data {
			if len(v) >= 4 && v != "true" && v != "false" && strings.Contains(msg, v) {
				t.Errorf("error holds personal data (%s): %q", field, msg)
			}
		}
	}
}
