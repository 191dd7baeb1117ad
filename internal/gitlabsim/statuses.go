package gitlabsim

import (
	"fmt"
	"time"
)

// Commit statuses follow GitLab's Ci::CreateCommitStatusService:
//
//   - The status goes into the newest pipeline of the SHA, restricted to
//     pipeline_id and to ref only when those parameters are given; when none
//     matches (an unknown pipeline_id included), a new pipeline with source
//     "external" is created. So statuses without pipeline_id land in the
//     latest pipeline of that SHA (and ref, if given). Without ref, the
//     status's ref is the first branch (then tag) holding the commit.
//   - Inside the pipeline, a status is found by (name, ref, user) only while
//     it is pending or running; that job is moved by the requested state.
//   - A finished status (success, failed, canceled, skipped) is never moved:
//     posting again creates a new job with the same name, which starts in
//     "created", and the older job is marked retried (hidden from the list
//     unless all=true).
//   - The state machine: pending = enqueue (created→pending); running =
//     enqueue then run (pending→running); success/failed/canceled from
//     created, pending or running; skipped from created or pending. Anything
//     else answers 400 "Cannot transition status via :EVENT from :STATE".

// CommitStatus is one external job (a "generic commit status").
type CommitStatus struct {
	ID          int64
	ProjectID   int64
	PipelineID  int64
	SHA         string
	Ref         string
	Name        string
	Status      string
	TargetURL   string
	Description string
	Coverage    *float64
	AuthorID    int64
	Retried     bool
	CreatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
}

// Pipeline is a pipeline that holds commit statuses.
type Pipeline struct {
	ID        int64
	IID       int64
	ProjectID int64
	SHA       string
	Ref       string
	Source    string
	UserID    int64
	CreatedAt time.Time
}

// StatusTransition records one state change of a commit status job.
type StatusTransition struct {
	ProjectID  int64
	SHA        string
	Ref        string
	Name       string
	StatusID   int64
	PipelineID int64
	From       string // "created" for a new job
	To         string
	At         time.Time
}

type statusRequest struct {
	sha, state, name, ref, targetURL, description string
	refGiven                                      bool
	pipelineID                                    int64
	coverage                                      *float64
}

type transitionError struct {
	event, from string
}

func (e transitionError) Error() string {
	return fmt.Sprintf("Cannot transition status via :%s from :%s", e.event, e.from)
}

func finished(state string) bool {
	switch state {
	case "success", "failed", "canceled", "skipped":
		return true
	}
	return false
}

// applyState runs GitLab's state machine events for the requested state.
func applyState(current, requested string) ([]string, error) {
	switch requested {
	case "pending":
		if current != "created" {
			return nil, transitionError{"enqueue", current}
		}
		return []string{"pending"}, nil
	case "running":
		var path []string
		if current == "created" {
			// job.enqueue (the non-raising form) first, then run!.
			current = "pending"
			path = append(path, "pending")
		}
		if current != "pending" {
			return nil, transitionError{"run", current}
		}
		return append(path, "running"), nil
	case "success", "failed", "canceled":
		if current != "created" && current != "pending" && current != "running" {
			return nil, transitionError{map[string]string{"success": "success", "failed": "drop", "canceled": "cancel"}[requested], current}
		}
		return []string{requested}, nil
	case "skipped":
		if current != "created" && current != "pending" {
			return nil, transitionError{"skip", current}
		}
		return []string{"skipped"}, nil
	}
	return nil, fmt.Errorf("unknown state %q: %w", requested, ErrInvalid)
}

// setStatusLocked applies a status request; the caller has checked access
// and that the commit exists, and resolved req.ref.
func (s *Simulator) setStatusLocked(p *Project, u *User, req statusRequest) (*CommitStatus, error) {
	pipeline := s.matchingPipelineLocked(p.ID, req)
	if pipeline == nil {
		pipeline = &Pipeline{
			ID: s.nextIDLocked("pipeline"), IID: s.nextIDLocked(fmt.Sprintf("pipeline-iid-%d", p.ID)),
			ProjectID: p.ID, SHA: req.sha, Ref: req.ref, Source: "external", UserID: u.ID, CreatedAt: s.now(),
		}
		s.pipelines[pipeline.ID] = pipeline
	}
	var job *CommitStatus
	for _, st := range s.statuses {
		if st.PipelineID == pipeline.ID && st.Name == req.name && st.Ref == req.ref && st.AuthorID == u.ID &&
			(st.Status == "pending" || st.Status == "running") {
			job = st
		}
	}
	current := "created"
	if job != nil {
		current = job.Status
	}
	path, err := applyState(current, req.state)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if job == nil {
		job = &CommitStatus{
			ID: s.nextIDLocked("job"), ProjectID: p.ID, PipelineID: pipeline.ID, SHA: req.sha, Ref: req.ref,
			Name: req.name, Status: "created", AuthorID: u.ID, CreatedAt: now,
		}
		for _, older := range s.statuses {
			if older.PipelineID == pipeline.ID && older.Name == req.name {
				older.Retried = true
			}
		}
		s.statuses = append(s.statuses, job)
	}
	if req.targetURL != "" {
		job.TargetURL = req.targetURL
	}
	if req.description != "" {
		job.Description = req.description
	}
	if req.coverage != nil {
		job.Coverage = req.coverage
	}
	for _, to := range path {
		s.trans = append(s.trans, StatusTransition{
			ProjectID: p.ID, SHA: req.sha, Ref: req.ref, Name: req.name, StatusID: job.ID,
			PipelineID: pipeline.ID, From: job.Status, To: to, At: now,
		})
		job.Status = to
		if to == "running" && job.StartedAt == nil {
			job.StartedAt = &now
		}
		if finished(to) {
			job.FinishedAt = &now
		}
	}
	return job, nil
}

func (s *Simulator) matchingPipelineLocked(projectID int64, req statusRequest) *Pipeline {
	var newest *Pipeline
	for _, pl := range s.pipelines {
		if pl.ProjectID != projectID || pl.SHA != req.sha || (req.refGiven && pl.Ref != req.ref) {
			continue
		}
		if req.pipelineID != 0 && pl.ID != req.pipelineID {
			continue
		}
		if newest == nil || pl.ID > newest.ID {
			newest = pl
		}
	}
	return newest
}

// Statuses returns the latest (not retried) statuses of a commit in a
// project, in creation order, like the commit statuses API.
func (s *Simulator) Statuses(projectID int64, sha string) []CommitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CommitStatus
	for _, st := range s.statuses {
		if st.ProjectID == projectID && st.SHA == sha && !st.Retried {
			out = append(out, *st)
		}
	}
	return out
}

// StatusTransitions returns every status transition so far, in order.
func (s *Simulator) StatusTransitions() []StatusTransition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StatusTransition(nil), s.trans...)
}

// Pipelines returns the pipelines of a project, oldest first.
func (s *Simulator) Pipelines(projectID int64) []Pipeline {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Pipeline
	for id := int64(1); id <= s.seq["pipeline"]; id++ {
		if pl, ok := s.pipelines[id]; ok && pl.ProjectID == projectID {
			out = append(out, *pl)
		}
	}
	return out
}
