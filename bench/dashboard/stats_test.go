package main

import (
	"strings"
	"testing"
	"time"
)

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
	if err := writeTable(&table, pages); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| home | 20 | 10.0 | 19.0 | 500.0 | yes |", "| run | 1 | 150.0 | 150.0 | 150.0 | **1 failed** |"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}
