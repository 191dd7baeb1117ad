package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/benchkit"
)

// target is what the issue asks of every page: p95 under 100 ms.
const target = 100 * time.Millisecond

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
	ps := benchkit.Percentiles(s.Latencies, 50, 95, 99)
	return summary{Name: s.Name, Count: len(s.Latencies), Failures: s.Failures, P50: ps[0], P95: ps[1], P99: ps[2]}
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

// writeTable prints the per-page table as Markdown, ready for
// docs/PERFORMANCE.md.
func writeTable(w io.Writer, pages []summary) error {
	columns := []benchkit.Column{{Heading: "page"}, {Heading: "requests", Numeric: true}, {Heading: "p50 ms", Numeric: true},
		{Heading: "p95 ms", Numeric: true}, {Heading: "p99 ms", Numeric: true}, {Heading: "p95 < 100 ms"}}
	rows := make([][]string, 0, len(pages))
	for _, p := range pages {
		verdict := "yes"
		switch {
		case p.Failures > 0:
			verdict = fmt.Sprintf("**%d failed**", p.Failures)
		case !p.Met():
			verdict = "**no**"
		}
		rows = append(rows, []string{p.Name, strconv.Itoa(p.Count),
			benchkit.Millis(p.P50), benchkit.Millis(p.P95), benchkit.Millis(p.P99), verdict})
	}
	return benchkit.WriteTable(w, columns, rows)
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
