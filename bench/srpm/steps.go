package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/blob"
	"upbuild.dev/upbuild/internal/gitfetch"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/sandbox"
	"upbuild.dev/upbuild/internal/srpm"
)

// stepTimes are one job's steps outside upbuild.
type stepTimes struct {
	fetch, config, store time.Duration
	// commands are the SRPM step's commands by where and tool:
	// "sandbox rpmspec", "host git" ...
	commands map[string]time.Duration
	// srpm is the whole srpm.Builder.Build call.
	srpm time.Duration
}

// prepared is a tree for plain rpmbuild -bs: the spec and the archive
// upbuild's SRPM step made, side by side.
type prepared struct {
	dir, spec string
}

// breakdown does a job's steps outside upbuild, timing each, on n fresh
// merge requests (after one that warms the cache) of a project of its own
// with the same files and tag, which upbuild does not hear of: like
// upbuild's jobs, each fetch finds a new commit. It also times an empty
// sandbox run, and returns the last job's spec and archive, copied into a
// prepared tree for plain rpmbuild.
func breakdown(ctx context.Context, tmp, simURL, botToken string, sim *gitlabsim.Simulator, author string, n int, res *result) (prepared, error) {
	p, err := sim.AddProject(ctx, gitlabsim.ProjectSpec{Namespace: "demo", Path: "hello-steps", Visibility: gitlabsim.Public,
		DefaultBranch: "main", Files: helloFiles()})
	if err != nil {
		return prepared{}, fmt.Errorf("simulator: project: %w", err)
	}
	if _, err := sim.CreateTag(ctx, p.ID, author, "v1.0", "main", "release 1.0"); err != nil {
		return prepared{}, fmt.Errorf("simulator: tag: %w", err)
	}
	sb, err := sandbox.New(sandbox.Config{})
	if err != nil {
		return prepared{}, fmt.Errorf("sandbox: %w", err)
	}
	fetcher, err := gitfetch.New(gitfetch.Options{CacheDir: filepath.Join(tmp, "steps-cache")})
	if err != nil {
		return prepared{}, fmt.Errorf("repository cache: %w", err)
	}
	work := filepath.Join(tmp, "steps-work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return prepared{}, err
	}
	blobs := blob.FS{Root: filepath.Join(tmp, "steps-blobs")}
	if err := os.MkdirAll(blobs.Root, 0o700); err != nil {
		return prepared{}, err
	}
	for i := range n + 1 {
		branch := fmt.Sprintf("steps-%04d", i)
		if _, err := sim.PushCommits(ctx, p.ID, branch, author, gitlabsim.CommitSpec{Message: fmt.Sprintf("Change %d", i),
			Changes: []gitlabsim.FileChange{{Path: "README", Content: fmt.Sprintf("change %d\n", i)}}}); err != nil {
			return prepared{}, fmt.Errorf("push %s: %w", branch, err)
		}
		mr, err := sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{ProjectID: p.ID, SourceBranch: branch,
			TargetBranch: "main", Title: fmt.Sprintf("Change %d", i), Author: author})
		if err != nil {
			return prepared{}, fmt.Errorf("open a merge request from %s: %w", branch, err)
		}
		jobDir, err := os.MkdirTemp(work, "job-")
		if err != nil {
			return prepared{}, err
		}
		if err := os.Chmod(jobDir, 0o755); err != nil {
			return prepared{}, err
		}
		t, r, err := oneJob(ctx, sb, fetcher, blobs, simURL, botToken, p, mr, jobDir)
		if err != nil {
			return prepared{}, fmt.Errorf("steps of !%d: %w", mr.IID, err)
		}
		if i > 0 { // the first one fills the cache
			res.steps = append(res.steps, t)
		}
		if i == n {
			dir, err := keepPrepared(r, filepath.Join(tmp, "prepared"))
			if err != nil {
				return prepared{}, err
			}
			if err := os.RemoveAll(jobDir); err != nil {
				return prepared{}, err
			}
			res.sandboxStart, err = emptySandboxRuns(ctx, sb, work, n)
			return prepared{dir: dir, spec: filepath.Join(dir, filepath.Base(r.SpecFile))}, err
		}
		if err := os.RemoveAll(jobDir); err != nil {
			return prepared{}, err
		}
	}
	return prepared{}, errors.New("no merge requests to time")
}

