package store

import (
	"context"
	"fmt"
	"time"
)

// AuditEntry is one thing a person did to a project through upbuild: issued
// or revoked a token, changed settings, approved, re-ran or cancelled.
type AuditEntry struct {
	ID        int64  `json:"id"`
	Instance  string `json:"instance"`
	ProjectID int64  `json:"project_id"`
	// Actor is who did it, as "username" on the instance, or "operator"
	// for the admin token and the CLI.
	Actor string `json:"actor"`
	// Action is a short verb phrase such as "token.issue" or "job.rerun".
	Action string `json:"action"`
	// Detail says what exactly, in words a maintainer understands.
	Detail string    `json:"detail"`
	At     time.Time `json:"at"`
}

// AppendAudit records e. At defaults to now.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) (int64, error) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	var id int64
	err := s.write.QueryRowContext(ctx, s.q(`INSERT INTO audit_log (instance, project_id, actor, action, detail, at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		e.Instance, e.ProjectID, e.Actor, e.Action, e.Detail, micros(e.At)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("append audit entry: %w", err)
	}
	return id, nil
}

// AuditLog lists a project's entries newest first, at most limit of them,
// starting below ID before (0: from the newest).
func (s *Store) AuditLog(ctx context.Context, instance string, projectID, before int64, limit int) ([]AuditEntry, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT id, instance, project_id, actor, action, detail, at
		FROM audit_log WHERE instance = ? AND project_id = ? AND id < ? ORDER BY id DESC LIMIT ?`),
		instance, projectID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &e.Instance, &e.ProjectID, &e.Actor, &e.Action, &e.Detail, &at); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}
