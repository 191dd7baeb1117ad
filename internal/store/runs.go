package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Run states.
const (
	RunRunning     = "running"      // has jobs that are not final
	RunFinished    = "finished"     // every job is final
	RunConfigError = "config_error" // .packit.yaml could not be used; nothing runs
	RunWaiting     = "waiting"      // held: a fork MR awaiting /packit approve, or manual jobs only
	RunRefused     = "refused"      // outside the allow-list, or nothing to do for this event
)

// Job states. The first three are not final.
const (
	JobWaiting  = "waiting" // manual_trigger: runs only when a comment asks
	JobHeld     = "held"    // a fork MR awaiting /packit approve
	JobQueued   = "queued"
	JobRunning  = "running"
	JobSuccess  = "success"
	JobFailed   = "failed"
	JobError    = "error" // upbuild could not run it (infrastructure), never the project's fault
	JobCanceled = "canceled"
	JobSkipped  = "skipped" // not supported by this service, or no build environment
)

// JobFinal reports whether a job state is final.
func JobFinal(state string) bool {
	switch state {
	case JobWaiting, JobHeld, JobQueued, JobRunning:
		return false
	}
	return true
}

// Run is one planned run.
type Run struct {
	ID                int64
	Instance          string
	ProjectID         int64
	ProjectPath       string
	Trigger           string // pull_request, commit, release
	RunKey            string
	SHA               string
	Ref               string
	MRIID             int64
	SourceProjectID   int64
	SourceProjectPath string
	Actor             string
	Title             string
	DeliveryID        int64
	State             string
	Message           string
	ConfigFile        string
	CreatedAt         time.Time
	FinishedAt        *time.Time
	// Visibility is public, internal or private ("" when unknown: private).
	Visibility string
	// SummaryComment asks for one MR comment kept up to date with the results.
	SummaryComment bool
	// TargetBranch is an MR's target branch ("" for other triggers).
	TargetBranch string
}

// Public reports whether anyone may see the run without signing in.
func (r Run) Public() bool { return r.Visibility == "public" }

