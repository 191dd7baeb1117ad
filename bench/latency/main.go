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
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
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
		printReport(os.Stdout, commandLine(), res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/latency:", err)
		cancel()
		stop()
		os.Exit(1)
	}
}

// commandLine is the command that repeats this run, every flag spelled out
// and a database password hidden.
func commandLine() string {
	parts := []string{"go run ./bench/latency"}
	flag.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		if f.Name == "database" {
			v = redactURL(v)
		}
		if v == "" {
			return
		}
		if strings.ContainsAny(v, " ?&'\"$") {
			v = "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
		}
		parts = append(parts, "-"+f.Name+"="+v)
	})
	return strings.Join(parts, " ")
}

// redactURL hides the password of a database URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
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
	tmp, err := os.MkdirTemp("", "upbuild-latency-")
	if err != nil {
		return res, fmt.Errorf("temporary directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove %s: %w", tmp, rerr))
		}
	}()

	db, err := prepareDatabase(ctx, opts.database, filepath.Join(tmp, "data"))
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, db.drop()) }()
	res.engine, res.where = db.engine, db.where

	sim, err := startSimulator(ctx, filepath.Join(tmp, "repos"))
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, sim.stop()) }()
	seed, err := gitlabsim.Seed(ctx, sim.Simulator)
	if err != nil {
		return res, fmt.Errorf("simulator: %w", err)
	}

	logPath := filepath.Join(tmp, "upbuild.log")
	up, err := newUpbuild(ctx, sim.url, seed.Bot.Token, filepath.Join(tmp, "data"), db.url, logPath)
	if err != nil {
		return res, err
	}
	projects, err := prepareProjects(ctx, sim.Simulator, up, opts.projects)
	if err != nil {
		return res, errors.Join(err, up.close())
	}
	up.serve(ctx)
	defer func() {
		err = errors.Join(err, up.stop())
		res.warnings = up.warnings()
	}()

	if opts.cpuProfile != "" {
		stopProfile, err := startCPUProfile(opts.cpuProfile)
		if err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, stopProfile()) }()
	}

	sim.calls.reset()
	res.loadStart = loadAverage()
	fmt.Fprintf(opts.progress, "bench/latency: %s, %d projects ready; opening %g merge requests a second for %s\n",
		res.engine, len(projects), opts.rate, opts.duration)
	load := newLoad(sim.Simulator, projects, seed.Maintainer.Username, opts.rate, opts.duration)
	mrs, err := load.run(ctx, up.serveErr)
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
	res.summary, err = settle(ctx, sim, mrs, opts.settle, up.serveErr)
	res.loadEnd = loadAverage()
	calls := sim.calls.list()
	res.apiCalls = byRoute(calls)
	res.apiRate = rateOf(calls)
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
func settle(ctx context.Context, sim simulator, mrs []openedMR, within time.Duration, serveErr <-chan error) (summary, error) {
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
	return summarize(mrs, sim.Deliveries(), sim.StatusTransitions(), sim.calls.list()), err
}

// database is where upbuild keeps its state for one run.
type database struct {
	url    string
	engine string
	where  string
	drop   func() error
}

// prepareDatabase picks SQLite in dataDir, or creates a fresh database on
// the PostgreSQL server that serverURL names.
func prepareDatabase(ctx context.Context, serverURL, dataDir string) (database, error) {
	if serverURL == "" {
		return database{url: filepath.Join(dataDir, "upbuild.db"), engine: "sqlite",
			where: "a file in a temporary data dir", drop: func() error { return nil }}, nil
	}
	if !store.IsPostgresURL(serverURL) {
		return database{}, fmt.Errorf("-database: want a postgres:// URL, got %s", redactURL(serverURL))
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return database{}, fmt.Errorf("-database: %w", err)
	}
	name := "bench_latency_" + randomHex(6)
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return database{}, fmt.Errorf("connect to PostgreSQL at %s: %w", u.Host, err)
	}
	defer func() { _ = admin.Close(context.WithoutCancel(ctx)) }()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return database{}, fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	drop := func() error {
		dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(dropCtx, serverURL)
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		defer func() { _ = conn.Close(dropCtx) }()
		if _, err := conn.Exec(dropCtx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return database{url: u.String(), engine: "postgres",
		where: fmt.Sprintf("fresh database %s on %s, dropped after", name, u.Host), drop: drop}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// simulator is the GitLab simulator behind its own loopback listener.
type simulator struct {
	*gitlabsim.Simulator
	url   string
	stop  func() error
	calls *apiCalls
}

func startSimulator(ctx context.Context, reposDir string) (simulator, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return simulator{}, fmt.Errorf("simulator: listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	sim := gitlabsim.New(gitlabsim.Options{Dir: reposDir, BaseURL: base, DisableRateLimits: true})
	calls := &apiCalls{next: sim}
	hs := &http.Server{Handler: calls, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	stop := func() error {
		// upbuild has stopped by now; Close rather than Shutdown, which
		// would wait for idle keep-alive connections.
		err := hs.Close()
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		if err != nil {
			return fmt.Errorf("stop the simulator: %w", err)
		}
		return nil
	}
	return simulator{Simulator: sim, url: base, stop: stop, calls: calls}, nil
}

// upbuild is the service under test, on its own loopback listener.
type upbuild struct {
	srv      *server.Server
	cfg      config.Config
	ln       net.Listener
	logFile  *os.File
	cancel   context.CancelFunc
	serveErr chan error
	stopped  chan error
}

// newUpbuild configures upbuild for the simulator the way `upbuild serve`
// would be, from environment variables that exist only for this run.
func newUpbuild(ctx context.Context, simURL, botToken, dataDir, dbURL, logPath string) (*upbuild, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upbuild: listen: %w", err)
	}
	env := map[string]string{
		"UPBUILD_LISTEN":                ln.Addr().String(),
		"UPBUILD_PUBLIC_URL":            "http://" + ln.Addr().String(),
		"UPBUILD_DATA_DIR":              dataDir,
		"UPBUILD_DATABASE_URL":          dbURL,
		"UPBUILD_INSTANCES":             simURL,
		config.BotTokenEnvName(simURL):  botToken,
		config.Defaults().AdminTokenEnv: "bench-admin-" + randomHex(24),
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load("", getenv)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("upbuild: %w", err), ln.Close())
	}
	// The simulator runs with its rate limits off, as the benchmark asks;
	// upbuild's own budget is raised to match, as an operator of a
	// self-managed instance with higher limits would.
	cfg.Instances[0].RequestsPerMinute = 60000
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("upbuild log: %w", err), ln.Close())
	}
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(ctx, cfg, log, getenv)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("upbuild: %w", err), ln.Close(), logFile.Close())
	}
	return &upbuild{srv: srv, cfg: cfg, ln: ln, logFile: logFile}, nil
}

