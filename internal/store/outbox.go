package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// StatusUpdate is the desired state of one commit status.
type StatusUpdate struct {
	Instance  string
	ProjectID int64 // the project that holds the commit: the source project of an MR
	SHA       string
	Name      string
	JobID     int64
	Ref       string
	// State is a GitLab status state: pending, running, success, failed, canceled, skipped.
	State       string
	Description string
	TargetURL   string
	// MRIID and TargetProjectID let the reporter fall back to a comment on
	// the MR when the bot may not set statuses on the source project.
	MRIID           int64
	TargetProjectID int64
}

// StatusRow is a status outbox entry with its delivery bookkeeping.
type StatusRow struct {
	StatusUpdate
	Version     int64
	SentVersion int64
	SentState   string
	Attempts    int
	LastError   string
	UpdatedAt   time.Time
	// Attempted says a send of this status began before (by any reporter)
	// and was not recorded as done: GitLab may already show some state.
	Attempted bool
}

// GitLabState maps a job state to the commit status state that shows it.
func GitLabState(jobState string) string {
	switch jobState {
	case JobQueued, JobWaiting, JobHeld:
		return "pending"
	case JobRunning:
		return "running"
	case JobSuccess:
		return "success"
	case JobFailed, JobError:
		return "failed"
	case JobCanceled:
		return "canceled"
	case JobSkipped:
		return "skipped"
	}
	return "failed"
}

// statusRank orders states so that a status never goes backwards.
func statusRank(state string) int {
	switch state {
	case "pending":
		return 1
	case "running":
		return 2
	}
	return 3
}

// upsertStatus records a desired status. A status that belongs to a newer
// job (a re-run) replaces the old one whatever its state; for the same job
// the state only moves forward.
func (s *Store) upsertStatus(ctx context.Context, tx *sql.Tx, u StatusUpdate, now time.Time) error {
	var curJob, version int64
	var curState string
	err := tx.QueryRowContext(ctx, s.q(`SELECT job_id, state, version FROM status_outbox
		WHERE instance = ? AND project_id = ? AND sha = ? AND name = ?`), u.Instance, u.ProjectID, u.SHA, u.Name).Scan(&curJob, &curState, &version)
	switch {
	case isNoRows(err):
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO status_outbox (instance, project_id, sha, name, job_id, ref, state,
			description, target_url, mr_iid, target_project_id, version, next_attempt_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`),
			u.Instance, u.ProjectID, u.SHA, u.Name, u.JobID, u.Ref, u.State, u.Description, u.TargetURL, u.MRIID,
			u.TargetProjectID, micros(now), micros(now))
		if err != nil {
			return fmt.Errorf("insert status: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("load status: %w", err)
	}
	if u.JobID < curJob || (u.JobID == curJob && statusRank(u.State) <= statusRank(curState)) {
		return nil
	}
	_, err = tx.ExecContext(ctx, s.q(`UPDATE status_outbox SET job_id = ?, ref = ?, state = ?, description = ?, target_url = ?,
		mr_iid = ?, target_project_id = ?, version = version + 1, attempts = 0, next_attempt_at = ?, updated_at = ?
		WHERE instance = ? AND project_id = ? AND sha = ? AND name = ?`),
		u.JobID, u.Ref, u.State, u.Description, u.TargetURL, u.MRIID, u.TargetProjectID, micros(now), micros(now),
		u.Instance, u.ProjectID, u.SHA, u.Name)
	if err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

// advanceStatus moves the status of a job (if it has one) to the state that
// shows jobState.
func (s *Store) advanceStatus(ctx context.Context, tx *sql.Tx, jobID int64, jobState, description string, now time.Time) error {
	var u StatusUpdate
	err := tx.QueryRowContext(ctx, s.q(`SELECT instance, project_id, sha, name, ref, target_url, mr_iid, target_project_id
		FROM status_outbox WHERE job_id = ?`), jobID).Scan(&u.Instance, &u.ProjectID, &u.SHA, &u.Name, &u.Ref, &u.TargetURL,
		&u.MRIID, &u.TargetProjectID)
	if isNoRows(err) {
		return nil // this job shows no status (e.g. a manual job never triggered)
	}
	if err != nil {
		return fmt.Errorf("load status of job %d: %w", jobID, err)
	}
	u.JobID, u.State, u.Description = jobID, GitLabState(jobState), description
	return s.upsertStatus(ctx, tx, u, now)
}

// DueStatuses returns statuses with something unsent whose retry time has come.
func (s *Store) DueStatuses(ctx context.Context, now time.Time, limit int) ([]StatusRow, error) {
	return s.DueStatusesFor(ctx, now, limit, "", time.Time{})
}

// DueStatusesFor is DueStatuses for the reporter called owner: a status
// another reporter started sending after heldSince is left out, because
// that reporter may have died with its request still on the way to GitLab.
func (s *Store) DueStatusesFor(ctx context.Context, now time.Time, limit int, owner string, heldSince time.Time) ([]StatusRow, error) {
	held := int64(0)
	if !heldSince.IsZero() {
		held = micros(heldSince)
	}
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT instance, project_id, sha, name, job_id, ref, state, description, target_url,
		mr_iid, target_project_id, version, sent_version, sent_state, attempts, last_error, updated_at, sending_at
		FROM status_outbox WHERE version > sent_version AND next_attempt_at <= ?
			AND NOT (sending_at > ? AND sending_by <> ?)
		ORDER BY next_attempt_at LIMIT ?`), micros(now), held, owner, limit)
	if err != nil {
		return nil, fmt.Errorf("due statuses: %w", err)
	}
	return scanStatuses(rows)
}

