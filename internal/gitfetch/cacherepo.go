package gitfetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cacheRepo is one project's bare partial clone in the cache. Its origin
// is the forge URL without credentials; the token is added to each fetch
// through the environment.
type cacheRepo struct {
	f    *Fetcher
	dir  string
	cred credential
}

// promisorConfig makes a repository a blob:none partial clone of origin at
// url: commits and trees are fetched in full, file contents on demand.
func promisorConfig(url string) []gitConfig {
	return []gitConfig{
		{"core.repositoryformatversion", "1"},
		{"extensions.partialClone", "origin"},
		{"remote.origin.url", url},
		{"remote.origin.promisor", "true"},
		{"remote.origin.partialclonefilter", "blob:none"},
	}
}

// setConfig writes entries to the repository's own config file. It appends
// them in git's config syntax in one write instead of running `git config`
// once per entry (a dozen processes per checkout); for a key that exists,
// the appended value is the one git uses, as the last one wins.
func (f *Fetcher) setConfig(_ context.Context, dir string, entries []gitConfig) error {
	path := filepath.Join(dir, ".git", "config")
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		path = filepath.Join(dir, "config") // a bare repository
	}
	text, err := configText(entries)
	if err != nil {
		return err
	}
	cf, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("configure repository: %w", err)
	}
	if _, err := cf.WriteString(text); err != nil {
		cf.Close()
		return fmt.Errorf("configure repository: %w", err)
	}
	if err := cf.Close(); err != nil {
		return fmt.Errorf("configure repository: %w", err)
	}
	return nil
}

// configText is entries in git's config file syntax, a section per entry.
func configText(entries []gitConfig) (string, error) {
	var b strings.Builder
	for _, e := range entries {
		section, key, ok := splitConfigKey(e.key)
		if !ok || strings.ContainsAny(e.value, "\n\x00") {
			return "", fmt.Errorf("configure repository: cannot write %s", e.key)
		}
		value := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(e.value)
		fmt.Fprintf(&b, "%s\n\t%s = \"%s\"\n", section, key, value)
	}
	return b.String(), nil
}

// originURL reads remote.origin.url from a repository's config file,
// which upbuild wrote (setConfig) or git did (replaceConfig); "" when
// it is not there or not in either form.
func originURL(configPath string) string {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return ""
	}
	inOrigin, url := false, ""
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			inOrigin = line == `[remote "origin"]`
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !inOrigin || !ok || strings.TrimSpace(key) != "url" {
			continue
		}
		value = strings.TrimSpace(value)
		if unquoted, err := strconv.Unquote(value); err == nil {
			value = unquoted
		}
		url = value // the last one wins, as in git
	}
	return url
}

// replaceConfig sets one key that may already exist, replacing its value.
func (f *Fetcher) replaceConfig(ctx context.Context, dir, key, value string) error {
	if _, err := f.run(ctx, gitCmd{dir: dir, args: []string{"config", "--replace-all", key, value}}); err != nil {
		return fmt.Errorf("configure repository: %w", err)
	}
	return nil
}

// splitConfigKey turns "remote.origin.url" into `[remote "origin"]` and
// "url", and "core.bare" into "[core]" and "bare".
func splitConfigKey(key string) (section, name string, ok bool) {
	first := strings.Index(key, ".")
	last := strings.LastIndex(key, ".")
	if first <= 0 || last == len(key)-1 {
		return "", "", false
	}
	name = key[last+1:]
	if first == last {
		return "[" + key[:first] + "]", name, true
	}
	sub := key[first+1 : last]
	if strings.ContainsAny(sub, "\"\\\n") {
		return "", "", false
	}
	return "[" + key[:first] + " \"" + sub + "\"]", name, true
}

// local runs a command that must not touch the network: in a partial
// clone a missing object is fetched lazily, and here it must not be.
func (c *cacheRepo) local(ctx context.Context, args ...string) (string, error) {
	return c.f.run(ctx, gitCmd{dir: c.dir, transport: noTransport, args: args})
}