// oneJob does what the executor does up to the stored SRPM, timing each
// step: the checkout, the config, srpm.Builder with the repository's
// commands in the sandbox, and putting the SRPM in a blob store.
func oneJob(ctx context.Context, sb *sandbox.Sandbox, fetcher *gitfetch.Fetcher, blobs blob.FS, simURL, botToken string,
	p gitlabsim.Project, mr gitlabsim.MergeRequest, jobDir string) (stepTimes, *srpm.Result, error) {
	t := stepTimes{commands: map[string]time.Duration{}}
	src, out := filepath.Join(jobDir, "src"), filepath.Join(jobDir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return t, nil, err
	}
	start := time.Now()
	co, err := fetcher.Checkout(ctx, gitfetch.Request{RepoURL: simURL + "/" + p.PathWithNamespace + ".git", ProjectID: p.ID,
		Token: botToken, SHA: mr.HeadSHA, Dest: src, Log: io.Discard,
		MR: &gitfetch.MRMerge{TargetBranch: "main", SourceRef: fmt.Sprintf("refs/merge-requests/%d/head", mr.IID)}})
	if err != nil {
		return t, nil, err
	}
	t.fetch = time.Since(start)
	// The executor tells srpm the commit it checked out.
	head := co.SHA
	if co.MergedSHA != "" {
		head = co.MergedSHA
	}

	start = time.Now()
	settings, err := buildSettings(src, p)
	if err != nil {
		return t, nil, err
	}
	t.config = time.Since(start)

	start = time.Now()
	b := &srpm.Builder{
		Sandbox: timed{next: &sandboxRunner{sb: sb, jobDir: jobDir}, where: "sandbox", times: t.commands},
		Host:    timed{next: srpm.HostRunner{}, where: "host", times: t.commands},
		Log:     io.Discard,
	}
	r, err := b.Build(ctx, srpm.Request{WorkTree: src, Package: "hello", Settings: settings, OutDir: out,
		Branch: fmt.Sprintf("pr/%d", mr.IID), Commit: head})
	if err != nil {
		return t, nil, err
	}
	t.srpm = time.Since(start)

	start = time.Now()
	f, err := os.Open(r.SRPM)
	if err != nil {
		return t, nil, err
	}
	_, _, err = blobs.Put(ctx, fmt.Sprintf("jobs/%d/%s", mr.IID, filepath.Base(r.SRPM)), f)
	if err = errors.Join(err, f.Close()); err != nil {
		return t, nil, err
	}
	t.store = time.Since(start)
	return t, r, nil
}

