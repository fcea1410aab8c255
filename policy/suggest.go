package policy

import "sort"

// suggest returns the option closest to word when it is close enough to be a
// likely typo, or "" when none is.
func suggest(word string, options []string) string {
	best, bestDist := "", 3 // at most two edits away
	sorted := append([]string(nil), options...)
	sort.Strings(sorted)
	for _, o := range sorted {
		if d := editDistance(word, o); d < bestDist && d < len(o) {
			best, bestDist = o, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
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
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
