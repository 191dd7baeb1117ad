package web

import (
	"errors"
	"net/http"
	"strconv"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/store"
)

// JobButtons is what the job and run pages need to show the re-run and
// cancel buttons: nil when the viewer may not use them.
type JobButtons struct {
	CSRF string
	// Rerun and Cancel say which buttons apply to the job's state; on the
	// run page, RerunFailed says whether any job failed, and Approve
	// whether jobs of a merge request wait for a Developer's approval.
	Rerun, Cancel, RerunFailed, Approve bool
}

// jobButtons decides which buttons a viewer sees for a job (or, with
// job nil, for a run's failed jobs): only viewers allowed Trigger see any.
func (p *Pages) jobButtons(r *http.Request, run store.Run, job *store.Job, jobs []store.Job) *JobButtons {
	if p.Access == nil {
		return nil
	}
	ok, err := p.Access.Allowed(r.Context(), r, access.Project{Instance: run.Instance, ID: run.ProjectID, Public: run.Public()}, access.Trigger)
	if err != nil || !ok {
		return nil
	}
	b := &JobButtons{CSRF: p.Access.CSRFToken(r)}
	if job != nil {
		b.Rerun = store.JobFinal(job.State)
		b.Cancel = !store.JobFinal(job.State)
	}
	b.RerunFailed = len(failedJobs(jobs)) > 0
	b.Approve = run.MRIID != 0 && heldJobs(jobs)
	return b
}

// heldJobs says whether any job waits for approval.
func heldJobs(jobs []store.Job) bool {
	for _, j := range jobs {
		if j.State == store.JobHeld {
			return true
		}
	}
	return false
}

// failedJobs are the jobs "re-run failed jobs" runs again.
func failedJobs(jobs []store.Job) []int64 {
	var out []int64
	for _, j := range jobs {
		if j.State == store.JobFailed || j.State == store.JobError {
			out = append(out, j.ID)
		}
	}
	return out
}

func (s *SelfService) registerJobActions(mux *http.ServeMux) {
	mux.HandleFunc("POST /jobs/{id}/rerun", s.rerunJob)
	mux.HandleFunc("POST /jobs/{id}/cancel", s.cancelJob)
	mux.HandleFunc("POST /runs/{id}/rerun-failed", s.rerunFailed)
	mux.HandleFunc("POST /runs/{id}/approve", s.approveRun)
}

// approveRun is "/packit approve" from the run page: a Developer lets the
// merge request's held jobs for this commit run. Like the comment, the
// approval is for this commit only; a new push needs a new one.
func (s *SelfService) approveRun(w http.ResponseWriter, r *http.Request) {
	run, jobs, ok := s.actionRun(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if run.MRIID == 0 || !heldJobs(jobs) {
		http.Error(w, "No job of this run waits for approval.", http.StatusConflict)
		return
	}
	released, err := s.Pages.Store.ApproveCommit(ctx, store.MRRef{Instance: run.Instance, ProjectID: run.ProjectID, IID: run.MRIID},
		run.SHA, s.actor(r), "on the run page")
	if err != nil {
		s.Pages.unavailable(w, "approve", err)
		return
	}
	// A failed enqueue is not lost: the server enqueues queued jobs again.
	if err := s.Enqueue(ctx, released...); err != nil {
		s.Pages.Logger.Error("enqueue approved jobs", "jobs", released, "err", err)
	}
	s.Changed()
	http.Redirect(w, r, "/runs/"+strconv.FormatInt(run.ID, 10), http.StatusSeeOther)
}

// triggerable loads a run the viewer may re-run or cancel jobs of,
// answering the request itself when there is none: 404 when the viewer may
// not even see it, 403 otherwise.
func (s *SelfService) triggerable(w http.ResponseWriter, r *http.Request, runID int64, what string) (store.Run, bool) {
	run, err := s.Pages.Store.Run(r.Context(), runID)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w, what)
		return store.Run{}, false
	}
	if err != nil {
		s.Pages.unavailable(w, "load run", err)
		return store.Run{}, false
	}
	p := access.Project{Instance: run.Instance, ID: run.ProjectID, Public: run.Public()}
	if ok, done := s.allowed(w, r, p, access.SeePrivate); done || !ok {
		if !done {
			notFound(w, what)
		}
		return store.Run{}, false
	}
	if ok, done := s.allowed(w, r, p, access.Trigger); done || !ok {
		if !done {
			s.Pages.forbidden(w, r, access.Trigger, "re-run, cancel or approve its jobs")
		}
		return store.Run{}, false
	}
	return run, true
}

