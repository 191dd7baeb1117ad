// Command latency measures how soon upbuild shows a new merge request on
// GitLab: the time from the 202 that answers the merge request's webhook to
// the first "pending" commit status on its head commit.
//
// It runs the GitLab simulator (rate limits off) and upbuild in this
// process, each on its own 127.0.0.1 listener, so webhooks and API calls go
// over loopback HTTP. It prepares -projects projects, each with a copr_build
// and a tests job for pull_request and its own webhook token, then opens
// -rate new merge requests a second for -duration, in turn on each project
// (push a branch with one commit, then open the merge request). Every figure
// comes from the simulator's own records: t0 is when the simulator got
// upbuild's 202 for the "open" Merge Request Hook (SentAt + Latency), t1 the
// first transition of a status of the head commit to "pending".
//
//	go run ./bench/latency                     # SQLite in a temporary data dir
//	go run ./bench/latency -database 'postgres://postgres@127.0.0.1:55433/postgres?sslmode=disable'
//
// With PostgreSQL it creates a fresh database for the run and drops it
// after. It exits 1 when some merge request got no pending status within
// 30 s after the last one was opened, or when the run could not be set up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"upbuild.dev/upbuild/internal/benchkit"
	"upbuild.dev/upbuild/internal/gitlabsim"
)

// settleTime is how long after the last merge request was opened every one
// must have its pending status; missing it is a correctness failure.
const settleTime = 30 * time.Second

// ErrMissingPending means some merge request got no pending status in time.
var ErrMissingPending = errors.New("some merge requests got no pending status")

// options configure a run.
type options struct {
	duration   time.Duration
	rate       float64
	projects   int
	database   string
	cpuProfile string
	// settle bounds the wait for statuses after the last merge request.
	settle time.Duration
	// progress receives a few lines while the run goes on.
	progress io.Writer
}

