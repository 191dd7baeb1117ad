package gitlabsim_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

// openMR pushes a feature branch and opens a merge request from it.
func openMR(t *testing.T, w *world) gitlabsim.MergeRequest {
	t.Helper()
	ctx := context.Background()
	must[string](t)(w.sim.PushCommits(ctx, w.project.ID, "feature", "alice", gitlabsim.CommitSpec{
		Message: "Add feature", Changes: []gitlabsim.FileChange{{Path: "feature.txt", Content: "on\n"}},
	}))
	return must[gitlabsim.MergeRequest](t)(w.sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{
		ProjectID: w.project.ID, SourceBranch: "feature", Title: "Add a feature", Author: "alice",
	}))
}

func TestNotesCreateListEdit(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	mr := openMR(t, w)
	bot := w.client(t, w.bot.Token)

	note, _, err := bot.Notes.CreateMergeRequestNote(w.project.ID, mr.IID, &gitlab.CreateMergeRequestNoteOptions{Body: gitlab.Ptr("Builds queued")})
	if err != nil {
		t.Fatal(err)
	}
	if note.Body != "Builds queued" || note.Author.Username != "upbuild-bot" || note.NoteableType != "MergeRequest" || note.NoteableIID != mr.IID {
		t.Errorf("created note = %+v", note)
	}
	edited, _, err := bot.Notes.UpdateMergeRequestNote(w.project.ID, mr.IID, note.ID, &gitlab.UpdateMergeRequestNoteOptions{Body: gitlab.Ptr("Builds done")})
	if err != nil || edited.Body != "Builds done" || edited.ID != note.ID {
		t.Errorf("edited note = %+v, %v", edited, err)
	}
	_, _, err = w.client(t, w.maintainer.Token).Notes.UpdateMergeRequestNote(w.project.ID, mr.IID, note.ID, &gitlab.UpdateMergeRequestNoteOptions{Body: gitlab.Ptr("hijack")})
	if code, _ := apiStatus(t, err); code != http.StatusForbidden {
		t.Errorf("editing someone else's note: %d, want 403", code)
	}
	if _, err := w.sim.AddNote(context.Background(), w.project.ID, mr.IID, "alice", "/packit build"); err != nil {
		t.Fatal(err)
	}
	list, _, err := bot.Notes.ListMergeRequestNotes(w.project.ID, mr.IID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Body != "/packit build" || list[1].Body != "Builds done" {
		t.Errorf("notes (newest first) = %v", list)
	}
	if got := w.sim.Notes(w.project.ID, mr.IID); len(got) != 2 || got[0].Body != "Builds done" {
		t.Errorf("sim.Notes = %+v", got)
	}

	award, _, err := bot.AwardEmoji.CreateMergeRequestAwardEmojiOnNote(w.project.ID, mr.IID, list[0].ID, &gitlab.CreateAwardEmojiOptions{Name: "eyes"})
	if err != nil || award.Name != "eyes" || award.User.Username != "upbuild-bot" {
		t.Errorf("award = %+v, %v", award, err)
	}
	_, _, err = bot.AwardEmoji.CreateMergeRequestAwardEmojiOnNote(w.project.ID, mr.IID, list[0].ID, &gitlab.CreateAwardEmojiOptions{Name: "eyes"})
	if code, _ := apiStatus(t, err); code != http.StatusNotFound {
		t.Errorf("awarding twice: %d, want 404", code)
	}
	if got := w.sim.AwardEmoji(list[0].ID); len(got) != 1 || got[0].Name != "eyes" {
		t.Errorf("sim.AwardEmoji = %+v", got)
	}
}

func TestNoteCreationIsRateLimited(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{NotesPerMinute: 3})
	mr := openMR(t, w)
	bot := w.client(t, w.bot.Token)
	for i := range 3 {
		if _, _, err := bot.Notes.CreateMergeRequestNote(w.project.ID, mr.IID, &gitlab.CreateMergeRequestNoteOptions{Body: gitlab.Ptr("n" + strconv.Itoa(i))}); err != nil {
			t.Fatalf("note %d: %v", i, err)
		}
	}
	_, resp, err := bot.Notes.CreateMergeRequestNote(w.project.ID, mr.IID, &gitlab.CreateMergeRequestNoteOptions{Body: gitlab.Ptr("too many")})
	code, body := apiStatus(t, err)
	if code != http.StatusTooManyRequests || body != `{"message":{"error":"This endpoint has been requested too many times. Try again later."}}` {
		t.Errorf("4th note: %d %s", code, body)
	}
	// The world clock stands at hh:mm:30, so the window resets in 30 s.
	if ra := resp.Header.Get("Retry-After"); ra != "30" {
		t.Errorf("Retry-After = %q, want 30", ra)
	}
	if resp.Header.Get("RateLimit-Reset") == "" {
		t.Error("no RateLimit-Reset")
	}
	// Another user has their own budget; a new minute resets it.
	if _, _, err := w.client(t, w.maintainer.Token).Notes.CreateMergeRequestNote(w.project.ID, mr.IID, &gitlab.CreateMergeRequestNoteOptions{Body: gitlab.Ptr("hi")}); err != nil {
		t.Errorf("other user throttled: %v", err)
	}
	w.clock.Advance(30e9)
	if _, _, err := bot.Notes.CreateMergeRequestNote(w.project.ID, mr.IID, &gitlab.CreateMergeRequestNoteOptions{Body: gitlab.Ptr("later")}); err != nil {
		t.Errorf("after the window: %v", err)
	}
	if got := len(w.sim.Notes(w.project.ID, mr.IID)); got != 5 {
		t.Errorf("%d notes stored, want 5", got)
	}
}

