// Command srpm measures how long upbuild takes from a job's start to its
// stored SRPM, against plain `rpmbuild -bs` on an already prepared tree, and
// how many complete build jobs a minute upbuild finishes with its workers.
//
// It runs the GitLab simulator and upbuild in this process, each on its own
// 127.0.0.1 listener, with one small project: the noarch "hello" spec, a
// .packit.yaml with one copr_build job on host-<arch> for merge requests
// and no actions (Packit's default path: version from the tag v1.0,
// `git archive`, spec edits), and the tag. The phases, in one run:
//
//  1. upbuild: one merge request warms the repository cache (not counted),
//     then -n merge requests one at a time. Each figure comes from upbuild's
//     own records: the job's started_at (set when a worker takes the job) to
//     the created_at of its .src.rpm artifact (set when the SRPM is in the
//     blob store, just before its database row). That covers the checkout
//     from the cache, the config, Packit's SRPM step with rpmspec/rpmbuild in
//     the bubblewrap sandbox, rpm -qp and storing the SRPM. The RPM rebuild
//     that follows is outside the figure.
//
//  2. where the time goes: the same steps again, outside upbuild, on -n
//     fresh merge requests of a copy of the project that upbuild does not
//     hear of, each step timed (gitfetch checkout from a warm cache of its
//     own, srpm.Builder through a bubblewrap runner that mirrors the
//     executor's, every command timed), plus an empty sandbox run (`true`)
//     for the sandbox's own start cost.
//
//  3. plain `rpmbuild -bs` on the host, no sandbox, -n times, on a prepared
//     tree: the spec and archive that phase 2 produced, with the same
//     _topdir/_sourcedir/_srcrpmdir layout as upbuild.
//
//  4. the floor: the commands the issue itself asks every job to run, each
//     alone on the host, -n times, in the order each needs the one before:
//     a git fetch from the simulator that finds nothing new, git describe
//     for the version from the tag, git archive, rpmbuild -bs of the
//     prepared tree inside a minimal bwrap, rpm -qp of the SRPM (and a bare
//     bwrap running /bin/true, for reference). Their sum is the least any
//     implementation that follows the issue can take.
//
//  5. throughput: merge requests kept -backlog deep for -duration; every
//     job is a complete build (SRPM and RPM on host-<arch>) with -workers
//     workers; jobs a minute counts the jobs that finished in the window.
//
//     go run ./bench/srpm
//     go run ./bench/srpm -n 20 -duration 60s -workers 2
//     go run ./bench/srpm -cpuprofile cpu.out && go tool pprof -top cpu.out
//
// It exits 1 when a job does not succeed or the run cannot be set up.
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"upbuild.dev/upbuild/internal/benchkit"
	"upbuild.dev/upbuild/internal/exec"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/store"
)

// jobWait bounds the wait for one job to finish.
const jobWait = 2 * time.Minute

// options configure a run.
type options struct {
	n        int
	duration time.Duration
	workers  int
	backlog  int
	progress io.Writer
	// cpuProfile is where to write a CPU profile of the whole run, "" for none.
	cpuProfile string
}

