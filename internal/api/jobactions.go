package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/store"
)

// JobActions re-runs and cancels jobs for the admin token and for signed-in
// people with the Developer role or higher on the job's project:
//
//	POST /api/v1/jobs/{id}/rerun   → 201 RerunJSON: a new run with a copy of the job
//	POST /api/v1/jobs/{id}/cancel  → 200 JobJSON: the job, now canceled
//	POST /api/v1/runs/{id}/approve → 200 RerunJSON: the merge request's held jobs, now queued
//
// A request with a session cookie must carry the session's CSRF token in
// the form field "csrf"; the admin token needs none. API.Register routes
// the two patterns to HandleRerun and HandleCancel.
type JobActions struct {
	Store  *store.Store
	Access *access.Guard
	// PublicURL is this service's base URL, for the new commit statuses.
	PublicURL string
	// Enqueue hands the new job to the queue; Cancel stops a job in it;
	// Changed wakes the reporter, which sends the commit statuses.
	Enqueue func(ctx context.Context, jobIDs ...int64) error
	Cancel  func(ctx context.Context, jobID int64) error
	Changed func()
	Logger  *slog.Logger
}

// RerunJSON is what a re-run started.
type RerunJSON struct {
	RunID  int64     `json:"run_id"`
	RunURL string    `json:"run_url"`
	Jobs   []JobJSON `json:"jobs"`
}

// trigger loads the job of a request and checks that the caller may re-run
// or cancel it, answering the request itself when not.
func (j *JobActions) trigger(w http.ResponseWriter, r *http.Request) (store.Job, bool) {
	if err := j.Access.CheckCSRF(r); err != nil {
		writeJSON(w, http.StatusForbidden, apiError{err.Error()})
		return store.Job{}, false
	}
	id, ok := pathID(r, "id")
	if !ok {
		notVisible(w, "This job")
		return store.Job{}, false
	}
	job, err := j.Store.Job(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		notVisible(w, "This job")
		return store.Job{}, false
	}
	if err != nil {
		j.unavailable(w, "load job", err)
		return store.Job{}, false
	}
	run, err := j.Store.Run(r.Context(), job.RunID)
	if err != nil {
		j.unavailable(w, "load run", err)
		return store.Job{}, false
	}
	if !j.allowed(w, r, run, "This job") {
		return store.Job{}, false
	}
	return job, true
}

// allowed checks that the caller may see the run's project and trigger
// work on it, answering the request itself when not: 404 as for something
// that does not exist, 403 with the role needed, 503 when GitLab cannot say.
func (j *JobActions) allowed(w http.ResponseWriter, r *http.Request, run store.Run, what string) bool {
	p := access.Project{Instance: run.Instance, ID: run.ProjectID, Public: run.Public()}
	for _, a := range []access.Action{access.SeePrivate, access.Trigger} {
		ok, err := j.Access.Allowed(r.Context(), r, p, a)
		switch {
		case err != nil:
			j.Logger.Warn("access check", "project", run.ProjectID, "err", err)
			writeJSON(w, http.StatusServiceUnavailable, apiError{"upbuild could not ask GitLab what you may do on this project; try again in a minute"})
			return false
		case !ok && a == access.SeePrivate:
			notVisible(w, what)
			return false
		case !ok:
			writeJSON(w, http.StatusForbidden, apiError{"re-running, cancelling and approving jobs needs the Developer role or higher on the project"})
			return false
		}
	}
	return true
}

func (j *JobActions) actor(r *http.Request) string {
	v, _ := j.Access.Viewer(r)
	return v.Actor()
}

func (j *JobActions) unavailable(w http.ResponseWriter, what string, err error) {
	j.Logger.Error(what, "err", err)
	writeJSON(w, http.StatusServiceUnavailable, apiError{"upbuild cannot use its database right now"})
}