// Job is one unit of work in a run.
type Job struct {
	ID          int64
	RunID       int64
	JobType     string
	JobIndex    int
	Package     string
	Target      string
	Identifier  string
	StatusName  string
	State       string
	Description string
	// Spec is JSON with what the executor needs.
	Spec       string
	CreatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// JobSpec is what a job carries from the config to the executor and the
// reporter, stored as JSON in jobs.spec.
type JobSpec struct {
	// FailureComment is Packit's notifications.failure_comment.message:
	// posted on the MR when the job fails.
	FailureComment string `json:"failure_comment,omitempty"`
	// SuccessfulBuild is Packit's notifications.pull_request.successful_build:
	// a comment on the MR when a build succeeds.
	SuccessfulBuild bool `json:"successful_build,omitempty"`
}

// Plan is everything one planning decision writes, committed together.
type Plan struct {
	// DeliveryID is marked planned in the same transaction (0: none).
	DeliveryID int64
	// Run is created unless its RunKey exists already (then nothing of
	// Run, Jobs or Statuses is written, and Created is false).
	Run  *Run
	Jobs []Job
	// Actions are things to say on GitLab (replies, issues, emoji).
	Actions []ForgeAction
	// CancelMR cancels the unfinished jobs of earlier runs of this MR
	// (new commits supersede them): instance, project, MR.
	CancelMR *MRRef
}

// MRRef names a merge request.
type MRRef struct {
	Instance  string
	ProjectID int64
	IID       int64
}

// PlanResult says what ApplyPlan did.
type PlanResult struct {
	RunID    int64
	Created  bool
	JobIDs   []int64
	Canceled []Job // jobs canceled by CancelMR, with their new state
}

// ApplyPlan writes a plan in one transaction: the run, its jobs and their
// first commit statuses, the forge actions, the cancellation of superseded
// jobs, and the delivery's planned mark. statusFor builds each job's status
// row; it is called after the job has its ID.
func (s *Store) ApplyPlan(ctx context.Context, p Plan, statusFor func(Run, Job) *StatusUpdate) (PlanResult, error) {
	var res PlanResult
	now := time.Now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if p.CancelMR != nil {
			canceled, err := s.cancelMRJobs(ctx, tx, *p.CancelMR, now)
			if err != nil {
				return err
			}
			res.Canceled = canceled
		}
		if p.Run != nil {
			r := *p.Run
			r.CreatedAt = now
			err := tx.QueryRowContext(ctx, s.q(`INSERT INTO runs (instance, project_id, project_path, trigger, run_key, sha, ref,
				mr_iid, source_project_id, source_project_path, actor, title, delivery_id, state, message, config_file, created_at,
				visibility, summary_comment, target_branch)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_key) DO NOTHING RETURNING id`),
				r.Instance, r.ProjectID, r.ProjectPath, r.Trigger, r.RunKey, r.SHA, r.Ref, r.MRIID, r.SourceProjectID,
				r.SourceProjectPath, r.Actor, r.Title, r.DeliveryID, r.State, r.Message, r.ConfigFile, micros(now),
				r.Visibility, boolInt(r.SummaryComment), r.TargetBranch).Scan(&res.RunID)
			switch {
			case isNoRows(err):
				if err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM runs WHERE run_key = ?`), r.RunKey).Scan(&res.RunID); err != nil {
					return fmt.Errorf("find existing run: %w", err)
				}
			case err != nil:
				return fmt.Errorf("insert run: %w", err)
			default:
				res.Created = true
				r.ID = res.RunID
				for _, j := range p.Jobs {
					j.RunID, j.CreatedAt = r.ID, now
					if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO jobs (run_id, job_type, job_index, package, target, identifier,
						status_name, state, description, spec, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
						j.RunID, j.JobType, j.JobIndex, j.Package, j.Target, j.Identifier, j.StatusName, j.State, j.Description,
						nonEmpty(j.Spec, "{}"), micros(now)).Scan(&j.ID); err != nil {
						return fmt.Errorf("insert job: %w", err)
					}
					res.JobIDs = append(res.JobIDs, j.ID)
					if statusFor != nil {
						if st := statusFor(r, j); st != nil {
							if err := s.upsertStatus(ctx, tx, *st, now); err != nil {
								return err
							}
						}
					}
				}
			}
		}
		for _, a := range p.Actions {
			if err := s.insertAction(ctx, tx, a, now); err != nil {
				return err
			}
		}
		if p.DeliveryID != 0 {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM unplanned_deliveries WHERE delivery_id = ?`), p.DeliveryID); err != nil {
				return fmt.Errorf("mark delivery planned: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return PlanResult{}, fmt.Errorf("apply plan: %w", err)
	}
	return res, nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// cancelMRJobs cancels every unfinished job of the MR's runs.
func (s *Store) cancelMRJobs(ctx context.Context, tx *sql.Tx, mr MRRef, now time.Time) ([]Job, error) {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT `+jobColumns+` FROM jobs j JOIN runs r ON r.id = j.run_id
		WHERE r.instance = ? AND r.project_id = ? AND r.mr_iid = ? AND j.state IN ('waiting', 'held', 'queued', 'running')`),
		mr.Instance, mr.ProjectID, mr.IID)
	if err != nil {
		return nil, fmt.Errorf("find superseded jobs: %w", err)
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return nil, err
	}
	for i := range jobs {
		jobs[i].State, jobs[i].Description = JobCanceled, "superseded by newer commits"
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE jobs SET state = ?, description = ?, finished_at = ? WHERE id = ?`),
			JobCanceled, jobs[i].Description, micros(now), jobs[i].ID); err != nil {
			return nil, fmt.Errorf("cancel job %d: %w", jobs[i].ID, err)
		}
		if err := s.advanceStatus(ctx, tx, jobs[i].ID, JobCanceled, jobs[i].Description, now); err != nil {
			return nil, err
		}
	}
	return jobs, nil
}

