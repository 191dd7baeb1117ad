package loadgen_test

import (
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/loadgen"
)

func TestReportPercentileIsNearestRank(t *testing.T) {
	var rep loadgen.Report
	for i := 1; i <= 10; i++ {
		rep.Latencies = append(rep.Latencies, time.Duration(i)*time.Millisecond)
	}
	// 99 % of 10 answers is 9.9: only the slowest is at least that far up.
	for p, want := range map[float64]time.Duration{50: 5 * time.Millisecond, 99: 10 * time.Millisecond, 100: 10 * time.Millisecond} {
		if got := rep.Percentile(p); got != want {
			t.Errorf("Percentile(%g) = %s, want %s", p, got, want)
		}
	}
	if got := (loadgen.Report{}).Percentile(99); got != 0 {
		t.Errorf("Percentile of no answers = %s, want 0", got)
	}
}
