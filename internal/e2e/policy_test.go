package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

func TestTokenlessDeliveryFromAnAllowedNamespaceGetsOneSetupIssue(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnvWith(t, dbURL, stacktest.Options{Configure: allowDemo})
		p, err := e.Sim.AddProject(e.Context(), gitlabsim.ProjectSpec{Namespace: "demo", Path: "newcomer", Visibility: gitlabsim.Public,
			DefaultBranch: "main", Files: projectFiles})
		if err != nil {
			t.Fatal(err)
		}
		// The maintainer added the hook but no secret token.
		if _, err := e.Sim.AddHook(p.ID, gitlabsim.HookSpec{URL: e.URL + "/api/webhooks/gitlab", MergeRequestsEvents: true}); err != nil {
			t.Fatal(err)
		}
		e.openMR(p, "alice", "one")
		e.openMR(p, "alice", "two")
		e.Eventually("one confidential setup issue", func() (bool, string) {
			is := e.Sim.Issues(p.ID)
			return len(is) == 1 && is[0].Confidential && strings.Contains(is[0].Description, "Secret token"), fmt.Sprint(is)
		})
		time.Sleep(300 * time.Millisecond)
		if n := len(e.Sim.Issues(p.ID)); n != 1 {
			t.Fatalf("%d setup issues, want exactly 1", n)
		}
		for _, d := range e.Sim.Deliveries() {
			if d.ProjectID == p.ID && d.StatusCode != 401 {
				t.Errorf("a tokenless delivery got %d, want 401", d.StatusCode)
			}
		}
		if runs := e.Runs(p.ID); len(runs) != 0 {
			t.Fatalf("tokenless deliveries started runs: %+v", runs)
		}
		// A wrong token (not a missing one) earns nothing.
		q, err := e.Sim.AddProject(e.Context(), gitlabsim.ProjectSpec{Namespace: "demo", Path: "typo", Visibility: gitlabsim.Public,
			DefaultBranch: "main", Files: projectFiles})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Sim.AddHook(q.ID, gitlabsim.HookSpec{URL: e.URL + "/api/webhooks/gitlab", Token: "wrong", MergeRequestsEvents: true}); err != nil {
			t.Fatal(err)
		}
		e.openMR(q, "alice", "x")
		if err := e.Sim.WaitDeliveries(e.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if is := e.Sim.Issues(q.ID); len(is) != 0 {
			t.Fatalf("a wrong token earned a setup issue: %+v", is)
		}
	})
}

func TestProjectOutsideTheAllowListGetsOneExplanation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnvWith(t, dbURL, stacktest.Options{Configure: allowDemo})
		g, err := e.Sim.AddGroup(gitlabsim.GroupSpec{Path: "elsewhere", Name: "Elsewhere"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Sim.AddGroupMember(g.ID, e.Seed.Bot.ID, gitlabsim.Developer); err != nil {
			t.Fatal(err)
		}
		p, err := e.Sim.AddProject(e.Context(), gitlabsim.ProjectSpec{Namespace: "elsewhere", Path: "pkg", Visibility: gitlabsim.Public,
			DefaultBranch: "main", Files: projectFiles})
		if err != nil {
			t.Fatal(err)
		}
		e.Hook(p.ID)
		mr := e.openMR(p, "alice", "feature")
		if _, err := e.Sim.PushCommits(e.Context(), p.ID, "feature", "alice", gitlabsim.CommitSpec{Message: "again",
			Changes: []gitlabsim.FileChange{{Path: "README", Content: "again\n"}}}); err != nil {
			t.Fatal(err)
		}
		e.Eventually("one explanation", func() (bool, string) {
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			return len(notes) == 1 && strings.Contains(notes[0], "not in the list of namespaces"), fmt.Sprint(notes)
		})
		time.Sleep(300 * time.Millisecond)
		if n := len(e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)); n != 1 {
			t.Fatalf("%d explanations, want 1", n)
		}
		if st := e.statuses(p.ID, mr.HeadSHA); len(st) != 0 {
			t.Fatalf("statuses outside the allow-list: %v", st)
		}
	})
}

func TestBrokenConfigGetsOneCommentWithFileLineAndColumn(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		broken := map[string]string{
			".packit.yaml": "specfile_path: pkg.spec\nsynced_files:\n  - pkg.spec\njobs:\n  - job: copr_build\n    trigger: pull_request\n",
			"pkg.spec":     "Name: pkg\n",
		}
		p := e.Project("broken", broken)
		mr := e.openMR(p, "alice", "feature")
		e.Eventually("a config error comment", func() (bool, string) {
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			return len(notes) == 1 && strings.Contains(notes[0], "`.packit.yaml` line 2, column 1") &&
				strings.Contains(notes[0], "synced\\_files"), fmt.Sprint(notes)
		})
		if st := e.statuses(p.ID, mr.HeadSHA); len(st) != 0 {
			t.Fatalf("a broken config produced statuses: %v", st)
		}
		runs := e.Runs(p.ID)
		if len(runs) != 1 || runs[0].State != store.RunConfigError {
			t.Fatalf("runs %+v", runs)
		}
	})
}

func TestNewCommitsCancelHeldJobsOfTheOldCommit(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("pkg", projectFiles)
		e.User("mallory", 0)
		fork, mr := e.forkMR(p, "mallory")
		if err := e.Sim.AddProjectMember(fork.ID, e.Seed.Bot.ID, gitlabsim.Developer); err != nil {
			t.Fatal(err)
		}
		e.Eventually("held", func() (bool, string) {
			st := e.statuses(fork.ID, mr.HeadSHA)
			return len(st) == 2 && st["rpm-build:fedora-rawhide-x86_64"] == "pending", fmt.Sprint(st)
		})
		if _, err := e.Sim.PushCommits(e.Context(), fork.ID, "fix", "mallory", gitlabsim.CommitSpec{Message: "more",
			Changes: []gitlabsim.FileChange{{Path: "README", Content: "more\n"}}}); err != nil {
			t.Fatal(err)
		}
		got := e.allFinal(fork.ID, mr.HeadSHA, 2)
		for name, st := range got {
			if st != "canceled" {
				t.Errorf("old commit's %s is %s, want canceled", name, st)
			}
		}
		e.neverBackwards(fork.ID)
	})
}

func TestCommandOnACommitIsAnsweredOnTheCommit(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("pkg", projectFiles)
		sha, err := e.Sim.BranchHead(e.Context(), p.ID, "main")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Sim.AddCommitNote(e.Context(), p.ID, sha, "alice", "/packit build"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("an answer on the commit", func() (bool, string) {
			var bodies []string
			for _, n := range e.Sim.CommitNotes(p.ID, sha) {
				if n.AuthorID == e.Seed.Bot.ID {
					bodies = append(bodies, n.Body)
				}
			}
			return len(bodies) == 1 && strings.Contains(bodies[0], "merge request comments"), fmt.Sprint(bodies)
		})
	})
}