// Filters of fetches from the forge. The cache is created without any
// file contents; later fetches bring those of the new commits, up to a
// size, because the job that asked for the fetch nearly always builds one
// of them, and asking for them afterwards costs a second round trip to the
// forge. Old history, and large files, stay on the forge.
const (
	createFilter = "blob:none"
	updateFilter = "blob:limit=256k"
)

// fetch runs git fetch from the forge with the token.
func (c *cacheRepo) fetch(ctx context.Context, dir, filter string, refspecs ...string) error {
	args := append([]string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance",
		"--filter=" + filter, "--prune", "origin"}, refspecs...)
	_, err := c.f.run(ctx, gitCmd{dir: dir, transport: forgeTransport, cred: c.cred, config: keepPacks(), args: args})
	return c.fetchError(err)
}

func (c *cacheRepo) fetchError(err error) error {
	switch {
	case err == nil:
		return nil
	case accessDenied(err):
		return fmt.Errorf("fetch from the forge: %w: %w", ErrAccessDenied, err)
	default:
		return fmt.Errorf("fetch from the forge: %w", err)
	}
}

// branchesAndTags is what every fetch into the cache brings up to date.
func branchesAndTags() []string {
	return []string{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}
}

// fetchRefs brings the branches and tags up to date, and the merge
// request's ref (a fork's commit is only there) in the same request. Should
// the forge not have that ref, the branches and tags are fetched alone.
func (f *Fetcher) fetchRefs(ctx context.Context, key, dir, filter string, c *cacheRepo, req Request) error {
	if req.MR != nil && req.MR.SourceRef != "" {
		err := c.fetch(ctx, dir, filter, append(branchesAndTags(), "+"+req.MR.SourceRef+":"+req.MR.SourceRef)...)
		if err == nil || errors.Is(err, ErrAccessDenied) || ctx.Err() != nil {
			return err
		}
		f.log.InfoContext(ctx, "gitfetch: merge request ref not fetched", "repo", key, "ref", req.MR.SourceRef, "err", err)
	}
	return c.fetch(ctx, dir, filter, branchesAndTags()...)
}

// has tells whether the commit is in the repository, without fetching it.
func (c *cacheRepo) has(ctx context.Context, sha string) bool {
	_, err := c.local(ctx, "cat-file", "-e", sha+"^{commit}")
	return err == nil
}

