package gitlabsim_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// world is a simulator with a group, users and a project, served over HTTP.
type world struct {
	sim        *gitlabsim.Simulator
	url        string
	clock      *fakeClock
	group      gitlabsim.Group
	maintainer gitlabsim.User
	bot        gitlabsim.User
	reporter   gitlabsim.User
	outsider   gitlabsim.User
	project    gitlabsim.Project
}

func newWorld(t *testing.T, opts gitlabsim.Options) *world {
	t.Helper()
	clock := &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 30, 0, time.UTC)}
	opts.Dir = t.TempDir()
	if opts.Clock == nil {
		opts.Clock = clock
	}
	sim := gitlabsim.New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	w := &world{sim: sim, url: srv.URL, clock: clock}
	ctx := context.Background()
	var err error
	w.group = must[gitlabsim.Group](t)(sim.AddGroup(gitlabsim.GroupSpec{Path: "GNOME", Name: "GNOME"}))
	w.maintainer = must[gitlabsim.User](t)(sim.AddUser(gitlabsim.UserSpec{Username: "alice", Name: "Alice"}))
	w.bot = must[gitlabsim.User](t)(sim.AddUser(gitlabsim.UserSpec{Username: "upbuild-bot", Name: "upbuild", Bot: true}))
	w.reporter = must[gitlabsim.User](t)(sim.AddUser(gitlabsim.UserSpec{Username: "rita"}))
	w.outsider = must[gitlabsim.User](t)(sim.AddUser(gitlabsim.UserSpec{Username: "mallory"}))
	for user, level := range map[int64]gitlabsim.AccessLevel{w.maintainer.ID: gitlabsim.Maintainer, w.bot.ID: gitlabsim.Developer} {
		if err = sim.AddGroupMember(w.group.ID, user, level); err != nil {
			t.Fatal(err)
		}
	}
	w.project = must[gitlabsim.Project](t)(sim.AddProject(ctx, gitlabsim.ProjectSpec{
		Namespace: "GNOME", Path: "gtk", Visibility: gitlabsim.Public, DefaultBranch: "main",
		Files: map[string]string{".packit.yaml": "specfile_path: gtk.spec\n", "gtk.spec": "Name: gtk\n", "docs/README.md": "# docs\n"},
	}))
	if err = sim.AddProjectMember(w.project.ID, w.reporter.ID, gitlabsim.Reporter); err != nil {
		t.Fatal(err)
	}
	return w
}

// must turns (value, error) into value, failing the test on error.
func must[T any](t *testing.T) func(T, error) T {
	t.Helper()
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func (w *world) client(t *testing.T, token string) *gitlab.Client {
	t.Helper()
	c, err := gitlab.NewClient(token, gitlab.WithBaseURL(w.url+"/api/v4"), gitlab.WithoutRetries())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *world) head(t *testing.T, projectID int64, branch string) string {
	t.Helper()
	sha, err := w.sim.BranchHead(context.Background(), projectID, branch)
	if err != nil {
		t.Fatal(err)
	}
	return sha
}

// receiver is a webhook endpoint that records what it got.
type receiver struct {
	mu       sync.Mutex
	requests []received
	status   int
	srv      *httptest.Server
}

type received struct {
	header http.Header
	body   []byte
}
