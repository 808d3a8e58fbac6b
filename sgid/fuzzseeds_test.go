package sgid_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sgidproxy/caddy-sgid/internal/fuzzcorpus"
	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite the sgidtest-made seeds in testdata/fuzz/")

// userInfoSeed is one userinfo answer of the fake sgID, encrypted to the fuzz key.
type userInfoSeed struct {
	name, sub string
	body      []byte
}

// userInfoSeeds logs in against sgidtest in each algorithm profile and with each
// userinfo fault, keeping the userinfo bodies the server sent.
func userInfoSeeds(t *testing.T) []userInfoSeed {
	k, err := fuzzKey()
	if err != nil {
		t.Fatal(err)
	}
	personas := sgidtest.Personas()
	cases := []struct {
		name    string
		profile sgidtest.Profile
		persona string
		scopes  []string
		faults  sgidtest.Faults
	}{
		{"valid-sdk-profile-all-scopes", sgidtest.ProfileSDK, personas[0].ID, sgidtest.Catalog(), sgidtest.Faults{}},
		{"valid-observed-profile-all-scopes", sgidtest.ProfileObserved, personas[1].ID, sgidtest.Catalog(), sgidtest.Faults{}},
		{"valid-observed-profile-name", sgidtest.ProfileObserved, personas[2].ID, []string{"openid", "myinfo.name"}, sgidtest.Faults{}},
		{"valid-sdk-profile-openid-only", sgidtest.ProfileSDK, personas[3].ID, []string{"openid"}, sgidtest.Faults{}},
		{"valid-sdk-profile-address-children", sgidtest.ProfileSDK, personas[4].ID, []string{"openid", "myinfo.registered_address", "myinfo.children_birth_records", "myinfo.vehicles"}, sgidtest.Faults{}},
		{"mismatched-sub", sgidtest.ProfileSDK, personas[0].ID, []string{"openid", "myinfo.name"}, sgidtest.Faults{MismatchedSub: true}},
		{"garbage-key", sgidtest.ProfileSDK, personas[0].ID, []string{"openid", "myinfo.name"}, sgidtest.Faults{GarbageKey: true}},
		{"garbage-data", sgidtest.ProfileObserved, personas[0].ID, []string{"openid", "myinfo.email", "myinfo.name"}, sgidtest.Faults{GarbageData: true}},
		{"key-for-other-client", sgidtest.ProfileSDK, personas[0].ID, []string{"openid", "myinfo.name"}, sgidtest.Faults{KeyForOtherClient: true}},
		{"data-as-jws", sgidtest.ProfileSDK, personas[0].ID, []string{"openid", "myinfo.email", "myinfo.name"}, sgidtest.Faults{DataAsJWS: true}},
		{"key-rsa1_5", sgidtest.ProfileObserved, personas[0].ID, []string{"openid", "myinfo.name"}, sgidtest.Faults{KeyRSA1_5: true}},
	}
	var seeds []userInfoSeed
	for _, tc := range cases {
		srv := newFakeSgID(t, sgidtest.Options{
			Client:  sgidtest.Client{ID: fuzzClientID, PublicKey: &k.PublicKey},
			Profile: tc.profile, Persona: tc.persona,
		})
		srv.SetFaults(tc.faults)
		rec := &recordingTransport{}
		c := clientFor(t, srv, tc.scopes, func(cfg *sgid.Config) {
			cfg.PrivateKey = fuzzKeyPEM(t)
			cfg.HTTPClient = &http.Client{Transport: rec}
		})
		_, _ = login(t, c) // the faults make some logins fail, after userinfo
		if rec.userinfo == nil {
			t.Fatalf("%s: no userinfo answer recorded", tc.name)
		}
		seeds = append(seeds, userInfoSeed{tc.name, sgidtest.PairwiseSub(fuzzClientID, tc.persona), rec.userinfo})
	}
	return seeds
}

