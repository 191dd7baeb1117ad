package store_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// finishedJob is a job to put in the database with given times, which no
// store API sets (they stamp the time of the call).
type finishedJob struct {
	project  int64
	name     string
	state    string
	started  bool
	finished time.Time
	took     time.Duration
}

func TestChartSumsStayRightAsPeriodsAreRolledUp(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		s := open(t, dbURL)
		const inst = "https://gitlab.example"
		now := time.Now()
		since := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -89)
		ago := func(d time.Duration) time.Time { return now.Add(-d) }
		day := 24 * time.Hour
		jobs := []finishedJob{
			{7, "build", store.JobSuccess, true, ago(40 * day), 10 * time.Minute},
			{7, "build", store.JobFailed, true, ago(40*day + time.Hour), 20 * time.Minute},
			{7, "tests", store.JobError, false, ago(40 * day), 0},
			{7, "build", store.JobSuccess, true, ago(3 * day), 4 * time.Minute},
			{7, "build", store.JobSuccess, true, ago(90 * time.Minute), 6 * time.Minute}, // a settled hour
			{7, "tests", store.JobSuccess, true, ago(time.Minute), 2 * time.Minute},      // live
			{7, "build", store.JobCanceled, false, ago(2 * day), 0},                      // not a result
			{7, "build", store.JobSuccess, true, ago(120 * day), time.Minute},            // before the window
			{8, "build", store.JobSuccess, true, ago(3 * day), time.Minute},              // another project
		}
		for i, j := range jobs {
			insertFinishedJob(t, s, inst, int64(i+1), j)
		}
		check := func(when string) {
			t.Helper()
			got, err := s.JobDays(ctx, inst, 7, since)
			if err != nil {
				t.Fatal(err)
			}
			if want := expectedJobDays(jobs, 7, since); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: job days\n got %+v\nwant %+v", when, got, want)
			}
		}
		check("first view, which rolls up")
		check("second view, from the rollups")
		// A job that finishes now shows at once.
		late := finishedJob{7, "build", store.JobFailed, true, ago(time.Second), 3 * time.Minute}
		jobs = append(jobs, late)
		insertFinishedJob(t, s, inst, int64(len(jobs)), late)
		check("after a job finished")

		// Deliveries, stored through the committer with their receipt times.
		c := s.NewCommitter(16)
		defer c.Close()
		received := []struct {
			at      time.Time
			outcome string
		}{
			{ago(30 * day), store.OutcomeAccepted}, {ago(30 * day), store.OutcomeIgnored}, {ago(30*day + time.Hour), store.OutcomeAccepted},
			{ago(90 * time.Minute), store.OutcomeAccepted}, {ago(time.Minute), store.OutcomeIgnored},
		}
		want := map[time.Time]*store.DeliveryDay{}
		for i, r := range received {
			d := store.Delivery{Instance: inst, ProjectID: 7, ProjectPath: "g/p", EventHeader: "Push Hook", EventKind: "push",
				DedupKey: fmt.Sprint("key-", i), Headers: map[string]string{}, Body: []byte("{}"), Outcome: r.outcome,
				ReceivedAt: r.at}
			if _, err := c.Save(ctx, d); err != nil {
				t.Fatal(err)
			}
			midnight := r.at.UTC().Truncate(day)
			if want[midnight] == nil {
				want[midnight] = &store.DeliveryDay{Day: midnight}
			}
			if r.outcome == store.OutcomeAccepted {
				want[midnight].Accepted++
			} else {
				want[midnight].Ignored++
			}
		}
		for range 2 {
			got, err := s.DeliveryDays(ctx, inst, 7, since)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("delivery days %+v, want %d days", got, len(want))
			}
			for i, d := range got {
				if w := want[d.Day]; w == nil || *w != d {
					t.Errorf("delivery day %+v, want %+v", d, w)
				}
				if i > 0 && !got[i-1].Day.Before(d.Day) {
					t.Errorf("delivery days out of order: %s then %s", got[i-1].Day, d.Day)
				}
			}
		}
	})
}

// insertFinishedJob writes a run with one job in project j.project.
func insertFinishedJob(t *testing.T, s *store.Store, inst string, id int64, j finishedJob) {
	t.Helper()
	ctx := context.Background()
	created := j.finished.Add(-j.took - time.Minute).UnixMicro()
	if _, err := s.WriteDB().ExecContext(ctx, s.Rebind(`INSERT INTO runs (id, instance, project_id, project_path, trigger,
		run_key, sha, source_project_id, source_project_path, delivery_id, state, created_at)
		VALUES (?, ?, ?, 'g/p', 'commit', ?, 'abc', ?, 'g/p', 0, 'finished', ?)`),
		id, inst, j.project, fmt.Sprint("run-", id), j.project, created); err != nil {
		t.Fatal(err)
	}
	var started any
	if j.started {
		started = j.finished.Add(-j.took).UnixMicro()
	}
	if _, err := s.WriteDB().ExecContext(ctx, s.Rebind(`INSERT INTO jobs (id, run_id, job_type, job_index, status_name, state,
		created_at, started_at, finished_at) VALUES (?, ?, 'copr_build', 0, ?, ?, ?, ?, ?)`),
		id, id, j.name, j.state, created, started, j.finished.UnixMicro()); err != nil {
		t.Fatal(err)
	}
}

// expectedJobDays sums the jobs as the charts should: results only (no
// cancellations), per name and UTC day, from the day of since on.
func expectedJobDays(jobs []finishedJob, project int64, since time.Time) []store.JobDay {
	type key struct {
		name string
		day  time.Time
	}
	sums := map[key]*store.JobDay{}
	var order []key
	for _, j := range jobs {
		if j.project != project || j.finished.Before(since) {
			continue
		}
		switch j.state {
		case store.JobSuccess, store.JobFailed, store.JobError:
		default:
			continue
		}
		k := key{j.name, j.finished.UTC().Truncate(24 * time.Hour)}
		d := sums[k]
		if d == nil {
			d = &store.JobDay{StatusName: j.name, Day: k.day}
			sums[k] = d
			order = append(order, k)
		}
		d.Finished++
		if j.state == store.JobSuccess {
			d.Passed++
		}
		if j.started {
			d.Timed++
			d.TotalRun += j.took
		}
	}
	out := make([]store.JobDay, 0, len(order))
	for _, k := range order {
		out = append(out, *sums[k])
	}
	slices.SortFunc(out, func(a, b store.JobDay) int {
		if a.StatusName != b.StatusName {
			return strings.Compare(a.StatusName, b.StatusName)
		}
		return a.Day.Compare(b.Day)
	})
	return out
}
