package command

import "strings"

// closest returns the candidate nearest to word, if it is near enough to be
// a likely typo: at most one edit for words shorter than five bytes, two
// otherwise, and nothing for words under three bytes, which are too short to
// guess from. Case is ignored, so "Build" suggests "build". Ties go to the
// earlier candidate.
func closest(word string, candidates []string) (string, bool) {
	const longest = 64 // no command or flag is this long; spare the work
	if len(word) < 3 || len(word) > longest {
		return "", false
	}
	limit := 1
	if len(word) >= 5 {
		limit = 2
	}
	best, bestDist := "", limit+1
	lower := strings.ToLower(word)
	for _, c := range candidates {
		if d := editDistance(lower, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best, best != ""
}

// editDistance is the optimal string alignment distance between a and b, in
// bytes: insertions, deletions, substitutions and swaps of two neighbours
// each cost one, so "biuld" is one edit from "build".
func editDistance(a, b string) int {
	// prev2, prev and cur are the rows for a[:i-2], a[:i-1] and a[:i]; a swap
	// looks two rows back.
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
