package gitfetch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Sentinel errors; check them with errors.Is.
var (
	// ErrInvalidRequest means a Request field is missing or unusable: a
	// repository URL that is not http(s) or carries credentials, a SHA that
	// is not a full object name, a Dest that is not empty.
	ErrInvalidRequest = errors.New("invalid checkout request")
	// ErrAccessDenied means the forge refused the token or does not show
	// the project to it.
	ErrAccessDenied = errors.New("the forge denied access to the repository")
	// ErrCommitNotFound means the commit (or the merge request's target
	// branch) is not in the repository.
	ErrCommitNotFound = errors.New("commit not found in the repository")
	// ErrTreeTooLarge means the commit's files are more, or larger, than
	// Options.MaxTreeBytes and Options.MaxTreeFiles allow.
	ErrTreeTooLarge = errors.New("the commit's files are more than this worker checks out")
)

// Options configure a Fetcher.
type Options struct {
	// CacheDir holds the repository cache. Required. The sandbox must not
	// see it: work trees are standalone repositories whose object files
	// are read-only hard links to (or copies of) the cache's.
	CacheDir string
	// MaxCacheBytes caps the cache's disk use; after a checkout, least
	// recently used repositories are evicted until the cache fits. 0 means
	// no cap.
	MaxCacheBytes int64
	// Logger receives operator logs (cache misses, evictions); it never
	// sees the token. Defaults to discarding.
	Logger *slog.Logger
	// GitPath is the git binary; defaults to "git" looked up in PATH.
	GitPath string
	// CommandTimeout bounds each git command; defaults to 10 minutes.
	CommandTimeout time.Duration
	// MaxTreeBytes and MaxTreeFiles bound what one checkout writes: the
	// sum of the commit's file sizes and the number of its files. A few
	// kilobytes of objects can name one large file a million times (a
	// "git bomb"), and the checkout runs on the host, outside any sandbox
	// limit, so a tree beyond either is refused before a file is written.
	// Default 8 GiB (the sandbox's work directory limit) and 1,000,000.
	MaxTreeBytes int64
	MaxTreeFiles int
}

// Fetcher checks out projects' code for jobs, keeping a cache of bare
// partial clones so repeated jobs fetch only new objects. It is safe for
// concurrent use, also by several processes sharing CacheDir.
type Fetcher struct {
	gitPath        string
	path           string // PATH for git
	log            *slog.Logger
	maxBytes       int64
	maxTreeBytes   int64
	maxTreeFiles   int
	commandTimeout time.Duration
	reposDir       string
	locksDir       string
	tmpDir         string
	homeDir        string
}

const (
	defaultCommandTimeout = 10 * time.Minute
	defaultMaxTreeBytes   = 8 << 30
	defaultMaxTreeFiles   = 1_000_000
)

// New prepares the cache directory.
func New(opts Options) (*Fetcher, error) {
	if opts.CacheDir == "" {
		return nil, fmt.Errorf("gitfetch: CacheDir is required")
	}
	if opts.MaxCacheBytes < 0 {
		return nil, fmt.Errorf("gitfetch: MaxCacheBytes is negative")
	}
	gitPath := opts.GitPath
	if gitPath == "" {
		gitPath = "git"
	}
	resolved, err := exec.LookPath(gitPath)
	if err != nil {
		return nil, fmt.Errorf("gitfetch: find git: %w", err)
	}
	cacheDir, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("gitfetch: cache directory: %w", err)
	}
	f := &Fetcher{
		gitPath:        resolved,
		path:           os.Getenv("PATH"),
		log:            opts.Logger,
		maxBytes:       opts.MaxCacheBytes,
		maxTreeBytes:   cmp.Or(opts.MaxTreeBytes, defaultMaxTreeBytes),
		maxTreeFiles:   cmp.Or(opts.MaxTreeFiles, defaultMaxTreeFiles),
		commandTimeout: opts.CommandTimeout,
		reposDir:       filepath.Join(cacheDir, "repos"),
		locksDir:       filepath.Join(cacheDir, "locks"),
		tmpDir:         filepath.Join(cacheDir, "tmp"),
		homeDir:        filepath.Join(cacheDir, "home"),
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.commandTimeout == 0 {
		f.commandTimeout = defaultCommandTimeout
	}
	if f.path == "" {
		f.path = "/usr/bin:/bin"
	}
	for _, dir := range []string{f.reposDir, f.locksDir, f.tmpDir, f.homeDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("gitfetch: create cache directory: %w", err)
		}
	}
	return f, nil
}

