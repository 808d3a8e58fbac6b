package gateway

import "testing"

func TestEncodeHeaderValueIsExactAndPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"TAN AH KOW", "TAN AH KOW"},
		{"", ""},
		{"100%", "100%25"},
		{"BLK 1\nSINGAPORE", "BLK 1%0ASINGAPORE"},
		{"Zoë", "Zo%C3%AB"},
		{"a\x00b\x7f", "a%00b%7F"},
		{"~!@#$^&*()", "~!@#$^&*()"},
	} {
		if got := encodeHeaderValue(tt.in); got != tt.want {
			t.Errorf("encodeHeaderValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
