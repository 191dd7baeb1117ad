package gitfetch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/gitfetch"
	"upbuild.dev/upbuild/internal/gitlabsim"
)

func TestCheckoutOfAPushHasHistoryTagsAndNoCredentials(t *testing.T) {
	w := newWorld(t)
	// A git that records its command lines, to check what ps would show.
	argLog := filepath.Join(t.TempDir(), "argv.log")
	realGit := must[string](t)(exec.LookPath("git"))
	wrapper := filepath.Join(t.TempDir(), "git")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$*\" >> %q\nexec %q \"$@\"\n", argLog, realGit)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	var logs bytes.Buffer
	f := newFetcher(t, gitfetch.Options{CacheDir: cacheDir, GitPath: wrapper,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	var jobLog bytes.Buffer
	req := w.request(t, &jobLog)

	res, err := f.Checkout(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA != req.SHA || res.MergedSHA != "" || res.MergeFellBack {
		t.Errorf("result = %+v", res)
	}
	dest := req.Dest
	if got := git(t, dest, "rev-parse", "HEAD"); got != req.SHA {
		t.Errorf("HEAD = %s, want %s", got, req.SHA)
	}
	if got := git(t, dest, "symbolic-ref", "--short", "HEAD"); got != "main" {
		t.Errorf("branch = %s, want main", got)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "docs", "README.md")); err != nil || string(b) != "# docs\n" {
		t.Errorf("docs/README.md = %q, %v", b, err)
	}
	if got := git(t, dest, "status", "--porcelain"); got != "" {
		t.Errorf("work tree is not clean: %s", got)
	}
	// Version detection: full history and every tag, not shallow.
	upstream := w.project.RepoDir
	if got, want := git(t, dest, "rev-list", "--count", "HEAD"), git(t, upstream, "rev-list", "--count", req.SHA); got != want {
		t.Errorf("rev-list --count = %s, want %s", got, want)
	}
	if got, want := git(t, dest, "describe", "--tags"), git(t, upstream, "describe", "--tags", req.SHA); got != want {
		t.Errorf("describe --tags = %s, want %s", got, want)
	}
	if got := git(t, dest, "rev-parse", "--is-shallow-repository"); got != "false" {
		t.Errorf("is-shallow-repository = %s", got)
	}
	if got := git(t, dest, "rev-parse", "v1.0^{commit}"); got != w.tagged {
		t.Errorf("v1.0 = %s, want %s", got, w.tagged)
	}
	// The work tree is standalone and names only the forge.
	if got := git(t, dest, "remote", "get-url", "origin"); got != w.project.HTTPURLToRepo {
		t.Errorf("origin = %s, want %s", got, w.project.HTTPURLToRepo)
	}
	if _, err := os.Stat(filepath.Join(dest, ".git", "objects", "info", "alternates")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work tree has alternates: %v", err)
	}
	config := must[[]byte](t)(os.ReadFile(filepath.Join(dest, ".git", "config")))
	if bytes.Contains(config, []byte(cacheDir)) {
		t.Errorf("work tree config names the cache:\n%s", config)
	}
	if got := git(t, dest, "config", "user.email"); got != "upbuild@localhost" {
		t.Errorf("user.email = %s", got)
	}
	if !strings.Contains(jobLog.String(), "Checked out "+req.SHA[:12]) {
		t.Errorf("job log = %q", jobLog.String())
	}
	// The token appears nowhere: files, logs, command lines.
	assertNoSecretInTree(t, dest, req.Token)
	assertNoSecretInTree(t, cacheDir, req.Token)
	assertNoSecret(t, "job log", jobLog.String(), req.Token)
	assertNoSecret(t, "operator log", logs.String(), req.Token)
	argv := string(must[[]byte](t)(os.ReadFile(argLog)))
	if !strings.Contains(argv, "fetch") {
		t.Errorf("the wrapped git was not used: %s", argv)
	}
	assertNoSecret(t, "git command lines", argv, req.Token)

	// Once the cache is gone, the work tree still works.
	if err := os.RemoveAll(cacheDir); err != nil {
		t.Fatal(err)
	}
	git(t, dest, "log", "--stat", "-1")
	git(t, dest, "archive", "--output", filepath.Join(t.TempDir(), "src.tar"), "HEAD")
}

func TestWrongOrMissingTokenIsAccessDeniedWithoutTheToken(t *testing.T) {
	w := newWorld(t)
	f := newFetcher(t, gitfetch.Options{})
	for name, token := range map[string]string{"wrong": "glpat-not-a-real-token-0123456789", "none": ""} {
		t.Run(name, func(t *testing.T) {
			var jobLog bytes.Buffer
			req := w.request(t, &jobLog)
			req.Token = token
			_, err := f.Checkout(context.Background(), req)
			if !errors.Is(err, gitfetch.ErrAccessDenied) {
				t.Fatalf("err = %v, want ErrAccessDenied", err)
			}
			if token != "" {
				assertNoSecret(t, "error", err.Error(), token)
				assertNoSecret(t, "job log", jobLog.String(), token)
			}
			if _, statErr := os.Stat(req.Dest); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("a failed checkout left its work tree: %v", statErr)
			}
		})
	}
}