// MRMerge asks for a merge request's source commit merged onto its target
// branch, as Packit builds merge requests.
type MRMerge struct {
	// TargetBranch is the branch the merge request targets.
	TargetBranch string
	// SourceRef is a ref of the target project holding the source commit,
	// refs/merge-requests/<iid>/head: GitLab keeps it for fork merge
	// requests too, so the fork itself need not be readable. Optional for
	// merge requests within one project.
	SourceRef string
}

// Request is one job's checkout.
type Request struct {
	// RepoURL is the project's git HTTP URL (http_url_to_repo), without
	// credentials.
	RepoURL string
	// ProjectID is the forge's project ID; with RepoURL's host it keys the
	// cache, so a renamed project keeps its cached repository.
	ProjectID int64
	// Token authenticates the fetch from the forge (HTTP Basic, user
	// oauth2). Empty for public projects. It is used for the fetch alone.
	Token string
	// SHA is the full commit to build: the pushed or tagged commit, or the
	// merge request's source commit.
	SHA string
	// Ref is the branch or tag the job is for (name, refs/heads/... or
	// refs/tags/...). A branch becomes the work tree's local branch; a tag
	// or an empty Ref leaves HEAD detached.
	Ref string
	// MR, when set, merges SHA onto MR.TargetBranch.
	MR *MRMerge
	// Dest is the work tree to create; it must not exist or be empty.
	Dest string
	// Log receives the lines a user sees in the job log. Optional.
	Log io.Writer
	// Session, when not empty, lets checkouts share one fetch: the first
	// checkout of a session fetches from the forge, later ones on this
	// worker use the cache as that fetch left it (its branches and tags),
	// as long as it holds their commit. The executor passes the run, so
	// the jobs of a run (one per target) build the same merge of the same
	// commits and ask the forge once.
	Session string
	// MergeTime, when set, is the merge commit's author and committer
	// time; zero means now. With the same parents, the jobs of a run that
	// pass the run's time make the same merge commit, so their SRPMs'
	// releases (which name its short hash) agree.
	MergeTime time.Time
}

// Result says what was checked out.
type Result struct {
	// SHA is the commit the job asked for.
	SHA string
	// TargetSHA is the head of the merge request's target branch the merge
	// was made on; empty for pushes and tags.
	TargetSHA string
	// MergedSHA is the merge commit at HEAD; empty when nothing was merged.
	MergedSHA string
	// MergeFellBack is set when the merge request did not merge cleanly
	// and the work tree holds the source commit alone.
	MergeFellBack bool
	// Message explains a fallback, for the job log and the report.
	Message string
}

// mergeIdentity makes the merge commit; it is written to the work tree's
// own .git/config.
const (
	mergeUserName  = "upbuild"
	mergeUserEmail = "upbuild@localhost"
)

var fullSHA = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// validate checks a request and returns the cache key of its repository.
func (r Request) validate() (string, error) {
	u, err := url.Parse(r.RepoURL)
	if err != nil {
		return "", fmt.Errorf("%w: repository URL does not parse", ErrInvalidRequest)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: repository URL must be http or https", ErrInvalidRequest)
	}
	if u.User != nil {
		// Never echo the URL: its user part may be a token.
		return "", fmt.Errorf("%w: repository URL must not carry credentials", ErrInvalidRequest)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: repository URL %q needs a host and no query", ErrInvalidRequest, r.RepoURL)
	}
	if r.ProjectID <= 0 {
		return "", fmt.Errorf("%w: project ID is required", ErrInvalidRequest)
	}
	if !fullSHA.MatchString(r.SHA) {
		return "", fmt.Errorf("%w: SHA %q is not a full commit name", ErrInvalidRequest, r.SHA)
	}
	if r.Dest == "" {
		return "", fmt.Errorf("%w: Dest is required", ErrInvalidRequest)
	}
	if strings.IndexFunc(r.Session, unicode.IsSpace) >= 0 {
		return "", fmt.Errorf("%w: session %q has white space", ErrInvalidRequest, r.Session)
	}
	if r.MR != nil {
		if !validBranchName(r.MR.TargetBranch) {
			return "", fmt.Errorf("%w: merge request target branch %q", ErrInvalidRequest, r.MR.TargetBranch)
		}
		if r.MR.SourceRef != "" && !strings.HasPrefix(r.MR.SourceRef, "refs/") {
			return "", fmt.Errorf("%w: merge request source ref %q must start with refs/", ErrInvalidRequest, r.MR.SourceRef)
		}
	}
	host := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' {
			return c
		}
		return '_'
	}, strings.ToLower(u.Host))
	return u.Scheme + "_" + host + "_" + strconv.FormatInt(r.ProjectID, 10), nil
}