// recordingTransport keeps the last userinfo body.
type recordingTransport struct {
	mu       sync.Mutex
	userinfo []byte
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/userinfo") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	rt.mu.Lock()
	rt.userinfo = body
	rt.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// TestFuzzCorpusValidSeedsStillDecrypt guards the committed seeds: if the fuzz key
// or the decryption changed, the fuzzer would start from answers that no longer
// decrypt. With -update-fuzz-corpus it first rewrites them: userinfo answers from
// sgidtest, and key text without private key material.
func TestFuzzCorpusValidSeedsStillDecrypt(t *testing.T) {
	if *updateFuzzCorpus {
		for _, s := range userInfoSeeds(t) {
			fuzzcorpus.Write(t, "FuzzUserInfo", s.name, s.sub, s.body)
			if !strings.HasPrefix(s.name, "valid-") {
				continue
			}
			var ur struct {
				Key  string            `json:"key"`
				Data map[string]string `json:"data"`
			}
			if err := json.Unmarshal(s.body, &ur); err != nil {
				t.Fatal(err)
			}
			for field, value := range ur.Data {
				if field == "myinfo.name" || field == "myinfo.registered_address" {
					fuzzcorpus.Write(t, "FuzzDecryptUserInfo", s.name+"-"+field, ur.Key, field, value)
				}
			}
		}
		// Only text without private key material: secret scanners cannot tell a
		// test key from a leaked one. The keys themselves are seeds in code.
		for name, text := range map[string]string{
			"public-key":                keyTextSeeds(t)["public-key"],
			"empty-armour":              "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
			"encrypted-pem-headers":     "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
			"pem-type-holding-key-text": "-----BEGIN MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-----\nAAAA\n-----END MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-----\n",
			"escaped-but-not-pem":       `\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n`,
		} {
			fuzzcorpus.Write(t, "FuzzParsePrivateKey", name, text)
		}
	}
	c := fuzzClient(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzUserInfo", "valid-*"))
	more, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecryptUserInfo", "valid-*"))
	if len(files) == 0 || len(more) == 0 {
		t.Fatal("no valid-* seeds: run go test -run TestFuzzCorpus -update-fuzz-corpus ./sgid")
	}
	for _, file := range append(files, more...) {
		args := fuzzcorpus.Read(t, file)
		var err error
		if len(args) == 2 {
			ctx := context.WithValue(t.Context(), bodyKey{}, []byte(args[1]))
			_, err = c.UserInfo(ctx, &sgid.Tokens{AccessToken: "at", Sub: args[0]})
		} else {
			_, err = c.DecryptUserInfo(args[0], map[string]string{args[1]: args[2]})
		}
		if err != nil {
			t.Errorf("%s no longer decrypts (%v): run go test -run TestFuzzCorpus -update-fuzz-corpus ./sgid", file, err)
		}
	}
}

// keyTextSeeds are client keys as they arrive from files and environment
// variables, and the mistakes people make with them.
func keyTextSeeds(t testing.TB) map[string]string {
	k, err := fuzzKey()
	if err != nil {
		t.Fatal(err)
	}
	pkcs1, pkcs8 := sgidtest.EncodePKCS1(k), sgidtest.EncodePKCS8(k)
	_, ecDER, pubDER := wrongKeyDER(t, k)
	return map[string]string{
		"pkcs8":                  pkcs8,
		"pkcs1":                  pkcs1,
		"pkcs8-escaped-newlines": strings.ReplaceAll(pkcs8, "\n", `\n`),
		"pkcs1-quoted-crlf":      `"` + strings.ReplaceAll(pkcs1, "\n", `\r\n`) + `"`,
		"newlines-lost":          strings.ReplaceAll(pkcs8, "\n", " "),
		"double-escaped":         strings.ReplaceAll(pkcs8, "\n", `\\n`),
		"ec-private-key":         pemText("EC PRIVATE KEY", ecDER),
		"public-key":             pemText("PUBLIC KEY", pubDER),
		"pkcs1-label-on-pkcs8":   strings.ReplaceAll(pkcs8, "PRIVATE KEY", "RSA PRIVATE KEY"),
	}
}
