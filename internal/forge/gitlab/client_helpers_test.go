package gitlab_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/forge/gitlab"
	"upbuild.dev/upbuild/internal/gitlabsim"
)

// request is one API request the simulator saw.
type request struct {
	method string
	path   string
	at     time.Time
}

// recorder sits in front of the simulator and notes every request as it
// arrives, so tests can count what really went over the wire.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []request
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.seen = append(rec.seen, request{r.Method, r.URL.EscapedPath(), time.Now()})
	rec.mu.Unlock()
	rec.next.ServeHTTP(w, r)
}

// requests returns the requests with this method whose path starts with
// prefix (below /api/v4).
func (rec *recorder) requests(method, prefix string) []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []request
	for _, r := range rec.seen {
		if r.method == method && strings.HasPrefix(r.path, "/api/v4/"+prefix) {
			out = append(out, r)
		}
	}
	return out
}

// syncBuffer is a log sink that tests read while clients write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// world is a simulated GitLab with:
//   - group "pkgs" (bot: Developer, alice: Maintainer) and subgroup "pkgs/tools";
//   - pkgs/hello (public, .packit.yaml, hello.spec, docs/README.md);
//   - pkgs/other (public, a different history);
//   - pkgs/tools/cli (public, for inherited access);
//   - alice/side (public, alice's own; the bot is only a Reporter there);
//   - users rita (Maintainer directly on pkgs/hello only) and mallory (nobody).
type world struct {
	sim                     *gitlabsim.Simulator
	url                     string
	rec                     *recorder
	logs                    *syncBuffer
	bot, alice, rita, mal   gitlabsim.User
	hello, other, cli, side gitlabsim.Project
}

func newWorld(t *testing.T, opts gitlabsim.Options) *world {
	t.Helper()
	ctx := context.Background()
	opts.Dir = t.TempDir()
	sim := gitlabsim.New(opts)
	rec := &recorder{next: sim}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	w := &world{sim: sim, url: srv.URL, rec: rec, logs: &syncBuffer{}}

	group := must(sim.AddGroup(gitlabsim.GroupSpec{Path: "pkgs"}))(t)
	must(sim.AddGroup(gitlabsim.GroupSpec{Path: "tools", Parent: "pkgs"}))(t)
	w.bot = must(sim.AddUser(gitlabsim.UserSpec{Username: "upbuild-bot", Bot: true}))(t)
	w.alice = must(sim.AddUser(gitlabsim.UserSpec{Username: "alice"}))(t)
	w.rita = must(sim.AddUser(gitlabsim.UserSpec{Username: "rita"}))(t)
	w.mal = must(sim.AddUser(gitlabsim.UserSpec{Username: "mallory"}))(t)
	check(t, sim.AddGroupMember(group.ID, w.bot.ID, gitlabsim.Developer))
	check(t, sim.AddGroupMember(group.ID, w.alice.ID, gitlabsim.Maintainer))

	w.hello = must(sim.AddProject(ctx, gitlabsim.ProjectSpec{
		Namespace: "pkgs", Path: "hello", Visibility: gitlabsim.Public,
		Files: map[string]string{
			".packit.yaml":   "specfile_path: hello.spec\n",
			"hello.spec":     "Name: hello\n",
			"docs/README.md": "# hello\n",
		},
	}))(t)
	w.other = must(sim.AddProject(ctx, gitlabsim.ProjectSpec{
		Namespace: "pkgs", Path: "other", Visibility: gitlabsim.Public,
		Files: map[string]string{"README": "another project\n"},
	}))(t)
	w.cli = must(sim.AddProject(ctx, gitlabsim.ProjectSpec{
		Namespace: "pkgs/tools", Path: "cli", Visibility: gitlabsim.Public,
		Files: map[string]string{"README": "cli\n"},
	}))(t)
	w.side = must(sim.AddProject(ctx, gitlabsim.ProjectSpec{
		Namespace: "alice", Path: "side", Visibility: gitlabsim.Public,
		Files: map[string]string{"README": "side\n"},
	}))(t)
	check(t, sim.AddProjectMember(w.side.ID, w.bot.ID, gitlabsim.Reporter))
	check(t, sim.AddProjectMember(w.hello.ID, w.rita.ID, gitlabsim.Maintainer))
	return w
}

// client makes a client for token that logs into w.logs; tweak adjusts the
// options before New.
func (w *world) client(t *testing.T, token string, tweak ...func(*gitlab.Options)) *gitlab.Client {
	t.Helper()
	opts := gitlab.Options{
		BaseURL: w.url,
		Token:   token,
		Logger:  slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range tweak {
		f(&opts)
	}
	c, err := gitlab.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *world) head(t *testing.T, projectID int64, branch string) string {
	t.Helper()
	return must(w.sim.BranchHead(context.Background(), projectID, branch))(t)
}

// openMR pushes branch "feature" to pkgs/hello and opens a merge request.
func (w *world) openMR(t *testing.T) gitlabsim.MergeRequest {
	t.Helper()
	ctx := context.Background()
	must(w.sim.PushCommits(ctx, w.hello.ID, "feature", "alice", gitlabsim.CommitSpec{
		Message: "Bump", Changes: []gitlabsim.FileChange{{Path: "hello.spec", Content: "Name: hello\nVersion: 2\n"}},
	}))(t)
	return must(w.sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{
		ProjectID: w.hello.ID, SourceBranch: "feature", Title: "Bump", Author: "alice",
	}))(t)
}

// must returns v, or fails the test t given to its result when err is set:
// must(f())(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
