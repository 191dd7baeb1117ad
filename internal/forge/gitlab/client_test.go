package gitlab_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/forge/gitlab"
	"upbuild.dev/upbuild/internal/gitlabsim"
)

func TestProjectByIDAndPath(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	want := forge.ProjectInfo{Project: forge.Project{
		ID: w.hello.ID, PathWithNamespace: "pkgs/hello", WebURL: w.url + "/pkgs/hello",
		GitHTTPURL: w.url + "/pkgs/hello.git", DefaultBranch: "main", Visibility: "public",
	}}
	for _, idOrPath := range []string{strconv.FormatInt(w.hello.ID, 10), "pkgs/hello"} {
		got, err := c.Project(ctx, idOrPath)
		if err != nil {
			t.Fatalf("Project(%q): %v", idOrPath, err)
		}
		if got != want {
			t.Errorf("Project(%q) = %+v, want %+v", idOrPath, got, want)
		}
	}

	fork := must(w.sim.ForkProject(ctx, w.hello.ID, "alice"))(t)
	got, err := c.Project(ctx, "alice/hello")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != fork.ID || got.ForkedFromID != w.hello.ID {
		t.Errorf("fork = %+v, want ID %d forked from %d", got, fork.ID, w.hello.ID)
	}

	_, err = c.Project(ctx, "pkgs/nothing")
	if !errors.Is(err, forge.ErrNotFound) || !errors.Is(err, forge.ErrPermanent) || errors.Is(err, forge.ErrTransient) {
		t.Errorf("missing project: %v, want ErrNotFound (permanent)", err)
	}
}

func TestFileAt(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	must(w.sim.PushCommits(ctx, w.hello.ID, "next", "alice", gitlabsim.CommitSpec{
		Message: "Change config", Changes: []gitlabsim.FileChange{{Path: ".packit.yaml", Content: "specfile_path: next.spec\n"}},
	}))(t)
	nextSHA := w.head(t, w.hello.ID, "next")

	tests := []struct {
		path, ref, want string
	}{
		{".packit.yaml", "", "specfile_path: hello.spec\n"},
		{".packit.yaml", "main", "specfile_path: hello.spec\n"},
		{".packit.yaml", "next", "specfile_path: next.spec\n"},
		{".packit.yaml", nextSHA, "specfile_path: next.spec\n"},
		{"docs/README.md", "main", "# hello\n"},
	}
	for _, tt := range tests {
		got, err := c.FileAt(ctx, w.hello.ID, tt.path, tt.ref)
		if err != nil {
			t.Errorf("FileAt(%q, %q): %v", tt.path, tt.ref, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("FileAt(%q, %q) = %q, want %q", tt.path, tt.ref, got, tt.want)
		}
	}

	for _, missing := range []struct{ path, ref string }{
		{"packit.yaml", "main"},
		{".packit.yaml", "no-such-branch"},
		{"docs", "main"},
	} {
		if _, err := c.FileAt(ctx, w.hello.ID, missing.path, missing.ref); !errors.Is(err, forge.ErrNotFound) {
			t.Errorf("FileAt(%q, %q): %v, want ErrNotFound", missing.path, missing.ref, err)
		}
	}
}

func TestFileAtRefusesFilesOverTheLimit(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token, func(o *gitlab.Options) { o.MaxFileSize = 10 })
	_, err := c.FileAt(context.Background(), w.hello.ID, ".packit.yaml", "main")
	if !errors.Is(err, forge.ErrPermanent) || !strings.Contains(err.Error(), "larger than 10 bytes") {
		t.Errorf("oversized file: %v, want a permanent error naming the limit", err)
	}
	if n := len(w.rec.requests("GET", "projects/")); n != 1 {
		t.Errorf("an oversized file was fetched %d times, want once", n)
	}
}