// StatusesOf lists the status rows of a commit, for checks and pages.
func (s *Store) StatusesOf(ctx context.Context, instance string, projectID int64, sha string) ([]StatusRow, error) {
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT instance, project_id, sha, name, job_id, ref, state, description, target_url,
		mr_iid, target_project_id, version, sent_version, sent_state, attempts, last_error, updated_at, sending_at
		FROM status_outbox WHERE instance = ? AND project_id = ? AND sha = ? ORDER BY name`), instance, projectID, sha)
	if err != nil {
		return nil, fmt.Errorf("list statuses: %w", err)
	}
	return scanStatuses(rows)
}

func scanStatuses(rows *sql.Rows) ([]StatusRow, error) {
	defer rows.Close()
	var out []StatusRow
	for rows.Next() {
		var r StatusRow
		var updated, sending int64
		if err := rows.Scan(&r.Instance, &r.ProjectID, &r.SHA, &r.Name, &r.JobID, &r.Ref, &r.State, &r.Description, &r.TargetURL,
			&r.MRIID, &r.TargetProjectID, &r.Version, &r.SentVersion, &r.SentState, &r.Attempts, &r.LastError, &updated, &sending); err != nil {
			return nil, fmt.Errorf("scan status: %w", err)
		}
		r.UpdatedAt = fromMicros(updated)
		r.Attempted = sending != 0
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan statuses: %w", err)
	}
	return out, nil
}

// MarkStatusSent records that version of a status reached the forge (or
// will never, with a reason in note).
func (s *Store) MarkStatusSent(ctx context.Context, r StatusRow, note string) error {
	_, err := s.write.ExecContext(ctx, s.q(`UPDATE status_outbox SET sent_version = ?, sent_state = ?, attempts = 0, last_error = ?,
		sending_at = 0, sending_by = ''
		WHERE instance = ? AND project_id = ? AND sha = ? AND name = ? AND sent_version < ?`),
		r.Version, r.State, note, r.Instance, r.ProjectID, r.SHA, r.Name, r.Version)
	if err != nil {
		return fmt.Errorf("mark status sent: %w", err)
	}
	return nil
}

// RetryStatus schedules another attempt after a failure.
func (s *Store) RetryStatus(ctx context.Context, r StatusRow, at time.Time, lastError string) error {
	_, err := s.write.ExecContext(ctx, s.q(`UPDATE status_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
		WHERE instance = ? AND project_id = ? AND sha = ? AND name = ?`),
		micros(at), lastError, r.Instance, r.ProjectID, r.SHA, r.Name)
	if err != nil {
		return fmt.Errorf("retry status: %w", err)
	}
	return nil
}

// Pipeline returns the external pipeline known for a commit, or 0.
func (s *Store) Pipeline(ctx context.Context, instance string, projectID int64, sha string) (int64, error) {
	var id int64
	err := s.read.QueryRowContext(ctx, s.q(`SELECT pipeline_id FROM pipelines WHERE instance = ? AND project_id = ? AND sha = ?`),
		instance, projectID, sha).Scan(&id)
	if isNoRows(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load pipeline: %w", err)
	}
	return id, nil
}

// SetPipeline remembers the external pipeline of a commit (first one wins).
func (s *Store) SetPipeline(ctx context.Context, instance string, projectID int64, sha string, pipelineID int64) error {
	_, err := s.write.ExecContext(ctx, s.q(`INSERT INTO pipelines (instance, project_id, sha, pipeline_id) VALUES (?, ?, ?, ?)
		ON CONFLICT (instance, project_id, sha) DO NOTHING`), instance, projectID, sha, pipelineID)
	if err != nil {
		return fmt.Errorf("store pipeline: %w", err)
	}
	return nil
}

// Forge action kinds.
const (
	ActionMRNote        = "mr_note"        // a new comment on an MR
	ActionCommitComment = "commit_comment" // a new comment on a commit
	ActionAwardEmoji    = "award_emoji"    // an emoji on an MR note
	ActionIssue         = "issue"          // a (confidential) issue
)

// ForgeAction is one thing to say on the forge.
type ForgeAction struct {
	ID        int64
	Instance  string
	Kind      string
	ProjectID int64
	MRIID     int64
	SHA       string
	NoteID    int64
	// Payload is kind-specific: {"body": ...}, {"name": "eyes"}, {"title":..., "body":..., "confidential": true}.
	Payload  map[string]any
	DedupKey string
	Attempts int
}

func (s *Store) insertAction(ctx context.Context, tx *sql.Tx, a ForgeAction, now time.Time) error {
	payload, err := json.Marshal(a.Payload)
	if err != nil {
		return fmt.Errorf("encode action: %w", err)
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO forge_actions (instance, kind, project_id, mr_iid, sha, note_id, payload,
		dedup_key, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING`),
		a.Instance, a.Kind, a.ProjectID, a.MRIID, a.SHA, a.NoteID, string(payload), a.DedupKey, micros(now), micros(now))
	if err != nil {
		return fmt.Errorf("insert forge action: %w", err)
	}
	return nil
}