func TestRateLimitsCanBeSwitchedOff(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{NotesPerMinute: 1, APIRequestsPerMinute: 1, DisableRateLimits: true})
	mr := openMR(t, w)
	bot := w.client(t, w.bot.Token)
	for i := range 5 {
		if _, _, err := bot.Notes.CreateMergeRequestNote(w.project.ID, mr.IID, &gitlab.CreateMergeRequestNoteOptions{Body: gitlab.Ptr("n")}); err != nil {
			t.Fatalf("note %d: %v", i, err)
		}
	}
}

func TestGlobalAPIRateLimit(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{APIRequestsPerMinute: 2})
	c := w.client(t, w.bot.Token)
	for range 2 {
		if _, _, err := c.Users.CurrentUser(); err != nil {
			t.Fatal(err)
		}
	}
	_, resp, err := c.Users.CurrentUser()
	if code, _ := apiStatus(t, err); code != http.StatusTooManyRequests {
		t.Fatalf("3rd call: %d", code)
	}
	if resp.Header.Get("RateLimit-Limit") != "2" || resp.Header.Get("RateLimit-Remaining") != "0" || resp.Header.Get("Retry-After") != "30" {
		t.Errorf("headers = %v", resp.Header)
	}
}

func TestMembersAllInheritance(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	ctx := context.Background()
	sub := must[gitlabsim.Group](t)(w.sim.AddGroup(gitlabsim.GroupSpec{Path: "apps", Parent: "GNOME"}))
	p := must[gitlabsim.Project](t)(w.sim.AddProject(ctx, gitlabsim.ProjectSpec{Namespace: "GNOME/apps", Path: "maps", Visibility: gitlabsim.Public}))
	dev := must[gitlabsim.User](t)(w.sim.AddUser(gitlabsim.UserSpec{Username: "dora"}))
	if err := w.sim.AddGroupMember(sub.ID, dev.ID, gitlabsim.Reporter); err != nil {
		t.Fatal(err)
	}
	if err := w.sim.AddProjectMember(p.ID, dev.ID, gitlabsim.Developer); err != nil {
		t.Fatal(err)
	}
	if err := w.sim.AddProjectMember(p.ID, w.maintainer.ID, gitlabsim.Guest); err != nil {
		t.Fatal(err)
	}
	c := w.client(t, w.bot.Token)
	cases := []struct {
		user gitlabsim.User
		want gitlab.AccessLevelValue
	}{
		{w.bot, gitlab.DeveloperPermissions},         // inherited from GNOME
		{w.maintainer, gitlab.MaintainerPermissions}, // max(direct Guest, inherited Maintainer)
		{dev, gitlab.DeveloperPermissions},           // max(direct Developer, subgroup Reporter)
	}
	for _, tc := range cases {
		m, _, err := c.ProjectMembers.GetInheritedProjectMember("GNOME/apps/maps", tc.user.ID)
		if err != nil {
			t.Errorf("%s: %v", tc.user.Username, err)
			continue
		}
		if m.AccessLevel != tc.want || m.Username != tc.user.Username {
			t.Errorf("%s: access %d, want %d", tc.user.Username, m.AccessLevel, tc.want)
		}
	}
	_, _, err := c.ProjectMembers.GetInheritedProjectMember(p.ID, w.outsider.ID)
	if code, body := apiStatus(t, err); code != http.StatusNotFound {
		t.Errorf("non-member: %d %s", code, body)
	}
}

