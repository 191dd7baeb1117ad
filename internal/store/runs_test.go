package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

func samplePlan(key string, mr int64) store.Plan {
	return store.Plan{
		Run: &store.Run{Instance: "https://gl", ProjectID: 7, ProjectPath: "g/p", Trigger: "pull_request", RunKey: key,
			SHA: "abc", Ref: "feature", MRIID: mr, SourceProjectID: 7, SourceProjectPath: "g/p", State: store.RunRunning},
		Jobs: []store.Job{
			{JobType: "copr_build", Target: "fedora-rawhide-x86_64", StatusName: "rpm-build:fedora-rawhide-x86_64", State: store.JobQueued},
			{JobType: "tests", Target: "fedora-rawhide-x86_64", StatusName: "testing-farm:fedora-rawhide-x86_64", State: store.JobQueued},
		},
	}
}

func statusFor(r store.Run, j store.Job) *store.StatusUpdate {
	return &store.StatusUpdate{Instance: r.Instance, ProjectID: r.SourceProjectID, SHA: r.SHA, Name: j.StatusName, JobID: j.ID,
		Ref: r.Ref, State: store.GitLabState(j.State), TargetURL: "http://upbuild/jobs", MRIID: r.MRIID, TargetProjectID: r.ProjectID}
}

func TestPlansAreIdempotentAndStatusesOnlyMoveForward(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		res, err := s.ApplyPlan(ctx, samplePlan("k1", 3), statusFor)
		if err != nil || !res.Created || len(res.JobIDs) != 2 {
			t.Fatalf("first plan: %+v %v", res, err)
		}
		again, err := s.ApplyPlan(ctx, samplePlan("k1", 3), statusFor)
		if err != nil || again.Created || again.RunID != res.RunID {
			t.Fatalf("same run key: %+v %v", again, err)
		}
		due, _ := s.DueStatuses(ctx, time.Now(), 10)
		if len(due) != 2 || due[0].State != "pending" {
			t.Fatalf("due statuses: %+v", due)
		}
		job := res.JobIDs[0]
		for _, st := range []string{store.JobRunning, store.JobSuccess} {
			if ok, err := s.SetJobState(ctx, job, st, st); err != nil || !ok {
				t.Fatalf("set %s: %v %v", st, ok, err)
			}
		}
		// Final is final: nothing moves a finished job back.
		if ok, _ := s.SetJobState(ctx, job, store.JobRunning, "again"); ok {
			t.Fatal("a finished job went back to running")
		}
		rows, _ := s.StatusesOf(ctx, "https://gl", 7, "abc")
		var build store.StatusRow
		for _, r := range rows {
			if r.JobID == job {
				build = r
			}
		}
		if build.State != "success" || build.Version != 3 {
			t.Fatalf("status row %+v", build)
		}
		// The reporter sends the latest state only; a stale mark does not undo a newer version.
		if err := s.MarkStatusSent(ctx, build, ""); err != nil {
			t.Fatal(err)
		}
		stale := build
		stale.Version = 2
		if err := s.MarkStatusSent(ctx, stale, ""); err != nil {
			t.Fatal(err)
		}
		rows, _ = s.StatusesOf(ctx, "https://gl", 7, "abc")
		for _, r := range rows {
			if r.JobID == job && r.SentVersion != 3 {
				t.Fatalf("sent version %d after a stale mark", r.SentVersion)
			}
		}
		// The run finishes once no job is left to run.
		if _, err := s.SetJobState(ctx, res.JobIDs[1], store.JobSkipped, "not supported by this service"); err != nil {
			t.Fatal(err)
		}
		run, _ := s.Run(ctx, res.RunID)
		if run.State != store.RunFinished || run.FinishedAt == nil {
			t.Fatalf("run %+v", run)
		}
	})
}

