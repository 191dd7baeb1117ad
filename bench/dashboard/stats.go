package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// target is what the issue asks of every page: p95 under 100 ms.
const target = 100 * time.Millisecond

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted: the smallest value that at least p % of the values do not exceed.
// It is 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100 + 0.999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// pageStats are the latencies one kind of request took, and its failures.
type pageStats struct {
	Name      string
	Latencies []time.Duration
	Failures  int
	// FirstFailure describes one failure, for the report.
	FirstFailure string
}

// summary is a page's figures for the table.
type summary struct {
	Name          string
	Count         int
	Failures      int
	P50, P95, P99 time.Duration
}

func (s pageStats) summarize() summary {
	sorted := slices.Clone(s.Latencies)
	slices.Sort(sorted)
	return summary{Name: s.Name, Count: len(sorted), Failures: s.Failures,
		P50: percentile(sorted, 50), P95: percentile(sorted, 95), P99: percentile(sorted, 99)}
}

// Met reports whether the page answered in time at p95 with no failure.
func (s summary) Met() bool { return s.Count > 0 && s.Failures == 0 && s.P95 < target }

// recorder collects one reader's measurements; each reader has its own,
// merged at the end, so measuring takes no lock.
type recorder map[string]*pageStats

func (r recorder) record(name string, took time.Duration, failure string) {
	s := r[name]
	if s == nil {
		s = &pageStats{Name: name}
		r[name] = s
	}
	if failure != "" {
		s.Failures++
		if s.FirstFailure == "" {
			s.FirstFailure = failure
		}
		return
	}
	s.Latencies = append(s.Latencies, took)
}

// merge folds recorders together, pages in the order names gives (any
// page not in names follows, by name).
func merge(names []string, recs ...recorder) []pageStats {
	all := map[string]*pageStats{}
	for _, r := range recs {
		for name, s := range r {
			t := all[name]
			if t == nil {
				t = &pageStats{Name: name}
				all[name] = t
			}
			t.Latencies = append(t.Latencies, s.Latencies...)
			t.Failures += s.Failures
			if t.FirstFailure == "" {
				t.FirstFailure = s.FirstFailure
			}
		}
	}
	var out []pageStats
	for _, name := range names {
		if s, ok := all[name]; ok {
			out = append(out, *s)
			delete(all, name)
		}
	}
	rest := make([]string, 0, len(all))
	for name := range all {
		rest = append(rest, name)
	}
	sort.Strings(rest)
	for _, name := range rest {
		out = append(out, *all[name])
	}
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// writeTable prints the per-page table as Markdown, ready for
// docs/PERFORMANCE.md.
func writeTable(w io.Writer, pages []summary) {
	fmt.Fprintln(w, "| page | requests | p50 ms | p95 ms | p99 ms | p95 < 100 ms |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|---|")
	for _, p := range pages {
		verdict := "yes"
		switch {
		case p.Failures > 0:
			verdict = fmt.Sprintf("**%d failed**", p.Failures)
		case !p.Met():
			verdict = "**no**"
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s |\n", p.Name, p.Count, ms(p.P50), ms(p.P95), ms(p.P99), verdict)
	}
}

// missed names the pages that did not meet the target.
func missed(pages []summary) string {
	var out []string
	for _, p := range pages {
		if !p.Met() {
			out = append(out, p.Name)
		}
	}
	return strings.Join(out, ", ")
}
