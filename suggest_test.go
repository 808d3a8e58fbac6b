package caddysgid

import "testing"

func TestEditDistanceCountsASwapOfNeighboursAsOne(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"name", "name", 0},
		{"nmae", "name", 1},
		{"nam", "name", 1},
		{"names", "name", 1},
		{"nome", "name", 1},
		{"", "abc", 3},
		{"client_secert", "client_secret", 1},
		{"kitten", "sitting", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := editDistance(tt.b, tt.a); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestDidYouMeanNamesOnlyANearName(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"client_ID", `; did you mean "client_id"?`},
		{"clientid", `; did you mean "client_id"?`},
		{"sesion_secret", `; did you mean "session_secret"?`},
		{"idle_timout", `; did you mean "idle_timeout"?`},
		{"scopes", `; did you mean "scope"?`},
		{"redirect_url", `; did you mean "redirect_uri"?`},
		{"client_name", ""},
		{"x", ""},
		{"reverse_proxy", ""},
	} {
		if got := didYouMean(tt.in, subdirectives); got != tt.want {
			t.Errorf("didYouMean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