const jobColumns = `j.id, j.run_id, j.job_type, j.job_index, j.package, j.target, j.identifier, j.status_name, j.state,
	j.description, j.spec, j.created_at, j.started_at, j.finished_at`

func scanJobs(rows *sql.Rows) ([]Job, error) {
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		var created int64
		var started, finished sql.NullInt64
		if err := rows.Scan(&j.ID, &j.RunID, &j.JobType, &j.JobIndex, &j.Package, &j.Target, &j.Identifier, &j.StatusName,
			&j.State, &j.Description, &j.Spec, &created, &started, &finished); err != nil {
			return nil, fmt.Errorf("scan job: %w", err)
		}
		j.CreatedAt = fromMicros(created)
		j.StartedAt, j.FinishedAt = optTime(started), optTime(finished)
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan jobs: %w", err)
	}
	return out, nil
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// Job loads one job.
func (s *Store) Job(ctx context.Context, id int64) (Job, error) {
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT `+jobColumns+` FROM jobs j WHERE j.id = ?`), id)
	if err != nil {
		return Job{}, fmt.Errorf("load job %d: %w", id, err)
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return Job{}, err
	}
	if len(jobs) == 0 {
		return Job{}, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	return jobs[0], nil
}

// RunJobs lists a run's jobs in plan order.
func (s *Store) RunJobs(ctx context.Context, runID int64) ([]Job, error) {
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT `+jobColumns+` FROM jobs j WHERE j.run_id = ? ORDER BY j.id`), runID)
	if err != nil {
		return nil, fmt.Errorf("list jobs of run %d: %w", runID, err)
	}
	return scanJobs(rows)
}

const runColumns = `id, instance, project_id, project_path, trigger, run_key, sha, ref, mr_iid, source_project_id,
	source_project_path, actor, title, delivery_id, state, message, config_file, created_at, finished_at,
	visibility, summary_comment, target_branch`

func scanRuns(rows *sql.Rows) ([]Run, error) {
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var created, summary int64
		var finished sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Instance, &r.ProjectID, &r.ProjectPath, &r.Trigger, &r.RunKey, &r.SHA, &r.Ref, &r.MRIID,
			&r.SourceProjectID, &r.SourceProjectPath, &r.Actor, &r.Title, &r.DeliveryID, &r.State, &r.Message, &r.ConfigFile,
			&created, &finished, &r.Visibility, &summary, &r.TargetBranch); err != nil {
			return nil, fmt.Errorf("scan run: %w", err)
		}
		r.CreatedAt, r.FinishedAt = fromMicros(created), optTime(finished)
		r.SummaryComment = summary != 0
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan runs: %w", err)
	}
	return out, nil
}

// Run loads one run.
func (s *Store) Run(ctx context.Context, id int64) (Run, error) {
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT `+runColumns+` FROM runs WHERE id = ?`), id)
	if err != nil {
		return Run{}, fmt.Errorf("load run %d: %w", id, err)
	}
	runs, err := scanRuns(rows)
	if err != nil {
		return Run{}, err
	}
	if len(runs) == 0 {
		return Run{}, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	return runs[0], nil
}

// RunFilter selects runs.
type RunFilter struct {
	Instance  string
	ProjectID int64
	MRIID     int64
	SHA       string
	Trigger   string
	BeforeID  int64
	Limit     int
}

// Runs lists runs newest first.
func (s *Store) Runs(ctx context.Context, f RunFilter) ([]Run, error) {
	return s.ListRuns(ctx, RunQuery{Instance: f.Instance, ProjectID: f.ProjectID, MRIID: f.MRIID, SHA: f.SHA,
		Trigger: f.Trigger, BeforeID: f.BeforeID, Limit: f.Limit})
}

// SetJobState moves a job to a new state and records the matching commit
// status in the outbox, in one transaction. A job never leaves a final
// state: the call then changes nothing and returns false.
func (s *Store) SetJobState(ctx context.Context, jobID int64, state, description string) (bool, error) {
	now := time.Now()
	changed := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var cur string
		var runID int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT state, run_id FROM jobs WHERE id = ?`), jobID).Scan(&cur, &runID); err != nil {
			if isNoRows(err) {
				return fmt.Errorf("job %d: %w", jobID, ErrNotFound)
			}
			return fmt.Errorf("load job %d: %w", jobID, err)
		}
		if JobFinal(cur) || cur == state {
			return nil
		}
		changed = true
		q := `UPDATE jobs SET state = ?, description = ?`
		args := []any{state, description}
		switch {
		case state == JobRunning:
			q += `, started_at = ?`
			args = append(args, micros(now))
		case JobFinal(state):
			q += `, finished_at = ?`
			args = append(args, micros(now))
		}
		args = append(args, jobID)
		if _, err := tx.ExecContext(ctx, s.q(q+` WHERE id = ?`), args...); err != nil {
			return fmt.Errorf("update job %d: %w", jobID, err)
		}
		if err := s.advanceStatus(ctx, tx, jobID, state, description, now); err != nil {
			return err
		}
		return s.finishRunIfDone(ctx, tx, runID, now)
	})
	if err != nil {
		return false, fmt.Errorf("set job state: %w", err)
	}
	return changed, nil
}

