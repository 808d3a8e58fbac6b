package sgid

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
)

// KeyProblem names what is wrong with a client private key.
type KeyProblem string

// The ways a private key can be unusable.
const (
	KeyMissing  KeyProblem = "missing"  // no key text at all
	KeyEscaping KeyProblem = "escaping" // newlines escaped in a way that does not unescape to PEM
	KeyFormat   KeyProblem = "format"   // not PEM, or a PEM block that does not parse
	KeyType     KeyProblem = "type"     // a PEM block of another kind, or a non-RSA key
	KeySize     KeyProblem = "size"     // an RSA key of the wrong size
)

// KeyError is a client private key that cannot be used. Its message says which
// problem it is and never holds any of the key text.
type KeyError struct {
	Problem KeyProblem
	Detail  string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("sgid: private key %s problem: %s", e.Problem, e.Detail)
}

// otherPEMTypes are the labels of PEM blocks pasted by mistake that an error may
// name. Any other label is not repeated: text between "-----BEGIN " and "-----" in
// a mangled key can be the key itself.
var otherPEMTypes = []string{
	"CERTIFICATE", "TRUSTED CERTIFICATE", "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST", "X509 CRL",
	"PUBLIC KEY", "RSA PUBLIC KEY", "EC PRIVATE KEY", "EC PARAMETERS", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY",
}

const (
	minKeyBits = 2048
	maxKeyBits = 4096
)

// ParsePrivateKey reads an sgID client private key: PEM text holding PKCS#8
// ("BEGIN PRIVATE KEY") or PKCS#1 ("BEGIN RSA PRIVATE KEY"), with real newlines or,
// as some hosting platforms pass environment variables, with every newline escaped
// as the two characters `\n`. sgID issues RSA-2048 keys; 2048 to 4096 bits are
// accepted.
func ParsePrivateKey(text string) (*rsa.PrivateKey, error) {
	text = strings.TrimSpace(text)
	// Environment files sometimes keep the quotes around a multi-line value.
	if len(text) >= 2 && (text[0] == '"' && text[len(text)-1] == '"' || text[0] == '\'' && text[len(text)-1] == '\'') {
		text = strings.TrimSpace(text[1 : len(text)-1])
	}
	if text == "" {
		return nil, &KeyError{KeyMissing, "the private key is empty"}
	}
	escaped := false
	if strings.Contains(text, `\n`) || strings.Contains(text, `\r`) {
		escaped = true
		text = strings.NewReplacer(`\r\n`, "\n", `\n`, "\n", `\r`, "\n").Replace(text)
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		if escaped {
			return nil, &KeyError{KeyEscaping, `the key has escaped "\n" newlines but is not PEM once they are unescaped`}
		}
		if strings.Contains(text, "-----BEGIN") {
			if !strings.Contains(text, "\n") {
				return nil, &KeyError{KeyEscaping, `the PEM text is on one line: its newlines were lost; keep them, or escape each as "\n"`}
			}
			return nil, &KeyError{KeyFormat, "the PEM block is damaged (bad base64 or a missing END line)"}
		}
		return nil, &KeyError{KeyFormat, "the key is not PEM text: expected a -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY----- block"}
	}
	if len(strings.TrimSpace(string(rest))) > 0 && strings.Contains(string(rest), "-----BEGIN") {
		return nil, &KeyError{KeyFormat, "more than one PEM block: give only the private key"}
	}
	if len(block.Headers) > 0 || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, &KeyError{KeyType, "the key is encrypted with a passphrase: give the unencrypted key"}
	}

	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, &KeyError{KeyFormat, "the RSA PRIVATE KEY block is not a valid PKCS#1 key"}
		}
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, &KeyError{KeyFormat, "the PRIVATE KEY block is not a valid PKCS#8 key"}
		}
	default:
		kind := "a PEM block of another type"
		if slices.Contains(otherPEMTypes, block.Type) {
			kind = fmt.Sprintf("a %q PEM block", block.Type)
		}
		return nil, &KeyError{KeyType, kind + " is not a private key: expected PRIVATE KEY (PKCS#8) or RSA PRIVATE KEY (PKCS#1)"}
	}

	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, &KeyError{KeyType, fmt.Sprintf("the key is %s, but sgID client keys are RSA", keyKind(key))}
	}
	if bits := rsaKey.N.BitLen(); bits < minKeyBits || bits > maxKeyBits {
		return nil, &KeyError{KeySize, fmt.Sprintf("the RSA key has %d bits; sgID client keys have 2048", bits)}
	}
	if err := rsaKey.Validate(); err != nil {
		return nil, &KeyError{KeyFormat, "the RSA key is inconsistent: " + err.Error()}
	}
	rsaKey.Precompute()
	return rsaKey, nil
}

func keyKind(key any) string {
	switch key.(type) {
	case *ecdsa.PrivateKey:
		return "an ECDSA key"
	case ed25519.PrivateKey:
		return "an Ed25519 key"
	default:
		return fmt.Sprintf("a %T", key)
	}
}
