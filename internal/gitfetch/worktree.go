package gitfetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// workTree is the job's own repository.
type workTree struct {
	f    *Fetcher
	dir  string
	cred credential
}

func (w workTree) gitDir() string     { return filepath.Join(w.dir, ".git") }
func (w workTree) objectsDir() string { return filepath.Join(w.gitDir(), "objects") }

// git runs a command in the work tree. Everything a checkout or a merge
// reads was copied from the cache; should a file content be missing after
// all, git fetches it from the forge (the work tree's origin) with the
// token in this one process's environment, as in the cache.
func (w workTree) git(ctx context.Context, args ...string) (string, error) {
	return w.f.run(ctx, gitCmd{dir: w.dir, transport: forgeTransport, cred: w.cred, args: args})
}

// create makes the work tree's repository without running git: the
// directories git expects, upbuild's config (origin is the forge URL,
// without credentials, so a lazy fetch of old file contents in the sandbox
// goes there, anonymously) and HEAD detached at head. The objects and refs
// come next.
func (w workTree) create(head string) error {
	for _, dir := range []string{"objects/pack", "objects/info", "refs/heads", "refs/tags"} {
		if err := os.MkdirAll(filepath.Join(w.gitDir(), dir), 0o755); err != nil {
			return fmt.Errorf("create work tree: %w", err)
		}
	}
	config, err := configText(append(append([]gitConfig{
		{"core.filemode", "true"},
		{"core.bare", "false"},
		{"core.logAllRefUpdates", "true"},
	}, promisorConfig(w.cred.repoURL)...),
		gitConfig{"remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"},
		gitConfig{"user.name", mergeUserName},
		gitConfig{"user.email", mergeUserEmail},
	))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(w.gitDir(), "config"), []byte(config), 0o644); err != nil {
		return fmt.Errorf("create work tree: %w", err)
	}
	return w.setHead(head, "")
}

// setHead points HEAD at sha, through branch when it is not empty (the
// branch ref itself is in packed-refs), detached otherwise.
func (w workTree) setHead(sha, branch string) error {
	head := sha + "\n"
	if branch != "" {
		head = "ref: refs/heads/" + branch + "\n"
	}
	if err := os.WriteFile(filepath.Join(w.gitDir(), "HEAD"), []byte(head), 0o644); err != nil {
		return fmt.Errorf("set HEAD: %w", err)
	}
	return nil
}

// finish makes the commit to build (the merge, for a merge request),
// writes the refs and HEAD, and checks the files out. It needs no lock:
// the work tree has its own copy of everything.
func (w workTree) finish(ctx context.Context, req Request, cacheRefs map[string]string, targetSHA string) (Result, error) {
	res := Result{SHA: req.SHA, TargetSHA: targetSHA}
	head, branch := req.SHA, localBranch(req.Ref, cacheRefs)
	if req.MR != nil {
		var err error
		if res, err = w.merge(ctx, req, targetSHA); err != nil {
			return Result{}, err
		}
		head, branch = req.SHA, ""
		if res.MergedSHA != "" {
			head, branch = res.MergedSHA, req.MR.TargetBranch
		}
	}
	local := map[string]string{}
	if branch != "" {
		local["refs/heads/"+branch] = head
	}
	if err := os.WriteFile(filepath.Join(w.gitDir(), "packed-refs"), packedRefs(cacheRefs, local), 0o644); err != nil {
		return Result{}, fmt.Errorf("write refs: %w", err)
	}
	if err := w.setHead(head, branch); err != nil {
		return Result{}, err
	}
	if err := w.checkSize(ctx, head); err != nil {
		return Result{}, err
	}
	// The index and the files, from HEAD, in one process.
	if _, err := w.git(ctx, "read-tree", "--reset", "-u", "HEAD"); err != nil {
		return Result{}, fmt.Errorf("check out %s: %w", head, err)
	}
	if req.MR == nil {
		logf(req.Log, "Checked out %s", describeCommit(req.SHA, req.Ref))
	}
	return res, nil
}

