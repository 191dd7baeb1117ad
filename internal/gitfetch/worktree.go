package gitfetch

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// workTree is the job's own repository.
type workTree struct {
	f   *Fetcher
	dir string
}

// git runs a command in the work tree; it may fetch missing file contents
// from the cache (file transport) and nothing else.
func (w workTree) git(ctx context.Context, args ...string) (string, error) {
	return w.f.run(ctx, gitCmd{dir: w.dir, transport: cacheTransport, args: args})
}

// makeWorkTree creates req.Dest as a standalone partial clone of the
// cache: all commits, trees and tags are copied (not shared through
// alternates, not hard-linked), and the file contents of the checkout.
// Once done, its origin is the forge URL, without credentials.
func (f *Fetcher) makeWorkTree(ctx context.Context, cacheDir, targetSHA string, req Request) (Result, error) {
	w := workTree{f: f, dir: req.Dest}
	if _, err := w.git(ctx, "init", "--quiet"); err != nil {
		return Result{}, fmt.Errorf("create work tree: %w", err)
	}
	config := append(promisorConfig("file://"+cacheDir),
		gitConfig{"remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"},
		gitConfig{"user.name", mergeUserName},
		gitConfig{"user.email", mergeUserEmail},
	)
	if err := f.setConfig(ctx, w.dir, config); err != nil {
		return Result{}, err
	}
	if _, err := w.git(ctx, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance",
		"--filter=blob:none", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*", req.SHA); err != nil {
		return Result{}, fmt.Errorf("copy the repository into the work tree: %w", err)
	}
	res := Result{SHA: req.SHA, TargetSHA: targetSHA}
	if req.MR == nil {
		if err := w.checkout(ctx, req.SHA, w.localBranch(ctx, req.Ref)); err != nil {
			return Result{}, err
		}
		logf(req.Log, "Checked out %s", describeCommit(req.SHA, req.Ref))
	} else {
		var err error
		if res, err = w.merge(ctx, req, targetSHA); err != nil {
			return Result{}, err
		}
	}
	// From now on the work tree knows only the forge: a lazy fetch of old
	// file contents goes there, anonymously, and never to the cache.
	if err := f.replaceConfig(ctx, w.dir, "remote.origin.url", req.RepoURL); err != nil {
		return Result{}, err
	}
	return res, nil
}

// checkout moves HEAD to sha, on branch when it is not empty, detached
// otherwise.
func (w workTree) checkout(ctx context.Context, sha, branch string) error {
	args := []string{"checkout", "--quiet", "--force", "--detach", sha}
	if branch != "" {
		args = []string{"checkout", "--quiet", "--force", "-B", branch, sha}
	}
	if _, err := w.git(ctx, args...); err != nil {
		return fmt.Errorf("check out %s: %w", sha, err)
	}
	return nil
}

// localBranch is the branch a push's work tree is on: the pushed branch.
// A tag, an unusable name or no Ref leaves HEAD detached ("").
func (w workTree) localBranch(ctx context.Context, ref string) string {
	if strings.HasPrefix(ref, "refs/tags/") {
		return ""
	}
	name := strings.TrimPrefix(ref, "refs/heads/")
	if name == "" || strings.HasPrefix(name, "refs/") || strings.HasPrefix(name, "-") {
		return ""
	}
	if _, err := w.git(ctx, "check-ref-format", "refs/heads/"+name); err != nil {
		return ""
	}
	// A bare tag name (a release event) is a tag, not a branch.
	if _, err := w.git(ctx, "rev-parse", "--verify", "--quiet", "refs/tags/"+name); err == nil {
		return ""
	}
	return name
}

// merge checks out the target branch and merges the source commit onto
// it, as Packit does; on conflicts it falls back to the source commit.
func (w workTree) merge(ctx context.Context, req Request, targetSHA string) (Result, error) {
	res := Result{SHA: req.SHA, TargetSHA: targetSHA}
	target := req.MR.TargetBranch
	if err := w.checkout(ctx, targetSHA, target); err != nil {
		return Result{}, err
	}
	source := req.MR.SourceRef
	if source == "" {
		source = req.SHA[:12]
	}
	message := fmt.Sprintf("Merge %s (%s) into %s", source, req.SHA[:12], target)
	_, mergeErr := w.git(ctx, "merge", "--no-ff", "--no-edit", "--no-verify", "--quiet", "-m", message, req.SHA)
	if mergeErr == nil {
		merged, err := w.git(ctx, "rev-parse", "HEAD")
		if err != nil {
			return Result{}, fmt.Errorf("read the merge commit: %w", err)
		}
		res.MergedSHA = strings.TrimSpace(merged)
		logf(req.Log, "Merged %s onto %s (%s) as %s", req.SHA[:12], target, targetSHA[:12], res.MergedSHA[:12])
		return res, nil
	}
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("merge onto %s: %w", target, mergeErr)
	}
	conflicts, err := w.git(ctx, "diff", "--name-only", "--diff-filter=U")
	if err != nil {
		return Result{}, fmt.Errorf("merge onto %s: %w", target, errors.Join(mergeErr, err))
	}
	files := strings.Fields(conflicts)
	unrelated := strings.Contains(mergeErr.Error(), "refusing to merge unrelated histories")
	if len(files) == 0 && !unrelated {
		return Result{}, fmt.Errorf("merge onto %s: %w", target, mergeErr)
	}
	if len(files) > 0 {
		if _, err := w.git(ctx, "merge", "--abort"); err != nil {
			return Result{}, fmt.Errorf("abort the conflicting merge: %w", err)
		}
		res.Message = fmt.Sprintf("The merge request does not merge cleanly onto %s (%s) (conflicts in %s); building its source commit %s alone.",
			target, targetSHA[:12], strings.Join(files, ", "), req.SHA[:12])
	} else {
		res.Message = fmt.Sprintf("The merge request shares no history with %s (%s); building its source commit %s alone.",
			target, targetSHA[:12], req.SHA[:12])
	}
	if err := w.checkout(ctx, req.SHA, ""); err != nil {
		return Result{}, err
	}
	res.MergeFellBack = true
	logf(req.Log, "%s", res.Message)
	return res, nil
}

// describeCommit names a checkout for the job log.
func describeCommit(sha, ref string) string {
	if ref == "" {
		return sha[:12]
	}
	return fmt.Sprintf("%s (%s)", sha[:12], ref)
}
