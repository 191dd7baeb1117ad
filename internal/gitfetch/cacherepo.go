package gitfetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	var b strings.Builder
	for _, e := range entries {
		section, key, ok := splitConfigKey(e.key)
		if !ok || strings.ContainsAny(e.value, "\n\x00") {
			return fmt.Errorf("configure repository: cannot write %s", e.key)
		}
		value := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(e.value)
		fmt.Fprintf(&b, "%s\n\t%s = \"%s\"\n", section, key, value)
	}
	cf, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("configure repository: %w", err)
	}
	if _, err := cf.WriteString(b.String()); err != nil {
		cf.Close()
		return fmt.Errorf("configure repository: %w", err)
	}
	if err := cf.Close(); err != nil {
		return fmt.Errorf("configure repository: %w", err)
	}
	return nil
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

// fetch runs git fetch from the forge with the token.
func (c *cacheRepo) fetch(ctx context.Context, dir string, refspecs ...string) error {
	args := append([]string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance",
		"--filter=blob:none", "--prune", "origin"}, refspecs...)
	_, err := c.f.run(ctx, gitCmd{dir: dir, transport: forgeTransport, cred: c.cred, args: args})
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

// has tells whether the commit is in the repository, without fetching it.
func (c *cacheRepo) has(ctx context.Context, sha string) bool {
	_, err := c.local(ctx, "cat-file", "-e", sha+"^{commit}")
	return err == nil
}

// revParse resolves a ref locally.
func (c *cacheRepo) revParse(ctx context.Context, ref string) (string, error) {
	out, err := c.local(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// updateCache creates or updates the project's cached repository so that
// it holds every branch and tag and the requested commit.
func (f *Fetcher) updateCache(ctx context.Context, key string, c *cacheRepo, req Request) error {
	_, err := os.Stat(c.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		logf(req.Log, "Fetching %s (not cached on this worker yet)", req.RepoURL)
		f.log.InfoContext(ctx, "gitfetch: cache miss", "repo", key)
		if err := f.createCache(ctx, key, c); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("cached repository: %w", err)
	default:
		logf(req.Log, "Fetching %s (updating this worker's cached copy)", req.RepoURL)
		// The project may have moved since; the cache key is its ID.
		if url, err := c.local(ctx, "config", "remote.origin.url"); err != nil || strings.TrimSpace(url) != req.RepoURL {
			if err := f.replaceConfig(ctx, c.dir, "remote.origin.url", req.RepoURL); err != nil {
				return err
			}
		}
		if err := c.fetch(ctx, c.dir, branchesAndTags()...); err != nil {
			return err
		}
	}
	if c.has(ctx, req.SHA) {
		return nil
	}
	if req.MR != nil && req.MR.SourceRef != "" {
		// A fork's commit: the target project keeps it under the merge
		// request's ref, so the fork need not be readable.
		if err := c.fetch(ctx, c.dir, "+"+req.MR.SourceRef+":"+req.MR.SourceRef); err != nil && !errors.Is(err, context.Canceled) {
			f.log.InfoContext(ctx, "gitfetch: merge request ref not fetched", "repo", key, "ref", req.MR.SourceRef, "err", err)
		}
		if c.has(ctx, req.SHA) {
			return nil
		}
	}
	// Not on any branch or tag any more (a force-push since): ask for the
	// commit itself, which protocol v2 allows.
	if err := c.fetch(ctx, c.dir, req.SHA); err != nil {
		if errors.Is(err, ErrAccessDenied) || ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%w: %s: %w", ErrCommitNotFound, req.SHA, err)
	}
	if !c.has(ctx, req.SHA) {
		return fmt.Errorf("%w: %s", ErrCommitNotFound, req.SHA)
	}
	return nil
}

// createCache makes a new cached repository under tmp/ and moves it into
// place once its first fetch succeeded, so the cache never holds a
// repository that was never filled.
func (f *Fetcher) createCache(ctx context.Context, key string, c *cacheRepo) error {
	building := filepath.Join(f.tmpDir, key+newSuffix)
	if err := os.RemoveAll(building); err != nil {
		return fmt.Errorf("clear unfinished cached repository: %w", err)
	}
	if _, err := f.run(ctx, gitCmd{args: []string{"init", "--quiet", "--bare", building}}); err != nil {
		return fmt.Errorf("create cached repository: %w", err)
	}
	config := append(promisorConfig(c.cred.repoURL),
		// Work trees are made by fetching from here with a filter.
		gitConfig{"uploadpack.allowFilter", "true"},
		gitConfig{"core.logAllRefUpdates", "false"},
	)
	if err := f.setConfig(ctx, building, config); err != nil {
		return err
	}
	if err := c.fetch(ctx, building, branchesAndTags()...); err != nil {
		return err
	}
	if err := os.Rename(building, c.dir); err != nil {
		return fmt.Errorf("store cached repository: %w", err)
	}
	return nil
}

// fetchBlobs brings into the cache the file contents the work tree needs:
// the trees of the commit, and for a merge those of the target and the
// merge bases too. They are fetched here, with the token, so that the
// work tree can then take them from the cache without one.
func (c *cacheRepo) fetchBlobs(ctx context.Context, sha, targetSHA string) error {
	commits := []string{sha}
	if targetSHA != "" {
		commits = append(commits, targetSHA)
		bases, err := c.local(ctx, "merge-base", "--all", targetSHA, sha)
		// No merge base (unrelated histories) exits 1; the merge will say so.
		if err != nil && exitCode(err) != 1 {
			return fmt.Errorf("find merge base: %w", err)
		}
		commits = append(commits, strings.Fields(bases)...)
	}
	args := []string{"rev-list", "--objects", "--missing=print"}
	for _, commit := range commits {
		args = append(args, commit+"^{tree}")
	}
	out, err := c.local(ctx, args...)
	if err != nil {
		return fmt.Errorf("list file contents to fetch: %w", err)
	}
	var missing strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if oid, ok := strings.CutPrefix(line, "?"); ok {
			missing.WriteString(oid + "\n")
		}
	}
	if missing.Len() == 0 {
		return nil
	}
	// The same request git makes for a lazy fetch: these objects, no
	// negotiation, no tags.
	_, err = c.f.run(ctx, gitCmd{
		dir: c.dir, transport: forgeTransport, cred: c.cred,
		stdin:  strings.NewReader(missing.String()),
		config: []gitConfig{{"fetch.negotiationAlgorithm", "noop"}},
		args: []string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance",
			"--recurse-submodules=no", "--filter=blob:none", "--stdin", "origin"},
	})
	return c.fetchError(err)
}
