package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/testdb"
)

// forkMR has an outside contributor fork the project and open an MR from it.
func (e *env) forkMR(p gitlabsim.Project, who string) (gitlabsim.Project, gitlabsim.MergeRequest) {
	e.t.Helper()
	fork, err := e.Sim.ForkProject(e.Context(), p.ID, who)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.Sim.PushCommits(e.Context(), fork.ID, "fix", who, gitlabsim.CommitSpec{Message: "fix",
		Changes: []gitlabsim.FileChange{{Path: "README", Content: "a fix from " + who + "\n"}}}); err != nil {
		e.t.Fatal(err)
	}
	mr, err := e.Sim.OpenMergeRequest(e.Context(), gitlabsim.MergeRequestSpec{ProjectID: p.ID, SourceProjectID: fork.ID,
		SourceBranch: "fix", TargetBranch: "main", Title: "Fix from " + who, Author: who})
	if err != nil {
		e.t.Fatal(err)
	}
	return fork, mr
}

func TestForkMergeRequestWithBotAccessGetsStatusesOnTheFork(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnvWith(t, dbURL, stacktest.Options{Configure: func(cfg *config.Config) { cfg.ApprovalPolicy = "off" }})
		p := e.Project("pkg", projectFiles)
		e.User("mallory", 0)
		fork, err := e.Sim.ForkProject(e.Context(), p.ID, "mallory")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Sim.AddProjectMember(fork.ID, e.Seed.Bot.ID, gitlabsim.Developer); err != nil {
			t.Fatal(err)
		}
		sha, err := e.Sim.PushCommits(e.Context(), fork.ID, "fix", "mallory", gitlabsim.CommitSpec{Message: "fix",
			Changes: []gitlabsim.FileChange{{Path: "README", Content: "fix\n"}}})
		if err != nil {
			t.Fatal(err)
		}
		mr, err := e.Sim.OpenMergeRequest(e.Context(), gitlabsim.MergeRequestSpec{ProjectID: p.ID, SourceProjectID: fork.ID,
			SourceBranch: "fix", TargetBranch: "main", Title: "fix", Author: "mallory"})
		if err != nil {
			t.Fatal(err)
		}
		if mr.HeadSHA != sha {
			t.Fatalf("MR head %s, pushed %s", mr.HeadSHA, sha)
		}
		e.allFinal(fork.ID, sha, 2)
		if got := e.statuses(p.ID, sha); len(got) != 0 {
			t.Errorf("statuses landed on the target project: %v", got)
		}
		if notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID); len(notes) != 0 {
			t.Errorf("the bot commented although it could set statuses: %v", notes)
		}
	})
}

func TestForkMergeRequestWithoutBotAccessGetsOneResultsComment(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnvWith(t, dbURL, stacktest.Options{Configure: func(cfg *config.Config) { cfg.ApprovalPolicy = "off" }})
		p := e.Project("pkg", projectFiles)
		e.User("mallory", 0)
		fork, mr := e.forkMR(p, "mallory")
		var notes []string
		e.Eventually("a results comment listing both jobs as skipped", func() (bool, string) {
			notes = e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			if len(notes) != 1 {
				return false, fmt.Sprint(notes)
			}
			return strings.Count(notes[0], "skipped") >= 2, notes[0]
		})
		body := notes[0]
		for _, want := range []string{"rpm-build:fedora-rawhide-x86_64", "testing-farm:fedora-rawhide-x86_64", "Developer", "@upbuild-bot"} {
			if !strings.Contains(body, want) {
				t.Errorf("results comment lacks %q:\n%s", want, body)
			}
		}
		if got := e.statuses(fork.ID, mr.HeadSHA); len(got) != 0 {
			t.Errorf("statuses on a fork the bot cannot write to: %v", got)
		}
		// Still one comment a little later: it is updated in place, never repeated.
		time.Sleep(300 * time.Millisecond)
		if n := len(e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)); n != 1 {
			t.Fatalf("%d bot comments, want 1 updated in place", n)
		}
	})
}