func main() {
	opts := options{progress: os.Stderr}
	flag.IntVar(&opts.n, "n", 20, "measured jobs (and rpmbuild -bs runs) for the SRPM figure")
	flag.DurationVar(&opts.duration, "duration", 60*time.Second, "length of the throughput window")
	flag.IntVar(&opts.workers, "workers", 2, "upbuild workers (config workers)")
	flag.IntVar(&opts.backlog, "backlog", 0, "merge requests kept open and unfinished during the throughput window (default 2 × workers)")
	flag.StringVar(&opts.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	flag.Parse()
	if opts.backlog == 0 {
		opts.backlog = 2 * opts.workers
	}
	if flag.NArg() > 0 || opts.n <= 0 || opts.duration <= 0 || opts.workers <= 0 || opts.backlog <= 0 {
		fmt.Fprintln(os.Stderr, "bench/srpm: want positive -n, -duration, -workers and -backlog, and no arguments")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A job takes seconds; the bound only guards against a hang.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(3*opts.n+10)*20*time.Second+opts.duration)
	defer cancel()
	stopProfile, err := benchkit.StartCPUProfile(opts.cpuProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/srpm:", err)
		os.Exit(1)
	}
	res, err := run(ctx, opts)
	err = errors.Join(err, stopProfile())
	printReport(os.Stdout, benchkit.CommandLine(flag.CommandLine, "go run ./bench/srpm"), res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/srpm:", err)
		cancel()
		stop()
		os.Exit(1)
	}
}

// run sets everything up, runs the phases and stops everything again.
func run(ctx context.Context, opts options) (res result, err error) {
	res.opts = opts
	res.loadStart = benchkit.LoadAverage()
	defer func() { res.loadEnd = benchkit.LoadAverage() }()
	tmp, removeTmp, err := benchkit.TempDir("upbuild-bench-srpm-")
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, removeTmp()) }()
	// The sandbox's job UIDs open the job directories below: every
	// ancestor must be searchable by others.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return res, err
	}

	sim, err := benchkit.StartSimulator(ctx, filepath.Join(tmp, "repos"), nil)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, sim.Stop()) }()
	dataDir := filepath.Join(tmp, "data")
	db, err := benchkit.PrepareDatabase(ctx, "", dataDir, "")
	if err != nil {
		return res, err
	}
	up, err := benchkit.StartService(ctx, benchkit.ServiceConfig{
		Instance: sim.URL, BotToken: sim.Seeded.Bot.Token,
		// The simulator's rate limits are off; upbuild's own budget matches.
		RequestsPerMinute: 60000,
		DataDir:           dataDir, DatabaseURL: db.URL, WorkDir: filepath.Join(tmp, "work"),
		LogPath: filepath.Join(tmp, "upbuild.log"), LogLevel: slog.LevelWarn,
		Env: map[string]string{"UPBUILD_WORKERS": strconv.Itoa(opts.workers)},
	})
	if err != nil {
		return res, err
	}
	defer func() {
		// upbuild must be down before its directories go, even when ctx
		// has ended.
		_, serr := up.Stop(context.WithoutCancel(ctx))
		err = errors.Join(err, serr)
	}()
	p, err := prepareProject(ctx, sim.Simulator, up)
	if err != nil {
		return res, err
	}
	author := sim.Seeded.Maintainer.Username
	b := &bench{sim: sim.Simulator, store: up.Store(), project: p, author: author,
		artifacts: joblog.NewArtifacts(up.Store(), nil), logs: joblog.NewLogs(up.Store(), joblog.Options{})}

	fmt.Fprintf(opts.progress, "bench/srpm: warming the repository cache, then %d jobs one at a time\n", opts.n)
	mrs, err := b.sequential(ctx, opts.n, &res)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(opts.progress, "bench/srpm: timing the steps outside upbuild\n")
	prepared, err := breakdown(ctx, tmp, sim.URL, sim.Seeded.Bot.Token, sim.Simulator, author, opts.n, &res)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(opts.progress, "bench/srpm: plain rpmbuild -bs, %d times\n", opts.n)
	if res.plain, err = plainRpmbuild(ctx, prepared, filepath.Join(tmp, "plain"), opts.n); err != nil {
		return res, err
	}
	fmt.Fprintf(opts.progress, "bench/srpm: each tool upbuild adds, alone, %d times\n", opts.n)
	if res.floor, err = floor(ctx, prepared, filepath.Join(tmp, "floor"), sim.URL+"/"+p.PathWithNamespace+".git", opts.n); err != nil {
		return res, err
	}
	fmt.Fprintf(opts.progress, "bench/srpm: throughput with %d workers for %s\n", opts.workers, opts.duration)
	if err := b.throughput(ctx, opts, len(mrs)+1, &res); err != nil {
		return res, err
	}
	return res, nil
}