// checkSize refuses a commit whose files are more or larger than the
// Fetcher allows (see Options.MaxTreeBytes), reading the tree's listing as
// git writes it and stopping git as soon as a limit is passed.
func (w workTree) checkSize(ctx context.Context, commit string) error {
	var bytes int64
	files := 0
	err := w.f.stream(ctx, gitCmd{dir: w.dir, transport: noTransport, args: []string{"ls-tree", "-r", "-l", "-z", "--full-tree", commit}},
		func(record string) error {
			// "<mode> <type> <object> <size>\t<path>"; size is "-" for a submodule.
			meta, _, _ := strings.Cut(record, "\t")
			f := strings.Fields(meta)
			if len(f) != 4 || f[1] != "blob" {
				return nil
			}
			size, err := strconv.ParseInt(f[3], 10, 64)
			if err != nil {
				return fmt.Errorf("size %q: %w", f[3], err)
			}
			bytes += size
			files++
			if bytes > w.f.maxTreeBytes || files > w.f.maxTreeFiles {
				return fmt.Errorf("%w: more than %d files or %d bytes at %s", ErrTreeTooLarge, w.f.maxTreeFiles, w.f.maxTreeBytes, commit[:12])
			}
			return nil
		})
	if err != nil && !errors.Is(err, ErrTreeTooLarge) {
		return fmt.Errorf("list the commit's files: %w", err)
	}
	return err
}

// localBranch is the branch a push's work tree is on: the pushed branch.
// A tag, an unusable name or no Ref leaves HEAD detached ("").
func localBranch(ref string, cacheRefs map[string]string) string {
	if strings.HasPrefix(ref, "refs/tags/") {
		return ""
	}
	name := strings.TrimPrefix(ref, "refs/heads/")
	if strings.HasPrefix(name, "refs/") || !validBranchName(name) {
		return ""
	}
	// A bare tag name (a release event) is a tag, not a branch.
	if _, isTag := cacheRefs["refs/tags/"+name]; isTag {
		return ""
	}
	return name
}

// merge merges the source commit onto the target branch as Packit does,
// without a work tree (git merge-tree), and writes the merge commit. On
// conflicts, or with no history in common, it falls back to the source
// commit and says so.
func (w workTree) merge(ctx context.Context, req Request, targetSHA string) (Result, error) {
	res := Result{SHA: req.SHA, TargetSHA: targetSHA}
	target := req.MR.TargetBranch
	out, mergeErr := w.git(ctx, "merge-tree", "--write-tree", "--name-only", "--no-messages", targetSHA, req.SHA)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tree := lines[0]
	switch {
	case mergeErr == nil && fullSHA.MatchString(tree):
		source := req.MR.SourceRef
		if source == "" {
			source = req.SHA[:12]
		}
		when := req.MergeTime
		if when.IsZero() {
			when = time.Now()
		}
		merged, err := writeCommit(w.objectsDir(), commit{
			tree: tree, parents: []string{targetSHA, req.SHA}, identity: mergeUserName + " <" + mergeUserEmail + ">",
			when: when, message: fmt.Sprintf("Merge %s (%s) into %s", source, req.SHA[:12], target),
		})
		if err != nil {
			return Result{}, err
		}
		res.MergedSHA = merged
		logf(req.Log, "Merged %s onto %s (%s) as %s", req.SHA[:12], target, targetSHA[:12], merged[:12])
		return res, nil
	case ctx.Err() != nil:
		return Result{}, fmt.Errorf("merge onto %s: %w", target, ctx.Err())
	case exitCode(mergeErr) == 1 && fullSHA.MatchString(tree):
		var files []string
		for _, f := range lines[1:] {
			if f = strings.TrimSpace(f); f != "" && !slices.Contains(files, f) {
				files = append(files, f)
			}
		}
		res.Message = fmt.Sprintf("The merge request does not merge cleanly onto %s (%s) (conflicts in %s); building its source commit %s alone.",
			target, targetSHA[:12], strings.Join(files, ", "), req.SHA[:12])
	case mergeErr != nil && strings.Contains(mergeErr.Error(), "refusing to merge unrelated histories"):
		res.Message = fmt.Sprintf("The merge request shares no history with %s (%s); building its source commit %s alone.",
			target, targetSHA[:12], req.SHA[:12])
	default:
		return Result{}, fmt.Errorf("merge onto %s: %w", target, errors.Join(mergeErr, fmt.Errorf("unexpected merge-tree output %q", out)))
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