// updateCache creates or updates the project's cached repository so that
// it holds every branch and tag, the merge request's ref and the files of
// the commits the work tree is made of. It returns the cache's refs and
// the merge request's target commit.
func (f *Fetcher) updateCache(ctx context.Context, key string, c *cacheRepo, req Request) (map[string]string, string, error) {
	_, err := os.Stat(c.dir)
	sessionTarget, reused := c.fetchedFor(req.Session)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		logf(req.Log, "Fetching %s (not cached on this worker yet)", req.RepoURL)
		f.log.InfoContext(ctx, "gitfetch: cache miss", "repo", key)
		if err := f.createCache(ctx, key, c, req); err != nil {
			return nil, "", err
		}
	case err != nil:
		return nil, "", fmt.Errorf("cached repository: %w", err)
	case reused:
		logf(req.Log, "Using this worker's cached copy of %s, fetched for this run", req.RepoURL)
	default:
		logf(req.Log, "Fetching %s (updating this worker's cached copy)", req.RepoURL)
		// The project may have moved since; the cache key is its ID.
		if originURL(filepath.Join(c.dir, "config")) != req.RepoURL {
			if err := f.replaceConfig(ctx, c.dir, "remote.origin.url", req.RepoURL); err != nil {
				return nil, "", err
			}
		}
		if err := f.fetchRefs(ctx, key, c.dir, updateFilter, c, req); err != nil {
			return nil, "", err
		}
	}
	refs, err := readRefs(c.dir)
	if err != nil {
		return nil, "", fmt.Errorf("cached repository: %w", err)
	}
	var targetSHA string
	if req.MR != nil {
		// A later run's fetch may have moved the branch since; the run
		// merges onto the head its first job saw.
		if targetSHA = refs["refs/heads/"+req.MR.TargetBranch]; reused && sessionTarget != "" && sessionTarget != targetSHA &&
			c.has(ctx, sessionTarget) {
			targetSHA = sessionTarget
		}
		if targetSHA == "" {
			return nil, "", fmt.Errorf("%w: target branch %q", ErrCommitNotFound, req.MR.TargetBranch)
		}
	}
	if !reused {
		if err := c.rememberSession(req.Session, targetSHA); err != nil {
			return nil, "", err
		}
	}
	missing, err := c.missingBlobs(ctx, req.SHA, targetSHA)
	if err != nil {
		if ctx.Err() != nil || c.has(ctx, req.SHA) {
			return nil, "", err
		}
		// Not on any branch or tag any more (a force-push since): ask for
		// the commit itself, which protocol v2 allows.
		if err := c.fetch(ctx, c.dir, createFilter, req.SHA); err != nil {
			if errors.Is(err, ErrAccessDenied) || ctx.Err() != nil {
				return nil, "", err
			}
			return nil, "", fmt.Errorf("%w: %s: %w", ErrCommitNotFound, req.SHA, err)
		}
		if !c.has(ctx, req.SHA) {
			return nil, "", fmt.Errorf("%w: %s", ErrCommitNotFound, req.SHA)
		}
		if missing, err = c.missingBlobs(ctx, req.SHA, targetSHA); err != nil {
			return nil, "", err
		}
	}
	if err := c.fetchBlobs(ctx, missing); err != nil {
		return nil, "", err
	}
	return refs, targetSHA, nil
}

// createCache makes a new cached repository under tmp/ and moves it into
// place once its first fetch succeeded, so the cache never holds a
// repository that was never filled.
func (f *Fetcher) createCache(ctx context.Context, key string, c *cacheRepo, req Request) error {
	building := filepath.Join(f.tmpDir, key+newSuffix)
	if err := os.RemoveAll(building); err != nil {
		return fmt.Errorf("clear unfinished cached repository: %w", err)
	}
	if _, err := f.run(ctx, gitCmd{args: []string{"init", "--quiet", "--bare", building}}); err != nil {
		return fmt.Errorf("create cached repository: %w", err)
	}
	config := append(promisorConfig(c.cred.repoURL), gitConfig{"core.logAllRefUpdates", "false"})
	if err := f.setConfig(ctx, building, config); err != nil {
		return err
	}
	if err := f.fetchRefs(ctx, key, building, createFilter, c, req); err != nil {
		return err
	}
	if err := os.Rename(building, c.dir); err != nil {
		return fmt.Errorf("store cached repository: %w", err)
	}
	return nil
}

// sessionsFile lists, newest last, the sessions the cached repository was
// fetched for (Request.Session), one a line with the merge request target
// head that fetch saw ("-" for none); maxSessions are kept.
const (
	sessionsFile = "upbuild-sessions"
	maxSessions  = 64
)

// fetchedFor reports whether the repository was fetched for session, and
// the target head recorded then. It is read and written under the
// repository's lock.
func (c *cacheRepo) fetchedFor(session string) (target string, ok bool) {
	if session == "" {
		return "", false
	}
	data, err := os.ReadFile(filepath.Join(c.dir, sessionsFile))
	if err != nil {
		return "", false
	}
	for line := range strings.Lines(string(data)) {
		name, target, _ := strings.Cut(strings.TrimSpace(line), " ")
		if name == session {
			if target == "-" {
				target = ""
			}
			return target, true
		}
	}
	return "", false
}

