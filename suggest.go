package caddysgid

import "strings"

// nearest is the name among names closest to s by edit distance, ignoring
// case, for a "did you mean" hint; ok is false when none is close enough to
// be the likely intent: more than a quarter of s's letters (at least one, at
// most three) would have to change.
func nearest(s string, names []string) (name string, ok bool) {
	limit := min(max(len(s)/4, 1), 3)
	best := limit + 1
	for _, n := range names {
		if d := editDistance(strings.ToLower(s), strings.ToLower(n)); d < best {
			name, best = n, d
		}
	}
	return name, best <= limit
}

// didYouMean is `; did you mean "name"?` for the nearest of names, or "".
func didYouMean(s string, names []string) string {
	if n, ok := nearest(s, names); ok {
		return `; did you mean "` + n + `"?`
	}
	return ""
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment) between a and b in bytes: insertions, deletions, substitutions
// and swaps of two neighbours each cost 1, so "nmae" is 1 from "name".
func editDistance(a, b string) int {
	// Three rows: the one before the previous is for swaps.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
