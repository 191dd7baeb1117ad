package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	"upbuild.dev/upbuild/internal/benchkit"
)

// The product's targets for "202 → first pending" on SQLite.
const (
	targetP50 = 50 * time.Millisecond
	targetP99 = 250 * time.Millisecond
)

// shownWarnings is how many of upbuild's warning lines the report repeats.
const shownWarnings = 5

// printReport writes a run's figures.
func printReport(w io.Writer, command string, res result) error {
	o := res.opts
	fmt.Fprintf(w, "upbuild latency: webhook 202 → first \"pending\" commit status\n")
	fmt.Fprintf(w, "  command    %s\n", command)
	fmt.Fprintf(w, "  database   %s (%s)\n", res.engine, res.where)
	fmt.Fprintf(w, "  load       %g new MRs/s for %s over %d projects (push a branch, open the MR); simulator rate limits off\n",
		o.rate, o.duration, o.projects)
	fmt.Fprintf(w, "  machine    load average %s at the start, %s at the end\n", res.loadStart, res.loadEnd)
	fmt.Fprintf(w, "  schedule   %d planned, %d opened; %d started more than one interval (%s) late, max lag %s\n",
		res.planned, res.Opened, res.late, fmtDur(res.interval), fmtDur(res.maxLag))
	if res.late > 0 {
		fmt.Fprintf(w, "             FELL BEHIND: merge requests were opened later than planned (push + open outlasted a project's share of the schedule)\n")
	}
	fmt.Fprintf(w, "  simulator  push + open per MR: p50 %s, max %s\n",
		fmtDur(benchkit.Percentile(res.simWork, 50)), fmtDur(benchkit.Percentile(res.simWork, 100)))
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  MRs opened                          %d\n", res.Opened)
	fmt.Fprintf(w, "  MR deliveries answered 202          %d of %d sent (branch pushes: %d of %d)\n",
		res.Answered202, res.OpenDeliveries, res.PushAnswered202, res.PushDeliveries)
	for _, why := range slices.Sorted(maps.Keys(res.Refused)) {
		fmt.Fprintf(w, "    not 202: %d × %s\n", res.Refused[why], why)
	}
	fmt.Fprintf(w, "  MRs that got a pending status       %d (first status transition was to pending: %d)\n",
		res.WithPending, res.PendingFirst)
	fmt.Fprintf(w, "  MRs with every status final        %d\n", res.AllFinal)
	fmt.Fprintln(w)
	// The table is Markdown, ready for docs/PERFORMANCE.md; the last two
	// rows break "202 → first pending" down as the simulator saw upbuild's
	// API calls.
	if err := writeLatencies(w, []latencyRow{
		{"202 → first pending", res.ToPending},
		{"202 → all statuses final", res.ToFinal},
		{"202 → first status (any)", res.ToFirstStatus},
		{"202 → first config read call", res.ToConfigRead},
		{"202 → first status call", res.ToStatusCall},
	}); err != nil {
		return err
	}
	if n := negatives(res.ToPending); n > 0 {
		fmt.Fprintf(w, "  (%d pending statuses were recorded before the simulator had read the 202)\n", n)
	}
	fmt.Fprintln(w)
	p50, p99 := benchkit.Percentile(res.ToPending, 50), benchkit.Percentile(res.ToPending, 99)
	verdict := "missed"
	if len(res.ToPending) > 0 && p50 < targetP50 && p99 < targetP99 {
		verdict = "met"
	}
	scope := "target"
	if res.engine != "sqlite" {
		scope = "SQLite's target, for comparison"
	}
	fmt.Fprintf(w, "  %s: p50 under %s and p99 under %s: %s (p50 %s, p99 %s)\n",
		scope, fmtDur(targetP50), fmtDur(targetP99), verdict, fmtDur(p50), fmtDur(p99))
	if len(res.MissingPending) > 0 {
		fmt.Fprintf(w, "  CORRECTNESS: %d MRs got no pending status within %s after the last was opened\n",
			len(res.MissingPending), o.settle)
	}
	total := 0
	for _, rc := range res.apiCalls {
		total += rc.n
	}
	fmt.Fprintf(w, "  API requests to the simulator during the run: %d (%.1f per MR), %.1f/s on average, %d in the busiest second\n",
		total, float64(total)/float64(max(res.Opened, 1)), res.apiRate.average, res.apiRate.peak)
	for _, rc := range res.apiCalls {
		fmt.Fprintf(w, "    %6d  %s\n", rc.n, rc.route)
	}
	fmt.Fprintf(w, "  upbuild logged %d warnings or errors\n", len(res.warnings))
	for _, line := range res.warnings[max(0, len(res.warnings)-shownWarnings):] {
		if len(line) > 300 {
			line = line[:300] + "…"
		}
		fmt.Fprintf(w, "    %s\n", line)
	}
	return nil
}

// latencyRow is one row of the report's table: what was measured, and how
// long it took for each merge request.
type latencyRow struct {
	name      string
	latencies []time.Duration
}

// writeLatencies writes the count and the p50, p90, p99 and maximum of
// each row in milliseconds.
func writeLatencies(w io.Writer, rows []latencyRow) error {
	columns := []benchkit.Column{{Heading: ""}, {Heading: "n", Numeric: true}, {Heading: "p50 ms", Numeric: true},
		{Heading: "p90 ms", Numeric: true}, {Heading: "p99 ms", Numeric: true}, {Heading: "max ms", Numeric: true}}
	cells := make([][]string, 0, len(rows))
	for _, r := range rows {
		row := []string{r.name, strconv.Itoa(len(r.latencies))}
		for _, d := range benchkit.Percentiles(r.latencies, 50, 90, 99, 100) {
			row = append(row, benchkit.Millis(d))
		}
		cells = append(cells, row)
	}
	return benchkit.WriteTable(w, columns, cells)
}

func negatives(ds []time.Duration) int {
	n := 0
	for _, d := range ds {
		if d < 0 {
			n++
		}
	}
	return n
}

func fmtDur(d time.Duration) string {
	if d >= 10*time.Second || d <= -10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}