// rememberSession records that the repository was just fetched for
// session, with the merge request target head it saw.
func (c *cacheRepo) rememberSession(session, target string) error {
	if session == "" {
		return nil
	}
	if target == "" {
		target = "-"
	}
	path := filepath.Join(c.dir, sessionsFile)
	var lines []string
	if data, err := os.ReadFile(path); err == nil {
		for line := range strings.Lines(string(data)) {
			if name, _, _ := strings.Cut(strings.TrimSpace(line), " "); name != "" && name != session {
				lines = append(lines, strings.TrimSpace(line))
			}
		}
	}
	lines = append(lines, session+" "+target)
	if len(lines) > maxSessions {
		lines = lines[len(lines)-maxSessions:]
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("record the fetch: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("record the fetch: %w", err)
	}
	return nil
}

// missingBlobs lists the file contents of the commits' trees that the
// cache does not hold yet. It fails when a commit is not there.
func (c *cacheRepo) missingBlobs(ctx context.Context, commits ...string) ([]string, error) {
	args := []string{"rev-list", "--objects", "--missing=print"}
	for _, commit := range commits {
		if commit != "" {
			args = append(args, commit+"^{tree}")
		}
	}
	out, err := c.local(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("list file contents to fetch: %w", err)
	}
	var missing []string
	for line := range strings.Lines(out) {
		if oid, ok := strings.CutPrefix(strings.TrimSpace(line), "?"); ok {
			missing = append(missing, oid)
		}
	}
	return missing, nil
}

// fetchBlobs brings file contents into the cache: those of the commit and,
// for a merge, of its target. They are fetched here, with the token, so
// that the work tree can copy them from the cache. A merge that needs the
// merge base's version of a file changed on both sides fetches it then.
func (c *cacheRepo) fetchBlobs(ctx context.Context, oids []string) error {
	if len(oids) == 0 {
		return nil
	}
	// The same request git makes for a lazy fetch: these objects, no
	// negotiation, no tags.
	_, err := c.f.run(ctx, gitCmd{
		dir: c.dir, transport: forgeTransport, cred: c.cred,
		stdin:  strings.NewReader(strings.Join(oids, "\n") + "\n"),
		config: append(keepPacks(), gitConfig{"fetch.negotiationAlgorithm", "noop"}),
		args: []string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance",
			"--recurse-submodules=no", "--filter=blob:none", "--stdin", "origin"},
	})
	return c.fetchError(err)
}

// keepPacks makes a fetch store what it receives as one pack, however few
// objects it holds, instead of unpacking them into loose objects: every
// checkout links or copies the cache's object files, and one pack is three
// or four files where a merge request's few objects loose are as many files
// and directories, hundreds between two repacks.
func keepPacks() []gitConfig {
	return []gitConfig{{"fetch.unpackLimit", "1"}}
}

// copyInto copies the cache's objects into a work tree's object store and
// repacks the cache once the copies would be of many small files.
func (c *cacheRepo) copyInto(ctx context.Context, objectsDir string) error {
	counts, err := copyObjects(filepath.Join(c.dir, "objects"), objectsDir)
	if err != nil {
		return err
	}
	if counts.needRepack() {
		// A fetch marks its pack .keep until its refs are written; one
		// that was killed in between leaves the mark, and gc would then
		// keep that pack apart for ever. No fetch runs now: the
		// repository is locked.
		keeps, err := filepath.Glob(filepath.Join(c.dir, "objects", "pack", "pack-*.keep"))
		if err != nil {
			return fmt.Errorf("repack the cached repository: %w", err)
		}
		for _, k := range keeps {
			if err := os.Remove(k); err != nil {
				return fmt.Errorf("repack the cached repository: %w", err)
			}
		}
		if _, err := c.local(ctx, "gc", "--quiet", "--prune=now"); err != nil {
			return fmt.Errorf("repack the cached repository: %w", err)
		}
	}
	return nil
}