func TestTopLevelFilesReadsAllPages(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	var changes []gitlabsim.FileChange
	var want []string
	for i := range 101 {
		name := fmt.Sprintf("file%03d.txt", i)
		changes = append(changes, gitlabsim.FileChange{Path: name, Content: name})
		want = append(want, name)
	}
	changes = append(changes, gitlabsim.FileChange{Path: "sub/inner.txt", Content: "x"})
	must(w.sim.CommitFiles(ctx, w.other.ID, "main", "Many files", changes, ""))(t)
	want = append(want, "README")
	slices.Sort(want)

	got, err := c.TopLevelFiles(ctx, w.other.ID, "main")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("TopLevelFiles = %d names %v…, want %d names (no directory)", len(got), got[:min(5, len(got))], len(want))
	}
	if pages := len(w.rec.requests("GET", fmt.Sprintf("projects/%d/repository/tree", w.other.ID))); pages < 2 {
		t.Errorf("read %d page(s) of a 103-entry tree, want at least 2", pages)
	}

	root, err := c.TopLevelFiles(ctx, w.hello.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(root)
	if !slices.Equal(root, []string{".packit.yaml", "hello.spec"}) {
		t.Errorf("TopLevelFiles(default branch) = %v", root)
	}
	if _, err := c.TopLevelFiles(ctx, w.hello.ID, "no-such-branch"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("unknown ref: %v, want ErrNotFound", err)
	}
}

func TestSetCommitStatusLifecycle(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	sha := w.head(t, w.hello.ID, "main")
	rpm := forge.StatusUpdate{Name: "upbuild/rpm-build:fedora-rawhide", Ref: "main", TargetURL: "https://ci.example/run/1"}
	set := func(u forge.StatusUpdate, state forge.StatusState) int64 {
		t.Helper()
		u.State = state
		id, err := c.SetCommitStatus(ctx, w.hello.ID, sha, u)
		if err != nil {
			t.Fatalf("set %s: %v", state, err)
		}
		return id
	}

	pipeline := set(rpm, forge.StatusPending)
	if pipeline == 0 {
		t.Fatal("no pipeline ID for a new status")
	}
	if again := set(rpm, forge.StatusPending); again != pipeline {
		t.Errorf("pending twice: pipeline %d, want %d", again, pipeline)
	}
	rpm.PipelineID = pipeline
	if id := set(rpm, forge.StatusRunning); id != pipeline {
		t.Errorf("running: pipeline %d, want %d", id, pipeline)
	}
	if again := set(rpm, forge.StatusRunning); again != pipeline {
		t.Errorf("running twice: pipeline %d, want %d", again, pipeline)
	}
	tests := forge.StatusUpdate{Name: "upbuild/tests", Ref: "main", PipelineID: pipeline}
	if id := set(tests, forge.StatusSkipped); id != pipeline {
		t.Errorf("second status went to pipeline %d, want %d", id, pipeline)
	}
	set(rpm, forge.StatusSuccess)

	if n := len(w.sim.Pipelines(w.hello.ID)); n != 1 {
		t.Errorf("%d pipelines, want 1 shared by both statuses", n)
	}
	var moves []string
	for _, tr := range w.sim.StatusTransitions() {
		if tr.Name == rpm.Name {
			moves = append(moves, tr.From+">"+tr.To)
		}
	}
	if want := []string{"created>pending", "pending>running", "running>success"}; !slices.Equal(moves, want) {
		t.Errorf("transitions of %s = %v, want %v", rpm.Name, moves, want)
	}
	states := map[string]string{}
	for _, st := range w.sim.Statuses(w.hello.ID, sha) {
		states[st.Name] = st.Status
		if st.Name == rpm.Name && st.TargetURL != rpm.TargetURL {
			t.Errorf("target URL = %q, want %q", st.TargetURL, rpm.TargetURL)
		}
	}
	if states[rpm.Name] != "success" || states[tests.Name] != "skipped" {
		t.Errorf("statuses on the commit = %v", states)
	}
}

func TestSetCommitStatusRefusals(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	sha := w.head(t, w.hello.ID, "main")
	u := forge.StatusUpdate{State: forge.StatusPending, Name: "upbuild"}

	if _, err := c.SetCommitStatus(ctx, w.other.ID, sha, u); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("commit not in the project: %v, want ErrNotFound", err)
	}
	sideSHA := w.head(t, w.side.ID, "main")
	if _, err := c.SetCommitStatus(ctx, w.side.ID, sideSHA, u); !errors.Is(err, forge.ErrForbidden) || !errors.Is(err, forge.ErrPermanent) {
		t.Errorf("bot is only Reporter: %v, want ErrForbidden", err)
	}
	posts := len(w.rec.requests("POST", ""))
	if _, err := c.SetCommitStatus(ctx, w.hello.ID, sha, forge.StatusUpdate{State: "error", Name: "upbuild"}); !errors.Is(err, forge.ErrPermanent) {
		t.Errorf("state %q: %v, want ErrPermanent", "error", err)
	}
	if after := len(w.rec.requests("POST", "")); after != posts {
		t.Errorf("an invalid state was sent to GitLab")
	}
}

