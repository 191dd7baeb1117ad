package report_test

import (
	"context"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/store"
)

func TestForkWithoutBotAccessGetsOneResultsCommentKeptUpToDate(t *testing.T) {
	for _, vis := range []struct {
		name       string
		visibility gitlabsim.Visibility // the fork's, inherited from upstream
	}{
		{"public fork answers 403", gitlabsim.Public},
		{"private fork answers 404", gitlabsim.Private},
	} {
		t.Run(vis.name, func(t *testing.T) {
			each(t, func(t *testing.T, e *env) {
				ctx := context.Background()
				upstream := must(e.sim.AddProject(ctx, gitlabsim.ProjectSpec{Namespace: "GNOME", Path: "glib",
					Visibility: vis.visibility, Files: map[string]string{"glib.spec": "Name: glib\n"}}))(t)
				fork := must(e.sim.ForkProject(ctx, upstream.ID, "mallory"))(t)
				sha := must(e.sim.CommitFiles(ctx, fork.ID, "fix", "Fix", []gitlabsim.FileChange{{Path: "a", Content: "b"}}, "mallory"))(t)
				mr := must(e.sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{ProjectID: upstream.ID, SourceProjectID: fork.ID,
					SourceBranch: "fix", Author: "mallory"}))(t)
				rep := e.reporter(t)
				jobs := e.plan(t, run{key: "fork", sha: sha, ref: "fix", mrIID: mr.IID, projectID: upstream.ID,
					sourceProjectID: fork.ID, names: []string{"rpm-build:fedora-rawhide", "tests:fedora-rawhide"}})
				flush(t, rep)

				notes := e.botNotes(upstream.ID, mr.IID)
				if len(notes) != 1 {
					t.Fatalf("bot wrote %d notes, want one results comment", len(notes))
				}
				contains(t, "results comment", notes[0].Body, sha[:12], "| rpm-build:fedora-rawhide | ⏳ pending | queued |",
					"| tests:fedora-rawhide | ⏳ pending |", "(https://upbuild.example/jobs/",
					"Project → Manage → Members", "@upbuild-bot", "**Developer**", "fork")

				e.move(t, jobs[0], store.JobRunning, store.JobSuccess)
				e.move(t, jobs[1], store.JobRunning)
				flush(t, rep)
				e.move(t, jobs[1], store.JobFailed)
				flush(t, rep)
				flush(t, rep)

				after := e.botNotes(upstream.ID, mr.IID)
				if len(after) != 1 || after[0].ID != notes[0].ID {
					t.Fatalf("bot notes after updates: %+v, want the first note edited in place", after)
				}
				contains(t, "updated results comment", after[0].Body, "| rpm-build:fedora-rawhide | ✅ success |",
					"| tests:fedora-rawhide | ❌ failed |")
				if strings.Contains(after[0].Body, "pending") {
					t.Errorf("updated comment still shows an old state:\n%s", after[0].Body)
				}
				if st := e.sim.Statuses(fork.ID, sha); len(st) != 0 {
					t.Errorf("statuses appeared on the fork the bot may not write to: %+v", st)
				}
				if pl := e.sim.Pipelines(fork.ID); len(pl) != 0 {
					t.Errorf("pipelines appeared on the fork: %+v", pl)
				}
				for _, row := range must(e.store.StatusesOf(ctx, e.url, fork.ID, sha))(t) {
					if row.SentVersion != row.Version || !strings.Contains(row.LastError, "results comment") {
						t.Errorf("status row %s: sent %d of %d, note %q", row.Name, row.SentVersion, row.Version, row.LastError)
					}
				}
			})
		})
	}
}

func TestForkWhereTheBotIsDeveloperGetsStatuses(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		fork := must(e.sim.ForkProject(ctx, e.project.ID, "mallory"))(t)
		check(t, e.sim.AddProjectMember(fork.ID, e.bot.ID, gitlabsim.Developer))
		sha := must(e.sim.CommitFiles(ctx, fork.ID, "fix", "Fix", []gitlabsim.FileChange{{Path: "a", Content: "b"}}, "mallory"))(t)
		mr := e.openMR(t, fork.ID, "fix", "mallory")
		rep := e.reporter(t)
		jobs := e.plan(t, run{key: "fork", sha: sha, ref: "fix", mrIID: mr.IID, projectID: e.project.ID,
			sourceProjectID: fork.ID, names: []string{"build"}})
		e.move(t, jobs[0], store.JobSuccess)
		flush(t, rep)
		if st := e.sim.Statuses(fork.ID, sha); len(st) != 1 || st[0].Status != "success" {
			t.Fatalf("statuses on the fork: %+v", st)
		}
		if notes := e.botNotes(e.project.ID, mr.IID); len(notes) != 0 {
			t.Fatalf("a results comment although statuses work: %+v", notes)
		}
	})
}
