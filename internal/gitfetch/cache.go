package gitfetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockPollInterval is how often a waiting checkout retries a busy
// repository lock. flock cannot be interrupted by a context, so waiting is
// a loop of non-blocking attempts.
const lockPollInterval = 25 * time.Millisecond

// Suffixes of directories under tmp/, named after the repository key.
const (
	newSuffix     = ".new"      // a repository being created
	evictedSuffix = ".evicted-" // a repository being deleted
)

// repoLock is an exclusive flock on one repository's lock file. flock
// works between goroutines (each lock opens its own file) and between
// processes sharing the cache directory.
type repoLock struct{ file *os.File }

func (f *Fetcher) lockPath(key string) string { return filepath.Join(f.locksDir, key+".lock") }
func (f *Fetcher) repoPath(key string) string { return filepath.Join(f.reposDir, key+".git") }

// tryLock takes the lock of key if it is free.
func (f *Fetcher) tryLock(key string) (*repoLock, bool, error) {
	file, err := os.OpenFile(f.lockPath(key), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open repository lock: %w", err)
	}
	if err := syscall.Flock(int(file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		closeErr := file.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, closeErr
		}
		return nil, false, errors.Join(fmt.Errorf("lock repository: %w", err), closeErr)
	}
	return &repoLock{file: file}, true, nil
}

// lock waits for the lock of key and records the use for the LRU order.
func (f *Fetcher) lock(ctx context.Context, key string) (*repoLock, error) {
	for {
		l, ok, err := f.tryLock(key)
		if err != nil {
			return nil, err
		}
		if ok {
			now := time.Now()
			if err := os.Chtimes(l.file.Name(), now, now); err != nil {
				return nil, errors.Join(fmt.Errorf("mark repository use: %w", err), l.unlock())
			}
			return l, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the repository lock: %w", ctx.Err())
		case <-time.After(lockPollInterval):
		}
	}
}

// unlock releases the lock (closing the file drops the flock).
func (l *repoLock) unlock() error {
	if err := l.file.Close(); err != nil {
		return fmt.Errorf("release repository lock: %w", err)
	}
	return nil
}

// Usage returns the bytes the repository cache holds on disk, including
// repositories being created or deleted.
func (f *Fetcher) Usage() (int64, error) {
	var total int64
	for _, dir := range []string{f.reposDir, f.tmpDir} {
		n, err := dirSize(dir)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			// A repository evicted while we walk is no error.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure %s: %w", dir, err)
	}
	return total, nil
}

// cachedRepo is one repository in the cache.
type cachedRepo struct {
	key      string
	size     int64
	lastUsed time.Time
}

// cachedRepos lists the cache's repositories, least recently used first.
func (f *Fetcher) cachedRepos() ([]cachedRepo, error) {
	entries, err := os.ReadDir(f.reposDir)
	if err != nil {
		return nil, fmt.Errorf("list cached repositories: %w", err)
	}
	var repos []cachedRepo
	for _, e := range entries {
		key, ok := strings.CutSuffix(e.Name(), ".git")
		if !ok || !e.IsDir() {
			continue
		}
		size, err := dirSize(f.repoPath(key))
		if err != nil {
			return nil, err
		}
		r := cachedRepo{key: key, size: size}
		if info, err := os.Stat(f.lockPath(key)); err == nil {
			r.lastUsed = info.ModTime()
		}
		repos = append(repos, r)
	}
	sort.Slice(repos, func(i, j int) bool { return repos[i].lastUsed.Before(repos[j].lastUsed) })
	return repos, nil
}

// enforceCap evicts least recently used repositories until the cache is
// within MaxCacheBytes. keep (a key, or "") is never evicted: it is the
// repository the caller just used, and evicting it would only make its
// next job clone again. Repositories in use by a checkout are skipped.
func (f *Fetcher) enforceCap(ctx context.Context, keep string) error {
	if f.maxBytes <= 0 {
		return nil
	}
	total, err := f.Usage()
	if err != nil {
		return err
	}
	if total <= f.maxBytes {
		return nil
	}
	repos, err := f.cachedRepos()
	if err != nil {
		return err
	}
	for _, r := range repos {
		if total <= f.maxBytes {
			break
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("evict repositories: %w", err)
		}
		if r.key == keep {
			continue
		}
		l, ok, err := f.tryLock(r.key)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		err = f.removeRepo(r.key)
		if unlockErr := l.unlock(); err == nil {
			err = unlockErr
		}
		if err != nil {
			return err
		}
		total -= r.size
		f.log.InfoContext(ctx, "gitfetch: evicted cached repository", "repo", r.key, "bytes", r.size, "last_used", r.lastUsed)
	}
	return nil
}

// removeRepo deletes a cached repository; the caller holds its lock. The
// rename makes the removal atomic for readers: a crash halfway leaves a
// directory under tmp/ for Prune, never a damaged repository.
func (f *Fetcher) removeRepo(key string) error {
	trash := filepath.Join(f.tmpDir, key+evictedSuffix+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := os.Rename(f.repoPath(key), trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("evict repository: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("evict repository: %w", err)
	}
	return nil
}

// Prune cleans the cache: it removes what interrupted checkouts and
// evictions left under tmp/, evicts least recently used repositories
// until the cache is within MaxCacheBytes, and repacks the repositories
// that stay (each fetch adds a pack). Repositories in use are left alone.
func (f *Fetcher) Prune(ctx context.Context) error {
	entries, err := os.ReadDir(f.tmpDir)
	if err != nil {
		return fmt.Errorf("list cache leftovers: %w", err)
	}
	for _, e := range entries {
		key, _, _ := strings.Cut(e.Name(), evictedSuffix)
		key = strings.TrimSuffix(key, newSuffix)
		l, ok, err := f.tryLock(key)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		err = os.RemoveAll(filepath.Join(f.tmpDir, e.Name()))
		if unlockErr := l.unlock(); err == nil {
			err = unlockErr
		}
		if err != nil {
			return fmt.Errorf("remove cache leftover: %w", err)
		}
	}
	if err := f.enforceCap(ctx, ""); err != nil {
		return err
	}
	repos, err := f.cachedRepos()
	if err != nil {
		return err
	}
	for _, r := range repos {
		if err := f.repack(ctx, r.key); err != nil {
			return err
		}
	}
	return nil
}

// repack runs git gc on one cached repository, unless a checkout uses it.
// The usage time is left as it was: maintenance is not a use.
func (f *Fetcher) repack(ctx context.Context, key string) error {
	l, ok, err := f.tryLock(key)
	if err != nil || !ok {
		return err
	}
	_, err = f.run(ctx, gitCmd{dir: f.repoPath(key), args: []string{"gc", "--quiet", "--prune=now"}})
	if unlockErr := l.unlock(); err == nil {
		err = unlockErr
	}
	if err != nil {
		return fmt.Errorf("repack cached repository %s: %w", key, err)
	}
	return nil
}
