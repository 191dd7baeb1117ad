package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrNotRerunnable is returned by RerunJobs for a job that has not ended
// yet: it would run twice at once.
var ErrNotRerunnable = errors.New("only a job that has ended can be re-run")

// Rerun asks for some jobs of one run to run again.
type Rerun struct {
	// RunID is the run whose jobs run again; JobIDs must belong to it.
	RunID  int64
	JobIDs []int64
	// Actor names who asked, in the audit log and on the new run.
	Actor string
	// PublicURL is this service's base URL: the new commit statuses link
	// to <PublicURL>/jobs/<id>.
	PublicURL string
}

// RerunJobs starts a new run of the same commit, trigger and merge request
// with a fresh queued copy of each job, and gives every copy a pending
// commit status of the same name, as a `/packit build` comment would. The
// old jobs keep their results. The audit log gets a job.rerun entry. The
// caller hands the result's JobIDs to the queue and wakes the reporter.
func (s *Store) RerunJobs(ctx context.Context, req Rerun) (PlanResult, error) {
	if len(req.JobIDs) == 0 {
		return PlanResult{}, fmt.Errorf("re-run: no jobs given: %w", ErrNotRerunnable)
	}
	old, err := s.Run(ctx, req.RunID)
	if err != nil {
		return PlanResult{}, fmt.Errorf("re-run: %w", err)
	}
	jobs, err := s.RunJobs(ctx, req.RunID)
	if err != nil {
		return PlanResult{}, fmt.Errorf("re-run: %w", err)
	}
	var copies []Job
	var names []string
	for _, j := range jobs {
		if !slices.Contains(req.JobIDs, j.ID) {
			continue
		}
		if !JobFinal(j.State) {
			return PlanResult{}, fmt.Errorf("re-run job %d (%s): %w", j.ID, j.State, ErrNotRerunnable)
		}
		copies = append(copies, Job{JobType: j.JobType, JobIndex: j.JobIndex, Package: j.Package, Target: j.Target,
			Identifier: j.Identifier, StatusName: j.StatusName, State: JobQueued, Description: "Waiting for a worker",
			Spec: j.Spec})
		names = append(names, j.StatusName)
	}
	if len(copies) != len(slices.Compact(slices.Sorted(slices.Values(req.JobIDs)))) {
		return PlanResult{}, fmt.Errorf("re-run: a job is not part of run %d: %w", req.RunID, ErrNotFound)
	}
	// The project may have gone private or moved since the old run: the
	// new run takes what the project is now, or it would publish it again
	// (pages follow the newest run's visibility) or move it back.
	current, err := s.Project(ctx, old.Instance, old.ProjectID)
	if err != nil {
		return PlanResult{}, fmt.Errorf("re-run: %w", err)
	}
	run := old
	run.ID, run.FinishedAt = 0, nil
	run.ProjectPath, run.Visibility = current.Path, current.Visibility
	// A random key: each press of the button is a run of its own.
	run.RunKey = fmt.Sprintf("rerun|%s|%d|%s", old.Instance, old.ProjectID, rand.Text())
	run.Actor, run.DeliveryID, run.State, run.SummaryComment = req.Actor, 0, RunRunning, false
	run.Message = fmt.Sprintf("Re-run of run #%d, asked for by %s.", old.ID, req.Actor)
	base := strings.TrimSuffix(req.PublicURL, "/")
	res, err := s.ApplyPlan(ctx, Plan{Run: &run, Jobs: copies}, func(r Run, j Job) *StatusUpdate {
		return &StatusUpdate{Instance: r.Instance, ProjectID: r.SourceProjectID, SHA: r.SHA, Name: j.StatusName,
			JobID: j.ID, Ref: r.Ref, State: GitLabState(j.State), Description: j.Description,
			TargetURL: base + "/jobs/" + strconv.FormatInt(j.ID, 10), MRIID: r.MRIID, TargetProjectID: r.ProjectID}
	})
	if err != nil {
		return PlanResult{}, fmt.Errorf("re-run: %w", err)
	}
	detail := fmt.Sprintf("re-ran %s of run #%d as run #%d", strings.Join(names, ", "), old.ID, res.RunID)
	if _, err := s.AppendAudit(ctx, AuditEntry{Instance: old.Instance, ProjectID: old.ProjectID, Actor: req.Actor,
		Action: "job.rerun", Detail: detail}); err != nil {
		return res, err
	}
	return res, nil
}

// CancelJob ends a job that has not ended yet as canceled (its commit
// status follows) and records job.cancel in the audit log. It returns false,
// and records nothing, for a job that had already ended. The caller also
// stops the job in the queue, so a running job's process is killed.
func (s *Store) CancelJob(ctx context.Context, jobID int64, actor string) (bool, error) {
	j, err := s.Job(ctx, jobID)
	if err != nil {
		return false, fmt.Errorf("cancel: %w", err)
	}
	run, err := s.Run(ctx, j.RunID)
	if err != nil {
		return false, fmt.Errorf("cancel: %w", err)
	}
	changed, err := s.SetJobState(ctx, jobID, JobCanceled, "Canceled by "+actor)
	if err != nil || !changed {
		return false, err
	}
	if _, err := s.AppendAudit(ctx, AuditEntry{Instance: run.Instance, ProjectID: run.ProjectID, Actor: actor,
		Action: "job.cancel", Detail: fmt.Sprintf("canceled job #%d (%s) of run #%d while it was %s", j.ID, j.StatusName, run.ID, j.State)}); err != nil {
		return true, err
	}
	return true, nil
}
