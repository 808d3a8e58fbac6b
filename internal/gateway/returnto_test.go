package gateway

import (
	"strings"
	"testing"
)

func TestSafeReturnToKeepsOnlyPathsOnThisSite(t *testing.T) {
	long := "/" + strings.Repeat("a", 511)
	for _, tt := range []struct{ in, want string }{
		{"/app/page?q=1", "/app/page?q=1"},
		{"/", "/"},
		{"", "/"},
		{"app/page", "/"},
		{"https://evil.example/", "/"},
		{"//evil.example/", "/"},
		{`/\evil.example/`, "/"},
		{"/a\\b", "/"},
		{"/a\nb", "/"},
		{"/a\x7fb", "/"},
		{"/.sgid/logout", "/"},
		{"/.sgid/", "/"},
		{"/app/../.sgid/login", "/"},
		{"/app/%2e%2e/.sgid/login", "/"},
		{"/app%23/../.sgid/logout", "/"},
		{"/.sgidx/page", "/.sgidx/page"},
		{long, long},
		{long + "b", "/"},
		{"/%zz", "/"},
	} {
		if got := safeReturnTo(tt.in); got != tt.want {
			t.Errorf("safeReturnTo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
