package report_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/report"
	"upbuild.dev/upbuild/internal/store"
)

// firstPosts counts the status posts that named no pipeline, holding each
// one back a little so that parallel first posts would overlap.
type firstPosts struct {
	forge.Forge
	withoutPipeline atomic.Int32
}

func (f *firstPosts) SetCommitStatus(ctx context.Context, projectID int64, sha string, u forge.StatusUpdate) (int64, error) {
	if u.PipelineID == 0 {
		f.withoutPipeline.Add(1)
		time.Sleep(20 * time.Millisecond)
	}
	return f.Forge.SetCommitStatus(ctx, projectID, sha, u)
}

func TestStatusesArriveInOrderInOnePipeline(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		wire := &firstPosts{Forge: e.forge}
		rep := e.reporter(t, func(o *report.Options) { o.Forges = map[string]forge.Forge{e.url: wire} })
		names := []string{"rpm-build:fedora-rawhide", "rpm-build:fedora-42", "rpm-build:epel-9", "tests:fedora-rawhide",
			"tests:fedora-42", "propose-downstream"}
		jobs := e.plan(t, run{key: "r1", sha: e.sha, ref: "feature", projectID: e.project.ID, names: names})
		flush(t, rep)
		e.move(t, jobs[0], store.JobRunning)
		flush(t, rep)
		e.move(t, jobs[0], store.JobSuccess)
		e.move(t, jobs[1], store.JobRunning)
		flush(t, rep)
		e.move(t, jobs[1], store.JobFailed)
		flush(t, rep)

		want := map[string][]string{
			names[0]: {"created>pending", "pending>running", "running>success"},
			names[1]: {"created>pending", "pending>running", "running>failed"},
			names[2]: {"created>pending"},
		}
		for name, w := range want {
			if got := e.transitions(name); !slices.Equal(got, w) {
				t.Errorf("transitions of %s = %v, want %v", name, got, w)
			}
		}
		if pipelines := e.sim.Pipelines(e.project.ID); len(pipelines) != 1 {
			t.Fatalf("%d pipelines for one SHA, want 1: %+v", len(pipelines), pipelines)
		}
		// On GitLab, parallel posts without a pipeline ID can each create a
		// pipeline; only the first status of a SHA may go without one.
		if n := wire.withoutPipeline.Load(); n != 1 {
			t.Fatalf("%d status posts named no pipeline, want only the first", n)
		}
		statuses := e.sim.Statuses(e.project.ID, e.sha)
		if len(statuses) != len(names) {
			t.Fatalf("%d statuses on the commit, want %d", len(statuses), len(names))
		}
		for _, st := range statuses {
			if st.Ref != "feature" || !strings.HasPrefix(st.TargetURL, "https://upbuild.example/jobs/") {
				t.Errorf("status %s: ref %q, target URL %q", st.Name, st.Ref, st.TargetURL)
			}
		}
	})
}

// A status whose job moved on before the reporter ran shows pending, then
// its latest state: the running in between is never sent.
func TestOnlyTheFinalStateOfAStatusIsSent(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		rep := e.reporter(t)
		jobs := e.plan(t, run{key: "r1", sha: e.sha, ref: "feature", projectID: e.project.ID, names: []string{"rpm-build:fedora-rawhide"}})
		e.move(t, jobs[0], store.JobRunning, store.JobSuccess)
		flush(t, rep)
		flush(t, rep)
		if got := e.transitions("rpm-build:fedora-rawhide"); !slices.Equal(got, []string{"created>pending", "pending>success"}) {
			t.Fatalf("transitions %v, want pending and then the final state only", got)
		}
		if st := e.sim.Statuses(e.project.ID, e.sha); len(st) != 1 || st[0].Description != "now success" {
			t.Fatalf("statuses %+v", st)
		}
	})
}

// rank orders states the way a status may move.
func rank(state string) int {
	switch state {
	case "created":
		return 0
	case "pending":
		return 1
	case "running":
		return 2
	}
	return 3
}

func TestEveryFinalStatusArrivesAfterGitLabWasDown(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		rep := e.reporter(t)
		names := []string{"build:a", "build:b", "build:c", "build:d"}
		jobs := e.plan(t, run{key: "r1", sha: e.sha, ref: "feature", projectID: e.project.ID, names: names})
		flush(t, rep) // all pending
		e.move(t, jobs[0], store.JobRunning)

		e.sim.InjectFault(gitlabsim.Fault{Kind: gitlabsim.FaultDown})
		flush(t, rep)
		e.move(t, jobs[0], store.JobSuccess)
		e.move(t, jobs[1], store.JobRunning)
		e.move(t, jobs[2], store.JobRunning, store.JobFailed)
		for range 5 { // minutes of outage, with the back-off growing
			e.clock.Advance(time.Minute)
			flush(t, rep)
		}
		e.move(t, jobs[1], store.JobSuccess)
		e.move(t, jobs[3], store.JobCanceled)
		flush(t, rep)
		if got := e.transitions("build:a"); !slices.Equal(got, []string{"created>pending"}) {
			t.Fatalf("a status changed while GitLab was down: %v", got)
		}

		e.sim.ClearFaults()
		e.clock.Advance(5 * time.Minute) // the longest back-off
		flush(t, rep)

		final := map[string]string{}
		for _, st := range e.sim.Statuses(e.project.ID, e.sha) {
			final[st.Name] = st.Status
		}
		want := map[string]string{"build:a": "success", "build:b": "success", "build:c": "failed", "build:d": "canceled"}
		if fmt.Sprint(final) != fmt.Sprint(want) {
			t.Fatalf("statuses after the outage %v, want %v", final, want)
		}
		for _, name := range names {
			last := 0
			for _, tr := range e.transitions(name) {
				_, to, _ := strings.Cut(tr, ">")
				if rank(to) < last {
					t.Errorf("status %s went backwards: %v", name, e.transitions(name))
				}
				last = rank(to)
			}
		}
		if pipelines := e.sim.Pipelines(e.project.ID); len(pipelines) != 1 {
			t.Fatalf("%d pipelines, want 1", len(pipelines))
		}
	})
}