func TestSetCommitStatusShortensLongFields(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	sha := w.head(t, w.hello.ID, "main")
	long := strings.Repeat("é", 300) // two bytes each: a byte cut would break one
	u := forge.StatusUpdate{
		State: forge.StatusFailed, Name: "upbuild/" + long, Ref: "main",
		TargetURL: "https://ci.example/" + strings.Repeat("a", 300), Description: "Build failed: " + long,
	}
	if _, err := c.SetCommitStatus(ctx, w.hello.ID, sha, u); err != nil {
		t.Fatal(err)
	}
	statuses := w.sim.Statuses(w.hello.ID, sha)
	if len(statuses) != 1 {
		t.Fatalf("statuses = %+v", statuses)
	}
	st := statuses[0]
	for field, value := range map[string]string{"name": st.Name, "target_url": st.TargetURL, "description": st.Description} {
		if n := len([]rune(value)); n != 255 {
			t.Errorf("%s has %d characters, want 255", field, n)
		}
		if strings.ContainsRune(value, '\uFFFD') {
			t.Errorf("%s was cut inside a character", field)
		}
	}
	if !strings.HasPrefix(st.Name, "upbuild/éé") || !strings.HasSuffix(st.Description, "é…") {
		t.Errorf("name %q…, description …%q", st.Name[:12], st.Description[len(st.Description)-8:])
	}

	// The shortened name is the status's identity: setting it again moves
	// the same status.
	u.State = forge.StatusPending
	u.Description = "retry"
	first, err := c.SetCommitStatus(ctx, w.hello.ID, sha, u)
	if err != nil {
		t.Fatal(err)
	}
	u.State = forge.StatusRunning
	if second, err := c.SetCommitStatus(ctx, w.hello.ID, sha, u); err != nil || second != first {
		t.Errorf("running after pending: pipeline %d, %v; want %d", second, err, first)
	}
}

func TestMergeRequestNotes(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	mr := w.openMR(t)

	if _, err := w.sim.AddNote(ctx, w.hello.ID, mr.IID, "alice", "/packit build"); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateMRNote(ctx, w.hello.ID, mr.IID, "Builds queued")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateMRNote(ctx, w.hello.ID, mr.IID, id, "Builds done: 3 of 3 passed"); err != nil {
		t.Fatal(err)
	}
	notes, err := c.MRNotes(ctx, w.hello.ID, mr.IID)
	if err != nil {
		t.Fatal(err)
	}
	want := []forge.Note{
		{Body: "/packit build", AuthorID: w.alice.ID, AuthorUsername: "alice"},
		{ID: id, Body: "Builds done: 3 of 3 passed", AuthorID: w.bot.ID, AuthorUsername: "upbuild-bot"},
	}
	if len(notes) != 2 {
		t.Fatalf("notes = %+v", notes)
	}
	want[0].ID = notes[0].ID
	if !slices.Equal(notes, want) {
		t.Errorf("notes = %+v, want %+v", notes, want)
	}

	alice := w.client(t, w.alice.Token)
	if err := alice.UpdateMRNote(ctx, w.hello.ID, mr.IID, id, "hijacked"); !errors.Is(err, forge.ErrForbidden) {
		t.Errorf("editing the bot's note as alice: %v, want ErrForbidden", err)
	}
	if _, err := c.CreateMRNote(ctx, w.hello.ID, mr.IID+100, "lost"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("note on a missing merge request: %v, want ErrNotFound", err)
	}
}

