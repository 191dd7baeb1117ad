package gitfetch_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/gitfetch"
	"upbuild.dev/upbuild/internal/gitlabsim"
)

// addHistory appends commits to the project's main branch straight into the
// simulator's repository with git fast-import: a history long enough for
// copying it into a work tree to cost something.
func addHistory(b *testing.B, w *world, commits, files int) {
	b.Helper()
	var stream strings.Builder
	parent := w.head(b, w.project.ID, "main")
	for i := range commits {
		content := fmt.Sprintf("file %d, revision %d\n", i%files, i)
		fmt.Fprintf(&stream, "commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\ndata 9\nrevision\n", 1700000000+i)
		if i == 0 {
			fmt.Fprintf(&stream, "from %s\n", parent)
		}
		fmt.Fprintf(&stream, "M 100644 inline src/file%03d.c\ndata %d\n%s\n", i%files, len(content), content)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = w.project.RepoDir
	cmd.Stdin = strings.NewReader(stream.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("fast-import: %v\n%s", err, out)
	}
}

// BenchmarkCheckout measures a checkout from a warm cache (the fetch from
// the forge finds nothing new), the copy the checkout made before it
// copied the cache's files (`git clone --no-local --filter=blob:none`
// from the cache), and `git clone --shared` from the same cache, which
// copies nothing but leaves the work tree depending on the cache. Each
// writes the same 300 files.
func BenchmarkCheckout(b *testing.B) {
	w := newWorld(b)
	addHistory(b, w, 5000, 300)
	cacheDir := b.TempDir()
	f := newFetcher(b, gitfetch.Options{CacheDir: cacheDir})
	ctx := context.Background()
	req := w.request(b, nil)
	if _, err := f.Checkout(ctx, req); err != nil {
		b.Fatal(err)
	}
	cached, err := filepath.Glob(filepath.Join(cacheDir, "repos", "*.git"))
	if err != nil || len(cached) != 1 {
		b.Fatalf("cached repositories: %v, %v", cached, err)
	}
	b.Run("standalone", func(b *testing.B) {
		for b.Loop() {
			req.Dest = filepath.Join(b.TempDir(), "src")
			if _, err := f.Checkout(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("clone-no-local", func(b *testing.B) {
		for b.Loop() {
			dest := filepath.Join(b.TempDir(), "src")
			git(b, b.TempDir(), "-c", "protocol.file.allow=always", "clone", "--quiet", "--no-local", "--upload-pack=git -c uploadpack.allowFilter=true upload-pack", "--filter=blob:none", "--no-checkout", "file://"+cached[0], dest)
			git(b, dest, "-c", "protocol.file.allow=always", "checkout", "--quiet", "--detach", req.SHA)
		}
	})
	b.Run("clone-shared", func(b *testing.B) {
		for b.Loop() {
			dest := filepath.Join(b.TempDir(), "src")
			git(b, b.TempDir(), "-c", "protocol.file.allow=always", "clone", "--quiet", "--shared", "--no-checkout", cached[0], dest)
			git(b, dest, "-c", "protocol.file.allow=always", "checkout", "--quiet", "--detach", req.SHA)
		}
	})
}

// BenchmarkCheckoutMergeRequest measures what a job of bench/srpm costs in
// the checkout: a new commit on a merge request's branch, fetched into a
// warm cache and merged onto the target branch in a fresh work tree.
func BenchmarkCheckoutMergeRequest(b *testing.B) {
	w := newWorld(b)
	ctx := context.Background()
	f := newFetcher(b, gitfetch.Options{})
	checkout := func(i int) {
		b.StopTimer()
		branch := fmt.Sprintf("change-%d", i)
		source := must[string](b)(w.sim.PushCommits(ctx, w.project.ID, branch, "alice", gitlabsim.CommitSpec{
			Message: "Change", Changes: []gitlabsim.FileChange{{Path: "README", Content: fmt.Sprintf("change %d\n", i)}},
		}))
		mr := must[gitlabsim.MergeRequest](b)(w.sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{
			ProjectID: w.project.ID, SourceBranch: branch, TargetBranch: "main", Author: "alice",
		}))
		req := w.request(b, nil)
		req.SHA, req.Ref = source, ""
		req.MR = &gitfetch.MRMerge{TargetBranch: "main", SourceRef: fmt.Sprintf("refs/merge-requests/%d/head", mr.IID)}
		b.StartTimer()
		res, err := f.Checkout(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if res.MergedSHA == "" || res.MergeFellBack {
			b.Fatalf("not merged: %+v", res)
		}
	}
	checkout(0) // fills the cache
	i := 1
	for b.Loop() {
		checkout(i)
		i++
	}
}
