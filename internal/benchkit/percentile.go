// Package benchkit holds what upbuild's benchmark programs share: the real
// service and the GitLab simulator started on loopback listeners in the
// benchmark's own process, a fresh database per run, nearest-rank
// percentiles and Markdown tables of latencies.
package benchkit

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of ds,
// which may be in any order: the smallest value that at least p % of the
// values do not exceed. It is 0 for no values.
func Percentile(ds []time.Duration, p float64) time.Duration {
	return Percentiles(ds, p)[0]
}

// Percentiles returns the nearest-rank percentiles ps of ds, in the order of
// ps, sorting a copy of ds once for all of them.
func Percentiles(ds []time.Duration, ps ...float64) []time.Duration {
	out := make([]time.Duration, len(ps))
	if len(ds) == 0 {
		return out
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	for i, p := range ps {
		rank := int(math.Ceil(p / 100 * float64(len(sorted))))
		out[i] = sorted[min(max(rank, 1), len(sorted))-1]
	}
	return out
}

// Millis writes d in milliseconds with one decimal, as the tables show it.
func Millis(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}