func TestMergeRequestNotesReadsAllPages(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{DisableRateLimits: true})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	mr := w.openMR(t)
	for i := range 105 {
		if _, err := w.sim.AddNote(ctx, w.hello.ID, mr.IID, "alice", fmt.Sprintf("comment %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	notes, err := c.MRNotes(ctx, w.hello.ID, mr.IID)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 105 || notes[0].Body != "comment 0" || notes[104].Body != "comment 104" {
		t.Errorf("got %d notes, first and last %q, %q", len(notes), notes[0].Body, notes[len(notes)-1].Body)
	}
}

func TestAwardEmojiTwiceIsOneAward(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	mr := w.openMR(t)
	note := must(w.sim.AddNote(ctx, w.hello.ID, mr.IID, "alice", "/packit build"))(t)

	for range 2 {
		if err := c.AwardEmojiOnMRNote(ctx, w.hello.ID, mr.IID, note.ID, "eyes"); err != nil {
			t.Fatal(err)
		}
	}
	awards := w.sim.AwardEmoji(note.ID)
	if len(awards) != 1 || awards[0].Name != "eyes" || awards[0].UserID != w.bot.ID {
		t.Errorf("awards = %+v, want one eyes from the bot", awards)
	}
	if err := c.AwardEmojiOnMRNote(ctx, w.hello.ID, mr.IID, note.ID+100, "eyes"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("award on a missing note: %v, want ErrNotFound", err)
	}
}

func TestCreateConfidentialIssue(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	iid, err := c.CreateIssue(ctx, w.hello.ID, "upbuild cannot read .packit.yaml", "Line 3: unknown key.", true)
	if err != nil {
		t.Fatal(err)
	}
	issues := w.sim.Issues(w.hello.ID)
	if len(issues) != 1 {
		t.Fatalf("issues = %+v", issues)
	}
	is := issues[0]
	if is.IID != iid || !is.Confidential || is.Title != "upbuild cannot read .packit.yaml" || is.Description != "Line 3: unknown key." || is.AuthorID != w.bot.ID {
		t.Errorf("issue = %+v (iid %d returned)", is, iid)
	}
	second, err := c.CreateIssue(ctx, w.hello.ID, "public one", "", false)
	if err != nil || second == iid || w.sim.Issues(w.hello.ID)[1].Confidential {
		t.Errorf("second issue: iid %d, %v, %+v", second, err, w.sim.Issues(w.hello.ID))
	}
}

func TestAccessLevel(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	tests := []struct {
		name    string
		project int64
		user    int64
		want    forge.AccessLevel
	}{
		{"group member on a group project", w.hello.ID, w.bot.ID, forge.Developer},
		{"group member inherits into a subgroup", w.cli.ID, w.alice.ID, forge.Maintainer},
		{"direct project member", w.hello.ID, w.rita.ID, forge.Maintainer},
		{"direct membership does not spread", w.cli.ID, w.rita.ID, forge.NoAccess},
		{"owner of a personal project", w.side.ID, w.alice.ID, forge.Owner},
		{"Reporter", w.side.ID, w.bot.ID, forge.Reporter},
		{"no membership", w.hello.ID, w.mal.ID, forge.NoAccess},
		{"unknown user", w.hello.ID, 9999, forge.NoAccess},
	}
	for _, tt := range tests {
		got, err := c.AccessLevel(ctx, tt.project, tt.user)
		if err != nil || got != tt.want {
			t.Errorf("%s: AccessLevel = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
}

func TestCurrentUserIsAskedOnce(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	for range 3 {
		u, err := c.CurrentUser(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if u != (forge.User{ID: w.bot.ID, Username: "upbuild-bot"}) {
			t.Errorf("CurrentUser = %+v", u)
		}
	}
	if n := len(w.rec.requests("GET", "user")); n != 1 {
		t.Errorf("GET /user sent %d times, want 1", n)
	}
}

func TestCreateProjectHook(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	ctx := context.Background()
	opts := forge.HookOptions{
		URL: "https://upbuild.example/hooks/gitlab", Token: "whtok-secret-1",
		TagPushEvents: true, MergeRequestEvents: true, NoteEvents: true, ReleaseEvents: true,
	}
	if _, err := w.client(t, w.bot.Token).CreateProjectHook(ctx, w.hello.ID, opts); !errors.Is(err, forge.ErrForbidden) {
		t.Errorf("Developer adding a hook: %v, want ErrForbidden", err)
	}
	id, err := w.client(t, w.alice.Token).CreateProjectHook(ctx, w.hello.ID, opts)
	if err != nil {
		t.Fatal(err)
	}
	hooks := w.sim.Hooks(w.hello.ID)
	if len(hooks) != 1 {
		t.Fatalf("hooks = %+v", hooks)
	}
	h := hooks[0]
	if h.ID != id || h.URL != opts.URL || h.Token != opts.Token || h.NoPushEvents ||
		!h.TagPushEvents || !h.MergeRequestsEvents || !h.NoteEvents || !h.ReleasesEvents || h.IssuesEvents {
		t.Errorf("hook = %+v (id %d returned)", h, id)
	}
}
