// Command dashboard benchmarks upbuild's pages and JSON API with a big
// history: a project of 100,000 runs over 90 days (four jobs each, merge
// requests, branches and releases), neighbours public and private, a run
// of 1,000 jobs and job logs. It seeds the database with multi-row INSERTs
// in one transaction, starts the real upbuild service (internal/server) on
// a loopback listener in this process, and then, for -duration, lets 16
// readers loop over home, the project page (first page, filtered, deep
// ?before=, with its 90-day charts), the 1,000-job run page, job pages and
// the /api/v1 lists, while intake takes 500 signed deliveries a second on
// the same server and database.
//
//	go run ./bench/dashboard                          # SQLite and PostgreSQL
//	go run ./bench/dashboard -db sqlite -duration 20s -runs 20000
//
// It prints per page p50/p95/p99 and the count, intake's achieved rate and
// its p99, and whether every page met p95 < 100 ms. It exits 1 when the
// seeding or any request failed (a missed target is reported, not an
// error), and 2 on bad flags. PostgreSQL runs use a fresh database
// (bench_dashboard_<random>) on -postgres, dropped at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"upbuild.dev/upbuild/internal/benchkit"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// options configure a run.
type options struct {
	engines  []string
	duration time.Duration
	runs     int
	readers  int
	rate     float64
	postgres string
	fixtures string
	// cpuProfile, when set, receives a CPU profile of the measured phase
	// (of the last database when there are two).
	cpuProfile string
	progress   io.Writer
}

// The GitLab instance the seeded projects live on. Nothing is ever sent to
// it: the instance has no bot token.
const instanceURL = "http://gitlab.bench.invalid"

func main() {
	opts := options{progress: os.Stderr}
	db := flag.String("db", "both", "sqlite, postgres or both")
	flag.DurationVar(&opts.duration, "duration", 60*time.Second, "how long the readers and intake run, per database")
	flag.IntVar(&opts.runs, "runs", 100_000, "runs of the big project (the other projects add 10,500)")
	flag.IntVar(&opts.readers, "readers", 16, "concurrent readers")
	flag.Float64Var(&opts.rate, "rate", 500, "signed webhook deliveries per second during the reads")
	flag.StringVar(&opts.postgres, "postgres", "postgres://postgres@127.0.0.1:55433/postgres?sslmode=disable",
		"PostgreSQL server to create the benchmark's database on")
	flag.StringVar(&opts.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured phase to this file")
	flag.StringVar(&opts.fixtures, "fixtures", "internal/forge/gitlab/testdata/webhooks", "GitLab's sample payloads")
	flag.Parse()
	switch *db {
	case "both":
		opts.engines = []string{"sqlite", "postgres"}
	case "sqlite", "postgres":
		opts.engines = []string{*db}
	}
	if flag.NArg() > 0 || opts.engines == nil || opts.duration <= 0 || opts.runs < 1000 || opts.readers < 1 || opts.rate <= 0 {
		fmt.Fprintln(os.Stderr, "bench/dashboard: want -db sqlite|postgres|both, positive -duration, -readers and -rate, -runs of at least 1000, and no arguments")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := false
	fmt.Printf("dashboard benchmark: %s\n", benchkit.CommandLine(flag.CommandLine, "go run ./bench/dashboard", "postgres"))
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s/%s\n\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	for _, engine := range opts.engines {
		res, err := run(ctx, engine, opts)
		if res.ran {
			err = errors.Join(err, printReport(os.Stdout, opts, res))
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench/dashboard: %s: %v\n", engine, err)
			failed = true
		}
	}
	if failed {
		stop()
		os.Exit(1)
	}
}

// result is one engine's run.
type result struct {
	ran       bool
	engine    string
	where     string
	seed      seeded
	firstView time.Duration
	pages     []summary
	failures  []string
	intake    intakeResult
	loadStart string
	loadEnd   string
	errors    []string
}

// run seeds one database, serves it and measures.
func run(ctx context.Context, engine string, opts options) (res result, err error) {
	res.engine = engine
	tmp, removeTmp, err := benchkit.TempDir("upbuild-dashboard-")
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, removeTmp()) }()
	dataDir := filepath.Join(tmp, "data")
	if err := server.PrepareDataDir(dataDir); err != nil {
		return res, err
	}
	serverURL := ""
	if engine == "postgres" {
		serverURL = opts.postgres
	}
	db, err := benchkit.PrepareDatabase(ctx, serverURL, dataDir, "bench_dashboard_")
	if err != nil {
		return res, fmt.Errorf("-postgres: %w", err)
	}
	defer func() { err = errors.Join(err, db.Drop(ctx)) }()
	res.where = db.Where

	instance, err := token.NormalizeInstanceURL(instanceURL)
	if err != nil {
		return res, fmt.Errorf("instance: %w", err)
	}
	fmt.Fprintf(opts.progress, "bench/dashboard: %s: seeding %d runs of %s and 10,500 others\n", engine, opts.runs, bigProjectPath)
	if res.seed, err = seedDatabase(ctx, db.URL, instance, opts.runs); err != nil {
		return res, err
	}
	fmt.Fprintf(opts.progress, "bench/dashboard: %s: seeded %d runs, %d jobs, %d deliveries in %s\n",
		engine, res.seed.Runs, res.seed.Jobs, res.seed.Delivered, res.seed.Took.Round(100*time.Millisecond))

	// The instance has no bot token: deliveries are accepted and stored,
	// and the planner marks them planned without asking GitLab, so intake's
	// whole write path runs but no job does. No job workers run either.
	// Errors only: the planner warns about every delivery it cannot plan
	// without a bot token, which is this benchmark's design, not news.
	up, err := benchkit.StartService(ctx, benchkit.ServiceConfig{
		Instance: instance, DataDir: dataDir, DatabaseURL: db.URL, Env: map[string]string{"UPBUILD_WORKERS": "0"},
		LogPath: filepath.Join(tmp, "upbuild.log"), LogLevel: slog.LevelError,
	})
	if err != nil {
		return res, err
	}
	defer func() {
		logged, serr := up.Stop(context.WithoutCancel(ctx))
		res.errors, err = logged, errors.Join(err, serr)
	}()
	// A group token with a signing token, as a maintainer who wants signed
	// deliveries would issue.
	issued, err := up.IssueWebhookToken(ctx, benchkit.TokenRequest{
		URL: instance + "/" + groupPath, Group: true, Signing: true, IssuedBy: "bench/dashboard"})
	if err != nil {
		return res, err
	}
	mix, err := intakeMix(opts.fixtures, instance)
	if err != nil {
		return res, err
	}

	transport := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	load := &intakeLoad{url: up.URL + "/api/webhooks/gitlab", token: issued.Token, signing: issued.SigningSecret,
		mix: mix, rate: opts.rate, senders: 256, client: client}
	host := strings.TrimPrefix(strings.TrimPrefix(instance, "https://"), "http://")

	// The big project's first view sums its 90 days of history once; it is
	// reported on its own, and the table is what every later view costs.
	if res.firstView, err = get(ctx, client, up.URL+"/p/"+host+"/"+bigProjectPath, false, ""); err != nil {
		return res, fmt.Errorf("first view of %s: %w", bigProjectPath, err)
	}
	fmt.Fprintf(opts.progress, "bench/dashboard: %s: %d readers and %g deliveries/s for %s\n", engine, opts.readers, opts.rate, opts.duration)
	stopProfile, err := benchkit.StartCPUProfile(opts.cpuProfile)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, stopProfile()) }()
	res.loadStart = benchkit.LoadAverage()
	intakeDone := make(chan intakeResult, 1)
	go func() { intakeDone <- load.run(ctx, opts.duration) }()
	recs := readers(ctx, time.Now().Add(opts.duration), opts.readers, client, up.URL, up.AdminToken(), res.seed, host)
	res.intake = <-intakeDone
	res.loadEnd = benchkit.LoadAverage()
	res.ran = true
	for _, p := range merge(pageOrder, recs...) {
		res.pages = append(res.pages, p.summarize())
		if p.FirstFailure != "" {
			res.failures = append(res.failures, fmt.Sprintf("%s: %d failed, first: %s", p.Name, p.Failures, p.FirstFailure))
		}
	}
	if res.intake.FirstFailure != "" {
		res.failures = append(res.failures, fmt.Sprintf("intake: %d failed, first: %s", res.intake.Failures, res.intake.FirstFailure))
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if len(res.failures) > 0 {
		return res, fmt.Errorf("%d kinds of request failed: %s", len(res.failures), strings.Join(res.failures, "; "))
	}
	return res, nil
}