func TestNewCommitsCancelTheMRsUnfinishedJobs(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		first, err := s.ApplyPlan(ctx, samplePlan("k1", 3), statusFor)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetJobState(ctx, first.JobIDs[0], store.JobSuccess, "done"); err != nil {
			t.Fatal(err)
		}
		next := samplePlan("k2", 3)
		next.Run.SHA = "def"
		next.CancelMR = &store.MRRef{Instance: "https://gl", ProjectID: 7, IID: 3}
		res, err := s.ApplyPlan(ctx, next, statusFor)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Canceled) != 1 || res.Canceled[0].ID != first.JobIDs[1] {
			t.Fatalf("canceled %+v, want only the unfinished job %d", res.Canceled, first.JobIDs[1])
		}
		j, _ := s.Job(ctx, first.JobIDs[1])
		if j.State != store.JobCanceled {
			t.Fatalf("job state %s", j.State)
		}
		rows, _ := s.StatusesOf(ctx, "https://gl", 7, "abc")
		states := map[string]string{}
		for _, r := range rows {
			states[r.Name] = r.State
		}
		if states["testing-farm:fedora-rawhide-x86_64"] != "canceled" || states["rpm-build:fedora-rawhide-x86_64"] != "success" {
			t.Fatalf("statuses of the old SHA: %v", states)
		}
	})
}

func TestRerunReplacesTheStatusOfAnEarlierJob(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		first, _ := s.ApplyPlan(ctx, samplePlan("k1", 3), statusFor)
		_, _ = s.SetJobState(ctx, first.JobIDs[0], store.JobFailed, "build failed")
		rerun := samplePlan("k1-rerun", 3)
		rerun.Jobs = rerun.Jobs[:1]
		second, err := s.ApplyPlan(ctx, rerun, statusFor)
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := s.StatusesOf(ctx, "https://gl", 7, "abc")
		for _, r := range rows {
			if r.Name == "rpm-build:fedora-rawhide-x86_64" && (r.JobID != second.JobIDs[0] || r.State != "pending") {
				t.Fatalf("re-run status %+v", r)
			}
		}
	})
}

func TestForgeActionsCommentsAndApprovals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		a := store.ForgeAction{Instance: "https://gl", Kind: store.ActionMRNote, ProjectID: 7, MRIID: 3,
			Payload: map[string]any{"body": "hello"}, DedupKey: "reply:1"}
		if err := s.AddActions(ctx, a, a); err != nil {
			t.Fatal(err)
		}
		due, _ := s.DueActions(ctx, time.Now(), 10)
		if len(due) != 1 || due[0].Payload["body"] != "hello" {
			t.Fatalf("due actions %+v", due)
		}
		if err := s.RetryAction(ctx, due[0].ID, time.Now().Add(time.Hour), "429"); err != nil {
			t.Fatal(err)
		}
		if due, _ := s.DueActions(ctx, time.Now(), 10); len(due) != 0 {
			t.Fatalf("an action scheduled for later is due: %+v", due)
		}
		mr := store.MRRef{Instance: "https://gl", ProjectID: 7, IID: 3}
		for _, body := range []string{"v1", "v1", "v2"} {
			if err := s.SetMRComment(ctx, mr, store.CommentSummary, body); err != nil {
				t.Fatal(err)
			}
		}
		c, err := s.MRCommentOf(ctx, mr, store.CommentSummary)
		if err != nil || c.Version != 2 || c.Body != "v2" {
			t.Fatalf("comment %+v %v", c, err)
		}
		if err := s.MarkMRCommentSent(ctx, c, 99); err != nil {
			t.Fatal(err)
		}
		if due, _ := s.DueMRComments(ctx, time.Now(), 10); len(due) != 0 {
			t.Fatalf("sent comment still due: %+v", due)
		}
		if ok, _ := s.Approved(ctx, mr, "abc"); ok {
			t.Fatal("approved before approval")
		}
		if err := s.Approve(ctx, mr, "abc", "maintainer"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Approved(ctx, mr, "abc"); !ok {
			t.Fatal("approval not recorded")
		}
		if ok, _ := s.Approved(ctx, mr, "def"); ok {
			t.Fatal("an approval covered another SHA")
		}
	})
}