// actionJob loads the job of a /jobs/{id}/... action and its run.
func (s *SelfService) actionJob(w http.ResponseWriter, r *http.Request) (store.Job, store.Run, bool) {
	if !s.checkCSRF(w, r) {
		return store.Job{}, store.Run{}, false
	}
	id, ok := pathID(r)
	if !ok {
		notFound(w, "This job")
		return store.Job{}, store.Run{}, false
	}
	job, err := s.Pages.Store.Job(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w, "This job")
		return store.Job{}, store.Run{}, false
	}
	if err != nil {
		s.Pages.unavailable(w, "load job", err)
		return store.Job{}, store.Run{}, false
	}
	run, ok := s.triggerable(w, r, job.RunID, "This job")
	return job, run, ok
}

// actionRun loads the run of a /runs/{id}/... action and its jobs, after
// the CSRF and access checks.
func (s *SelfService) actionRun(w http.ResponseWriter, r *http.Request) (store.Run, []store.Job, bool) {
	if !s.checkCSRF(w, r) {
		return store.Run{}, nil, false
	}
	id, ok := pathID(r)
	if !ok {
		notFound(w, "This run")
		return store.Run{}, nil, false
	}
	run, ok := s.triggerable(w, r, id, "This run")
	if !ok {
		return store.Run{}, nil, false
	}
	jobs, err := s.Pages.Store.RunJobs(r.Context(), id)
	if err != nil {
		s.Pages.unavailable(w, "load jobs", err)
		return store.Run{}, nil, false
	}
	return run, jobs, true
}

func (s *SelfService) rerunJob(w http.ResponseWriter, r *http.Request) {
	job, run, ok := s.actionJob(w, r)
	if !ok {
		return
	}
	s.rerun(w, r, run, []int64{job.ID})
}

func (s *SelfService) rerunFailed(w http.ResponseWriter, r *http.Request) {
	run, jobs, ok := s.actionRun(w, r)
	if !ok {
		return
	}
	failed := failedJobs(jobs)
	if len(failed) == 0 {
		http.Error(w, "No job of this run failed, so there is nothing to re-run.", http.StatusConflict)
		return
	}
	s.rerun(w, r, run, failed)
}

// rerun starts a new run of the jobs, queues it and shows its page (the
// new job's page when there is one job).
func (s *SelfService) rerun(w http.ResponseWriter, r *http.Request, run store.Run, jobIDs []int64) {
	ctx := r.Context()
	res, err := s.Pages.Store.RerunJobs(ctx, store.Rerun{RunID: run.ID, JobIDs: jobIDs, Actor: s.actor(r), PublicURL: s.Pages.PublicURL})
	if errors.Is(err, store.ErrNotRerunnable) {
		http.Error(w, "This job has not ended yet, so it cannot be re-run; cancel it first.", http.StatusConflict)
		return
	}
	if err != nil {
		s.Pages.unavailable(w, "re-run", err)
		return
	}
	// A failed enqueue is not lost: the queued rows stay in the store and
	// the server enqueues them again within half a minute.
	if err := s.Enqueue(ctx, res.JobIDs...); err != nil {
		s.Pages.Logger.Error("enqueue re-run", "jobs", res.JobIDs, "err", err)
	}
	s.Changed()
	to := "/runs/" + strconv.FormatInt(res.RunID, 10)
	if len(res.JobIDs) == 1 {
		to = "/jobs/" + strconv.FormatInt(res.JobIDs[0], 10)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (s *SelfService) cancelJob(w http.ResponseWriter, r *http.Request) {
	job, _, ok := s.actionJob(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	canceled, err := s.Pages.Store.CancelJob(ctx, job.ID, s.actor(r))
	if err != nil {
		s.Pages.unavailable(w, "cancel job", err)
		return
	}
	if !canceled {
		http.Error(w, "This job has already ended; there is nothing to cancel.", http.StatusConflict)
		return
	}
	// The store says canceled already, so a worker that picks the job up
	// later does nothing; this stops one that runs it now.
	if err := s.Cancel(ctx, job.ID); err != nil {
		s.Pages.Logger.Warn("cancel job in the queue", "job", job.ID, "err", err)
	}
	s.Changed()
	http.Redirect(w, r, "/jobs/"+strconv.FormatInt(job.ID, 10), http.StatusSeeOther)
}
