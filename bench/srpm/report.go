package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"time"
)

// target is the bound on upbuild's SRPM time over plain rpmbuild.
const target = 1.5

// result is one run's figures.
type result struct {
	opts options
	// warmup is the first job's start → SRPM stored, with a cold cache.
	warmup time.Duration
	// upbuildSRPM is start → SRPM stored per measured job, from upbuild's
	// records; upbuildJob is start → finished (with the RPM rebuild).
	upbuildSRPM, upbuildJob []time.Duration
	// steps are the same jobs' steps timed outside upbuild.
	steps []stepTimes
	// sandboxStart are empty sandbox runs.
	sandboxStart []time.Duration
	// plain are the rpmbuild -bs runs on the host.
	plain []time.Duration
	// floor are the tools a job adds to rpmbuild -bs, alone.
	floor floorTimes

	throughputJobs      int
	throughputWindow    time.Duration
	throughputDurations []time.Duration
	throughputLeft      int

	loadStart, loadEnd string
}

func p50(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func mean(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// printReport writes whatever figures the run got.
func printReport(w io.Writer, command string, r result) {
	fmt.Fprintf(w, "bench/srpm: %s\n", command)
	fmt.Fprintf(w, "load average %s at start, %s at end\n\n", r.loadStart, r.loadEnd)
	if len(r.upbuildSRPM) == 0 {
		return
	}
	fmt.Fprintf(w, "job start → SRPM stored, from upbuild's records (%d jobs after one warm-up of %s):\n", len(r.upbuildSRPM), ms(r.warmup))
	fmt.Fprintf(w, "  upbuild                 p50 %10s   mean %10s\n", ms(p50(r.upbuildSRPM)), ms(mean(r.upbuildSRPM)))
	if len(r.plain) > 0 {
		fmt.Fprintf(w, "  plain rpmbuild -bs      p50 %10s   mean %10s   (host, no sandbox, prepared tree, %d runs)\n",
			ms(p50(r.plain)), ms(mean(r.plain)), len(r.plain))
		ratio := float64(p50(r.upbuildSRPM)) / float64(p50(r.plain))
		verdict := "met"
		if ratio >= target {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "  ratio                   p50 %9.2f×   mean %9.2f×   (target < %.1f×: %s)\n", ratio,
			float64(mean(r.upbuildSRPM))/float64(mean(r.plain)), target, verdict)
	}
	fmt.Fprintf(w, "  whole job (SRPM + RPM)  p50 %10s   mean %10s\n\n", ms(p50(r.upbuildJob)), ms(mean(r.upbuildJob)))

	if len(r.steps) > 0 {
		printSteps(w, r)
	}
	if len(r.floor.fetch) > 0 && len(r.plain) > 0 {
		printFloor(w, r)
	}
	if r.throughputWindow > 0 {
		perMinute := float64(r.throughputJobs) / r.throughputWindow.Minutes()
		fmt.Fprintf(w, "throughput: %d workers, %d merge requests kept open, one project\n", r.opts.workers, r.opts.backlog)
		fmt.Fprintf(w, "  %d complete build jobs (SRPM + RPM on host) finished in %s: %.1f jobs/minute\n",
			r.throughputJobs, r.throughputWindow, perMinute)
		fmt.Fprintf(w, "  job start → finished under load: p50 %s, mean %s; %d still unfinished at the end\n",
			ms(p50(r.throughputDurations)), ms(mean(r.throughputDurations)), r.throughputLeft)
	}
}

// printSteps writes where the time of a job up to its stored SRPM goes.
func printSteps(w io.Writer, r result) {
	pick := func(f func(stepTimes) time.Duration) []time.Duration {
		var out []time.Duration
		for _, s := range r.steps {
			out = append(out, f(s))
		}
		return out
	}
	fmt.Fprintf(w, "where the time goes: the same steps outside upbuild, %d jobs, p50 (mean):\n", len(r.steps))
	row := func(name string, d []time.Duration) {
		fmt.Fprintf(w, "  %-34s %10s (%s)\n", name, ms(p50(d)), ms(mean(d)))
	}
	fetch := pick(func(s stepTimes) time.Duration { return s.fetch })
	cfg := pick(func(s stepTimes) time.Duration { return s.config })
	build := pick(func(s stepTimes) time.Duration { return s.srpm })
	stored := pick(func(s stepTimes) time.Duration { return s.store })
	row("checkout from the cache (gitfetch)", fetch)
	row("read .packit.yaml", cfg)
	row("SRPM step (srpm.Builder), of which:", build)
	keys := map[string]bool{}
	for _, s := range r.steps {
		for k := range s.commands {
			keys[k] = true
		}
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var commands time.Duration
	for _, k := range names {
		d := pick(func(s stepTimes) time.Duration { return s.commands[k] })
		commands += mean(d)
		row("  "+k, d)
	}
	other := mean(build) - commands
	fmt.Fprintf(w, "  %-34s %10s   (mean)\n", "  in-process (archive gzip, spec edits)", ms(other))
	row("SRPM into the blob store", stored)
	sum := p50(fetch) + p50(cfg) + p50(build) + p50(stored)
	fmt.Fprintf(w, "  %-34s %10s; upbuild's own figure p50 %s (the rest: job start, log and artifact rows)\n",
		"sum of p50s", ms(sum), ms(p50(r.upbuildSRPM)))
	if len(r.sandboxStart) > 0 {
		fmt.Fprintf(w, "  one empty sandbox run (bwrap `true`) p50 %s (mean %s)\n", ms(p50(r.sandboxStart)), ms(mean(r.sandboxStart)))
	}
	fmt.Fprintln(w)
}

// printFloor writes the least a job can cost with the commands the issue
// asks it to run, against plain rpmbuild -bs.
func printFloor(w io.Writer, r result) {
	f := r.floor
	plain := p50(r.plain)
	least := f.sum()
	fmt.Fprintf(w, "the floor: the commands the issue asks of every job, in the order they depend on each other, each alone on the host, p50:\n")
	fmt.Fprintf(w, "  git fetch (nothing new) %s → git describe (version from the tag) %s → git archive %s\n",
		ms(p50(f.fetch)), ms(p50(f.version)), ms(p50(f.archive)))
	fmt.Fprintf(w, "  → rpmbuild -bs inside bwrap %s (bwrap /bin/true alone %s) → rpm -qp %s\n",
		ms(p50(f.sandboxedRpmbuild)), ms(p50(f.bwrap)), ms(p50(f.rpmQuery)))
	fmt.Fprintf(w, "  sum %s: %.2f× plain rpmbuild -bs at the least (target %.1f×); without the fetch %.2f×; rpmbuild -bs inside bwrap alone %.2f×\n",
		ms(least), float64(least)/float64(plain), target, float64(least-p50(f.fetch))/float64(plain), float64(p50(f.sandboxedRpmbuild))/float64(plain))
	fmt.Fprintf(w, "  upbuild's overhead over rpmbuild -bs: p50 %s, of which %s above that floor\n\n",
		ms(p50(r.upbuildSRPM)-plain), ms(p50(r.upbuildSRPM)-least))
}
