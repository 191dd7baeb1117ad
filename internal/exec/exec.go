// Package exec runs jobs for real: it fetches the project's code, builds the
// SRPM the way Packit does, rebuilds it into RPMs for each target in an
// operator-defined build environment, and runs tests, with every command
// from the repository inside the bubblewrap sandbox. Logs stream to the
// store line by line and artifacts go to the blob store.
package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"upbuild.dev/upbuild/internal/gitfetch"
	"upbuild.dev/upbuild/internal/jobfs"
	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/queue"
	"upbuild.dev/upbuild/internal/sandbox"
	"upbuild.dev/upbuild/internal/srpm"
	"upbuild.dev/upbuild/internal/store"
)

// BuildEnv is an operator-defined build environment.
type BuildEnv struct {
	// Pattern matches target names: an exact name, or a glob (fedora-*).
	Pattern string
	// RootFS is the root filesystem tree used as the sandbox's system
	// directories; empty means the host's own.
	RootFS string
	// Arch is the environment's architecture (x86_64, aarch64 ...).
	Arch string
}

// Options configure an Executor.
type Options struct {
	Store *store.Store
	// Sandbox runs repository commands. When SandboxErr is set (the
	// start-up check failed) every job is refused with that reason:
	// untrusted code never runs without the sandbox.
	Sandbox    *sandbox.Sandbox
	SandboxErr error
	Fetcher    *gitfetch.Fetcher
	// BotTokens are the fetch credentials by instance URL.
	BotTokens map[string]string
	Logs      *joblog.Logs
	Artifacts *joblog.Artifacts
	// WorkRoot holds the job directories; it and its parents must be
	// searchable by others (the sandbox's job UIDs open them).
	WorkRoot string
	// Envs are the build environments besides the host's own (host-<arch>).
	Envs []BuildEnv
	// Backends build for targets the local build environments do not
	// cover (a remote service such as Copr). The local backend comes first.
	Backends []Backend
	// Caps bound concurrent jobs per project and per namespace; a job over
	// its cap waits in the queue while other projects' jobs run.
	Caps store.Caps
	// ActionNetwork lists where Packit actions (the SRPM step) may use the
	// network: instance URLs, or instance URL + project or namespace path.
	// Everything else runs without network. Builds and tests never have it.
	ActionNetwork []string
	Limits        sandbox.Limits
	Changed       func()
	Logger        *slog.Logger
}

// Executor runs jobs.
type Executor struct {
	opts     Options
	host     BuildEnv
	mu       sync.Mutex
	envBoxes map[string]*sandbox.Sandbox // by root filesystem
	backends []Backend
}

// New builds an Executor.
func New(opts Options) (*Executor, error) {
	if opts.Store == nil {
		return nil, errors.New("exec: Store is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Changed == nil {
		opts.Changed = func() {}
	}
	arch := HostArch()
	e := &Executor{opts: opts, host: BuildEnv{Pattern: "host-" + arch, Arch: arch}, envBoxes: map[string]*sandbox.Sandbox{}}
	e.backends = append([]Backend{localBackend{e}}, opts.Backends...)
	return e, nil
}

// HostArch is this machine's architecture as RPM names it.
func HostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "ppc64le":
		return "ppc64le"
	case "s390x":
		return "s390x"
	}
	return runtime.GOARCH
}

// env finds the build environment for a target.
func (e *Executor) env(target string) (BuildEnv, bool) {
	for _, env := range e.opts.Envs {
		if ok, _ := path.Match(env.Pattern, target); ok {
			return env, true
		}
	}
	if target == e.host.Pattern {
		return e.host, true
	}
	return BuildEnv{}, false
}