func TestApprovalGateHoldsForkMRsUntilADeveloperApproves(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL) // default policy: forks
		p := e.Project("pkg", projectFiles)
		e.User("mallory", 0)
		dave := e.User("dave", gitlabsim.Developer)
		fork, mr := e.forkMR(p, "mallory")
		if err := e.Sim.AddProjectMember(fork.ID, e.Seed.Bot.ID, gitlabsim.Developer); err != nil {
			t.Fatal(err)
		}
		e.Eventually("held jobs shown as pending, and the gate explained", func() (bool, string) {
			st := e.Sim.Statuses(fork.ID, mr.HeadSHA)
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			ok := len(st) == 2 && st[0].Status == "pending" && strings.Contains(st[0].Description, "approve") &&
				contains(notes, "/packit approve")
			return ok, fmt.Sprint(st, notes)
		})
		// The fork's author cannot lift the gate by asking for a build.
		note, err := e.Sim.AddNote(e.Context(), p.ID, mr.IID, "mallory", "/packit build")
		if err != nil {
			t.Fatal(err)
		}
		e.Eventually("a polite refusal to the gated author", func() (bool, string) {
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			return contains(notes, "Sorry @mallory") && contains(notes, "approval"), fmt.Sprint(notes)
		})
		if len(e.Sim.AwardEmoji(note.ID)) != 0 {
			t.Error("a refused command got an acknowledgement emoji")
		}
		approve, err := e.Sim.AddNote(e.Context(), p.ID, mr.IID, dave.Username, "/packit approve")
		if err != nil {
			t.Fatal(err)
		}
		e.allFinal(fork.ID, mr.HeadSHA, 2)
		e.Eventually("eyes on the approval", func() (bool, string) {
			em := e.Sim.AwardEmoji(approve.ID)
			return len(em) == 1 && em[0].Name == "eyes", fmt.Sprint(em)
		})
		audit, err := e.Server.Store().AuditLog(e.Context(), e.Sim.BaseURL(), p.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(audit) != 1 || audit[0].Actor != dave.Username || audit[0].Action != "run.approve" ||
			!strings.Contains(audit[0].Detail, mr.HeadSHA[:12]) {
			t.Fatalf("audit log after the approval = %+v, want one run.approve by %s", audit, dave.Username)
		}
		// A new commit needs a new approval.
		sha2, err := e.Sim.PushCommits(e.Context(), fork.ID, "fix", "mallory", gitlabsim.CommitSpec{Message: "more",
			Changes: []gitlabsim.FileChange{{Path: "README", Content: "more\n"}}})
		if err != nil {
			t.Fatal(err)
		}
		e.Eventually("the new commit held again", func() (bool, string) {
			st := e.Sim.Statuses(fork.ID, sha2)
			return len(st) == 2 && st[0].Status == "pending" && st[1].Status == "pending", fmt.Sprint(st)
		})
		e.neverBackwards(fork.ID)
	})
}

