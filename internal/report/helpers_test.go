package report_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/forge/gitlab"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/report"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// clock is the reporter's time: the real time plus however far a test
// moved it, so rows the store stamps with time.Now are never in its future.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// counter sits in front of the simulator and counts requests by method and
// path, to show what went over the wire.
type counter struct {
	next http.Handler
	mu   sync.Mutex
	seen map[string]int
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.seen[r.Method+" "+r.URL.EscapedPath()]++
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

func (c *counter) count(method, path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[method+" "+path]
}

// env is a simulated GitLab with group GNOME (alice: Maintainer, the bot:
// Developer) and its public project GNOME/gtk, which has a branch
// "feature"; a fresh store; and a reporter with its own clock.
type env struct {
	sim      *gitlabsim.Simulator
	url      string
	requests *counter
	store    *store.Store
	bot      gitlabsim.User
	project  gitlabsim.Project
	sha      string // head of "feature" in GNOME/gtk
	clock    *clock
	forge    forge.Forge
}

func newEnv(t *testing.T, dbURL string) *env {
	t.Helper()
	ctx := context.Background()
	sim := gitlabsim.New(gitlabsim.Options{Dir: t.TempDir()})
	requests := &counter{next: sim, seen: map[string]int{}}
	srv := httptest.NewServer(requests)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	e := &env{sim: sim, url: srv.URL, requests: requests, clock: &clock{}}

	group := must(sim.AddGroup(gitlabsim.GroupSpec{Path: "GNOME"}))(t)
	alice := must(sim.AddUser(gitlabsim.UserSpec{Username: "alice"}))(t)
	e.bot = must(sim.AddUser(gitlabsim.UserSpec{Username: "upbuild-bot", Bot: true}))(t)
	if _, err := sim.AddUser(gitlabsim.UserSpec{Username: "mallory"}); err != nil {
		t.Fatal(err)
	}
	check(t, sim.AddGroupMember(group.ID, alice.ID, gitlabsim.Maintainer))
	check(t, sim.AddGroupMember(group.ID, e.bot.ID, gitlabsim.Developer))
	e.project = must(sim.AddProject(ctx, gitlabsim.ProjectSpec{Namespace: "GNOME", Path: "gtk", Visibility: gitlabsim.Public,
		Files: map[string]string{"gtk.spec": "Name: gtk\n"}}))(t)
	e.sha = must(sim.CommitFiles(ctx, e.project.ID, "feature", "Fix the build",
		[]gitlabsim.FileChange{{Path: "fix.txt", Content: "fixed\n"}}, "alice"))(t)

	e.store = must(store.Open(ctx, dbURL))(t)
	t.Cleanup(func() { e.store.Close() })
	check(t, e.store.Migrate(ctx))
	// One attempt per call: the reporter's own retries are under test, and
	// the client's would only slow the tests down.
	e.forge = must(gitlab.New(gitlab.Options{BaseURL: srv.URL, Token: e.bot.Token, MaxAttempts: 1}))(t)
	return e
}

// reporter makes a reporter for the simulator's instance; adjust changes
// its options first.
func (e *env) reporter(t *testing.T, adjust ...func(*report.Options)) *report.Reporter {
	t.Helper()
	opts := report.Options{
		Store:     e.store,
		Forges:    map[string]forge.Forge{e.url: e.forge},
		PublicURL: "https://upbuild.example",
		Now:       e.clock.Now,
	}
	for _, f := range adjust {
		f(&opts)
	}
	return must(report.New(opts))(t)
}

// run is a planned run: its jobs get one status each on sha.
type run struct {
	key             string
	sha, ref        string
	mrIID           int64
	projectID       int64 // the target project
	sourceProjectID int64
	names           []string
}

// plan applies a run the way the planner does and returns its job IDs.
func (e *env) plan(t *testing.T, r run) []int64 {
	t.Helper()
	if r.sourceProjectID == 0 {
		r.sourceProjectID = r.projectID
	}
	p := store.Plan{Run: &store.Run{Instance: e.url, ProjectID: r.projectID, ProjectPath: "GNOME/gtk", Trigger: "pull_request",
		RunKey: r.key, SHA: r.sha, Ref: r.ref, MRIID: r.mrIID, SourceProjectID: r.sourceProjectID, State: store.RunRunning}}
	for i, name := range r.names {
		p.Jobs = append(p.Jobs, store.Job{JobType: "copr_build", JobIndex: i, StatusName: name, State: store.JobQueued,
			Description: "queued"})
	}
	res, err := e.store.ApplyPlan(context.Background(), p, func(run store.Run, j store.Job) *store.StatusUpdate {
		return &store.StatusUpdate{Instance: run.Instance, ProjectID: run.SourceProjectID, SHA: run.SHA, Name: j.StatusName,
			JobID: j.ID, Ref: run.Ref, State: store.GitLabState(j.State), Description: j.Description,
			TargetURL: fmt.Sprintf("/jobs/%d", j.ID), MRIID: run.MRIID, TargetProjectID: run.ProjectID}
	})
	if err != nil || !res.Created {
		t.Fatalf("apply plan: %+v %v", res, err)
	}
	return res.JobIDs
}

// move sets job states in order.
func (e *env) move(t *testing.T, job int64, states ...string) {
	t.Helper()
	for _, st := range states {
		if _, err := e.store.SetJobState(context.Background(), job, st, "now "+st); err != nil {
			t.Fatal(err)
		}
	}
}

func flush(t *testing.T, r *report.Reporter) {
	t.Helper()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// botNotes are the notes the bot wrote on a merge request.
func (e *env) botNotes(projectID, iid int64) []gitlabsim.Note {
	var out []gitlabsim.Note
	for _, n := range e.sim.Notes(projectID, iid) {
		if n.AuthorID == e.bot.ID {
			out = append(out, n)
		}
	}
	return out
}

// transitions are the simulator's status transitions of one status name,
// as "from>to".
func (e *env) transitions(name string) []string {
	var out []string
	for _, tr := range e.sim.StatusTransitions() {
		if tr.Name == name {
			out = append(out, tr.From+">"+tr.To)
		}
	}
	return out
}

// openMR opens a merge request from branch of sourceProjectID into GNOME/gtk.
func (e *env) openMR(t *testing.T, sourceProjectID int64, branch, author string) gitlabsim.MergeRequest {
	t.Helper()
	return must(e.sim.OpenMergeRequest(context.Background(), gitlabsim.MergeRequestSpec{
		ProjectID: e.project.ID, SourceProjectID: sourceProjectID, SourceBranch: branch, Author: author}))(t)
}

func each(t *testing.T, fn func(t *testing.T, e *env)) {
	testdb.Each(t, func(t *testing.T, dbURL string) { fn(t, newEnv(t, dbURL)) })
}

// must(f())(t) is f's value, failing the test when f returned an error.
func must[T any](v T, err error) func(*testing.T) T {
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

func contains(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}
