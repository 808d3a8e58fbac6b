package sgid_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// fuzzKeyPrimes are the primes of the client key the fuzz targets decrypt with,
// as raw standard base64 joined by a colon (the form sgidtest keeps its key pool
// in). The key is fixed so that the userinfo responses committed under
// testdata/fuzz stay decryptable; it is public, for tests only.
const fuzzKeyPrimes = "1MfJ/6OYi3suu6KFNAn0uvq5XQtsRHX9dYNUhpAf0aAzg24Mv6MLBJH2rY2f5kPYo5RGKSt9eOjiLbdmDrP3P/yMUQG4r6SfeC9kX9PwsGpMcWnoAg8Yeb9CesadAh27WPa3+NnZ35J0wnChlvFSo7vsmnzJ7xhSLKJfTH8htW8:6/RngUyQ9tOLYITK5ZnVnupNcVQC/XUMFQam5KerXp/CiffZ+5DBSfkTqIlKDkyv4uNOLJYfdrvveONqJT1P6H6lbZ80TuFP46+uhzxWANIeyr05ZVVKdMZdbeLYRSz0MIE2YCMwNGbdYPr3+SsvRFwLL56K9nBIAse8As5ybIM"

const fuzzClientID = "sgid-fuzz-client"

var fuzzKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	ps, qs, _ := strings.Cut(fuzzKeyPrimes, ":")
	pb, err := base64.RawStdEncoding.DecodeString(ps)
	if err != nil {
		return nil, err
	}
	qb, err := base64.RawStdEncoding.DecodeString(qs)
	if err != nil {
		return nil, err
	}
	p, q, one := new(big.Int).SetBytes(pb), new(big.Int).SetBytes(qb), big.NewInt(1)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537},
		D:         new(big.Int).ModInverse(big.NewInt(65537), phi),
		Primes:    []*big.Int{p, q},
	}
	k.Precompute()
	return k, k.Validate()
})

func fuzzKeyPEM(t testing.TB) string {
	t.Helper()
	k, err := fuzzKey()
	if err != nil {
		t.Fatal(err)
	}
	return sgidtest.EncodePKCS8(k)
}

// bodyKey carries, in a request's context, the body bodyTransport answers with:
// each fuzz input reaches the client as sgID's answer without a network.
type bodyKey struct{}

type bodyTransport struct{}

func (bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := r.Context().Value(bodyKey{}).([]byte)
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(body)),
		Request:    r,
	}, nil
}

