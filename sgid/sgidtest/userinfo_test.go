package sgidtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

var allScopes = strings.Join(Catalog(), " ")

func TestUserInfoRoundTripsEveryPersona(t *testing.T) {
	tests := []struct {
		profile              Profile
		keyAlg, keyEnc       string
		keyKID               bool
		dataAlg, dataEnc     string
		blockKeyLen          int
		blockKeyAlg          string
		blockKeyKID, dataKID bool
	}{
		{ProfileSDK, "RSA-OAEP-256", "A256GCM", false, "A128GCMKW", "A128GCM", 16, "A128GCMKW", false, false},
		{ProfileObserved, "RSA-OAEP", "A128CBC-HS256", true, "dir", "A256GCM", 32, "dir", true, true},
	}
	for _, tc := range tests {
		s := Start(t, Options{Profile: tc.profile})
		for _, p := range Personas() {
			t.Run(tc.keyAlg+"/"+p.ID, func(t *testing.T) {
				if err := s.SetPersona(p.ID); err != nil {
					t.Fatal(err)
				}
				ui := fetchUserInfo(t, s, login(t, s, allScopes).AccessToken)
				if ui.Sub != PairwiseSub(s.ClientID(), p.ID) {
					t.Errorf("sub %q, want the persona's pairwise sub", ui.Sub)
				}
				if len(ui.Data) != len(Catalog())-1 {
					t.Errorf("%d data fields, want one per scope but openid (%d)", len(ui.Data), len(Catalog())-1)
				}
				got := decryptUserInfo(t, ui, s.ClientKey())
				for field, want := range p.Data {
					if got[field] != want {
						t.Errorf("%s = %q, want %q", field, got[field], want)
					}
				}

				jwk, keyObj, err := decryptBlockKey(*ui.Key, s.ClientKey())
				if err != nil {
					t.Fatal(err)
				}
				h := keyObj.Header
				if h.Algorithm != tc.keyAlg || h.ExtraHeaders["enc"] != tc.keyEnc || (h.KeyID != "") != tc.keyKID {
					t.Errorf("key header alg %s enc %v kid %q", h.Algorithm, h.ExtraHeaders["enc"], h.KeyID)
				}
				if tc.keyKID && h.KeyID != thumbprint(&s.ClientKey().PublicKey) {
					t.Errorf("key kid %q is not the client key's thumbprint", h.KeyID)
				}
				if k, _ := jwk.Key.([]byte); len(k) != tc.blockKeyLen || jwk.Algorithm != tc.blockKeyAlg || (jwk.KeyID != "") != tc.blockKeyKID {
					t.Errorf("block key: %d bytes, alg %q, kid %q", len(k), jwk.Algorithm, jwk.KeyID)
				}
				for field, v := range ui.Data {
					obj, err := jose.ParseEncryptedCompact(v, dataAlgs, contentEncs)
					if err != nil {
						t.Fatalf("%s: %v", field, err)
					}
					if obj.Header.Algorithm != tc.dataAlg || obj.Header.ExtraHeaders["enc"] != tc.dataEnc || (obj.Header.KeyID != "") != tc.dataKID {
						t.Errorf("%s header alg %s enc %v kid %q", field, obj.Header.Algorithm, obj.Header.ExtraHeaders["enc"], obj.Header.KeyID)
					}
				}
			})
		}
	}
}