func main() {
	opts := options{settle: settleTime, progress: os.Stderr}
	flag.DurationVar(&opts.duration, "duration", 60*time.Second, "how long to keep opening merge requests")
	flag.Float64Var(&opts.rate, "rate", 10, "new merge requests per second")
	flag.IntVar(&opts.projects, "projects", 20, "projects the merge requests are spread over")
	flag.StringVar(&opts.database, "database", "", "PostgreSQL server URL to create a fresh database on (default: SQLite in a temporary data dir)")
	flag.StringVar(&opts.cpuProfile, "cpuprofile", "", "write a CPU profile of the load and settle phases to this file")
	flag.Parse()
	if flag.NArg() > 0 || opts.duration <= 0 || opts.rate <= 0 || opts.projects <= 0 {
		fmt.Fprintln(os.Stderr, "bench/latency: want positive -duration, -rate and -projects, and no arguments")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Set-up and shutdown take seconds; the bound only guards against a hang.
	ctx, cancel := context.WithTimeout(ctx, opts.duration+opts.settle+5*time.Minute)
	defer cancel()
	res, err := run(ctx, opts)
	if res.ran {
		err = errors.Join(err, printReport(os.Stdout, benchkit.CommandLine(flag.CommandLine, "go run ./bench/latency", "database"), res))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/latency:", err)
		cancel()
		stop()
		os.Exit(1)
	}
}

// result is one run's outcome.
type result struct {
	// ran says the load ran, so the figures mean something.
	ran       bool
	opts      options
	engine    string
	where     string
	planned   int
	interval  time.Duration
	late      int
	maxLag    time.Duration
	simWork   []time.Duration
	loadStart string
	loadEnd   string
	warnings  []string
	apiCalls  []routeCount
	apiRate   callRate
	summary
}

// run sets everything up, drives the load, waits for the statuses and
// stops everything again.
func run(ctx context.Context, opts options) (res result, err error) {
	res.opts = opts
	tmp, removeTmp, err := benchkit.TempDir("upbuild-latency-")
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, removeTmp()) }()

	db, err := benchkit.PrepareDatabase(ctx, opts.database, filepath.Join(tmp, "data"), "bench_latency_")
	if err != nil {
		return res, fmt.Errorf("-database: %w", err)
	}
	defer func() { err = errors.Join(err, db.Drop(ctx)) }()
	res.engine, res.where = db.Engine, db.Where

	calls := &apiCalls{}
	sim, err := benchkit.StartSimulator(ctx, filepath.Join(tmp, "repos"), calls.watch)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, sim.Stop()) }()

	up, err := benchkit.StartService(ctx, benchkit.ServiceConfig{
		Instance: sim.URL, BotToken: sim.Seeded.Bot.Token,
		// The simulator runs with its rate limits off, as the benchmark
		// asks; upbuild's own budget is raised to match, as an operator of
		// a self-managed instance with higher limits would.
		RequestsPerMinute: 60000,
		DataDir:           filepath.Join(tmp, "data"), DatabaseURL: db.URL,
		LogPath: filepath.Join(tmp, "upbuild.log"), LogLevel: slog.LevelWarn,
	})
	if err != nil {
		return res, err
	}
	defer func() {
		logged, serr := up.Stop(context.WithoutCancel(ctx))
		res.warnings, err = logged, errors.Join(err, serr)
	}()
	projects, err := prepareProjects(ctx, sim.Simulator, up, opts.projects)
	if err != nil {
		return res, err
	}

	stopProfile, err := benchkit.StartCPUProfile(opts.cpuProfile)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, stopProfile()) }()

	calls.reset()
	res.loadStart = benchkit.LoadAverage()
	fmt.Fprintf(opts.progress, "bench/latency: %s, %d projects ready; opening %g merge requests a second for %s\n",
		res.engine, len(projects), opts.rate, opts.duration)
	load := newLoad(sim.Simulator, projects, sim.Seeded.Maintainer.Username, opts.rate, opts.duration)
	mrs, err := load.run(ctx, up.Failed())
	res.planned, res.interval = load.total, load.interval
	for _, mr := range mrs {
		res.simWork = append(res.simWork, mr.Opened.Sub(mr.Started))
		if lag := mr.Started.Sub(mr.Planned); lag > res.maxLag {
			res.maxLag = lag
		}
		if mr.Started.Sub(mr.Planned) > load.interval {
			res.late++
		}
	}
	if err != nil {
		return res, err
	}
	fmt.Fprintf(opts.progress, "bench/latency: %d merge requests opened; waiting up to %s for their statuses\n", len(mrs), opts.settle)
	res.summary, err = settle(ctx, sim.Simulator, calls, mrs, opts.settle, up.Failed())
	res.loadEnd = benchkit.LoadAverage()
	made := calls.list()
	res.apiCalls = byRoute(made)
	res.apiRate = rateOf(made)
	res.ran = true
	if err != nil {
		return res, err
	}
	if n := len(res.MissingPending); n > 0 {
		return res, fmt.Errorf("%w: %d of %d within %s after the last was opened (first: project %d !%d)",
			ErrMissingPending, n, res.Opened, opts.settle, res.MissingPending[0].ProjectID, res.MissingPending[0].IID)
	}
	return res, nil
}

// settle waits until every merge request's head has a pending status and
// all its statuses are final, or until the time is up, and summarizes.
func settle(ctx context.Context, sim *gitlabsim.Simulator, calls *apiCalls, mrs []openedMR, within time.Duration, serveErr <-chan error) (summary, error) {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	var err error
	for done := false; !done && outstanding(mrs, sim.StatusTransitions()) > 0; {
		select {
		case <-ctx.Done():
			done, err = true, fmt.Errorf("waiting for statuses: %w", ctx.Err())
		case serr := <-serveErr:
			done, err = true, fmt.Errorf("upbuild stopped while statuses were outstanding: %w", serr)
		case <-deadline.C:
			done = true
		case <-poll.C:
		}
	}
	return summarize(mrs, sim.Deliveries(), sim.StatusTransitions(), calls.list()), err
}

// packitConfig has a build and a tests job for merge requests on one target.
const packitConfig = `specfile_path: hello.spec
upstream_package_name: hello
downstream_package_name: hello
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
  - job: tests
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
`