func TestUsersAndIssues(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	bot := w.client(t, w.bot.Token)
	me, _, err := bot.Users.CurrentUser()
	if err != nil || me.Username != "upbuild-bot" || me.ID != w.bot.ID || !me.Bot {
		t.Errorf("current user = %+v, %v", me, err)
	}
	found, _, err := bot.Users.ListUsers(&gitlab.ListUsersOptions{Username: gitlab.Ptr("alice")})
	if err != nil || len(found) != 1 || found[0].ID != w.maintainer.ID {
		t.Errorf("users?username=alice = %v, %v", found, err)
	}
	_, _, err = w.client(t, "").Users.CurrentUser()
	if code, _ := apiStatus(t, err); code != http.StatusUnauthorized {
		t.Errorf("anonymous /user: %d", code)
	}

	issue, _, err := bot.Issues.CreateIssue(w.project.ID, &gitlab.CreateIssueOptions{
		Title: gitlab.Ptr("upbuild: token missing"), Confidential: gitlab.Ptr(true), Description: gitlab.Ptr("details"),
	})
	if err != nil || !issue.Confidential || issue.Title != "upbuild: token missing" || issue.IID != 1 {
		t.Fatalf("issue = %+v, %v", issue, err)
	}
	if list, _, err := w.client(t, w.outsider.Token).Issues.ListProjectIssues(w.project.ID, nil); err != nil || len(list) != 0 {
		t.Errorf("outsider sees %d confidential issues, %v", len(list), err)
	}
	if list, _, err := w.client(t, w.reporter.Token).Issues.ListProjectIssues(w.project.ID, nil); err != nil || len(list) != 1 {
		t.Errorf("reporter sees %d issues, %v", len(list), err)
	}
	if got := w.sim.Issues(w.project.ID); len(got) != 1 || !got[0].Confidential {
		t.Errorf("sim.Issues = %+v", got)
	}
}

func TestMergeRequestAPI(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	mr := openMR(t, w)
	got, _, err := w.client(t, w.bot.Token).MergeRequests.GetMergeRequest("GNOME/gtk", mr.IID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.IID != mr.IID || got.SHA != mr.HeadSHA || got.SourceBranch != "feature" || got.TargetBranch != "main" ||
		got.State != "opened" || got.Author.Username != "alice" || got.SourceProjectID != w.project.ID {
		t.Errorf("merge request = %+v", got)
	}
	commits, _, err := w.client(t, w.bot.Token).MergeRequests.GetMergeRequestCommits(w.project.ID, mr.IID, nil)
	if err != nil || len(commits) != 1 || commits[0].ID != mr.HeadSHA || commits[0].Title != "Add feature" {
		t.Errorf("merge request commits = %v, %v", commits, err)
	}
}