// Handle runs one job; see queue.Options.Handler for the contract.
func (e *Executor) Handle(ctx context.Context, jobID int64) error {
	job, err := e.opts.Store.Job(ctx, jobID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load job %d: %w", jobID, err)
	}
	if store.JobFinal(job.State) || job.State == store.JobHeld || job.State == store.JobWaiting {
		return nil
	}
	run, err := e.opts.Store.Run(ctx, job.RunID)
	if err != nil {
		return fmt.Errorf("load run of job %d: %w", jobID, err)
	}
	finish := func(state, desc string) error {
		if _, err := e.opts.Store.SetJobState(context.WithoutCancel(ctx), jobID, state, desc); err != nil {
			return fmt.Errorf("record job %d: %w", jobID, err)
		}
		e.opts.Changed()
		return nil
	}
	kind := jobKind(job.JobType)
	if kind == "" {
		return finish(store.JobSkipped, job.JobType+" is not supported by this service")
	}
	backend, ok := e.backendFor(job.Target)
	env, local := e.env(job.Target)
	if !ok || (kind == "test" && !local) {
		return finish(store.JobSkipped, fmt.Sprintf("no build environment for %s on this service", job.Target))
	}
	if e.opts.SandboxErr != nil || e.opts.Sandbox == nil {
		return finish(store.JobError, "this worker cannot run untrusted code: its sandbox does not work")
	}
	started, err := e.opts.Store.StartJob(ctx, jobID, e.opts.Caps, "Fetching the code")
	if errors.Is(err, store.ErrAtCap) {
		return &queue.BusyError{Wait: 5 * time.Second, Reason: "project or namespace at its concurrency cap"}
	}
	if err != nil {
		return fmt.Errorf("start job %d: %w", jobID, err)
	}
	if !started {
		return nil // canceled or finished meanwhile
	}
	e.opts.Changed()
	logw := io.WriteCloser(nopCloser{io.Discard})
	if e.opts.Logs != nil {
		logw = e.opts.Logs.Writer(ctx, jobID)
	}
	describer := e.describer(ctx, jobID)
	state, desc := e.execute(ctx, run, job, backend, env, kind, logw, describer.set)
	describer.close()
	if cerr := logw.Close(); cerr != nil {
		e.opts.Logger.Warn("close job log", "job", jobID, "err", cerr)
	}
	if ctx.Err() != nil {
		// Stopping or canceled: hand the job back (or leave the cancel).
		return ctx.Err()
	}
	return finish(state, desc)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// jobKind maps a Packit job type to what this service does with it.
func jobKind(t string) string {
	switch packitcfg.JobType(t) {
	case packitcfg.JobCoprBuild, packitcfg.JobUpstreamKojiBuild:
		return "build"
	case packitcfg.JobTests:
		return "test"
	}
	return ""
}

// execute does the work and returns the job's final state and description.
//
// describe sets what the job is doing, for its page.
func (e *Executor) execute(ctx context.Context, run store.Run, job store.Job, backend Backend, env BuildEnv, kind string, logw io.Writer,
	describe func(string)) (string, string) {
	logf := func(format string, args ...any) { fmt.Fprintf(logw, "upbuild: "+format+"\n", args...) }
	jobDir, err := e.jobDir(job.ID)
	if err != nil {
		logf("preparing the job directory failed: %v", err)
		return store.JobError, "upbuild could not prepare the job directory"
	}
	defer os.RemoveAll(jobDir)
	// Every file upbuild reads or writes in the job directory goes through
	// files: the repository and the code it runs decide what is there.
	files, err := jobfs.Open(jobDir)
	if err != nil {
		logf("preparing the job directory failed: %v", err)
		return store.JobError, "upbuild could not prepare the job directory"
	}
	defer files.Close()
	src := filepath.Join(jobDir, "src")
	out := filepath.Join(jobDir, "out")

	// 1. The code.
	req := gitfetch.Request{RepoURL: run.Instance + "/" + run.ProjectPath + ".git", ProjectID: run.ProjectID,
		Token: e.opts.BotTokens[run.Instance], SHA: run.SHA, Ref: run.Ref, Dest: src, Log: logw,
		// The run's jobs on this worker share one fetch, so every target
		// builds the same merge and the forge is asked once.
		// The creation time keeps two databases' runs of the same ID apart
		// should they share a cache directory.
		Session: fmt.Sprintf("run-%d-%d", run.ID, run.CreatedAt.UnixNano()), MergeTime: run.CreatedAt}
	if run.MRIID != 0 {
		req.Ref = ""
		req.MR = &gitfetch.MRMerge{TargetBranch: run.TargetBranch, SourceRef: fmt.Sprintf("refs/merge-requests/%d/head", run.MRIID)}
	}
	logf("fetching %s at %s", run.ProjectPath, short(run.SHA))
	co, err := e.opts.Fetcher.Checkout(ctx, req)
	if errors.Is(err, gitfetch.ErrTreeTooLarge) {
		logf("%v", err)
		return store.JobFailed, "the commit's files are more or larger than this service checks out"
	}
	if err != nil {
		logf("fetching the code failed: %v", err)
		return store.JobError, "upbuild could not fetch the code"
	}
	if co.Message != "" {
		logf("%s", co.Message)
	}

	// 2. The config, from the checked-out tree, as the planner read it.
	settings, pkg, err := jobSettings(files, src, run, job)
	if err != nil {
		logf("%v", err)
		return store.JobFailed, "the configuration could not be used"
	}
	describe("Building the SRPM")

	// 3. The SRPM, Packit's way, with repository commands in the sandbox.
	runner := &sandboxRunner{sb: e.opts.Sandbox, jobDir: jobDir, limits: e.opts.Limits, network: e.networkFor(run)}
	if runner.network {
		logf("network is on for this project's actions (operator setting)")
	}
	// The snapshot's timestamp is the run's, not the job's: with the same
	// merge commit (see MergeTime), every target of a run builds an SRPM
	// with the same release, as Packit's one SRPM per run has.
	// upbuild's own git and rpm queries run on the host with srpm's
	// HostRunner: srpm uses it for git only while nothing from the
	// repository has run in the tree, which is then still upbuild's, so
	// git's check that a repository belongs to its user stays on.
	b := &srpm.Builder{Sandbox: runner, Host: srpm.HostRunner{}, Log: logw, Now: func() time.Time { return run.CreatedAt }}
	branch := run.Ref
	if run.MRIID != 0 {
		branch = fmt.Sprintf("pr/%d", run.MRIID)
	}
	head := co.SHA
	if co.MergedSHA != "" {
		head = co.MergedSHA
	}
	res, err := b.Build(ctx, srpm.Request{WorkTree: src, Package: pkg, Settings: settings, OutDir: out, Branch: branch, Commit: head})
	if err != nil {
		logf("building the SRPM failed: %v", err)
		return store.JobFailed, "SRPM build failed: " + firstLine(err.Error())
	}
	logf("built %s", filepath.Base(res.SRPM))
	if err := e.keep(ctx, job.ID, files, res.SRPM); err != nil {
		logf("storing the SRPM failed: %v", err)
		return store.JobError, "upbuild could not store the SRPM"
	}
	nvr := res.Name + "-" + res.Version + "-" + res.Release

	// 4. The RPMs, by the target's backend.
	describe("Building RPMs for " + job.Target)
	logf("building RPMs for %s with the %s backend", job.Target, backend.Name())
	built := backend.Build(ctx, BuildRequest{JobDir: jobDir, SRPM: res.SRPM, Target: job.Target, Log: logw})
	if built.State != "" {
		return built.State, built.Description
	}
	for _, p := range built.RPMs {
		if err := e.keep(ctx, job.ID, files, p); err != nil {
			logf("storing %s failed: %v", filepath.Base(p), err)
			return store.JobError, "upbuild could not store the RPMs"
		}
	}
	if kind == "build" {
		return store.JobSuccess, fmt.Sprintf("Built %s for %s", nvr, job.Target)
	}

	// 5. Tests, with the built RPMs at hand.
	describe("Running tests on " + job.Target)
	return e.test(ctx, files, src, env, logf, logw)
}

// jobDir makes a fresh directory for a job under the work root.
func (e *Executor) jobDir(jobID int64) (string, error) {
	if err := os.MkdirAll(e.opts.WorkRoot, 0o711); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(e.opts.WorkRoot, fmt.Sprintf("job-%d-", jobID))
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	// src is created by the checkout; out holds rpmbuild's work.
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// keep stores a file as an artifact of the job.
func (e *Executor) keep(ctx context.Context, jobID int64, files *jobfs.Dir, file string) error {
	if e.opts.Artifacts == nil {
		return nil
	}
	f, err := files.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = e.opts.Artifacts.Save(ctx, jobID, filepath.Base(file), f)
	return err
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// networkFor says whether a run's Packit actions may use the network.
func (e *Executor) networkFor(run store.Run) bool {
	full := strings.ToLower(run.Instance + "/" + run.ProjectPath)
	for _, p := range e.opts.ActionNetwork {
		p = strings.ToLower(strings.TrimRight(p, "/"))
		if full == p || strings.HasPrefix(full, p+"/") || strings.ToLower(run.Instance) == p {
			return true
		}
	}
	return false
}
