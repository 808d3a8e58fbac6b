package sgid_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

func TestParsePrivateKeyAcceptsEveryEncodingSgIDKeysArriveIn(t *testing.T) {
	key := testClientKey(t)
	pkcs1 := sgidtest.EncodePKCS1(key)
	pkcs8 := sgidtest.EncodePKCS8(key)
	tests := []struct {
		name string
		text string
	}{
		{"pkcs1", pkcs1},
		{"pkcs8", pkcs8},
		{"pkcs8 escaped newlines", strings.ReplaceAll(pkcs8, "\n", `\n`)},
		{"pkcs1 escaped newlines", strings.ReplaceAll(pkcs1, "\n", `\n`)},
		{"pkcs8 escaped crlf", strings.ReplaceAll(pkcs8, "\n", `\r\n`)},
		{"pkcs8 windows line endings", strings.ReplaceAll(pkcs8, "\n", "\r\n")},
		{"pkcs8 in double quotes", `"` + strings.ReplaceAll(pkcs8, "\n", `\n`) + `"`},
		{"pkcs1 surrounded by blank lines", "\n\n  " + pkcs1 + "\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sgid.ParsePrivateKey(tt.text)
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			if !got.Equal(key) {
				t.Fatal("parsed key is not the original key")
			}
		})
	}
}

func TestParsePrivateKeyNamesTheProblemWithoutEchoingTheKey(t *testing.T) {
	key := testClientKey(t)
	pkcs8 := sgidtest.EncodePKCS8(key)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, ecSEC1, pubDER := wrongKeyDER(t, key)
	lines := strings.Split(strings.TrimSpace(pkcs8), "\n")
	body := lines[1 : len(lines)-1]

	tests := []struct {
		name    string
		text    string
		problem sgid.KeyProblem
		says    string
	}{
		{"empty", "", sgid.KeyMissing, "empty"},
		{"whitespace only", "  \n\t", sgid.KeyMissing, "empty"},
		{"not pem", "this is not a key", sgid.KeyFormat, "not PEM"},
		{"bare base64 without armour", strings.Join(body, ""), sgid.KeyFormat, "not PEM"},
		{"newlines lost", strings.ReplaceAll(pkcs8, "\n", " "), sgid.KeyEscaping, "one line"},
		{"escaped newlines but broken", strings.ReplaceAll(pkcs8, "\n", `\n`)[:200], sgid.KeyEscaping, `escaped`},
		{"damaged base64", strings.Replace(pkcs8, body[3], "!!!!"+body[3][4:], 1), sgid.KeyFormat, "damaged"},
		{"truncated", strings.Join(lines[:len(lines)/2], "\n"), sgid.KeyFormat, "damaged"},
		{"public key", pemText("PUBLIC KEY", pubDER), sgid.KeyType, `"PUBLIC KEY"`},
		{"certificate block", pemText("CERTIFICATE", pubDER), sgid.KeyType, `"CERTIFICATE"`},
		{"ec key in pkcs8", pemText("PRIVATE KEY", ecDER), sgid.KeyType, "ECDSA"},
		{"ec key in sec1", pemText("EC PRIVATE KEY", ecSEC1), sgid.KeyType, `"EC PRIVATE KEY"`},
		{"encrypted pkcs8", pemText("ENCRYPTED PRIVATE KEY", ecDER), sgid.KeyType, "passphrase"},
		{"rsa 1024", sgidtest.EncodePKCS1(small), sgid.KeySize, "1024 bits"},
		{"pkcs1 label over pkcs8 bytes", strings.ReplaceAll(pkcs8, "PRIVATE KEY", "RSA PRIVATE KEY"), sgid.KeyFormat, "PKCS#1"},
		{"pkcs8 label over pkcs1 bytes", strings.ReplaceAll(sgidtest.EncodePKCS1(key), "RSA PRIVATE KEY", "PRIVATE KEY"), sgid.KeyFormat, "PKCS#8"},
		{"two keys", pkcs8 + pkcs8, sgid.KeyFormat, "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sgid.ParsePrivateKey(tt.text)
			var ke *sgid.KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error = %v, want a *sgid.KeyError", err)
			}
			if ke.Problem != tt.problem {
				t.Errorf("problem = %q, want %q (%v)", ke.Problem, tt.problem, err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
			for _, line := range body {
				if strings.Contains(err.Error(), line[:16]) {
					t.Fatalf("error message echoes key material: %q", err)
				}
			}
		})
	}
}

func pemText(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// wrongKeyDER is key material of the kinds people paste where the RSA private key
// belongs: a fresh P-256 private key in PKCS#8 and in SEC 1, and k's public key.
func wrongKeyDER(t testing.TB, k *rsa.PrivateKey) (ecPKCS8, ecSEC1, public []byte) {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if ecPKCS8, err = x509.MarshalPKCS8PrivateKey(ec); err != nil {
		t.Fatal(err)
	}
	if ecSEC1, err = x509.MarshalECPrivateKey(ec); err != nil {
		t.Fatal(err)
	}
	if public, err = x509.MarshalPKIXPublicKey(&k.PublicKey); err != nil {
		t.Fatal(err)
	}
	return ecPKCS8, ecSEC1, public
}

func TestDecryptionErrorBoundsNetworkText(t *testing.T) {
	long := strings.Repeat("A", 5000) + "\x00\n"
	err := &sgid.DecryptionError{Field: "key", Err: errors.New("go-jose: unknown alg " + long)}
	if msg := err.Error(); len(msg) > 300 || strings.ContainsAny(msg, "\x00\n") {
		t.Errorf("DecryptionError carries %d bytes of network text, controls included", len(msg))
	}
}
