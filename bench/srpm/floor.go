package main

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"time"
)

// floorTimes are the tools a job runs beyond plain `rpmbuild -bs`, each
// timed alone on the host with nothing of upbuild around it: the least
// each can cost.
type floorTimes struct {
	// bwrap is `bwrap ... /bin/true` with the namespaces the sandbox
	// unshares and a minimal root: one sandbox, bare.
	bwrap []time.Duration
	// rpmspec is the spec query Packit's SRPM step needs before it edits
	// the spec (and once more after); rpmQuery is `rpm -qp` of the SRPM.
	rpmspec, rpmQuery []time.Duration
	// fetch is `git fetch` from the simulated forge that finds nothing new:
	// the round trip every job makes.
	fetch []time.Duration
}

// floor times each tool n times. simRepoURL is a repository of the
// simulator to fetch from.
func floor(ctx context.Context, tree prepared, work, simRepoURL string, n int) (floorTimes, error) {
	var f floorTimes
	if err := os.MkdirAll(work, 0o755); err != nil {
		return f, err
	}
	srpmDir := filepath.Join(work, "srpm")
	build := []string{"rpmbuild", "-bs", "--define", "_topdir " + filepath.Join(work, "rpmbuild"), "--define", "_sourcedir " + tree.dir,
		"--define", "_srcrpmdir " + srpmDir, tree.spec}
	if _, err := timeCommand(ctx, work, build...); err != nil {
		return f, err
	}
	srpms, err := filepath.Glob(filepath.Join(srpmDir, "*.src.rpm"))
	if err != nil || len(srpms) != 1 {
		return f, fmt.Errorf("floor: the SRPM: %v, %v", srpms, err)
	}
	clone := filepath.Join(work, "clone.git")
	if _, err := timeCommand(ctx, work, "git", "clone", "--quiet", "--bare", "--filter=blob:none", simRepoURL, clone); err != nil {
		return f, err
	}
	for _, step := range []struct {
		into *[]time.Duration
		dir  string
		args []string
	}{
		{&f.bwrap, work, []string{"bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
			"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
			"--proc", "/proc", "--dev", "/dev", "--", "/bin/true"}},
		{&f.rpmspec, tree.dir, []string{"rpmspec", "-q", "--srpm", "--qf", "%{NAME} %{VERSION} %{RELEASE}\\n", tree.spec}},
		{&f.rpmQuery, work, []string{"rpm", "-qp", "--nosignature", "--nodigest", "--qf", "%{NAME} %{VERSION} %{RELEASE}\\n", srpms[0]}},
		{&f.fetch, clone, []string{"git", "fetch", "--quiet", "--filter=blob:none", "origin", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}},
	} {
		for range n {
			d, err := timeCommand(ctx, step.dir, step.args...)
			if err != nil {
				return f, err
			}
			*step.into = append(*step.into, d)
		}
	}
	return f, os.RemoveAll(work)
}

// timeCommand runs a command on the host and returns how long it took.
func timeCommand(ctx context.Context, dir string, args ...string) (time.Duration, error) {
	cmd := osexec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %w: %s", args, err, out)
	}
	return time.Since(start), nil
}