// finishRunIfDone marks a running run finished once no job is left to run.
func (s *Store) finishRunIfDone(ctx context.Context, tx *sql.Tx, runID int64, now time.Time) error {
	var open int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT count(*) FROM jobs WHERE run_id = ? AND state IN ('queued', 'running')`), runID).Scan(&open); err != nil {
		return fmt.Errorf("count open jobs: %w", err)
	}
	if open > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE runs SET state = ?, finished_at = ? WHERE id = ? AND state = ?`),
		RunFinished, micros(now), runID, RunRunning); err != nil {
		return fmt.Errorf("finish run: %w", err)
	}
	return nil
}

// inTx runs fn in a write transaction.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// ReleaseHeldJobs queues the held jobs of an MR's runs at one SHA (after
// /packit approve) and returns their IDs.
func (s *Store) ReleaseHeldJobs(ctx context.Context, mr MRRef, sha, description string) ([]int64, error) {
	now := time.Now()
	var ids []int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT j.id, r.id FROM jobs j JOIN runs r ON r.id = j.run_id
			WHERE r.instance = ? AND r.project_id = ? AND r.mr_iid = ? AND r.sha = ? AND j.state = 'held'`),
			mr.Instance, mr.ProjectID, mr.IID, sha)
		if err != nil {
			return fmt.Errorf("find held jobs: %w", err)
		}
		runs := map[int64]bool{}
		for rows.Next() {
			var id, runID int64
			if err := rows.Scan(&id, &runID); err != nil {
				rows.Close()
				return fmt.Errorf("scan held job: %w", err)
			}
			ids = append(ids, id)
			runs[runID] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find held jobs: %w", err)
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE jobs SET state = ?, description = ? WHERE id = ?`), JobQueued, description, id); err != nil {
				return fmt.Errorf("release job %d: %w", id, err)
			}
			if err := s.advanceStatusDescription(ctx, tx, id, description, now); err != nil {
				return err
			}
		}
		for runID := range runs {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE runs SET state = ?, message = '' WHERE id = ? AND state = ?`), RunRunning, runID, RunWaiting); err != nil {
				return fmt.Errorf("release run %d: %w", runID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release held jobs: %w", err)
	}
	return ids, nil
}

// LatestJobStates returns, for an MR's runs at one SHA, the state of the
// newest job of each status name (for /packit retest-failed and rebuild-failed).
func (s *Store) LatestJobStates(ctx context.Context, mr MRRef, sha string) (map[string]string, error) {
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT j.status_name, j.state FROM jobs j JOIN runs r ON r.id = j.run_id
		WHERE r.instance = ? AND r.project_id = ? AND r.mr_iid = ? AND r.sha = ? ORDER BY j.id`), mr.Instance, mr.ProjectID, mr.IID, sha)
	if err != nil {
		return nil, fmt.Errorf("latest job states: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, state string
		if err := rows.Scan(&name, &state); err != nil {
			return nil, fmt.Errorf("latest job states: %w", err)
		}
		out[name] = state
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest job states: %w", err)
	}
	return out, nil
}