// packitConfig has one build job for merge requests, on this host, with no
// actions: Packit's default SRPM path.
func packitConfig() string {
	return `specfile_path: hello.spec
upstream_package_name: hello
downstream_package_name: hello
upstream_tag_template: v{version}
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [host-` + exec.HostArch() + `]
`
}

// helloFiles are the benchmark project's files: the hello package at 0.1,
// built from the repository's archive, with one job on this host.
func helloFiles() map[string]string {
	return map[string]string{".packit.yaml": packitConfig(), "hello.spec": gitlabsim.HelloArchiveSpec("0.1"),
		"hello.sh": "#!/bin/sh\necho hello\n"}
}

// prepareProject creates the project with its v1.0 tag and connects it to
// upbuild with a webhook token, as a maintainer would.
func prepareProject(ctx context.Context, sim *gitlabsim.Simulator, up *benchkit.Service) (gitlabsim.Project, error) {
	p, err := sim.AddProject(ctx, gitlabsim.ProjectSpec{Namespace: "demo", Path: "hello-srpm", Visibility: gitlabsim.Public,
		DefaultBranch: "main", Files: helloFiles()})
	if err != nil {
		return p, fmt.Errorf("simulator: project: %w", err)
	}
	if _, err := sim.CreateTag(ctx, p.ID, "alice", "v1.0", "main", "release 1.0"); err != nil {
		return p, fmt.Errorf("simulator: tag: %w", err)
	}
	issued, err := up.IssueWebhookToken(ctx, benchkit.TokenRequest{URL: p.WebURL, IssuedBy: "bench/srpm"})
	if err != nil {
		return p, err
	}
	if _, err := sim.AddHook(p.ID, gitlabsim.HookSpec{URL: issued.WebhookURL, Token: issued.Token,
		TagPushEvents: true, MergeRequestsEvents: true, NoteEvents: true, ReleasesEvents: true}); err != nil {
		return p, fmt.Errorf("webhook for %s: %w", p.PathWithNamespace, err)
	}
	return p, nil
}

// bench drives merge requests on the project and reads upbuild's records.
type bench struct {
	sim       *gitlabsim.Simulator
	store     *store.Store
	project   gitlabsim.Project
	author    string
	artifacts *joblog.Artifacts
	logs      *joblog.Logs
}

// openMR pushes a branch with one commit and opens a merge request from it.
func (b *bench) openMR(ctx context.Context, index int) (gitlabsim.MergeRequest, error) {
	branch := fmt.Sprintf("change-%04d", index)
	if _, err := b.sim.PushCommits(ctx, b.project.ID, branch, b.author, gitlabsim.CommitSpec{Message: fmt.Sprintf("Change %d", index),
		Changes: []gitlabsim.FileChange{{Path: "README", Content: fmt.Sprintf("change %d\n", index)}}}); err != nil {
		return gitlabsim.MergeRequest{}, fmt.Errorf("push %s: %w", branch, err)
	}
	mr, err := b.sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{ProjectID: b.project.ID, SourceBranch: branch,
		TargetBranch: "main", Title: fmt.Sprintf("Change %d", index), Author: b.author})
	if err != nil {
		return mr, fmt.Errorf("open a merge request from %s: %w", branch, err)
	}
	return mr, nil
}

// job returns the merge request's build job, or false while there is none.
func (b *bench) job(ctx context.Context, iid int64) (store.Job, bool, error) {
	runs, err := b.store.Runs(ctx, store.RunFilter{ProjectID: b.project.ID, MRIID: iid})
	if err != nil || len(runs) == 0 {
		return store.Job{}, false, err
	}
	jobs, err := b.store.RunJobs(ctx, runs[0].ID)
	if err != nil || len(jobs) == 0 {
		return store.Job{}, false, err
	}
	return jobs[0], true, nil
}

// waitJob waits until the merge request's build job is final.
func (b *bench) waitJob(ctx context.Context, iid int64) (store.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, jobWait)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		job, ok, err := b.job(ctx, iid)
		if err != nil {
			return job, err
		}
		if ok && store.JobFinal(job.State) {
			return job, nil
		}
		select {
		case <-ctx.Done():
			return job, fmt.Errorf("waiting for the job of !%d (now %q): %w", iid, job.State, ctx.Err())
		case <-tick.C:
		}
	}
}