func TestUserInfoOpenIDOnlyHasNoKeyOrData(t *testing.T) {
	s := Start(t, Options{})
	tr := login(t, s, "openid")
	resp := get(t, s.Issuer()+"/oauth/userinfo", http.Header{"Authorization": {"Bearer " + tr.AccessToken}})
	var raw map[string]json.RawMessage
	mustUnmarshal(t, resp.body, &raw)
	if _, ok := raw["key"]; ok {
		t.Error("key present")
	}
	if _, ok := raw["data"]; ok {
		t.Error("data present")
	}
	if string(raw["sub"]) != `"`+PairwiseSub(s.ClientID(), "tan-ah-kow")+`"` {
		t.Errorf("sub %s", raw["sub"])
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
}

func TestUserInfoRejectsBadTokens(t *testing.T) {
	s := Start(t, Options{})
	good := login(t, s, "openid").AccessToken
	for _, auth := range []string{"", "Bearer", "Bearer " + good + "x", "Basic " + good, "Bearer " + randomToken(32)} {
		resp := get(t, s.Issuer()+"/oauth/userinfo", http.Header{"Authorization": {auth}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
			t.Errorf("Authorization %.20q: status %d, WWW-Authenticate %q", auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if resp := get(t, s.Issuer()+"/oauth/userinfo", http.Header{"Authorization": {"bearer " + good}}); resp.StatusCode != http.StatusOK {
		t.Errorf("lower-case scheme: status %d, want 200 (RFC 7235 schemes are case-insensitive)", resp.StatusCode)
	}
}

func TestUserInfoFaults(t *testing.T) {
	s := Start(t, Options{})
	scope := "openid myinfo.name myinfo.email myinfo.sex"
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, ui userInfo)
	}{
		{"MismatchedSub", Faults{MismatchedSub: true}, func(t *testing.T, ui userInfo) {
			if ui.Sub == PairwiseSub(s.ClientID(), "tan-ah-kow") || ui.Sub == "" {
				t.Errorf("sub %q is the ID token's", ui.Sub)
			}
		}},
		{"GarbageKey", Faults{GarbageKey: true}, func(t *testing.T, ui userInfo) {
			if _, err := jose.ParseEncryptedCompact(*ui.Key, keyAlgs, contentEncs); err == nil {
				t.Error("garbage key parsed as a JWE")
			}
			if strings.Count(*ui.Key, ".") != 4 {
				t.Errorf("garbage key %q should look like a compact JWE", *ui.Key)
			}
		}},
		{"GarbageData", Faults{GarbageData: true}, func(t *testing.T, ui userInfo) {
			jwk, _, err := decryptBlockKey(*ui.Key, s.ClientKey())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decryptField(ui.Data["myinfo.email"], jwk); err == nil {
				t.Error("first field (myinfo.email) decrypted")
			}
			for _, f := range []string{"myinfo.name", "myinfo.sex"} {
				if _, err := decryptField(ui.Data[f], jwk); err != nil {
					t.Errorf("%s: %v, want only the first field broken", f, err)
				}
			}
		}},
		{"KeyForOtherClient", Faults{KeyForOtherClient: true}, func(t *testing.T, ui userInfo) {
			_, obj, err := decryptBlockKey(*ui.Key, s.ClientKey())
			if obj == nil || err == nil {
				t.Errorf("want a well-formed JWE the client cannot decrypt; err = %v", err)
			}
		}},
		{"DataAsJWS", Faults{DataAsJWS: true}, func(t *testing.T, ui userInfo) {
			v := ui.Data["myinfo.sex"]
			if _, err := jose.ParseEncryptedCompact(v, dataAlgs, contentEncs); err == nil {
				t.Error("last field (myinfo.sex) parsed as a JWE")
			}
			jws, err := jose.ParseSignedCompact(v, []jose.SignatureAlgorithm{jose.RS256})
			if err != nil {
				t.Fatalf("last field is not a JWS: %v", err)
			}
			if got := string(jws.UnsafePayloadWithoutVerification()); got != "MALE" {
				t.Errorf("JWS payload %q", got)
			}
		}},
		{"KeyRSA1_5", Faults{KeyRSA1_5: true}, func(t *testing.T, ui userInfo) {
			if _, err := jose.ParseEncryptedCompact(*ui.Key, keyAlgs, contentEncs); err == nil {
				t.Error("key parsed with RSA1_5 outside the allowlist")
			}
			obj, err := jose.ParseEncryptedCompact(*ui.Key, []jose.KeyAlgorithm{jose.RSA1_5}, contentEncs)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := obj.Decrypt(s.ClientKey()); err != nil {
				t.Errorf("RSA1_5 key should be a real RSA1_5 JWE: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.SetFaults(tc.faults)
			defer s.SetFaults(Faults{})
			ui := fetchUserInfo(t, s, login(t, s, scope).AccessToken)
			if ui.Key == nil || len(ui.Data) != 3 {
				t.Fatalf("want key and 3 data fields, got %+v", ui)
			}
			tc.check(t, ui)
		})
	}
}

func TestUserInfoForAGivenPublicKey(t *testing.T) {
	k, err := NewRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	s := Start(t, Options{Client: Client{ID: "given", Secret: "short", PublicKey: &k.PublicKey}})
	if s.ClientKey() != nil || s.ClientSecret() != "short" || s.ClientID() != "given" {
		t.Fatalf("client key %v, secret %q, id %q", s.ClientKey(), s.ClientSecret(), s.ClientID())
	}
	ui := fetchUserInfo(t, s, login(t, s, "openid myinfo.name").AccessToken)
	if got := decryptUserInfo(t, ui, k)["myinfo.name"]; got != "TAN AH KOW" {
		t.Errorf("name %q", got)
	}
}
