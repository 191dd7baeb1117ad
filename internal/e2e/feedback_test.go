package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/summary"
	"upbuild.dev/upbuild/internal/testdb"
)

func TestSummaryCommentIsOneCommentUpdatedInPlace(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		files := map[string]string{".packit.yaml": packitYAML, "pkg.spec": "Name: pkg\n", ".upbuild.yaml": "summary_comment: true\n"}
		p := e.Project("pkg", files)
		mr := e.openMR(p, "alice", "feature")
		e.allFinal(p.ID, mr.HeadSHA, 2)
		e.Eventually("a summary listing both jobs as skipped", func() (bool, string) {
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			return len(notes) == 1 && strings.HasPrefix(notes[0], summary.Marker) && strings.Count(notes[0], "| skipped |") == 2,
				fmt.Sprint(notes)
		})
		// New commits: the same comment now shows the new run.
		sha2, err := e.Sim.PushCommits(e.Context(), p.ID, "feature", "alice", gitlabsim.CommitSpec{Message: "more",
			Changes: []gitlabsim.FileChange{{Path: "README", Content: "more\n"}}})
		if err != nil {
			t.Fatal(err)
		}
		e.allFinal(p.ID, sha2, 2)
		e.Eventually("the summary about the new commit, still one comment", func() (bool, string) {
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			return len(notes) == 1 && strings.Contains(notes[0], "for commit "+sha2[:8]), fmt.Sprint(notes)
		})
	})
}

func TestFailureCommentNotification(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		cfg := `specfile_path: pkg.spec
notifications:
  failure_comment:
    message: "Builds failed, please check the logs."
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
`
		p := e.Project("pkg", map[string]string{".packit.yaml": cfg, "pkg.spec": "Name: pkg\n"})
		e.User("mallory", 0)
		fork, mr := e.forkMR(p, "mallory")
		if err := e.Sim.AddProjectMember(fork.ID, e.Seed.Bot.ID, gitlabsim.Developer); err != nil {
			t.Fatal(err)
		}
		// The gate holds the job; the executor (issue 4) is simulated by
		// recording the outcome it would record.
		var jobID int64
		e.Eventually("a held job", func() (bool, string) {
			for _, r := range e.Runs(p.ID) {
				js, _ := e.Server.Store().RunJobs(e.Context(), r.ID)
				for _, j := range js {
					if j.State == store.JobHeld {
						jobID = j.ID
						return true, ""
					}
				}
			}
			return false, ""
		})
		if _, err := e.Server.Store().SetJobState(e.Context(), jobID, store.JobFailed, "rpmbuild failed"); err != nil {
			t.Fatal(err)
		}
		e.Server.Reporter().Wake()
		e.Eventually("the failed status and Packit's failure comment", func() (bool, string) {
			st := e.statuses(fork.ID, mr.HeadSHA)
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			return st["rpm-build:fedora-rawhide-x86_64"] == "failed" && contains(notes, "Builds failed, please check the logs."),
				fmt.Sprint(st, notes)
		})
		time.Sleep(300 * time.Millisecond)
		n := 0
		for _, b := range e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID) {
			if strings.Contains(b, "Builds failed") {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d failure comments, want 1", n)
		}
	})
}

func TestJobPageIsWhereStatusesLink(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("pkg", projectFiles)
		mr := e.openMR(p, "alice", "feature")
		e.allFinal(p.ID, mr.HeadSHA, 2)
		st := e.Sim.Statuses(p.ID, mr.HeadSHA)[0]
		resp, err := http.Get(st.TargetURL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(body)
		if resp.StatusCode != 200 || !strings.Contains(page, st.Name) || !strings.Contains(page, "demo/pkg") ||
			!strings.Contains(page, "merge request !1") || !strings.Contains(page, "skipped") {
			t.Fatalf("job page %d:\n%s", resp.StatusCode, page)
		}
		if resp, err := http.Get(e.URL + "/jobs/999999"); err != nil || resp.StatusCode != 404 {
			t.Fatalf("a missing job: %v %v", resp.StatusCode, err)
		}
	})
}
