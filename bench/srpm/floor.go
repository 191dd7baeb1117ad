package main

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"time"
)

// floorTimes are the commands the issue itself asks every job to run
// besides plain `rpmbuild -bs`, each timed alone on the host with nothing
// of upbuild around it, in the order a job must run them: each needs the
// one before. Their sum is the least any implementation that follows the
// issue can take.
type floorTimes struct {
	// fetch is `git fetch` from the simulated forge that finds nothing
	// new: "fetch from the local cache" still asks the forge what is new.
	fetch []time.Duration
	// version is `git describe --tags --abbrev=0`: "the version comes from
	// the latest matching tag".
	version []time.Duration
	// archive is `git archive --prefix name-version/`: Packit's default
	// archive.
	archive []time.Duration
	// sandboxedRpmbuild is `rpmbuild -bs` of the prepared tree inside a
	// minimal bwrap with the namespaces the sandbox unshares: "every
	// command that comes from the repository runs inside bubblewrap", and
	// rpmbuild runs the spec's macros.
	sandboxedRpmbuild []time.Duration
	// rpmQuery is `rpm -qp` of the SRPM: "check the result with rpm -qp".
	rpmQuery []time.Duration
	// bwrap is `bwrap ... /bin/true` with the same arguments: one
	// sandbox's start alone, for reference.
	bwrap []time.Duration
}

// sum is the floor: the p50s of the chain, one after the other.
func (f floorTimes) sum() time.Duration {
	return p50(f.fetch) + p50(f.version) + p50(f.archive) + p50(f.sandboxedRpmbuild) + p50(f.rpmQuery)
}

// floor times each command n times. simRepoURL is a repository of the
// simulator to fetch from; its tag names the version.
func floor(ctx context.Context, tree prepared, work, simRepoURL string, n int) (floorTimes, error) {
	var f floorTimes
	if err := os.MkdirAll(work, 0o755); err != nil {
		return f, err
	}
	srpmDir := filepath.Join(work, "srpm")
	defines := []string{"--define", "_topdir " + filepath.Join(work, "rpmbuild"), "--define", "_sourcedir " + tree.dir,
		"--define", "_srcrpmdir " + srpmDir, tree.spec}
	if _, err := timeCommand(ctx, work, append([]string{"rpmbuild", "-bs"}, defines...)...); err != nil {
		return f, err
	}
	srpms, err := filepath.Glob(filepath.Join(srpmDir, "*.src.rpm"))
	if err != nil || len(srpms) != 1 {
		return f, fmt.Errorf("floor: the SRPM: %v, %v", srpms, err)
	}
	clone := filepath.Join(work, "clone.git")
	if _, err := timeCommand(ctx, work, "git", "clone", "--quiet", "--bare", simRepoURL, clone); err != nil {
		return f, err
	}
	// The namespaces the sandbox unshares, a read-only system, a private
	// /tmp and the work directory writable.
	bwrap := []string{"bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
		"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
		"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind", work, work, "--ro-bind", tree.dir, tree.dir, "--"}
	archive := filepath.Join(work, "archive.tar.gz")
	for _, step := range []struct {
		into *[]time.Duration
		dir  string
		args []string
	}{
		{&f.fetch, clone, []string{"git", "fetch", "--quiet", "--filter=blob:none", "origin", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}},
		{&f.version, clone, []string{"git", "describe", "--tags", "--abbrev=0", "HEAD"}},
		{&f.archive, clone, []string{"git", "archive", "--format=tar.gz", "--prefix=hello-1.0/", "-o", archive, "HEAD"}},
		{&f.sandboxedRpmbuild, work, append(append(bwrap, "rpmbuild", "-bs"), defines...)},
		{&f.rpmQuery, work, []string{"rpm", "-qp", "--nosignature", "--nodigest", "--qf", "%{NAME} %{VERSION} %{RELEASE}\\n", srpms[0]}},
		{&f.bwrap, work, append(bwrap, "/bin/true")},
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