func TestStartJobHonoursProjectAndNamespaceCaps(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		planIn := func(key, path string, projectID int64, n int) []int64 {
			p := samplePlan(key, 0)
			p.Run.ProjectID, p.Run.ProjectPath, p.Run.SourceProjectID = projectID, path, projectID
			p.Jobs = nil
			for i := range n {
				p.Jobs = append(p.Jobs, store.Job{JobType: "copr_build", Target: fmt.Sprint("t", i), StatusName: fmt.Sprint("rpm-build:t", i), State: store.JobQueued})
			}
			res, err := s.ApplyPlan(ctx, p, statusFor)
			if err != nil {
				t.Fatal(err)
			}
			return res.JobIDs
		}
		a := planIn("a", "gnome/gtk", 1, 3)
		b := planIn("b", "gnome/glib", 2, 2)
		c := planIn("c", "kde/plasma", 3, 1)
		caps := store.Caps{PerProject: 2, PerNamespace: 3}
		for _, id := range a[:2] {
			if ok, err := s.StartJob(ctx, id, caps, "go"); err != nil || !ok {
				t.Fatalf("start %d: %v %v", id, ok, err)
			}
		}
		if _, err := s.StartJob(ctx, a[2], caps, "go"); !errors.Is(err, store.ErrAtCap) {
			t.Fatalf("a third job of one project started: %v", err)
		}
		if ok, err := s.StartJob(ctx, b[0], caps, "go"); err != nil || !ok {
			t.Fatalf("another project of the namespace: %v %v", ok, err)
		}
		if _, err := s.StartJob(ctx, b[1], caps, "go"); !errors.Is(err, store.ErrAtCap) {
			t.Fatalf("a fourth job of one namespace started: %v", err)
		}
		if ok, err := s.StartJob(ctx, c[0], caps, "go"); err != nil || !ok {
			t.Fatalf("another namespace is not held up: %v %v", ok, err)
		}
		j, _ := s.Job(ctx, a[2])
		if j.State != store.JobQueued {
			t.Fatalf("the job held back is %s, want still queued", j.State)
		}
		if _, err := s.SetJobState(ctx, a[0], store.JobSuccess, "done"); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.StartJob(ctx, a[2], caps, "go"); err != nil || !ok {
			t.Fatalf("after a slot freed: %v %v", ok, err)
		}
		// A job that is no longer queued is not started again.
		if ok, err := s.StartJob(ctx, a[0], caps, "go"); err != nil || ok {
			t.Fatalf("a finished job started again: %v %v", ok, err)
		}
	})
}

// A status another reporter began sending is left alone until the hold
// has passed: that reporter may have died with its request in flight.
func TestStatusesInFlightElsewhereAreHeld(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := open(t, dbURL)
		ctx := context.Background()
		if _, err := s.ApplyPlan(ctx, samplePlan("k1", 3), statusFor); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		due, _ := s.DueStatuses(ctx, now, 10)
		if err := s.MarkStatusSending(ctx, due[0], "dead-reporter", now); err != nil {
			t.Fatal(err)
		}
		hold := 35 * time.Second
		mine, _ := s.DueStatusesFor(ctx, now, 10, "me", now.Add(-hold))
		if len(mine) != 1 || mine[0].Name == due[0].Name {
			t.Fatalf("while held, another reporter got %+v", mine)
		}
		theirs, _ := s.DueStatusesFor(ctx, now, 10, "dead-reporter", now.Add(-hold))
		if len(theirs) != 2 {
			t.Fatalf("the sender itself got %d rows, want 2", len(theirs))
		}
		later := now.Add(hold + time.Second)
		if after, _ := s.DueStatusesFor(ctx, later, 10, "me", later.Add(-hold)); len(after) != 2 {
			t.Fatalf("after the hold another reporter got %d rows, want 2", len(after))
		}
		if err := s.MarkStatusSent(ctx, due[0], ""); err != nil {
			t.Fatal(err)
		}
		if rows, _ := s.DueStatusesFor(ctx, now, 10, "me", now.Add(-hold)); len(rows) != 1 {
			t.Fatalf("after the send: %d due, want the other status only", len(rows))
		}
	})
}
