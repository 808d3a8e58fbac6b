package gateway

import (
	"net/textproto"
	"strings"
)

// The names the gateway owns: its endpoints' path prefix and the headers it
// sets on the request to the upstream. A client's copies of the headers are
// stripped (strip.go).
const (
	EndpointPrefix  = "/.sgid/"
	SubHeader       = "X-Sgid-Sub"
	AssertionHeader = "X-Sgid-Assertion"

	// ownedHeaderPrefix: every header with it is the gateway's, configured or
	// not, in the folded form of NormalizeHeader.
	ownedHeaderPrefix = "x-sgid-"
	// userPlaceholderPrefix: the identity's placeholders, as caddyauth's.
	userPlaceholderPrefix = "http.auth.user."
)

// DefaultHeader is the header a forwarded field gets when none is named:
// X-Sgid- + the field with dots and underscores as dashes, in title case.
func DefaultHeader(field string) string {
	name := strings.NewReplacer(".", "-", "_", "-").Replace(field)
	return textproto.CanonicalMIMEHeaderKey("X-Sgid-" + name)
}

// NormalizeHeader reads a header name the way CGI, PHP-FPM and friends do:
// case-insensitive, with '_', '.' and '-' the same (PHP maps '.' to '_' too).
// Two names with the same normal form are one header to such an upstream.
func NormalizeHeader(name string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
}
