package gitlabsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// zeroSHA is what GitLab puts in "before" for a created ref and in "after"
// for a deleted one.
const zeroSHA = "0000000000000000000000000000000000000000"

// errGitNotFound is returned when a revision, path or object does not exist.
var errGitNotFound = errors.New("git object not found")

// repo is a bare git repository on disk, driven through the git CLI so the
// simulator serves exactly what a real clone would see.
type repo struct {
	dir string
}

// gitIdentity is the author or committer of a commit.
type gitIdentity struct {
	Name  string
	Email string
	When  time.Time
}

func (r repo) run(ctx context.Context, env []string, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.dir)
	cmd.Env = append(cmd.Env, env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func initBareRepo(ctx context.Context, dir, defaultBranch string) (repo, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return repo{}, fmt.Errorf("create repository parent: %w", err)
	}
	cmd := exec.CommandContext(ctx, "git", "init", "--quiet", "--bare", "--initial-branch="+defaultBranch, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return repo{}, fmt.Errorf("git init: %w: %s", err, strings.TrimSpace(string(out)))
	}
	// GitLab serves partial clones (--filter=blob:none); so does the simulator.
	for _, kv := range [][2]string{{"uploadpack.allowFilter", "true"}, {"uploadpack.allowAnySHA1InWant", "true"}} {
		if out, err := exec.CommandContext(ctx, "git", "-C", dir, "config", kv[0], kv[1]).CombinedOutput(); err != nil {
			return repo{}, fmt.Errorf("git config %s: %w: %s", kv[0], err, strings.TrimSpace(string(out)))
		}
	}
	return repo{dir: dir}, nil
}

// resolveCommit returns the full SHA of rev (branch, tag or SHA), or
// errGitNotFound.
func (r repo) resolveCommit(ctx context.Context, rev string) (string, error) {
	if rev == "" || strings.HasPrefix(rev, "-") {
		return "", errGitNotFound
	}
	out, err := r.run(ctx, nil, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", errGitNotFound
	}
	return strings.TrimSpace(string(out)), nil
}