// prepareDest makes sure Dest is an empty directory, creating it if
// needed; created tells whether a failed checkout should remove it.
func prepareDest(dest string) (created bool, err error) {
	entries, err := os.ReadDir(dest)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return false, fmt.Errorf("create work tree: %w", err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: Dest: %w", ErrInvalidRequest, err)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("%w: Dest %s is not empty", ErrInvalidRequest, dest)
	}
	return false, nil
}

// logf writes one line to the job log.
func logf(w io.Writer, format string, args ...any) {
	if w == nil {
		return
	}
	// The job log is best effort; a failing writer must not fail the job.
	_, _ = fmt.Fprintf(w, format+"\n", args...)
}

// Checkout puts the requested commit, or the merge request merged onto its
// target branch, into req.Dest: a standalone repository with the full
// history and all tags (partial: old file contents are fetched on demand
// from the forge, anonymously), whose .git/config names the forge URL and
// no credentials. The project's cached repository is locked while it is
// fetched into and copied from.
func (f *Fetcher) Checkout(ctx context.Context, req Request) (Result, error) {
	key, err := req.validate()
	if err != nil {
		return Result{}, err
	}
	dest, err := filepath.Abs(req.Dest)
	if err != nil {
		return Result{}, fmt.Errorf("%w: Dest: %w", ErrInvalidRequest, err)
	}
	req.Dest = dest
	created, err := prepareDest(dest)
	if err != nil {
		return Result{}, err
	}
	res, err := f.checkoutLocked(ctx, key, req)
	if err != nil {
		if created {
			err = errors.Join(err, os.RemoveAll(dest))
		}
		return Result{}, err
	}
	if err := f.enforceCap(ctx, key); err != nil {
		// The work tree is fine; an over-full cache is the operator's
		// concern.
		f.log.WarnContext(ctx, "gitfetch: cache cap", "err", err)
	}
	return res, nil
}

func (f *Fetcher) checkoutLocked(ctx context.Context, key string, req Request) (Result, error) {
	w := workTree{f: f, dir: req.Dest, cred: credential{repoURL: req.RepoURL, token: req.Token}}
	refs, targetSHA, err := f.fromCache(ctx, key, w, req)
	if err != nil {
		return Result{}, err
	}
	return w.finish(ctx, req, refs, targetSHA)
}

// fromCache updates the project's cached repository and copies it into the
// work tree, holding the repository's lock. It returns the cache's refs
// and the merge request's target commit.
func (f *Fetcher) fromCache(ctx context.Context, key string, w workTree, req Request) (refs map[string]string, targetSHA string, err error) {
	l, err := f.lock(ctx, key)
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if unlockErr := l.unlock(); err == nil {
			err = unlockErr
		}
	}()
	cache := cacheRepo{f: f, dir: f.repoPath(key), cred: w.cred}
	if refs, targetSHA, err = f.updateCache(ctx, key, &cache, req); err != nil {
		return nil, "", err
	}
	if err := w.create(req.SHA); err != nil {
		return nil, "", err
	}
	if err := cache.copyInto(ctx, w.objectsDir()); err != nil {
		return nil, "", fmt.Errorf("copy the repository into the work tree: %w", err)
	}
	return refs, targetSHA, nil
}
