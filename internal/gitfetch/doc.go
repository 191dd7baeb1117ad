// Package gitfetch gets a project's code for a job: it fetches the project
// from the forge over git HTTP into a per-worker cache of repositories and
// makes the job's own work tree from there, with the merge request merged
// onto its target branch as Packit does.
//
// # The token
//
// The bot token authenticates the fetch from the forge and nothing else.
// It reaches git as an `http.<repository URL>.extraHeader` setting
// ("Authorization: Basic base64(oauth2:TOKEN)") passed through
// GIT_CONFIG_COUNT/GIT_CONFIG_KEY_n/GIT_CONFIG_VALUE_n in the environment
// of that one git process (and the helpers it starts). It is never in a
// command line (ps shows argv, and /proc/PID/environ only to the same
// user), never in a URL, never in any .git/config, and never written to a
// file. The alternative, GIT_ASKPASS with a helper, needs an executable
// on disk and costs a 401 round trip per connection for the same result.
// The header is scoped to the repository URL and http.followRedirects is
// off, so a redirect cannot carry it to another host. git's stderr is
// redacted of the token (plain and base64) before it goes into an error.
//
// Every git command runs with an empty HOME, GIT_CONFIG_NOSYSTEM=1,
// GIT_CONFIG_GLOBAL=/dev/null, GIT_TERMINAL_PROMPT=0, no hooks, no
// automatic gc, protocol.allow=never plus only http/https (forge fetches)
// or only file (work tree from cache), a stall timeout (http.lowSpeedTime)
// and a per-command timeout; a cancelled context kills git's process group.
//
// # The cache
//
// Each project (keyed by forge host and project ID) has a bare partial
// clone (--filter=blob:none, never shallow: version detection needs all
// commits and tags) under CacheDir/repos. A checkout takes the project's
// flock (between goroutines and processes), fetches branches and tags
// (later fetches get only new objects), the merge request's
// refs/merge-requests/N/head if the commit is not there yet (GitLab keeps
// it for forks, so the fork need not be readable), then the file contents
// of the commits the job needs. After a checkout, least recently used
// repositories are evicted until the cache fits MaxCacheBytes; Prune also
// removes leftovers of interrupted work and repacks.
//
// # The work tree
//
// The sandbox must not see the cache, so the work tree is a standalone
// repository: `git init` plus a filtered fetch from the cache over the
// file transport (as `git clone --no-local --filter=blob:none` would do),
// then checkout, which pulls the checked-out file contents from the cache.
// It copies every commit, tree and tag, so it does not depend on the cache
// afterwards: `git clone --shared` or `git worktree` would point into the
// cache, and a plain local clone hard-links the cache's object files.
// Finally its origin is set to the forge URL (without credentials), so a
// lazy fetch of old file contents inside the sandbox goes to the forge,
// anonymously.
//
// BenchmarkCheckout measures the cost of the copy. On the 2-core dev
// machine, for 5,000 commits touching 300 files, a checkout from a warm
// cache takes about 0.41 s, nearly all of it the copy of commits and
// trees (git clone --no-local --filter=blob:none alone: 0.41 s), where
// git clone --shared takes 0.08 s. The copy grows with the history; if it
// matters for very large projects, copying the cache's pack files (a
// plain file copy, no hard links) before the fetch would make it a disk
// copy.
package gitfetch