func TestCommentCommands(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("pkg", projectFiles)
		dave := e.User("dave", gitlabsim.Developer)
		gus := e.User("gus", gitlabsim.Guest)
		mr := e.openMR(p, "alice", "feature")
		e.allFinal(p.ID, mr.HeadSHA, 2)
		before := len(e.Runs(p.ID))

		// A Developer re-triggers the builds: eyes, and a new build job on the same commit.
		n1, err := e.Sim.AddNote(e.Context(), p.ID, mr.IID, dave.Username, "Let's try again.\n/packit build")
		if err != nil {
			t.Fatal(err)
		}
		e.Eventually("eyes and a new run for the Developer's command", func() (bool, string) {
			em := e.Sim.AwardEmoji(n1.ID)
			return len(em) == 1 && em[0].Name == "eyes" && len(e.Runs(p.ID)) == before+1, fmt.Sprint(em, len(e.Runs(p.ID)))
		})
		runs := e.Runs(p.ID)
		jobs, _ := e.Server.Store().RunJobs(e.Context(), runs[0].ID)
		if len(jobs) != 1 || jobs[0].JobType != "copr_build" {
			t.Fatalf("/packit build ran %+v, want the one copr_build job", jobs)
		}
		// A Guest is refused politely, and nothing runs.
		if _, err := e.Sim.AddNote(e.Context(), p.ID, mr.IID, gus.Username, "/packit test"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("a refusal for the Guest", func() (bool, string) {
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			return contains(notes, "Sorry @gus"), fmt.Sprint(notes)
		})
		// A typo gets a helpful answer.
		if _, err := e.Sim.AddNote(e.Context(), p.ID, mr.IID, dave.Username, "/packit biuld"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("a suggestion for the typo", func() (bool, string) {
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			return contains(notes, `did you mean "build"`), fmt.Sprint(notes)
		})
		// What was typed is quoted back escaped: the bot mentions no one.
		if _, err := e.Sim.AddNote(e.Context(), p.ID, mr.IID, dave.Username, "/packit @all"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("an answer to the unknown command", func() (bool, string) {
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			return contains(notes, "unknown command"+` "`+"@\u200ball"), fmt.Sprint(notes)
		})
		for _, n := range e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID) {
			// Code spans are shown as typed and mention no one.
			outside := ""
			for i, part := range strings.Split(n, "`") {
				if i%2 == 0 {
					outside += part
				}
			}
			if strings.Contains(outside, "@all") {
				t.Errorf("the bot's comment mentions @all outside a code span: %q", n)
			}
		}
		// The bot's own comments are never commands.
		botNotes := len(e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID))
		if _, err := e.Sim.AddNote(e.Context(), p.ID, mr.IID, e.Seed.Bot.Username, "/packit build"); err != nil {
			t.Fatal(err)
		}
		if err := e.Sim.WaitDeliveries(e.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if got := len(e.Runs(p.ID)); got != before+1 {
			t.Errorf("%d runs after the bot's own /packit build, want %d", got, before+1)
		}
		if got := len(e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)); got != botNotes+1 {
			// +1: the bot's own comment itself, and no answer to it.
			t.Errorf("the bot answered itself: %d notes, want %d", got, botNotes+1)
		}
		// help lists the commands.
		if _, err := e.Sim.AddNote(e.Context(), p.ID, mr.IID, gus.Username, "/packit help"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the help text", func() (bool, string) {
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			return contains(notes, "retest-failed"), fmt.Sprint(notes)
		})
	})
}

func TestGitLabDownThenBack(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("pkg", projectFiles)
		e.Sim.InjectFault(gitlabsim.Fault{PathPrefix: "/api/v4/", Kind: gitlabsim.FaultDown, For: 3 * time.Second})
		mr := e.openMR(p, "alice", "feature")
		e.allFinal(p.ID, mr.HeadSHA, 2)
		e.neverBackwards(p.ID)
	})
}

func TestRateLimitedNotesAreHonoured(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("pkg", projectFiles)
		gus := e.User("gus", gitlabsim.Guest)
		mr := e.openMR(p, "alice", "feature")
		e.allFinal(p.ID, mr.HeadSHA, 2)
		e.Sim.InjectFault(gitlabsim.Fault{Method: "POST", PathPrefix: fmt.Sprintf("/api/v4/projects/%d/merge_requests/%d/notes", p.ID, mr.IID),
			Kind: gitlabsim.FaultRateLimit, RetryAfter: time.Second, Times: 1})
		asked := time.Now()
		if _, err := e.Sim.AddNote(e.Context(), p.ID, mr.IID, gus.Username, "/packit build"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the refusal after the rate limit", func() (bool, string) {
			notes := e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID)
			return contains(notes, "Sorry @gus"), fmt.Sprint(notes)
		})
		if waited := time.Since(asked); waited < time.Second {
			t.Errorf("the reply came %s after the comment, before Retry-After (1s) had passed", waited)
		}
		n := 0
		for _, body := range e.notesBy(p.ID, mr.IID, e.Seed.Bot.ID) {
			if strings.Contains(body, "Sorry @gus") {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d replies, want exactly 1", n)
		}
	})
}
