package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/store"
)

// checkResult is one final check.
type checkResult struct {
	name   string
	ok     bool
	detail string
}

// report is what a soak prints.
type report struct {
	engine        string
	seed          uint64
	load          loadStats
	chaos         chaosStats
	settled       bool
	before, after usage
	peak          usage
	checks        []checkResult
}

func (r report) passed() bool {
	for _, c := range r.checks {
		if !c.ok {
			return false
		}
	}
	return len(r.checks) > 0
}

func (r report) print(w io.Writer) {
	fmt.Fprintf(w, "soak on %s, seed %d\n", r.engine, r.seed)
	fmt.Fprintf(w, "load: %s\n", r.load)
	fmt.Fprintf(w, "chaos: %s\n", r.chaos)
	fmt.Fprintf(w, "settled: %t\n", r.settled)
	fmt.Fprintf(w, "simulator process: goroutines %d → %d (peak %d), fds %d → %d (peak %d), live heap %.1f → %.1f MiB (peak %.1f)\n",
		r.before.goroutines, r.after.goroutines, r.peak.goroutines, r.before.fds, r.after.fds, r.peak.fds,
		mib(r.before.heapBytes), mib(r.after.heapBytes), mib(r.peak.heapBytes))
	for _, c := range r.checks {
		verdict := "ok"
		if !c.ok {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "check %s: %s (%s)\n", c.name, verdict, c.detail)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// runJob is a stored job with its run.
type runJob struct {
	run store.Run
	job store.Job
}

func allRuns(ctx context.Context, st *store.Store) ([]store.Run, error) {
	var out []store.Run
	var before int64
	for {
		page, err := st.Runs(ctx, store.RunFilter{BeforeID: before, Limit: 1000})
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return out, nil
		}
		out = append(out, page...)
		before = page[len(page)-1].ID
	}
}

func allJobs(ctx context.Context, st *store.Store) ([]runJob, error) {
	runs, err := allRuns(ctx, st)
	if err != nil {
		return nil, err
	}
	var out []runJob
	for _, r := range runs {
		jobs, err := st.RunJobs(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			out = append(out, runJob{run: r, job: j})
		}
	}
	return out, nil
}

// statusKey names one commit status on GitLab.
type statusKey struct {
	projectID int64
	sha, name string
}

func keyOf(j runJob) statusKey {
	return statusKey{projectID: j.run.SourceProjectID, sha: j.run.SHA, name: j.job.StatusName}
}

// latestJobs keeps, per commit status, the newest job (a re-run replaces
// the status of the job before it).
func latestJobs(jobs []runJob) map[statusKey]runJob {
	out := map[statusKey]runJob{}
	for _, j := range jobs {
		if cur, ok := out[keyOf(j)]; !ok || j.job.ID > cur.job.ID {
			out[keyOf(j)] = j
		}
	}
	return out
}

// statusMismatches lists the statuses on the simulator that do not show
// upbuild's record of the job behind them.
func statusMismatches(sim *gitlabsim.Simulator, jobs []runJob) []string {
	var out []string
	for key, j := range latestJobs(jobs) {
		want := store.GitLabState(j.job.State)
		got := "(none)"
		var newest int64
		for _, cs := range sim.Statuses(key.projectID, key.sha) {
			if cs.Name == key.name && cs.ID > newest {
				newest, got = cs.ID, cs.Status
			}
		}
		if got != want {
			out = append(out, fmt.Sprintf("%s at %.8s in project %d: GitLab shows %s, upbuild's job %d is %s",
				key.name, key.sha, key.projectID, got, j.job.ID, j.job.State))
		}
	}
	slices.Sort(out)
	return out
}

// expectedRuns derives, from the deliveries the simulator sent, the run
// each event must create, keyed as normalizeRunKey keys upbuild's runs.
func expectedRuns(ds []gitlabsim.Delivery) map[string]bool {
	out := map[string]bool{}
	for _, d := range ds {
		var body struct {
			ProjectID int64  `json:"project_id"`
			Ref       string `json:"ref"`
			After     string `json:"after"`
			Project   struct {
				ID            int64  `json:"id"`
				DefaultBranch string `json:"default_branch"`
			} `json:"project"`
			Attrs struct {
				ID         int64  `json:"id"`
				IID        int64  `json:"iid"`
				Action     string `json:"action"`
				OldRev     string `json:"oldrev"`
				Note       string `json:"note"`
				LastCommit struct {
					ID string `json:"id"`
				} `json:"last_commit"`
			} `json:"object_attributes"`
			MergeRequest *struct{} `json:"merge_request"`
		}
		if err := json.Unmarshal(d.Body, &body); err != nil {
			continue // the simulator's own payloads always parse
		}
		switch d.Event {
		case "Merge Request Hook":
			a := body.Attrs
			if a.Action == "open" || a.Action == "reopen" || (a.Action == "update" && a.OldRev != "") {
				out[fmt.Sprintf("pr|%d|%d|%s", body.Project.ID, a.IID, a.LastCommit.ID)] = true
			}
		case "Push Hook":
			if body.Ref == "refs/heads/"+body.Project.DefaultBranch && strings.Trim(body.After, "0") != "" {
				out[fmt.Sprintf("commit|%d|%s", body.ProjectID, body.After)] = true
			}
		case "Note Hook":
			if body.MergeRequest != nil && strings.HasPrefix(strings.TrimSpace(body.Attrs.Note), "/packit build") {
				out[fmt.Sprintf("cmd|%d|%d", body.Project.ID, body.Attrs.ID)] = true
			}
		}
	}
	return out
}

// normalizeRunKey drops the instance (and a commit run's ref) from
// upbuild's run key, leaving what expectedRuns can compute.
func normalizeRunKey(key string) string {
	parts := strings.Split(key, "|")
	if len(parts) < 3 {
		return key
	}
	parts = slices.Delete(parts, 1, 2)
	if parts[0] == "commit" && len(parts) == 4 {
		parts = slices.Delete(parts, 2, 3)
	}
	return strings.Join(parts, "|")
}

// check runs the final checks against the simulator's records.
func (s *soak) check(ctx context.Context, st *store.Store, rep report) (report, error) {
	add := func(name string, ok bool, format string, args ...any) {
		rep.checks = append(rep.checks, checkResult{name: name, ok: ok, detail: fmt.Sprintf(format, args...)})
	}
	add("settled", rep.settled, "every delivery accepted and planned, every job final and shown on GitLab within %s after the load", s.opts.settle)
	ds := s.sim.Deliveries()
	accepted := map[string]bool{}
	sent, resends, failed := 0, 0, 0
	for _, d := range ds {
		sent++
		if d.Resend {
			resends++
		}
		if d.StatusCode == http.StatusAccepted {
			accepted[d.IdempotencyKey] = true
		} else {
			failed++
		}
	}
	stored, err := st.CountDeliveries(ctx)
	if err != nil {
		return rep, err
	}
	lost := len(unanswered(ds))
	add("deliveries", int64(len(accepted)) == stored && lost == 0,
		"%d sent (%d resends), %d without a 202; %d distinct deliveries got a 202, %d stored, %d never accepted",
		sent, resends, failed, len(accepted), stored, lost)

	runs, err := allRuns(ctx, st)
	if err != nil {
		return rep, err
	}
	want := expectedRuns(ds)
	got := map[string]int{}
	for _, r := range runs {
		got[normalizeRunKey(r.RunKey)]++
	}
	var missing, extra, dup []string
	for k := range want {
		if got[k] == 0 {
			missing = append(missing, k)
		}
	}
	for k, n := range got {
		if !want[k] {
			extra = append(extra, k)
		}
		if n > 1 {
			dup = append(dup, k)
		}
	}
	add("runs", len(missing) == 0 && len(extra) == 0 && len(dup) == 0,
		"%d expected, %d stored; missing %s; unexpected %s; duplicated %s", len(want), len(runs), few(missing), few(extra), few(dup))

	jobs, err := allJobs(ctx, st)
	if err != nil {
		return rep, err
	}
	var open []string
	states := map[string]int{}
	for _, j := range jobs {
		states[j.job.State]++
		if !store.JobFinal(j.job.State) {
			open = append(open, fmt.Sprintf("job %d %s", j.job.ID, j.job.State))
		}
	}
	add("jobs-final", len(open) == 0 && len(jobs) > 0, "%d jobs %v; not final: %s", len(jobs), states, few(open))

	mismatches := statusMismatches(s.sim.Simulator, jobs)
	add("statuses-match", len(mismatches) == 0, "%d statuses compared; differing: %s", len(latestJobs(jobs)), few(mismatches))

	trans := s.sim.StatusTransitions()
	backwards := backwardTransitions(trans, jobs)
	add("no-backwards", len(backwards) == 0, "%d transitions; backwards: %s", len(trans), few(backwards))

	add("goroutines", rep.after.goroutines <= 2*rep.before.goroutines+50,
		"%d at start, %d at the end", rep.before.goroutines, rep.after.goroutines)
	add("fds", rep.after.fds <= 2*rep.before.fds+50, "%d at start, %d at the end", rep.before.fds, rep.after.fds)
	// The simulator keeps every delivery and status it saw, so the heap
	// grows with the events; only far more than that is a leak.
	add("memory", rep.after.heapBytes <= rep.before.heapBytes+512<<20,
		"%.1f MiB at start, %.1f MiB at the end", mib(rep.before.heapBytes), mib(rep.after.heapBytes))
	return rep, nil
}

// backwardTransitions finds statuses that went backwards: a job moved to
// an earlier state, or a commit status went back to pending or running
// after it was final more often than upbuild started new jobs for it.
func backwardTransitions(trans []gitlabsim.StatusTransition, jobs []runJob) []string {
	rank := map[string]int{"created": 0, "pending": 1, "running": 2}
	rankOf := func(state string) int {
		if r, ok := rank[state]; ok {
			return r
		}
		return 3
	}
	var out []string
	lastOfJob := map[int64]string{}
	finalOf := map[statusKey]bool{}
	reopened := map[statusKey]int{}
	for _, t := range trans {
		key := statusKey{projectID: t.ProjectID, sha: t.SHA, name: t.Name}
		if prev, ok := lastOfJob[t.StatusID]; ok && rankOf(t.To) < rankOf(prev) {
			out = append(out, fmt.Sprintf("%s at %.8s: %s → %s", t.Name, t.SHA, prev, t.To))
		}
		lastOfJob[t.StatusID] = t.To
		if rankOf(t.To) == 3 {
			finalOf[key] = true
		} else if finalOf[key] {
			finalOf[key] = false
			reopened[key]++
		}
	}
	jobsPer := map[statusKey]int{}
	for _, j := range jobs {
		jobsPer[keyOf(j)]++
	}
	for key, n := range reopened {
		if n > jobsPer[key]-1 {
			out = append(out, fmt.Sprintf("%s at %.8s in project %d went back from a final state %d times with %d jobs",
				key.name, key.sha, key.projectID, n, jobsPer[key]))
		}
	}
	slices.Sort(out)
	return out
}

// few shows up to five items.
func few(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	slices.Sort(items)
	if len(items) > 5 {
		return strings.Join(items[:5], "; ") + fmt.Sprintf("; and %d more", len(items)-5)
	}
	return strings.Join(items, "; ")
}