// QueuedJobIDs lists jobs waiting in state queued, for re-enqueueing after
// a crash between planning and enqueueing (enqueueing is idempotent).
func (s *Store) QueuedJobIDs(ctx context.Context) ([]int64, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id FROM jobs WHERE state = 'queued' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("queued jobs: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("queued jobs: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queued jobs: %w", err)
	}
	return ids, nil
}

// SetJobDescription changes what a running job says it is doing, for its
// page; the commit status keeps its state.
func (s *Store) SetJobDescription(ctx context.Context, jobID int64, description string) error {
	_, err := s.write.ExecContext(ctx, s.q(`UPDATE jobs SET description = ? WHERE id = ? AND state = 'running'`), description, jobID)
	if err != nil {
		return fmt.Errorf("describe job %d: %w", jobID, err)
	}
	return nil
}

// Caps bound how many jobs run at once; 0 means no cap.
type Caps struct {
	PerProject   int
	PerNamespace int
}

// ErrAtCap says a job may not start yet: its project or namespace already
// runs as many jobs as allowed.
var ErrAtCap = errors.New("at the concurrency cap")

// StartJob moves a queued job to running with the given description, if its
// project and namespace are under their caps; otherwise it returns ErrAtCap
// and changes nothing. The check and the start are one transaction (with a
// lock per project and namespace on PostgreSQL), so concurrent workers on
// several machines cannot both take the last slot. It returns false when the
// job is no longer queued (canceled meanwhile, or already done).
func (s *Store) StartJob(ctx context.Context, jobID int64, caps Caps, description string) (bool, error) {
	now := time.Now()
	started := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var state, instance, path string
		var projectID, runID int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT j.state, j.run_id, r.instance, r.project_id, r.project_path
			FROM jobs j JOIN runs r ON r.id = j.run_id WHERE j.id = ?`), jobID).Scan(&state, &runID, &instance, &projectID, &path)
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("load job %d: %w", jobID, err)
		}
		if state != JobQueued {
			return nil
		}
		namespace := path
		if i := strings.LastIndex(path, "/"); i > 0 {
			namespace = path[:i]
		}
		if s.dialect == Postgres {
			for _, key := range []string{fmt.Sprintf("p|%s|%d", instance, projectID), "n|" + instance + "|" + namespace} {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, key); err != nil {
					return fmt.Errorf("lock %s: %w", key, err)
				}
			}
		}
		if caps.PerProject > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT count(*) FROM jobs j JOIN runs r ON r.id = j.run_id
				WHERE j.state = 'running' AND r.instance = ? AND r.project_id = ?`), instance, projectID).Scan(&n); err != nil {
				return fmt.Errorf("count running jobs: %w", err)
			}
			if n >= caps.PerProject {
				return ErrAtCap
			}
		}
		if caps.PerNamespace > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT count(*) FROM jobs j JOIN runs r ON r.id = j.run_id
				WHERE j.state = 'running' AND r.instance = ? AND (r.project_path = ? OR r.project_path LIKE ?)`),
				instance, namespace, namespace+"/%").Scan(&n); err != nil {
				return fmt.Errorf("count running jobs: %w", err)
			}
			if n >= caps.PerNamespace {
				return ErrAtCap
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE jobs SET state = ?, description = ?, started_at = ? WHERE id = ?`),
			JobRunning, description, micros(now), jobID); err != nil {
			return fmt.Errorf("start job %d: %w", jobID, err)
		}
		started = true
		return s.advanceStatus(ctx, tx, jobID, JobRunning, description, now)
	})
	if err != nil {
		if errors.Is(err, ErrAtCap) {
			return false, ErrAtCap
		}
		return false, fmt.Errorf("start job: %w", err)
	}
	return started, nil
}
