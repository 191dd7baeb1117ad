package report

import (
	"context"
	"encoding/json"
	"fmt"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/summary"
)

// afterStatus brings the MR-level feedback in line with a status that was
// just settled: the summary comment a project asked for, and Packit's
// notifications (failure_comment, successful_build) once a job is final.
func (r *Reporter) afterStatus(ctx context.Context, row store.StatusRow) error {
	if row.MRIID == 0 {
		return nil
	}
	job, err := r.store.Job(ctx, row.JobID)
	if err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	run, err := r.store.Run(ctx, job.RunID)
	if err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	mr := store.MRRef{Instance: run.Instance, ProjectID: run.ProjectID, IID: run.MRIID}
	if run.SummaryComment {
		jobs, err := r.store.RunJobs(ctx, run.ID)
		if err != nil {
			return fmt.Errorf("reporter: %w", err)
		}
		if err := r.store.SetMRComment(ctx, mr, store.CommentSummary, summary.Render(run, jobs, r.publicURL)); err != nil {
			return fmt.Errorf("reporter: %w", err)
		}
	}
	if !store.JobFinal(job.State) {
		return nil
	}
	var spec store.JobSpec
	if err := json.Unmarshal([]byte(job.Spec), &spec); err != nil {
		r.log.Warn("reporter: undecodable job spec", "job", job.ID, "err", err)
		return nil
	}
	var body, key string
	switch {
	case job.State == store.JobFailed && spec.FailureComment != "":
		body, key = spec.FailureComment, "failure-comment"
	case job.State == store.JobSuccess && spec.SuccessfulBuild && job.JobType == "copr_build":
		body = fmt.Sprintf("Build %s succeeded. Its artifacts: %s/jobs/%d", summary.Cell(job.StatusName), r.publicURL, job.ID)
		key = "successful-build"
	default:
		return nil
	}
	action := store.ForgeAction{Instance: run.Instance, Kind: store.ActionMRNote, ProjectID: run.ProjectID, MRIID: run.MRIID,
		Payload: map[string]any{"body": body}, DedupKey: fmt.Sprintf("%s|%s|%d", key, run.Instance, job.ID)}
	if err := r.store.AddActions(ctx, action); err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	r.Wake()
	return nil
}