// fuzzClient is a client with the fuzz key whose every call to sgID gets the body
// in the request context.
func fuzzClient(t testing.TB) *sgid.Client {
	t.Helper()
	c, err := sgid.New(sgid.Config{
		ClientID:     fuzzClientID,
		ClientSecret: "fuzz-secret-fuzz-secret-fuzz-secret",
		PrivateKey:   fuzzKeyPEM(t),
		RedirectURI:  testRedirectURI,
		Scopes:       sgidtest.Catalog(),
		HTTPClient:   &http.Client{Transport: bodyTransport{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// errorKinds are the sentinels of errors.go: every client error matches exactly one.
var errorKinds = []error{
	sgid.ErrAccessDenied, sgid.ErrOAuth, sgid.ErrInvalidGrant, sgid.ErrInvalidClient, sgid.ErrUnavailable,
	sgid.ErrBadResponse, sgid.ErrInvalidIDToken, sgid.ErrSubMismatch, sgid.ErrDecryption, sgid.ErrBadCallback,
}

// checkUserInfoError fails unless err is exactly one of the kinds in allowed, and is
// the typed error (or sentinel) errors.go defines for that kind.
func checkUserInfoError(t *testing.T, err error, allowed ...error) {
	t.Helper()
	var matched []error
	for _, k := range errorKinds {
		if errors.Is(err, k) {
			matched = append(matched, k)
		}
	}
	if len(matched) != 1 || !slices.Contains(allowed, matched[0]) {
		t.Fatalf("error %q matches %v, want exactly one of %v", err, matched, allowed)
	}
	var re *sgid.ResponseError
	var de *sgid.DecryptionError
	switch matched[0] {
	case sgid.ErrBadResponse:
		if !errors.As(err, &re) {
			t.Fatalf("error %q (%T) is not a *sgid.ResponseError", err, err)
		}
	case sgid.ErrDecryption:
		if !errors.As(err, &de) {
			t.Fatalf("error %q (%T) is not a *sgid.DecryptionError", err, err)
		}
	case sgid.ErrSubMismatch:
		if err != sgid.ErrSubMismatch {
			t.Fatalf("error %q (%T) is not sgid.ErrSubMismatch", err, err)
		}
	}
}

// checkIdentityData fails unless every field is a scope other than openid and every
// value is UTF-8: what the gateway may put in a session and a header.
func checkIdentityData(t *testing.T, data map[string]string) {
	t.Helper()
	for field, value := range data {
		if field == "openid" || sgid.CheckScopes([]string{"openid", field}) != nil {
			t.Fatalf("decrypted data holds a field %q that is not a scope", field)
		}
		if !utf8.ValidString(value) {
			t.Fatalf("decrypted value of %s is not UTF-8", field)
		}
	}
}

// FuzzUserInfo feeds arbitrary userinfo response bodies to the client, as sgID (or
// anyone answering for it) could: JSON, sub check, both JWE layers.
func FuzzUserInfo(f *testing.F) {
	for _, body := range []string{
		"", "null", "{}", "[]", `{"sub":""}`, `{"sub":"s"}`, `{"sub":"s","key":"","data":{}}`,
		`{"sub":"s","data":{"myinfo.name":"x"}}`, `{"sub":"s","key":"a.b.c.d.e","data":{}}`,
		`{"sub":"s","key":"a.b.c.d.e","data":{"openid":"a.b.c.d.e"}}`, `{"sub":"s","data":null,"key":null}`,
	} {
		f.Add("s", []byte(body))
	}
	c := fuzzClient(f)
	f.Fuzz(func(t *testing.T, sub string, body []byte) {
		ctx := context.WithValue(t.Context(), bodyKey{}, body)
		id, err := c.UserInfo(ctx, &sgid.Tokens{AccessToken: "fuzz-access-token", Sub: sub})
		if err != nil {
			checkUserInfoError(t, err, sgid.ErrBadResponse, sgid.ErrSubMismatch, sgid.ErrDecryption)
			return
		}
		if id.Sub != sub || sub == "" {
			t.Fatalf("identity sub %q, want the ID token's %q", id.Sub, sub)
		}
		checkIdentityData(t, id.Data)
	})
}

// FuzzDecryptUserInfo feeds the two JWE layers directly, with no JSON around them.
func FuzzDecryptUserInfo(f *testing.F) {
	f.Add("", "myinfo.name", "")
	f.Add("", "", "")
	f.Add("a.b.c.d.e", "myinfo.name", "a.b.c.d.e")
	f.Add("eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0.AA.AA.AA.AA", "myinfo.email", "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AA.AA.AA")
	c := fuzzClient(f)
	f.Fuzz(func(t *testing.T, key, field, value string) {
		data, err := c.DecryptUserInfo(key, map[string]string{field: value})
		if err != nil {
			checkUserInfoError(t, err, sgid.ErrBadResponse, sgid.ErrDecryption)
			return
		}
		if len(data) != 1 {
			t.Fatalf("one field decrypted to %d", len(data))
		}
		checkIdentityData(t, data)
	})
}

// FuzzParsePrivateKey checks that no key text makes ParsePrivateKey panic, that
// every refusal is a *KeyError, and that the error never repeats the text: any run
// of 16 base64 characters of the input (key material is base64) in the message is
// an echo, since none of the fixed messages holds one.
func FuzzParsePrivateKey(f *testing.F) {
	for _, s := range []string{
		"", "  \n", "not a key", "-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----",
		"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
		"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----",
		"-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END PRIVATE KEY-----",
		`"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"`,
	} {
		f.Add(s)
	}
	for _, text := range keyTextSeeds(f) {
		f.Add(text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		key, err := sgid.ParsePrivateKey(text)
		if err == nil {
			if bits := key.N.BitLen(); bits < 2048 || bits > 4096 {
				t.Fatalf("accepted an RSA key of %d bits", bits)
			}
			return
		}
		var ke *sgid.KeyError
		if !errors.As(err, &ke) {
			t.Fatalf("error %q (%T) is not a *sgid.KeyError", err, err)
		}
		msg := err.Error()
		for _, run := range base64Runs(text, 16) {
			for i := 0; i+16 <= len(run); i++ {
				if strings.Contains(msg, run[i:i+16]) {
					t.Fatalf("error %q repeats the key text %q", msg, run[i:i+16])
				}
			}
		}
	})
}

// base64Runs returns the maximal runs of at least n standard or URL base64
// characters in s.
func base64Runs(s string, n int) []string {
	var runs []string
	start := -1
	for i := 0; i <= len(s); i++ {
		in := i < len(s) && (s[i] >= 'A' && s[i] <= 'Z' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= '0' && s[i] <= '9' || strings.IndexByte("+/=-_", s[i]) >= 0)
		switch {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			if i-start >= n {
				runs = append(runs, s[start:i])
			}
			start = -1
		}
	}
	return runs
}
