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
// automatic gc, protocol.allow=never plus only http/https where a command
// may fetch from the forge (none for commands that must read only local
// objects), a stall timeout (http.lowSpeedTime) and a per-command
// timeout; a cancelled context kills git's process group.
//
// # The cache
//
// Each project (keyed by forge host and project ID) has a bare partial
// clone (never shallow: version detection needs all commits and tags)
// under CacheDir/repos, created with --filter=blob:none. A checkout takes
// the project's flock (between goroutines and processes) and fetches
// branches, tags and the merge request's refs/merge-requests/N/head in one
// request (GitLab keeps that ref for forks, so the fork need not be
// readable). Later fetches get only new objects, with the file contents of
// the new commits up to 256 KiB each (--filter=blob:limit=256k): the job
// builds one of them, and fetching those contents afterwards would cost a
// second round trip. Old history and large files stay on the forge; the
// file contents a checkout still lacks are fetched in one request by
// object name. After a checkout, least recently used repositories are
// evicted until the cache fits MaxCacheBytes. Checkouts that name the same
// Request.Session (the executor passes the run) share one fetch: later
// jobs of a run use the cache as the first one's fetch left it, so all
// targets build the same merge and the forge is asked once per run and
// worker. Every fetch keeps what it
// brings as one pack (fetch.unpackLimit=1), so loose objects do not pile up
// between repacks; the cache is repacked once it holds more than 256 loose
// objects or 24 packs; Prune also removes
// leftovers of interrupted work and repacks.
//
// # The work tree
//
// The sandbox must not see the cache, so the work tree is a standalone
// repository that upbuild assembles itself instead of cloning: it writes
// .git/config (origin is the forge URL, without credentials, so a lazy
// fetch of old file contents in the sandbox goes there, anonymously),
// gives it the cache's object files (packs with their .promisor marks, loose
// objects, the commit graph) as hard links, made read-only (0444) first,
// or copies where the file systems differ; never alternates, which would
// need the cache inside the sandbox. git never changes an object file in
// place, and the sandbox leaves files with several links owned by upbuild
// when it hands the work tree to the job's UID, so a job reads its
// project's cached objects and can change none of them
// (sandbox.TestEscapeWriteThroughAHardLink). It then writes packed-refs (the cache's branches as origin's,
// its tags) and HEAD from the cache's ref files. A merge request is merged
// with `git merge-tree --write-tree`, which needs no work tree; the merge
// commit object is written directly. `git read-tree --reset -u HEAD` then
// writes the index and the files. A checkout from a warm cache thus runs
// four git commands: the fetch, `rev-list --missing=print` for the
// missing file contents, merge-tree (merge requests only) and read-tree.
//
// BenchmarkCheckout measures the cost of the copy: for 5,000 commits
// touching 300 files, a checkout from a warm cache takes less than
// `git clone --shared` from the same cache followed by a checkout (which
// copies nothing), and half of what the earlier `git clone --no-local
// --filter=blob:none` copy took; all three are dominated by writing the
// 300 files. BenchmarkCheckoutMergeRequest is a bench/srpm job's checkout.
package gitfetch