// prepareProjects creates n projects in the seeded group and connects each
// to upbuild with its own webhook token, as a maintainer would.
func prepareProjects(ctx context.Context, sim *gitlabsim.Simulator, up *benchkit.Service, n int) ([]gitlabsim.Project, error) {
	projects := make([]gitlabsim.Project, 0, n)
	for i := range n {
		p, err := sim.AddProject(ctx, gitlabsim.ProjectSpec{
			Namespace: "demo", Path: fmt.Sprintf("bench-%02d", i+1), Visibility: gitlabsim.Public, DefaultBranch: "main",
			Files: benchkit.HelloFiles(packitConfig),
		})
		if err != nil {
			return nil, fmt.Errorf("simulator: project %d: %w", i+1, err)
		}
		issued, err := up.IssueWebhookToken(ctx, benchkit.TokenRequest{URL: p.WebURL, IssuedBy: "bench/latency"})
		if err != nil {
			return nil, err
		}
		if _, err := sim.AddHook(p.ID, gitlabsim.HookSpec{URL: issued.WebhookURL, Token: issued.Token,
			TagPushEvents: true, MergeRequestsEvents: true, NoteEvents: true, ReleasesEvents: true}); err != nil {
			return nil, fmt.Errorf("webhook for %s: %w", p.PathWithNamespace, err)
		}
		projects = append(projects, p)
	}
	return projects, nil
}

// load opens merge requests on a fixed schedule: the k-th is planned at
// start + k*interval, on project k mod len(projects). Each project opens
// its merge requests one after another, so a slow one delays the next on
// that project; the delay shows as lag, never as a shifted schedule.
type load struct {
	sim      *gitlabsim.Simulator
	projects []gitlabsim.Project
	author   string
	total    int
	interval time.Duration
}

func newLoad(sim *gitlabsim.Simulator, projects []gitlabsim.Project, author string, rate float64, duration time.Duration) *load {
	return &load{sim: sim, projects: projects, author: author,
		total:    max(1, int(rate*duration.Seconds()+0.5)),
		interval: time.Duration(float64(time.Second) / rate)}
}

type task struct {
	index   int
	planned time.Time
}

// run opens every planned merge request and returns them in plan order.
func (l *load) run(ctx context.Context, serveErr <-chan error) ([]openedMR, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	opened := make([]openedMR, l.total)
	queues := make([]chan task, len(l.projects))
	var wg sync.WaitGroup
	for i := range l.projects {
		queues[i] = make(chan task, l.total/len(l.projects)+1)
		wg.Go(func() {
			for t := range queues[i] {
				if ctx.Err() != nil {
					continue
				}
				mr, err := l.open(ctx, l.projects[i], t)
				if err != nil {
					cancel(err)
					continue
				}
				opened[t.index] = mr
			}
		})
	}

	start := time.Now()
	ticker := time.NewTicker(l.interval)
	next := 0
	// dispatchDue hands out every merge request whose time has come, so a
	// late tick is caught up at once instead of shifting the plan.
	dispatchDue := func() {
		now := time.Now()
		for next < l.total {
			planned := start.Add(time.Duration(next) * l.interval)
			if planned.After(now) {
				return
			}
			queues[next%len(queues)] <- task{index: next, planned: planned}
			next++
		}
	}
	dispatchDue()
	for next < l.total && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case err := <-serveErr:
			cancel(err)
		case <-ticker.C:
			dispatchDue()
		}
	}
	ticker.Stop()
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("opening merge requests: %w", err)
	}
	return opened, nil
}

// open pushes a branch with one commit and opens a merge request from it.
func (l *load) open(ctx context.Context, p gitlabsim.Project, t task) (openedMR, error) {
	started := time.Now()
	branch := fmt.Sprintf("change-%05d", t.index)
	_, err := l.sim.PushCommits(ctx, p.ID, branch, l.author, gitlabsim.CommitSpec{
		Message: fmt.Sprintf("Change %d", t.index),
		Changes: []gitlabsim.FileChange{{Path: "hello.sh", Content: fmt.Sprintf("#!/bin/sh\necho hello %d\n", t.index)}},
	})
	if err != nil {
		return openedMR{}, fmt.Errorf("push %s to %s: %w", branch, p.PathWithNamespace, err)
	}
	mr, err := l.sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{ProjectID: p.ID, SourceBranch: branch,
		TargetBranch: p.DefaultBranch, Title: fmt.Sprintf("Change %d", t.index), Author: l.author})
	if err != nil {
		return openedMR{}, fmt.Errorf("open a merge request from %s on %s: %w", branch, p.PathWithNamespace, err)
	}
	return openedMR{ProjectID: p.ID, IID: mr.IID, HeadSHA: mr.HeadSHA, Planned: t.planned, Started: started, Opened: time.Now()}, nil
}