// seedDatabase migrates the fresh database and seeds it.
func seedDatabase(ctx context.Context, dbURL, instance string, runs int) (seeded, error) {
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return seeded{}, err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return seeded{}, err
	}
	s, err := seed(ctx, st, instance, runs, time.Now())
	if err != nil {
		return s, fmt.Errorf("seed: %w", err)
	}
	return s, nil
}

// printReport writes one engine's figures.
func printReport(w io.Writer, opts options, res result) error {
	fmt.Fprintf(w, "## %s (%s)\n\n", res.engine, res.where)
	fmt.Fprintf(w, "seeded: %d runs (%d in %s, one with %d jobs), %d jobs, %d deliveries, %d log lines, in %s\n",
		res.seed.Runs, res.seed.BigRuns, bigProjectPath, wideJobs, res.seed.Jobs, res.seed.Delivered,
		len(res.seed.LoggedJobIDs)*logLines, res.seed.Took.Round(100*time.Millisecond))
	fmt.Fprintf(w, "load: %d readers for %s while intake was offered %g signed deliveries/s over %d projects; load average %s before, %s after\n",
		opts.readers, opts.duration, opts.rate, len(intakeTargets()), res.loadStart, res.loadEnd)
	fmt.Fprintf(w, "first view of %s (sums 90 days of history once, before the load): %s ms\n\n", bigProjectPath, benchkit.Millis(res.firstView))
	if err := writeTable(w, res.pages); err != nil {
		return err
	}
	in := res.intake
	fmt.Fprintf(w, "\nintake: %d planned, %d answered 202 (%.1f/s achieved), p50 %s ms, p99 %s ms, %d sent late, %d failed\n",
		in.Planned, in.Accepted, in.Rate(), benchkit.Millis(benchkit.Percentile(in.Latencies, 50)), benchkit.Millis(benchkit.Percentile(in.Latencies, 99)), in.Late, in.Failures)
	if m := missed(res.pages); m == "" {
		fmt.Fprintln(w, "verdict: every page met p95 < 100 ms")
	} else {
		fmt.Fprintln(w, "verdict: MISSED p95 < 100 ms (or failed): "+m)
	}
	for _, f := range res.failures {
		fmt.Fprintln(w, "failure: "+f)
	}
	if len(res.errors) > 0 {
		fmt.Fprintf(w, "upbuild logged %d errors; first: %s\n", len(res.errors), res.errors[0])
	}
	fmt.Fprintln(w)
	return nil
}