// olderGitLab is a forge that, like GitLab before the skipped state
// existed, refuses it in the API's parameter validation.
type olderGitLab struct {
	forge.Forge
	skippedPosts atomic.Int32
}

func (o *olderGitLab) SetCommitStatus(ctx context.Context, projectID int64, sha string, u forge.StatusUpdate) (int64, error) {
	if u.State == forge.StatusSkipped {
		o.skippedPosts.Add(1)
		return 0, fmt.Errorf("gitlab: set status %q to skipped: GitLab answered 400: state does not have a valid value: %w",
			u.Name, forge.ErrPermanent)
	}
	return o.Forge.SetCommitStatus(ctx, projectID, sha, u)
}

func TestSkippedIsNotSentToAGitLabThatRefusesIt(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		older := &olderGitLab{Forge: e.forge}
		rep := e.reporter(t, func(o *report.Options) { o.Forges = map[string]forge.Forge{e.url: older} })
		jobs := e.plan(t, run{key: "r1", sha: e.sha, ref: "feature", projectID: e.project.ID,
			names: []string{"tests:a", "tests:b", "build"}})
		flush(t, rep)
		e.move(t, jobs[0], store.JobSkipped)
		flush(t, rep)
		e.move(t, jobs[1], store.JobSkipped)
		e.move(t, jobs[2], store.JobSuccess)
		flush(t, rep)

		if n := older.skippedPosts.Load(); n != 1 {
			t.Fatalf("the skipped state was offered %d times, want once per instance", n)
		}
		rows := must(e.store.StatusesOf(context.Background(), e.url, e.project.ID, e.sha))(t)
		for _, row := range rows {
			if row.SentVersion != row.Version {
				t.Errorf("status %s still due: %+v", row.Name, row)
			}
			if row.State == "skipped" && row.LastError != "skipped (not accepted by this GitLab)" {
				t.Errorf("status %s note %q", row.Name, row.LastError)
			}
		}
		if got := e.transitions("build"); !slices.Equal(got, []string{"created>pending", "pending>success"}) {
			t.Fatalf("other statuses are affected: %v", got)
		}
	})
}

func TestRunSendsWhenWokenAndStopsWithItsContext(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		// The poll interval is far beyond the test: only Wake can explain a send.
		rep := e.reporter(t, func(o *report.Options) { o.PollInterval = time.Hour })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rep.Run(ctx) }()

		jobs := e.plan(t, run{key: "r1", sha: e.sha, ref: "feature", projectID: e.project.ID, names: []string{"build"}})
		rep.Wake()
		waitFor(t, func() bool { return slices.Contains(e.transitions("build"), "created>pending") })
		e.move(t, jobs[0], store.JobRunning)
		rep.Wake()
		waitFor(t, func() bool { return slices.Contains(e.transitions("build"), "pending>running") })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v, want context.Canceled", err)
		}
	})
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline (a hang, not a slow run).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartedStatusThatIsSkippedShowsAsCanceled(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		rep := e.reporter(t)
		jobs := e.plan(t, run{key: "r1", sha: e.sha, ref: "feature", projectID: e.project.ID, names: []string{"tests", "build"}})
		e.move(t, jobs[0], store.JobRunning)
		flush(t, rep)
		e.move(t, jobs[0], store.JobSkipped)
		e.move(t, jobs[1], store.JobSkipped)
		flush(t, rep)
		if got := e.transitions("tests"); !slices.Equal(got, []string{"created>pending", "pending>running", "running>canceled"}) {
			t.Errorf("a started status that was skipped: %v", got)
		}
		if got := e.transitions("build"); !slices.Equal(got, []string{"created>pending", "pending>skipped"}) {
			t.Errorf("a pending status that was skipped: %v", got)
		}
	})
}

func TestLogsSayWhatWasSentWhereAndNeverTheToken(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		var logs syncBuffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		rep := e.reporter(t, func(o *report.Options) { o.Logger = logger })
		jobs := e.plan(t, run{key: "r1", sha: e.sha, ref: "feature", projectID: e.project.ID, names: []string{"rpm-build:fedora-rawhide"}})
		e.sim.InjectFault(gitlabsim.Fault{Kind: gitlabsim.FaultError, Status: 502, Times: 1})
		flush(t, rep)
		e.move(t, jobs[0], store.JobSuccess)
		e.clock.Advance(time.Minute)
		flush(t, rep)

		text := logs.String()
		contains(t, "logs", text, "level=WARN", "will retry", "502",
			"level=DEBUG", "sent commit status", fmt.Sprintf("project=%d", e.project.ID), "sha="+e.sha,
			"name=rpm-build:fedora-rawhide", "state=success")
		if strings.Contains(text, e.bot.Token) {
			t.Fatal("the bot's token is in the logs")
		}
	})
}

// syncBuffer is a log sink safe for parallel writers.
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