func TestSecondCheckoutFetchesOnlyNewObjects(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	f := newFetcher(t, gitfetch.Options{})
	var firstLog bytes.Buffer
	_, beforeBytes := w.traffic.snapshot()
	if _, err := f.Checkout(ctx, w.request(t, &firstLog)); err != nil {
		t.Fatal(err)
	}
	_, afterFirst := w.traffic.snapshot()
	first := afterFirst - beforeBytes

	change := must[string](t)(w.sim.PushCommits(ctx, w.project.ID, "main", "alice", gitlabsim.CommitSpec{
		Message: "Bump", Changes: []gitlabsim.FileChange{{Path: "secret.spec", Content: "Name: secret\nVersion: 1.1\n"}},
	}))
	var secondLog bytes.Buffer
	req := w.request(t, &secondLog)
	if req.SHA != change {
		t.Fatalf("head = %s, want the new commit %s", req.SHA, change)
	}
	if _, err := f.Checkout(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, afterSecond := w.traffic.snapshot()
	second := afterSecond - afterFirst
	t.Logf("first %d bytes, second %d bytes", first, second)
	if second >= first {
		t.Errorf("second checkout transferred %d bytes, the first %d: the cache was not reused", second, first)
	}
	if !strings.Contains(firstLog.String(), "not cached") || !strings.Contains(secondLog.String(), "updating") {
		t.Errorf("job logs = %q, %q", firstLog.String(), secondLog.String())
	}
	if b := must[[]byte](t)(os.ReadFile(filepath.Join(req.Dest, "secret.spec"))); string(b) != "Name: secret\nVersion: 1.1\n" {
		t.Errorf("secret.spec = %q", b)
	}
}

func TestCheckoutOfATagIsDetached(t *testing.T) {
	w := newWorld(t)
	f := newFetcher(t, gitfetch.Options{})
	req := w.request(t, nil)
	req.SHA, req.Ref = w.tagged, "v1.0"
	if _, err := f.Checkout(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if out, err := gitErr(req.Dest, "symbolic-ref", "HEAD"); err == nil {
		t.Errorf("HEAD is on a branch: %s", out)
	}
	if got := git(t, req.Dest, "describe", "--tags", "--exact-match"); got != "v1.0" {
		t.Errorf("describe = %s, want v1.0", got)
	}
}

func TestMergeRequestIsMergedOntoItsTarget(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	source, mr := w.patchMR(t)
	target := must[string](t)(w.sim.PushCommits(ctx, w.project.ID, "main", "alice", gitlabsim.CommitSpec{
		Message: "Meanwhile on main", Changes: []gitlabsim.FileChange{{Path: "NEWS", Content: "news\n"}},
	}))
	f := newFetcher(t, gitfetch.Options{})
	var jobLog bytes.Buffer
	req := w.request(t, &jobLog)
	req.SHA, req.Ref = source, "feature"
	req.MR = &gitfetch.MRMerge{TargetBranch: "main", SourceRef: fmt.Sprintf("refs/merge-requests/%d/head", mr.IID)}
	res, err := f.Checkout(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.MergeFellBack || res.MergedSHA == "" || res.TargetSHA != target || res.SHA != source {
		t.Fatalf("result = %+v", res)
	}
	if got := git(t, req.Dest, "rev-parse", "HEAD"); got != res.MergedSHA {
		t.Errorf("HEAD = %s, want the merge %s", got, res.MergedSHA)
	}
	if got := git(t, req.Dest, "log", "-1", "--format=%P"); got != target+" "+source {
		t.Errorf("merge parents = %s, want %s %s", got, target, source)
	}
	for file, want := range map[string]string{"fix.patch": "patch\n", "NEWS": "news\n", "secret.spec": "Name: secret\nVersion: 1.0\n"} {
		if b, err := os.ReadFile(filepath.Join(req.Dest, file)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", file, b, err, want)
		}
	}
	if got := git(t, req.Dest, "log", "-1", "--format=%an <%ae>"); got != "upbuild <upbuild@localhost>" {
		t.Errorf("merge author = %s", got)
	}
	if !strings.Contains(jobLog.String(), "Merged "+source[:12]+" onto main") {
		t.Errorf("job log = %q", jobLog.String())
	}
}

func TestConflictingMergeRequestFallsBackToItsSourceCommit(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	source := must[string](t)(w.sim.PushCommits(ctx, w.project.ID, "feature", "alice", gitlabsim.CommitSpec{
		Message: "Version 2", Changes: []gitlabsim.FileChange{{Path: "secret.spec", Content: "Name: secret\nVersion: 2.0\n"}},
	}))
	must[string](t)(w.sim.PushCommits(ctx, w.project.ID, "main", "alice", gitlabsim.CommitSpec{
		Message: "Version 1.5", Changes: []gitlabsim.FileChange{{Path: "secret.spec", Content: "Name: secret\nVersion: 1.5\n"}},
	}))
	f := newFetcher(t, gitfetch.Options{})
	var jobLog bytes.Buffer
	req := w.request(t, &jobLog)
	req.SHA, req.MR = source, &gitfetch.MRMerge{TargetBranch: "main"}
	res, err := f.Checkout(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.MergeFellBack || res.MergedSHA != "" || !strings.Contains(res.Message, "secret.spec") {
		t.Errorf("result = %+v", res)
	}
	if !strings.Contains(jobLog.String(), "does not merge cleanly onto main") {
		t.Errorf("job log = %q", jobLog.String())
	}
	if got := git(t, req.Dest, "rev-parse", "HEAD"); got != source {
		t.Errorf("HEAD = %s, want the source commit %s", got, source)
	}
	if got := git(t, req.Dest, "status", "--porcelain"); got != "" {
		t.Errorf("work tree is not clean after the fallback: %s", got)
	}
}

func TestForkMergeRequestNeedsNoAccessToTheFork(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// The fork is private and mallory's: the bot cannot read it.
	fork := must[gitlabsim.Project](t)(w.sim.ForkProject(ctx, w.project.ID, "mallory"))
	allowPartialClone(t, fork)
	source := must[string](t)(w.sim.PushCommits(ctx, fork.ID, "fix", "mallory", gitlabsim.CommitSpec{
		Message: "Fix build", Changes: []gitlabsim.FileChange{{Path: "fix.patch", Content: "from the fork\n"}},
	}))
	mr := must[gitlabsim.MergeRequest](t)(w.sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{
		ProjectID: w.project.ID, SourceProjectID: fork.ID, SourceBranch: "fix", Author: "mallory",
	}))
	f := newFetcher(t, gitfetch.Options{})
	probe := gitfetch.Request{RepoURL: fork.HTTPURLToRepo, ProjectID: fork.ID, Token: w.bot.Token, SHA: source, Dest: filepath.Join(t.TempDir(), "fork")}
	if _, err := f.Checkout(ctx, probe); err == nil {
		t.Fatal("the bot could read the private fork; this test would prove nothing")
	}
	req := w.request(t, nil)
	req.SHA = source
	req.MR = &gitfetch.MRMerge{TargetBranch: "main", SourceRef: fmt.Sprintf("refs/merge-requests/%d/head", mr.IID)}
	res, err := f.Checkout(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.MergeFellBack || res.MergedSHA == "" {
		t.Errorf("result = %+v", res)
	}
	if b, err := os.ReadFile(filepath.Join(req.Dest, "fix.patch")); err != nil || string(b) != "from the fork\n" {
		t.Errorf("fix.patch = %q, %v", b, err)
	}
}

func TestUnknownCommitIsNotFound(t *testing.T) {
	w := newWorld(t)
	f := newFetcher(t, gitfetch.Options{})
	req := w.request(t, nil)
	req.SHA = strings.Repeat("ab", 20)
	if _, err := f.Checkout(context.Background(), req); !errors.Is(err, gitfetch.ErrCommitNotFound) {
		t.Errorf("err = %v, want ErrCommitNotFound", err)
	}
}

func TestInvalidRequests(t *testing.T) {
	w := newWorld(t)
	f := newFetcher(t, gitfetch.Options{})
	full := w.request(t, nil)
	notEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(notEmpty, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	withToken := strings.Replace(full.RepoURL, "://", "://oauth2:"+full.Token+"@", 1)
	for name, edit := range map[string]func(*gitfetch.Request){
		"credentials in the URL": func(r *gitfetch.Request) { r.RepoURL = withToken },
		"ssh URL":                func(r *gitfetch.Request) { r.RepoURL = "ssh://git@example.com/x.git" },
		"short SHA":              func(r *gitfetch.Request) { r.SHA = r.SHA[:12] },
		"no project ID":          func(r *gitfetch.Request) { r.ProjectID = 0 },
		"non-empty Dest":         func(r *gitfetch.Request) { r.Dest = notEmpty },
		"option as target":       func(r *gitfetch.Request) { r.MR = &gitfetch.MRMerge{TargetBranch: "--upload-pack=x"} },
		"session with a newline": func(r *gitfetch.Request) { r.Session = "run-1\nrun-2" },
	} {
		t.Run(name, func(t *testing.T) {
			req := full
			req.Dest = filepath.Join(t.TempDir(), "src")
			edit(&req)
			_, err := f.Checkout(context.Background(), req)
			if !errors.Is(err, gitfetch.ErrInvalidRequest) {
				t.Fatalf("err = %v, want ErrInvalidRequest", err)
			}
			assertNoSecret(t, "error", err.Error(), full.Token)
		})
	}
}

func TestCacheCapEvictsLeastRecentlyUsed(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	other := w.addProject(t, "other")
	f := newFetcher(t, gitfetch.Options{MaxCacheBytes: 1})
	checkout := func(p gitlabsim.Project) string {
		t.Helper()
		var jobLog bytes.Buffer
		req := gitfetch.Request{RepoURL: p.HTTPURLToRepo, ProjectID: p.ID, Token: w.bot.Token,
			SHA: w.head(t, p.ID, "main"), Dest: filepath.Join(t.TempDir(), "src"), Log: &jobLog}
		if _, err := f.Checkout(ctx, req); err != nil {
			t.Fatal(err)
		}
		return jobLog.String()
	}
	checkout(w.project)
	checkout(other)
	// The cap keeps only the repository used last.
	if got := checkout(other); !strings.Contains(got, "updating") {
		t.Errorf("the repository used last was evicted: %q", got)
	}
	if got := checkout(w.project); !strings.Contains(got, "not cached") {
		t.Errorf("the older repository was not evicted: %q", got)
	}
}

func TestPruneEvictsToTheCapAndKeepsTheCacheUsable(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	uncapped := newFetcher(t, gitfetch.Options{})
	if _, err := uncapped.Checkout(ctx, w.request(t, nil)); err != nil {
		t.Fatal(err)
	}
	if err := uncapped.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	var jobLog bytes.Buffer
	if _, err := uncapped.Checkout(ctx, w.request(t, &jobLog)); err != nil {
		t.Fatalf("checkout after a repack: %v", err)
	}
	if !strings.Contains(jobLog.String(), "updating") {
		t.Errorf("Prune without a cap dropped the repository: %q", jobLog.String())
	}
	used := must[int64](t)(uncapped.Usage())
	if used == 0 {
		t.Fatal("Usage is 0 with a cached repository")
	}

	capDir := t.TempDir()
	first := newFetcher(t, gitfetch.Options{CacheDir: capDir})
	if _, err := first.Checkout(ctx, w.request(t, nil)); err != nil {
		t.Fatal(err)
	}
	capped := newFetcher(t, gitfetch.Options{CacheDir: capDir, MaxCacheBytes: 1})
	if err := capped.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if got := must[int64](t)(capped.Usage()); got != 0 {
		t.Errorf("Usage after pruning to a 1-byte cap = %d", got)
	}
}

func TestConcurrentCheckoutsOfOneProject(t *testing.T) {
	w := newWorld(t)
	f := newFetcher(t, gitfetch.Options{})
	want := w.head(t, w.project.ID, "main")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	dests := make([]string, len(errs))
	for i := range errs {
		req := w.request(t, nil)
		dests[i] = req.Dest
		wg.Go(func() {
			_, errs[i] = f.Checkout(context.Background(), req)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("checkout %d: %v", i, err)
			continue
		}
		if got := git(t, dests[i], "rev-parse", "HEAD"); got != want {
			t.Errorf("checkout %d: HEAD = %s, want %s", i, got, want)
		}
	}
}

func TestCancelledCheckoutStops(t *testing.T) {
	w := newWorld(t)
	f := newFetcher(t, gitfetch.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Checkout(ctx, w.request(t, nil)); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestFetchIsPartialNotShallow(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// A large file that lived in the history but not in the commit built.
	large := make([]byte, 512<<10)
	random := rand.New(rand.NewPCG(1, 2)) // random bytes do not compress
	for i := range large {
		large[i] = byte(random.Uint32())
	}
	must[string](t)(w.sim.CommitFiles(ctx, w.project.ID, "main", "Add a tarball", []gitlabsim.FileChange{{Path: "old.tar", Content: string(large)}}, "alice"))
	must[string](t)(w.sim.CommitFiles(ctx, w.project.ID, "main", "Shrink the tarball", []gitlabsim.FileChange{{Path: "old.tar", Content: "small\n"}}, "alice"))
	f := newFetcher(t, gitfetch.Options{})
	req := w.request(t, nil)
	if _, err := f.Checkout(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, got := w.traffic.snapshot()
	t.Logf("checkout transferred %d bytes", got)
	if got >= int64(len(large))/2 {
		t.Errorf("the checkout transferred %d bytes: old file contents were fetched", got)
	}
	if got := git(t, req.Dest, "rev-list", "--count", "HEAD"); got != git(t, w.project.RepoDir, "rev-list", "--count", req.SHA) {
		t.Errorf("history is incomplete: %s commits", got)
	}
}

// TestWorkTreeLinksTheCacheObjectFiles checks how a work tree gets the
// cache's objects: each fetch keeps what it brings as one pack (no loose
// objects piling up between repacks), the work tree's object files are hard
// links to the cache's, read-only, and many fetches leave a bounded number
// of packs to link.
func TestWorkTreeLinksTheCacheObjectFiles(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	cacheDir := t.TempDir()
	f := newFetcher(t, gitfetch.Options{CacheDir: cacheDir})
	var dest string
	maxPacks := 0
	for i := range 30 {
		if _, err := w.sim.PushCommits(ctx, w.project.ID, "main", "alice", gitlabsim.CommitSpec{
			Message: "Change", Changes: []gitlabsim.FileChange{{Path: "README", Content: strings.Repeat("change\n", i+1)}},
		}); err != nil {
			t.Fatal(err)
		}
		req := w.request(t, nil)
		if _, err := f.Checkout(ctx, req); err != nil {
			t.Fatal(err)
		}
		dest = req.Dest
		packs := must[[]string](t)(filepath.Glob(filepath.Join(cacheDir, "repos", "*.git", "objects", "pack", "*.pack")))
		if i == 0 {
			// What a fetch killed before its ref update leaves behind.
			if err := os.WriteFile(strings.TrimSuffix(packs[0], ".pack")+".keep", nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		maxPacks = max(maxPacks, len(packs))
		loose := must[[]string](t)(filepath.Glob(filepath.Join(cacheDir, "repos", "*.git", "objects", "[0-9a-f][0-9a-f]", "*")))
		if len(loose) > 0 {
			t.Fatalf("after fetch %d the cache holds %d loose objects, want every fetch kept as a pack", i+1, len(loose))
		}
	}
	if maxPacks > 25 {
		t.Errorf("the cache held up to %d packs over 30 fetches; it is not repacked", maxPacks)
	}
	if keeps := must[[]string](t)(filepath.Glob(filepath.Join(cacheDir, "repos", "*.git", "objects", "pack", "*.keep"))); len(keeps) > 0 {
		t.Errorf("a stale .keep mark survived the repack: %v", keeps)
	}
	if packs := must[[]string](t)(filepath.Glob(filepath.Join(cacheDir, "repos", "*.git", "objects", "pack", "*.pack"))); len(packs) > 10 {
		t.Errorf("%d packs after the repack; the kept pack or the others were not merged", len(packs))
	}
	files := must[[]string](t)(filepath.Glob(filepath.Join(dest, ".git", "objects", "pack", "pack-*")))
	if len(files) == 0 {
		t.Fatal("the work tree has no packs")
	}
	for _, file := range files {
		info := must[os.FileInfo](t)(os.Stat(file))
		if links := info.Sys().(*syscall.Stat_t).Nlink; links < 2 || info.Mode().Perm() != 0o444 {
			t.Errorf("%s: %d links, mode %v; want a read-only hard link to the cache's file", file, links, info.Mode().Perm())
		}
	}
	if got := git(t, dest, "log", "-1", "--format=%s"); got != "Change" {
		t.Errorf("HEAD's subject %q in the work tree", got)
	}
}

// TestJobsOfOneRunShareAFetch checks Request.Session: the jobs of one run
// (one per target) ask the forge once and build the same merge, even when
// the target branch moves between them; another run fetches again and
// sees the move; a session whose commit the cache lacks still gets it.
func TestJobsOfOneRunShareAFetch(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	source, mr := w.patchMR(t)
	f := newFetcher(t, gitfetch.Options{})
	runTime := time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC)
	checkout := func(session, sha string) (gitfetch.Result, string) {
		t.Helper()
		var jobLog bytes.Buffer
		req := w.request(t, &jobLog)
		req.SHA, req.Ref, req.Session = sha, "", session
		req.MergeTime = runTime
		req.MR = &gitfetch.MRMerge{TargetBranch: "main", SourceRef: fmt.Sprintf("refs/merge-requests/%d/head", mr.IID)}
		res, err := f.Checkout(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got := git(t, req.Dest, "log", "-1", "--format=%at %ct"); res.MergedSHA != "" && got != fmt.Sprintf("%d %d", runTime.Unix(), runTime.Unix()) {
			t.Errorf("merge commit times %s, want the run's %d", got, runTime.Unix())
		}
		return res, jobLog.String()
	}
	before, _ := w.traffic.snapshot()
	first, _ := checkout("run-1", source)
	afterFirst, _ := w.traffic.snapshot()
	moved := must[string](t)(w.sim.PushCommits(ctx, w.project.ID, "main", "alice", gitlabsim.CommitSpec{
		Message: "Meanwhile on main", Changes: []gitlabsim.FileChange{{Path: "NEWS", Content: "news\n"}},
	}))
	second, log := checkout("run-1", source)
	afterSecond, _ := w.traffic.snapshot()
	if afterFirst == before || afterSecond != afterFirst {
		t.Errorf("forge fetches: %d for the run's first job, %d for its second; want some, then none", afterFirst-before, afterSecond-afterFirst)
	}
	if second.TargetSHA != first.TargetSHA || second.TargetSHA == moved {
		t.Errorf("the run's jobs merged onto %s and %s; want the same target, not the later push %s", first.TargetSHA, second.TargetSHA, moved)
	}
	if first.MergedSHA == "" || second.MergedSHA != first.MergedSHA {
		t.Errorf("the run's jobs made the merge commits %q and %q; want one and the same", first.MergedSHA, second.MergedSHA)
	}
	if !strings.Contains(log, "fetched for this run") {
		t.Errorf("the second job's log does not say the copy was fetched for this run: %q", log)
	}

	third, log := checkout("run-2", source)
	if afterThird, _ := w.traffic.snapshot(); afterThird == afterSecond || third.TargetSHA != moved {
		t.Errorf("another run: %d forge fetches, target %s; want a fetch and the moved target %s", afterThird-afterSecond, third.TargetSHA, moved)
	}
	if strings.Contains(log, "fetched for this run") {
		t.Errorf("another run reused the first run's fetch: %q", log)
	}

	// run-2's fetch moved the branch in the cache; run-1's later jobs still
	// merge onto the head run-1 saw.
	if fourth, _ := checkout("run-1", source); fourth.TargetSHA != first.TargetSHA || fourth.MergedSHA != first.MergedSHA {
		t.Errorf("a later job of run-1 merged onto %s (merge %s); want run-1's %s (merge %s)",
			fourth.TargetSHA, fourth.MergedSHA, first.TargetSHA, first.MergedSHA)
	}

	// A commit pushed after the session's fetch is not in the cache: the
	// checkout asks the forge for it.
	later := must[string](t)(w.sim.PushCommits(ctx, w.project.ID, "feature", "alice", gitlabsim.CommitSpec{
		Message: "More", Changes: []gitlabsim.FileChange{{Path: "more.txt", Content: "more\n"}},
	}))
	if res, _ := checkout("run-2", later); res.SHA != later || res.MergedSHA == "" {
		t.Errorf("checkout of a commit the session's fetch did not bring: %+v", res)
	}
}

// TestGitBombIsRefusedBeforeCheckout covers a commit whose few kilobytes of
// objects name one 1 MiB file 2,000 times: a checkout would write 2 GiB on
// the host. It is refused before any file is written, by size and by
// count, and a commit within the limits checks out as usual.
func TestGitBombIsRefusedBeforeCheckout(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	big := strings.Repeat("bomb\n", 1<<20/5)
	var stream strings.Builder
	fmt.Fprintf(&stream, "blob\nmark :1\ndata %d\n%s\n", len(big), big)
	fmt.Fprintf(&stream, "commit refs/heads/bomb\ncommitter Eve <eve@example.com> 1700000000 +0000\ndata 5\nbomb\nfrom %s\n",
		w.head(t, w.project.ID, "main"))
	for i := range 2000 {
		fmt.Fprintf(&stream, "M 100644 :1 d%02d/f%04d\n", i%40, i)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = w.project.RepoDir
	cmd.Stdin = strings.NewReader(stream.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fast-import: %v\n%s", err, out)
	}
	bomb := w.head(t, w.project.ID, "bomb")
	for name, opts := range map[string]gitfetch.Options{
		"by size":  {MaxTreeBytes: 1 << 30},
		"by count": {MaxTreeFiles: 1000},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFetcher(t, opts)
			req := w.request(t, nil)
			req.SHA, req.Ref = bomb, "bomb"
			_, err := f.Checkout(ctx, req)
			if !errors.Is(err, gitfetch.ErrTreeTooLarge) {
				t.Fatalf("checkout of the bomb: %v, want ErrTreeTooLarge", err)
			}
			if written, _ := filepath.Glob(filepath.Join(req.Dest, "d*")); len(written) > 0 {
				t.Errorf("files were written before the refusal: %d directories", len(written))
			}
			// Within the limits, the same fetcher checks out as usual.
			ok := w.request(t, nil)
			if _, err := f.Checkout(ctx, ok); err != nil {
				t.Fatalf("checkout of main: %v", err)
			}
		})
	}
}
