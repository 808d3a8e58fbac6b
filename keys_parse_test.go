package caddysgid

import (
	"strings"
	"testing"
)

func TestParseECKeyNeverEchoesThePEMLabel(t *testing.T) {
	const keyText = "MHcCAQEEIKeyTextThatMustNotBeEchoed"
	_, err := parseECKey("-----BEGIN " + keyText + "-----\nAAAA\n-----END " + keyText + "-----\n")
	if err == nil {
		t.Fatal("a PEM block of an unknown type was accepted as a signing key")
	}
	if strings.Contains(err.Error(), keyText) {
		t.Errorf("the error echoes the PEM label: %q", err)
	}
}