// failure describes a job that did not succeed, with its log's end.
func (b *bench) failure(ctx context.Context, job store.Job) error {
	lines, err := b.logs.Lines(ctx, job.ID, 0, 100000)
	var tail []string
	for _, l := range lines {
		tail = append(tail, l.Text)
	}
	if len(tail) > 30 {
		tail = tail[len(tail)-30:]
	}
	return errors.Join(fmt.Errorf("job %d ended %s: %s; its log ends:\n%s", job.ID, job.State, job.Description,
		strings.Join(tail, "\n")), err)
}

// srpmStored is when the job's SRPM artifact was stored.
func (b *bench) srpmStored(ctx context.Context, jobID int64) (time.Time, error) {
	arts, err := b.artifacts.List(ctx, jobID)
	if err != nil {
		return time.Time{}, err
	}
	for _, a := range arts {
		if strings.HasSuffix(a.Name, ".src.rpm") {
			return a.CreatedAt, nil
		}
	}
	return time.Time{}, fmt.Errorf("job %d has no .src.rpm artifact", jobID)
}

// sequential runs a warm-up job, then n jobs one at a time, recording
// start → SRPM stored and start → finished from upbuild's records. It
// returns the measured merge requests.
func (b *bench) sequential(ctx context.Context, n int, res *result) ([]gitlabsim.MergeRequest, error) {
	var mrs []gitlabsim.MergeRequest
	for i := range n + 1 {
		mr, err := b.openMR(ctx, i)
		if err != nil {
			return mrs, err
		}
		job, err := b.waitJob(ctx, mr.IID)
		if err != nil {
			return mrs, err
		}
		if job.State != store.JobSuccess {
			return mrs, b.failure(ctx, job)
		}
		stored, err := b.srpmStored(ctx, job.ID)
		if err != nil {
			return mrs, err
		}
		if job.StartedAt == nil || job.FinishedAt == nil {
			return mrs, fmt.Errorf("job %d is final without start and finish times", job.ID)
		}
		if i == 0 {
			res.warmup = stored.Sub(*job.StartedAt)
			continue // the warm-up fills the repository cache
		}
		mrs = append(mrs, mr)
		res.upbuildSRPM = append(res.upbuildSRPM, stored.Sub(*job.StartedAt))
		res.upbuildJob = append(res.upbuildJob, job.FinishedAt.Sub(*job.StartedAt))
	}
	return mrs, nil
}

// throughput keeps backlog merge requests unfinished for opts.duration and
// counts the build jobs that finish in the window. The window opens when
// the first job of the load finishes, so the first jobs' start-up is not in
// it.
func (b *bench) throughput(ctx context.Context, opts options, firstIndex int, res *result) error {
	next := firstIndex
	open := map[int64]bool{}
	var windowStart, windowEnd time.Time
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		for len(open) < opts.backlog && (windowEnd.IsZero() || time.Now().Before(windowEnd)) {
			mr, err := b.openMR(ctx, next)
			if err != nil {
				return err
			}
			next++
			open[mr.IID] = true
		}
		for iid := range open {
			job, ok, err := b.job(ctx, iid)
			if err != nil {
				return err
			}
			if !ok || !store.JobFinal(job.State) {
				continue
			}
			delete(open, iid)
			if job.State != store.JobSuccess {
				return b.failure(ctx, job)
			}
			if windowStart.IsZero() {
				windowStart = *job.FinishedAt
				windowEnd = windowStart.Add(opts.duration)
				continue
			}
			if job.FinishedAt.After(windowStart) && !job.FinishedAt.After(windowEnd) {
				res.throughputJobs++
				res.throughputDurations = append(res.throughputDurations, job.FinishedAt.Sub(*job.StartedAt))
			}
		}
		if !windowEnd.IsZero() && time.Now().After(windowEnd) {
			res.throughputWindow = opts.duration
			res.throughputLeft = len(open)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("throughput: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
