package benchkit_test

import (
	"slices"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/benchkit"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	shuffled := slices.Clone(hundred[:10])
	slices.Reverse(shuffled)
	shuffled[2], shuffled[7] = shuffled[7], shuffled[2]
	tests := []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"none", nil, 95, 0},
		{"one value is every percentile", []time.Duration{7}, 1, 7},
		{"one value at p99", []time.Duration{7}, 99, 7},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p95 of 1..100", hundred, 95, 95 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the maximum", hundred, 100, 100 * time.Millisecond},
		// 95 % of 10 values is 9.5: the 10th value is the first that at
		// least 95 % do not exceed.
		{"p95 of ten rounds up", hundred[:10], 95, 10 * time.Millisecond},
		{"p50 of four", []time.Duration{1, 2, 3, 4}, 50, 2},
		{"order does not matter", shuffled, 30, 3 * time.Millisecond},
		{"negative values sort first", []time.Duration{5, -3, 1}, 1, -3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := benchkit.Percentile(tt.ds, tt.p); got != tt.want {
				t.Errorf("Percentile(%d values, %g) = %s, want %s", len(tt.ds), tt.p, got, tt.want)
			}
		})
	}
}

func TestPercentilesLeaveTheInputAlone(t *testing.T) {
	ds := []time.Duration{30, 10, 20, 40}
	got := benchkit.Percentiles(ds, 99, 50, 25)
	if want := []time.Duration{40, 20, 10}; !slices.Equal(got, want) {
		t.Errorf("Percentiles = %v, want %v in the order asked", got, want)
	}
	if want := []time.Duration{30, 10, 20, 40}; !slices.Equal(ds, want) {
		t.Errorf("input became %v, want it unchanged", ds)
	}
}

func TestMillisShowsOneDecimal(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                     "0.0",
		1250 * time.Microsecond:               "1.2",
		12*time.Second + 340*time.Millisecond: "12340.0",
	} {
		if got := benchkit.Millis(d); got != want {
			t.Errorf("Millis(%s) = %q, want %q", d, got, want)
		}
	}
}