// close releases an upbuild that never served.
func (u *upbuild) close() error {
	return errors.Join(u.srv.Close(), u.ln.Close(), u.logFile.Close())
}

// serve starts upbuild's HTTP listener and background work.
func (u *upbuild) serve(ctx context.Context) {
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	u.cancel = cancel
	u.serveErr = make(chan error, 1)
	u.stopped = make(chan error, 1)
	go func() {
		err := u.srv.Serve(serveCtx, u.ln)
		if serveCtx.Err() == nil {
			// Stopping by itself is news for whoever is waiting.
			u.serveErr <- fmt.Errorf("upbuild: %w", errors.Join(err, errors.New("stopped unasked")))
		}
		u.stopped <- err
	}()
}

// stop shuts upbuild down gracefully and waits for it.
func (u *upbuild) stop() error {
	u.cancel()
	err := <-u.stopped
	if cerr := u.logFile.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("upbuild: %w", err)
	}
	return nil
}

// warnings returns upbuild's warning and error log lines (after stop).
func (u *upbuild) warnings() []string {
	data, err := os.ReadFile(u.logFile.Name())
	if err != nil {
		return []string{"(upbuild's log could not be read: " + err.Error() + ")"}
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line != "" {
			out = append(out, line)
		}
	}
	return out
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

const helloSpec = `Name:           hello
Version:        1.0
Release:        1%{?dist}
Summary:        Says hello
License:        MIT
Source0:        hello.sh
BuildArch:      noarch

%description
A tiny package for the latency benchmark.

%prep

%build

%install
install -D -m 0755 %{SOURCE0} %{buildroot}%{_bindir}/hello

%files
%{_bindir}/hello

%changelog
* Mon Jan 01 2024 Alice <alice@example.com> - 1.0-1
- First release
`

// prepareProjects creates n projects in the seeded group and connects each
// to upbuild with its own webhook token, as a maintainer would.
func prepareProjects(ctx context.Context, sim *gitlabsim.Simulator, up *upbuild, n int) ([]gitlabsim.Project, error) {
	ring, _, err := token.LoadOrCreateKeyring(up.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("upbuild keys: %w", err)
	}
	var instances []string
	for _, raw := range server.InstanceURLs(up.cfg) {
		inst, err := token.NormalizeInstanceURL(raw)
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", raw, err)
		}
		instances = append(instances, inst)
	}
	tokens := &hooktoken.Manager{Store: up.srv.Store(), Keyring: ring, PublicURL: up.cfg.PublicURL, Instances: instances}
	projects := make([]gitlabsim.Project, 0, n)
	for i := range n {
		p, err := sim.AddProject(ctx, gitlabsim.ProjectSpec{
			Namespace: "demo", Path: fmt.Sprintf("bench-%02d", i+1), Visibility: gitlabsim.Public, DefaultBranch: "main",
			Files: map[string]string{".packit.yaml": packitConfig, "hello.spec": helloSpec, "hello.sh": "#!/bin/sh\necho hello\n"},
		})
		if err != nil {
			return nil, fmt.Errorf("simulator: project %d: %w", i+1, err)
		}
		scope, err := tokens.Scope(p.WebURL, false)
		if err != nil {
			return nil, fmt.Errorf("token for %s: %w", p.PathWithNamespace, err)
		}
		issued, err := tokens.Issue(ctx, scope, false, "bench/latency")
		if err != nil {
			return nil, fmt.Errorf("token for %s: %w", p.PathWithNamespace, err)
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

func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(fmt.Errorf("cpu profile: %w", err), f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}

// loadAverage is the machine's one-minute load average, printed because
// other work on a shared machine skews latencies.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if fields := strings.Fields(string(b)); len(fields) > 0 {
		return fields[0]
	}
	return "?"
}