// refSHA returns what a full ref points at, or "" when it does not exist.
func (r repo) refSHA(ctx context.Context, ref string) string {
	out, err := r.run(ctx, nil, nil, "rev-parse", "--verify", "--quiet", ref)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// FileChange is one file written or removed by a commit.
type FileChange struct {
	Path    string
	Content string
	Delete  bool
}

// commitFiles writes a commit on top of branch and moves the branch to it. A
// branch that does not exist yet starts from the branch startFrom, or as a
// root commit when that does not exist either. It returns the new commit and
// the branch's previous head ("" if it was created).
func (r repo) commitFiles(ctx context.Context, branch, startFrom, message string, changes []FileChange, who gitIdentity) (newSHA, oldSHA string, err error) {
	oldSHA = r.refSHA(ctx, "refs/heads/"+branch)
	parent := oldSHA
	if parent == "" {
		parent = r.refSHA(ctx, "refs/heads/"+startFrom)
	}
	index, err := os.CreateTemp("", "gitlabsim-index-*")
	if err != nil {
		return "", "", fmt.Errorf("temporary index: %w", err)
	}
	indexPath := index.Name()
	if err := index.Close(); err != nil {
		return "", "", fmt.Errorf("temporary index: %w", err)
	}
	// git refuses an empty file as an index, so start from no file at all.
	if err := os.Remove(indexPath); err != nil {
		return "", "", fmt.Errorf("temporary index: %w", err)
	}
	defer func() { _ = os.Remove(indexPath) }() // a leftover temp file is harmless
	env := []string{"GIT_INDEX_FILE=" + indexPath}
	if parent != "" {
		if _, err := r.run(ctx, env, nil, "read-tree", parent); err != nil {
			return "", "", err
		}
	}
	for _, c := range changes {
		if c.Delete {
			if _, err := r.run(ctx, env, nil, "update-index", "--force-remove", "--", c.Path); err != nil {
				return "", "", err
			}
			continue
		}
		blob, err := r.run(ctx, nil, []byte(c.Content), "hash-object", "-w", "--stdin")
		if err != nil {
			return "", "", err
		}
		info := "100644," + strings.TrimSpace(string(blob)) + "," + c.Path
		if _, err := r.run(ctx, env, nil, "update-index", "--add", "--cacheinfo", info); err != nil {
			return "", "", err
		}
	}
	tree, err := r.run(ctx, env, nil, "write-tree")
	if err != nil {
		return "", "", err
	}
	args := []string{"commit-tree", strings.TrimSpace(string(tree)), "-m", message}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	newSHA, err = r.commitTree(ctx, who, args...)
	if err != nil {
		return "", "", err
	}
	if err := r.updateRef(ctx, "refs/heads/"+branch, newSHA, oldSHA); err != nil {
		return "", "", err
	}
	return newSHA, oldSHA, nil
}

func (r repo) commitTree(ctx context.Context, who gitIdentity, args ...string) (string, error) {
	date := who.When.UTC().Format(time.RFC3339)
	env := []string{
		"GIT_AUTHOR_NAME=" + who.Name, "GIT_AUTHOR_EMAIL=" + who.Email, "GIT_AUTHOR_DATE=" + date,
		"GIT_COMMITTER_NAME=" + who.Name, "GIT_COMMITTER_EMAIL=" + who.Email, "GIT_COMMITTER_DATE=" + date,
	}
	out, err := r.run(ctx, env, nil, args...)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// updateRef moves ref to sha; old is the expected current value ("" = must
// not exist) so concurrent writers cannot silently lose commits.
func (r repo) updateRef(ctx context.Context, ref, sha, old string) error {
	if old == "" {
		old = zeroSHA
	}
	_, err := r.run(ctx, nil, nil, "update-ref", ref, sha, old)
	return err
}

// forceRef points ref at sha whatever it pointed at before.
func (r repo) forceRef(ctx context.Context, ref, sha string) error {
	_, err := r.run(ctx, nil, nil, "update-ref", ref, sha)
	return err
}

// fetchCommit copies the objects reachable from ref in src into r, so that a
// fork's commits can be referenced from the target project.
func (r repo) fetchCommit(ctx context.Context, src repo, ref string) error {
	_, err := r.run(ctx, nil, nil, "fetch", "--quiet", "--no-tags", src.dir, ref)
	return err
}

// treeEntry is one line of git ls-tree.
type treeEntry struct {
	Mode string
	Type string
	ID   string
	Path string
}

// lsTree lists the entries under dir ("" for the root) at commit.
func (r repo) lsTree(ctx context.Context, commit, dir string, recursive bool) ([]treeEntry, error) {
	args := []string{"ls-tree", "-z"}
	if recursive {
		args = append(args, "-r", "-t")
	}
	target := commit
	if dir != "" {
		target = commit + ":" + strings.Trim(dir, "/")
	}
	args = append(args, target)
	out, err := r.run(ctx, nil, nil, args...)
	if err != nil {
		return nil, errGitNotFound
	}
	prefix := ""
	if dir != "" {
		prefix = strings.Trim(dir, "/") + "/"
	}
	var entries []treeEntry
	for _, line := range strings.Split(string(out), "\x00") {
		if line == "" {
			continue
		}
		meta, name, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		fields := strings.Fields(meta)
		if len(fields) != 3 {
			continue
		}
		entries = append(entries, treeEntry{Mode: fields[0], Type: fields[1], ID: fields[2], Path: prefix + name})
	}
	return entries, nil
}

// fileEntry returns the tree entry of one path at commit.
func (r repo) fileEntry(ctx context.Context, commit, path string) (treeEntry, error) {
	out, err := r.run(ctx, nil, nil, "ls-tree", "-z", commit, "--", path)
	if err != nil {
		return treeEntry{}, err
	}
	line := strings.TrimSuffix(string(out), "\x00")
	meta, name, ok := strings.Cut(line, "\t")
	fields := strings.Fields(meta)
	if !ok || len(fields) != 3 || fields[1] != "blob" || name != path {
		return treeEntry{}, errGitNotFound
	}
	return treeEntry{Mode: fields[0], Type: fields[1], ID: fields[2], Path: name}, nil
}

func (r repo) blob(ctx context.Context, id string) ([]byte, error) {
	return r.run(ctx, nil, nil, "cat-file", "blob", id)
}

// lastCommitFor returns the newest commit at or before commit that touched path.
func (r repo) lastCommitFor(ctx context.Context, commit, path string) (string, error) {
	out, err := r.run(ctx, nil, nil, "log", "-1", "--format=%H", commit, "--", path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// commitInfo is what GitLab shows about a commit.
type commitInfo struct {
	ID             string
	ParentIDs      []string
	AuthorName     string
	AuthorEmail    string
	AuthoredAt     time.Time
	CommitterName  string
	CommitterEmail string
	CommittedAt    time.Time
	Message        string
	Added          []string
	Modified       []string
	Removed        []string
}

// Title is the first line of the message, as GitLab shows it.
func (c commitInfo) Title() string {
	title, _, _ := strings.Cut(c.Message, "\n")
	return title
}

func (r repo) commit(ctx context.Context, sha string) (commitInfo, error) {
	out, err := r.run(ctx, nil, nil, "show", "-s", "--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B", sha)
	if err != nil {
		return commitInfo{}, errGitNotFound
	}
	parts := strings.SplitN(string(out), "\x00", 9)
	if len(parts) != 9 {
		return commitInfo{}, fmt.Errorf("unexpected git show output for %s", sha)
	}
	authored, err := time.Parse(time.RFC3339, parts[4])
	if err != nil {
		return commitInfo{}, fmt.Errorf("author date of %s: %w", sha, err)
	}
	committed, err := time.Parse(time.RFC3339, parts[7])
	if err != nil {
		return commitInfo{}, fmt.Errorf("commit date of %s: %w", sha, err)
	}
	info := commitInfo{
		ID: parts[0], ParentIDs: strings.Fields(parts[1]),
		AuthorName: parts[2], AuthorEmail: parts[3], AuthoredAt: authored,
		CommitterName: parts[5], CommitterEmail: parts[6], CommittedAt: committed,
		Message: strings.TrimRight(parts[8], "\n") + "\n",
	}
	changes, err := r.run(ctx, nil, nil, "diff-tree", "-z", "--no-commit-id", "--name-status", "-r", "--root", "-m", "--first-parent", sha)
	if err != nil {
		return commitInfo{}, err
	}
	fields := strings.Split(strings.TrimSuffix(string(changes), "\x00"), "\x00")
	for i := 0; i+1 < len(fields); i += 2 {
		switch fields[i] {
		case "A":
			info.Added = append(info.Added, fields[i+1])
		case "D":
			info.Removed = append(info.Removed, fields[i+1])
		default:
			info.Modified = append(info.Modified, fields[i+1])
		}
	}
	return info, nil
}

// newCommits lists, oldest first, the commits reachable from after but not
// from before; when before is empty (a new branch) it excludes the commits of
// every other branch, as GitLab does for a branch-creation push.
func (r repo) newCommits(ctx context.Context, before, after, branch string) ([]string, error) {
	args := []string{"rev-list", "--reverse", after}
	if before != "" {
		args = append(args, "^"+before)
	} else {
		refs, err := r.run(ctx, nil, nil, "for-each-ref", "--format=%(refname)", "refs/heads")
		if err != nil {
			return nil, err
		}
		for _, ref := range strings.Fields(string(refs)) {
			if ref != "refs/heads/"+branch {
				args = append(args, "^"+ref)
			}
		}
	}
	out, err := r.run(ctx, nil, nil, args...)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// refsContaining lists the short names of branches, then tags, holding sha.
func (r repo) refsContaining(ctx context.Context, sha string) ([]string, error) {
	var names []string
	for _, kind := range []string{"refs/heads", "refs/tags"} {
		out, err := r.run(ctx, nil, nil, "for-each-ref", "--contains", sha, "--format=%(refname:lstrip=2)", kind)
		if err != nil {
			return nil, err
		}
		found := strings.Fields(string(out))
		sort.Strings(found)
		names = append(names, found...)
	}
	return names, nil
}

// mergeCommit creates a merge commit of source into the target branch, the
// way GitLab's default merge method does, and moves the branch to it.
func (r repo) mergeCommit(ctx context.Context, targetBranch, sourceSHA, message string, who gitIdentity) (newSHA, oldSHA string, err error) {
	oldSHA = r.refSHA(ctx, "refs/heads/"+targetBranch)
	if oldSHA == "" {
		return "", "", fmt.Errorf("target branch %q: %w", targetBranch, errGitNotFound)
	}
	tree, err := r.run(ctx, nil, nil, "merge-tree", "--write-tree", oldSHA, sourceSHA)
	if err != nil {
		return "", "", fmt.Errorf("merge has conflicts: %w", err)
	}
	treeID, _, _ := strings.Cut(string(tree), "\n")
	newSHA, err = r.commitTree(ctx, who, "commit-tree", strings.TrimSpace(treeID), "-p", oldSHA, "-p", sourceSHA, "-m", message)
	if err != nil {
		return "", "", err
	}
	if err := r.updateRef(ctx, "refs/heads/"+targetBranch, newSHA, oldSHA); err != nil {
		return "", "", err
	}
	return newSHA, oldSHA, nil
}
