package main

import (
	"strings"
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%d values, %g) = %s, want %s", len(tt.sorted), tt.p, got, tt.want)
			}
		})
	}
}

func TestMergedRecordersReportEveryPageInOrder(t *testing.T) {
	a, b := recorder{}, recorder{}
	for i := 1; i <= 19; i++ {
		a.record("home", time.Duration(i)*time.Millisecond, "")
	}
	b.record("home", 500*time.Millisecond, "") // the slowest of 20: only p99 sees it
	b.record("run", 150*time.Millisecond, "")
	b.record("run", 0, "/runs/1: answered 503")
	b.record("zeta", time.Millisecond, "")
	b.record("alpha", time.Millisecond, "")

	merged := merge([]string{"home", "run", "missing"}, a, b)
	var names []string
	var pages []summary
	for _, p := range merged {
		names = append(names, p.Name)
		pages = append(pages, p.summarize())
	}
	if got, want := strings.Join(names, ","), "home,run,alpha,zeta"; got != want {
		t.Fatalf("pages %s, want %s", got, want)
	}
	home, run := pages[0], pages[1]
	if home.Count != 20 || home.P50 != 10*time.Millisecond || home.P95 != 19*time.Millisecond || home.P99 != 500*time.Millisecond {
		t.Errorf("home: %+v", home)
	}
	if !home.Met() {
		t.Errorf("home met p95 %s < 100 ms but is reported as missed", home.P95)
	}
	if run.Count != 1 || run.Failures != 1 || run.Met() {
		t.Errorf("run: %+v; a failure or a p95 of 150 ms must miss", run)
	}
	if merged[1].FirstFailure != "/runs/1: answered 503" {
		t.Errorf("first failure %q", merged[1].FirstFailure)
	}
	if got := missed(pages); got != "run" {
		t.Errorf("missed %q, want run", got)
	}
	var table strings.Builder
	writeTable(&table, pages)
	for _, want := range []string{"| home | 20 | 10.0 | 19.0 | 500.0 | yes |", "| run | 1 | 150.0 | 150.0 | 150.0 | **1 failed** |"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}