// AddActions records forge actions outside a plan.
func (s *Store) AddActions(ctx context.Context, actions ...ForgeAction) error {
	now := time.Now()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, a := range actions {
			if err := s.insertAction(ctx, tx, a, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// DueActions returns pending forge actions whose time has come, oldest first.
func (s *Store) DueActions(ctx context.Context, now time.Time, limit int) ([]ForgeAction, error) {
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT id, instance, kind, project_id, mr_iid, sha, note_id, payload, dedup_key, attempts
		FROM forge_actions WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?`), micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due actions: %w", err)
	}
	defer rows.Close()
	var out []ForgeAction
	for rows.Next() {
		var a ForgeAction
		var payload string
		if err := rows.Scan(&a.ID, &a.Instance, &a.Kind, &a.ProjectID, &a.MRIID, &a.SHA, &a.NoteID, &payload, &a.DedupKey, &a.Attempts); err != nil {
			return nil, fmt.Errorf("scan action: %w", err)
		}
		if err := json.Unmarshal([]byte(payload), &a.Payload); err != nil {
			return nil, fmt.Errorf("decode action %d: %w", a.ID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due actions: %w", err)
	}
	return out, nil
}

// FinishAction marks an action done ("done") or given up ("failed").
func (s *Store) FinishAction(ctx context.Context, id int64, state, lastError string) error {
	_, err := s.write.ExecContext(ctx, s.q(`UPDATE forge_actions SET state = ?, last_error = ?, done_at = ? WHERE id = ?`),
		state, lastError, micros(time.Now()), id)
	if err != nil {
		return fmt.Errorf("finish action: %w", err)
	}
	return nil
}

// RetryAction schedules another attempt.
func (s *Store) RetryAction(ctx context.Context, id int64, at time.Time, lastError string) error {
	_, err := s.write.ExecContext(ctx, s.q(`UPDATE forge_actions SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?`),
		micros(at), lastError, id)
	if err != nil {
		return fmt.Errorf("retry action: %w", err)
	}
	return nil
}

// UnplannedDelivery is an accepted delivery the planner has not handled.
type UnplannedDelivery struct {
	ID        int64
	Instance  string
	TokenID   int64
	Event     []byte // forge.Event JSON
	ProjectID int64
}

// UnplannedDeliveries returns accepted deliveries not yet planned, oldest first.
func (s *Store) UnplannedDeliveries(ctx context.Context, limit int) ([]UnplannedDelivery, error) {
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT d.id, d.instance, d.token_id, d.event, d.project_id
		FROM unplanned_deliveries u JOIN deliveries d ON d.id = u.delivery_id ORDER BY u.delivery_id LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("unplanned deliveries: %w", err)
	}
	defer rows.Close()
	var out []UnplannedDelivery
	for rows.Next() {
		var d UnplannedDelivery
		var ev string
		if err := rows.Scan(&d.ID, &d.Instance, &d.TokenID, &ev, &d.ProjectID); err != nil {
			return nil, fmt.Errorf("scan unplanned delivery: %w", err)
		}
		d.Event = []byte(ev)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unplanned deliveries: %w", err)
	}
	return out, nil
}

// Approve records a /packit approve for one SHA of an MR.
func (s *Store) Approve(ctx context.Context, mr MRRef, sha, by string) error {
	_, err := s.write.ExecContext(ctx, s.q(`INSERT INTO approvals (instance, project_id, mr_iid, sha, approved_by, approved_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (instance, project_id, mr_iid, sha) DO NOTHING`),
		mr.Instance, mr.ProjectID, mr.IID, sha, by, micros(time.Now()))
	if err != nil {
		return fmt.Errorf("record approval: %w", err)
	}
	return nil
}

// Approved reports whether an MR's SHA was approved.
func (s *Store) Approved(ctx context.Context, mr MRRef, sha string) (bool, error) {
	var n int
	err := s.read.QueryRowContext(ctx, s.q(`SELECT count(*) FROM approvals WHERE instance = ? AND project_id = ? AND mr_iid = ? AND sha = ?`),
		mr.Instance, mr.ProjectID, mr.IID, sha).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("check approval: %w", err)
	}
	return n > 0, nil
}

// advanceStatusDescription changes only the description of a job's status
// (its state stays), as when held jobs are approved and queued.
func (s *Store) advanceStatusDescription(ctx context.Context, tx *sql.Tx, jobID int64, description string, now time.Time) error {
	_, err := tx.ExecContext(ctx, s.q(`UPDATE status_outbox SET description = ?, version = version + 1, attempts = 0,
		next_attempt_at = ?, updated_at = ? WHERE job_id = ?`), description, micros(now), micros(now), jobID)
	if err != nil {
		return fmt.Errorf("update status description of job %d: %w", jobID, err)
	}
	return nil
}

// MarkPlanned marks deliveries planned in one transaction.
func (s *Store) MarkPlanned(ctx context.Context, deliveryIDs []int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, s.q(`DELETE FROM unplanned_deliveries WHERE delivery_id = ?`))
		if err != nil {
			return fmt.Errorf("mark planned: %w", err)
		}
		defer stmt.Close()
		for _, id := range deliveryIDs {
			if _, err := stmt.ExecContext(ctx, id); err != nil {
				return fmt.Errorf("mark delivery %d planned: %w", id, err)
			}
		}
		return nil
	})
}

// MarkStatusSending records that owner is about to send a status.
func (s *Store) MarkStatusSending(ctx context.Context, r StatusRow, owner string, at time.Time) error {
	_, err := s.write.ExecContext(ctx, s.q(`UPDATE status_outbox SET sending_at = ?, sending_by = ?
		WHERE instance = ? AND project_id = ? AND sha = ? AND name = ?`),
		micros(at), owner, r.Instance, r.ProjectID, r.SHA, r.Name)
	if err != nil {
		return fmt.Errorf("mark status sending: %w", err)
	}
	return nil
}