// HandleRerun serves POST /api/v1/jobs/{id}/rerun.
func (j *JobActions) HandleRerun(w http.ResponseWriter, r *http.Request) {
	job, ok := j.trigger(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	res, err := j.Store.RerunJobs(ctx, store.Rerun{RunID: job.RunID, JobIDs: []int64{job.ID}, Actor: j.actor(r), PublicURL: j.PublicURL})
	if errors.Is(err, store.ErrNotRerunnable) {
		writeJSON(w, http.StatusConflict, apiError{"this job has not ended yet, so it cannot be re-run; cancel it first"})
		return
	}
	if err != nil {
		j.unavailable(w, "re-run", err)
		return
	}
	// A failed enqueue is not lost: the server enqueues queued jobs again.
	if err := j.Enqueue(ctx, res.JobIDs...); err != nil {
		j.Logger.Error("enqueue re-run", "jobs", res.JobIDs, "err", err)
	}
	j.Changed()
	out := RerunJSON{RunID: res.RunID, RunURL: runJSON(store.Run{ID: res.RunID}, nil).URL, Jobs: []JobJSON{}}
	for _, id := range res.JobIDs {
		nj, err := j.Store.Job(ctx, id)
		if err != nil {
			j.unavailable(w, "load job", err)
			return
		}
		out.Jobs = append(out.Jobs, jobJSON(nj))
	}
	writeJSON(w, http.StatusCreated, out)
}

// HandleApprove serves POST /api/v1/runs/{id}/approve: what a Developer's
// "/packit approve" does, for the run's commit of its merge request.
func (j *JobActions) HandleApprove(w http.ResponseWriter, r *http.Request) {
	if err := j.Access.CheckCSRF(r); err != nil {
		writeJSON(w, http.StatusForbidden, apiError{err.Error()})
		return
	}
	id, ok := pathID(r, "id")
	if !ok {
		notVisible(w, "This run")
		return
	}
	ctx := r.Context()
	run, err := j.Store.Run(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		notVisible(w, "This run")
		return
	}
	if err != nil {
		j.unavailable(w, "load run", err)
		return
	}
	if !j.allowed(w, r, run, "This run") {
		return
	}
	jobs, err := j.Store.RunJobs(ctx, id)
	if err != nil {
		j.unavailable(w, "load jobs", err)
		return
	}
	held := false
	for _, job := range jobs {
		held = held || job.State == store.JobHeld
	}
	if run.MRIID == 0 || !held {
		writeJSON(w, http.StatusConflict, apiError{"no job of this run waits for approval"})
		return
	}
	released, err := j.Store.ApproveCommit(ctx, store.MRRef{Instance: run.Instance, ProjectID: run.ProjectID, IID: run.MRIID},
		run.SHA, j.actor(r), "through the API")
	if err != nil {
		j.unavailable(w, "approve", err)
		return
	}
	// A failed enqueue is not lost: the server enqueues queued jobs again.
	if err := j.Enqueue(ctx, released...); err != nil {
		j.Logger.Error("enqueue approved jobs", "jobs", released, "err", err)
	}
	j.Changed()
	out := make([]JobJSON, 0, len(released))
	for _, jid := range released {
		nj, err := j.Store.Job(ctx, jid)
		if err != nil {
			j.unavailable(w, "load job", err)
			return
		}
		out = append(out, jobJSON(nj))
	}
	writeJSON(w, http.StatusOK, RerunJSON{RunID: run.ID, RunURL: runJSON(run, nil).URL, Jobs: out})
}

// HandleCancel serves POST /api/v1/jobs/{id}/cancel.
func (j *JobActions) HandleCancel(w http.ResponseWriter, r *http.Request) {
	job, ok := j.trigger(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	canceled, err := j.Store.CancelJob(ctx, job.ID, j.actor(r))
	if err != nil {
		j.unavailable(w, "cancel job", err)
		return
	}
	if !canceled {
		writeJSON(w, http.StatusConflict, apiError{"this job has already ended; there is nothing to cancel"})
		return
	}
	if err := j.Cancel(ctx, job.ID); err != nil {
		j.Logger.Warn("cancel job in the queue", "job", job.ID, "err", err)
	}
	j.Changed()
	now, err := j.Store.Job(ctx, job.ID)
	if err != nil {
		j.unavailable(w, "load job", err)
		return
	}
	writeJSON(w, http.StatusOK, jobJSON(now))
}