// buildSettings reads the checked-out .packit.yaml as the executor does and
// returns the copr_build job's settings.
func buildSettings(src string, p gitlabsim.Project) (packitcfg.Settings, error) {
	data, err := os.ReadFile(filepath.Join(src, ".packit.yaml"))
	if err != nil {
		return packitcfg.Settings{}, err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return packitcfg.Settings{}, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	cfg, err := packitcfg.Load(".packit.yaml", data, packitcfg.Options{RepoName: p.Path, RepoFiles: names})
	if err != nil {
		return packitcfg.Settings{}, err
	}
	for _, j := range cfg.Jobs {
		if j.Type == packitcfg.JobCoprBuild {
			return j.Settings, nil
		}
	}
	return packitcfg.Settings{}, errors.New(".packit.yaml has no copr_build job")
}

// keepPrepared copies the spec and archive of an SRPM step into dir.
func keepPrepared(r *srpm.Result, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, f := range []string{r.SpecFile, r.Archive} {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// emptySandboxRuns times `true` in the sandbox n times: what one sandboxed
// command costs before it does anything.
func emptySandboxRuns(ctx context.Context, sb *sandbox.Sandbox, work string, n int) ([]time.Duration, error) {
	dir, err := os.MkdirTemp(work, "empty-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	var out []time.Duration
	for range n {
		start := time.Now()
		r, err := sb.Run(ctx, sandbox.Cmd{Args: []string{"true"}, WorkDir: dir})
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		if r.ExitCode != 0 {
			return nil, fmt.Errorf("sandbox: true exited %d", r.ExitCode)
		}
		out = append(out, time.Since(start))
	}
	return out, os.RemoveAll(dir)
}

// plainRpmbuild runs `rpmbuild -bs` on the host n times on the prepared
// tree, with the directory layout upbuild's SRPM step uses, each time into
// a fresh output directory.
func plainRpmbuild(ctx context.Context, tree prepared, work string, n int) ([]time.Duration, error) {
	var out []time.Duration
	for i := range n {
		dir := filepath.Join(work, fmt.Sprint(i))
		top := filepath.Join(dir, "rpmbuild")
		if err := os.MkdirAll(top, 0o755); err != nil {
			return nil, err
		}
		args := []string{"-bs"}
		for _, d := range [][2]string{
			{"_topdir", top}, {"_sourcedir", tree.dir}, {"_srcdir", tree.dir}, {"_specdir", tree.dir},
			{"_builddir", filepath.Join(top, "BUILD")}, {"_buildrootdir", filepath.Join(top, "BUILDROOT")},
			{"_rpmdir", filepath.Join(top, "RPMS")}, {"_srcrpmdir", dir},
		} {
			args = append(args, "--define", d[0]+" "+d[1])
		}
		args = append(args, tree.spec)
		start := time.Now()
		cmd := osexec.CommandContext(ctx, "rpmbuild", args...)
		cmd.Dir = tree.dir
		output, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("rpmbuild -bs: %w: %s", err, output)
		}
		out = append(out, time.Since(start))
		if !strings.Contains(string(output), ".src.rpm") {
			return nil, fmt.Errorf("rpmbuild -bs wrote no SRPM: %s", output)
		}
	}
	return out, os.RemoveAll(work)
}

// timed records how long each command takes, by where it ran and its tool.
type timed struct {
	next  srpm.Runner
	where string
	times map[string]time.Duration
}

func (t timed) Run(ctx context.Context, c srpm.Command) (srpm.Output, error) {
	start := time.Now()
	out, err := t.next.Run(ctx, c)
	key := t.where
	if len(c.Args) > 0 {
		key += " " + filepath.Base(c.Args[0])
	}
	t.times[key] += time.Since(start)
	return out, err
}

// sandboxRunner runs srpm's sandboxed commands in bubblewrap with the job
// directory at /work, as the executor's runner does (internal/exec, which
// does not export it): host paths in the arguments, the environment and the
// working directory are mapped in, and paths in the output mapped back.
type sandboxRunner struct {
	sb     *sandbox.Sandbox
	jobDir string
}

func (r *sandboxRunner) inside(s string) string { return strings.ReplaceAll(s, r.jobDir, "/work") }

func (r *sandboxRunner) Run(ctx context.Context, c srpm.Command) (srpm.Output, error) {
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = r.inside(a)
	}
	env := make(map[string]string, len(c.Env))
	for k, v := range c.Env {
		env[k] = r.inside(v)
	}
	rel, ok := strings.CutPrefix(c.Dir, r.jobDir)
	if !ok {
		return srpm.Output{}, fmt.Errorf("directory %s is outside the job directory", c.Dir)
	}
	var out strings.Builder
	res, err := r.sb.Run(ctx, sandbox.Cmd{Args: args, WorkDir: r.jobDir, Dir: strings.TrimPrefix(rel, "/"), Env: env, Output: &out})
	if err != nil {
		return srpm.Output{}, err
	}
	return srpm.Output{Stdout: strings.ReplaceAll(out.String(), "/work/", r.jobDir+"/"), ExitCode: res.ExitCode}, nil
}
