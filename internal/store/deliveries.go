package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Outcomes of an accepted delivery.
const (
	OutcomeAccepted = "accepted" // normalised into an event that upbuild acts on
	OutcomeIgnored  = "ignored"  // authenticated and kept, but nothing to do
)

// Delivery is one accepted webhook delivery as stored.
type Delivery struct {
	ID          int64
	Instance    string
	ProjectID   int64
	ProjectPath string
	EventHeader string // X-Gitlab-Event as sent
	EventKind   string // normalised kind, e.g. merge_request
	// DedupKey is the hashed deduplication key, or "" when the delivery
	// carried neither Idempotency-Key nor X-Gitlab-Event-UUID.
	DedupKey string
	// Headers are the delivery's headers, without any secret.
	Headers map[string]string
	Body    []byte
	Outcome string
	Reason  string
	// Event is the normalised forge.Event as JSON, nil when ignored.
	Event        []byte
	TokenID      int64
	ReceivedAt   time.Time
	RepeatCount  int64
	LastRepeatAt *time.Time
	// BindProject asks Save to remember ProjectID as authenticated by TokenID.
	BindProject bool
}

// SaveResult says what Save did with a delivery.
type SaveResult struct {
	ID        int64
	Duplicate bool // an earlier delivery had the same key; it was counted there
}

// DedupKey builds the deduplication key of a delivery. GitLab gives every
// hook fired by one request the same X-Gitlab-Event-UUID, so the event kind
// is part of the key; the project is too, because one token may cover a
// whole group.
func DedupKey(instance string, projectID int64, projectPath, eventHeader, key string) string {
	if key == "" {
		return ""
	}
	project := strconv.FormatInt(projectID, 10)
	if projectID == 0 {
		project = "path:" + strings.ToLower(projectPath)
	}
	sum := sha256.Sum256([]byte(instance + "\x00" + project + "\x00" + eventHeader + "\x00" + key))
	return hex.EncodeToString(sum[:])
}

const insertDeliverySQL = `INSERT INTO deliveries
	(instance, project_id, project_path, event_header, event_kind, dedup_key, headers, body,
	 outcome, reason, event, token_id, received_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (dedup_key) DO NOTHING RETURNING id`

// saveBatch writes deliveries in one transaction and commits once. It is the
// heart of group commit: one fsync for the whole batch.
func (s *Store) saveBatch(ctx context.Context, prepared *sql.Stmt, batch []Delivery) ([]SaveResult, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("save deliveries: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var insert *sql.Stmt
	if prepared != nil {
		// Prepared once on the write pool; on SQLite's single connection
		// this skips parsing the statement for every batch.
		insert = tx.StmtContext(ctx, prepared)
	} else {
		insert, err = tx.PrepareContext(ctx, s.q(insertDeliverySQL))
		if err != nil {
			return nil, fmt.Errorf("save deliveries: prepare: %w", err)
		}
	}
	defer insert.Close()
	queue, err := tx.PrepareContext(ctx, s.q(`INSERT INTO unplanned_deliveries (delivery_id) VALUES (?)`))
	if err != nil {
		return nil, fmt.Errorf("save deliveries: prepare: %w", err)
	}
	defer queue.Close()
	results := make([]SaveResult, len(batch))
	for i, d := range batch {
		headers, err := json.Marshal(d.Headers)
		if err != nil {
			return nil, fmt.Errorf("save deliveries: encode headers: %w", err)
		}
		var dedup, event any
		if d.DedupKey != "" {
			dedup = d.DedupKey
		}
		if d.Event != nil {
			event = string(d.Event)
		}
		err = insert.QueryRowContext(ctx, d.Instance, d.ProjectID, d.ProjectPath, d.EventHeader, d.EventKind,
			dedup, string(headers), d.Body, d.Outcome, d.Reason, event, d.TokenID, micros(d.ReceivedAt)).Scan(&results[i].ID)
		switch {
		case isNoRows(err):
			// The key exists: count the repeat on the original and create nothing else.
			err = tx.QueryRowContext(ctx, s.q(`UPDATE deliveries SET repeat_count = repeat_count + 1, last_repeat_at = ?
				WHERE dedup_key = ? RETURNING id`), micros(d.ReceivedAt), d.DedupKey).Scan(&results[i].ID)
			if err != nil {
				return nil, fmt.Errorf("save deliveries: count repeat: %w", err)
			}
			results[i].Duplicate = true
		case err != nil:
			return nil, fmt.Errorf("save deliveries: insert: %w", err)
		}
		if d.Outcome == OutcomeAccepted && !results[i].Duplicate {
			// The planner's work list: only deliveries it acts on.
			if _, err := queue.ExecContext(ctx, results[i].ID); err != nil {
				return nil, fmt.Errorf("save deliveries: queue for planning: %w", err)
			}
		}
		if d.BindProject && d.ProjectID != 0 && !results[i].Duplicate {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO token_projects (token_id, project_id, project_path, bound_at)
				VALUES (?, ?, ?, ?) ON CONFLICT (token_id, project_id) DO NOTHING`),
				d.TokenID, d.ProjectID, d.ProjectPath, micros(d.ReceivedAt)); err != nil {
				return nil, fmt.Errorf("save deliveries: bind project: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("save deliveries: commit: %w", err)
	}
	return results, nil
}

// DeliveryFilter selects deliveries for listing.
type DeliveryFilter struct {
	Instance    string // exact instance URL; empty for all
	ProjectPath string // case-insensitive project path; empty for all
	ProjectID   int64  // 0 for all
	BeforeID    int64  // cursor: only deliveries with a smaller ID; 0 for the newest
	Limit       int
}

// Deliveries lists deliveries newest first, without their bodies.
func (s *Store) Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	var where []string
	var args []any
	if f.Instance != "" {
		where = append(where, "instance = ?")
		args = append(args, f.Instance)
	}
	if f.ProjectPath != "" {
		where = append(where, "lower(project_path) = ?")
		args = append(args, strings.ToLower(f.ProjectPath))
	}
	if f.ProjectID != 0 {
		where = append(where, "project_id = ?")
		args = append(args, f.ProjectID)
	}
	if f.BeforeID > 0 {
		where = append(where, "id < ?")
		args = append(args, f.BeforeID)
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	query := `SELECT id, instance, project_id, project_path, event_header, event_kind, headers, outcome, reason,
		token_id, received_at, repeat_count, last_repeat_at FROM deliveries`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT " + strconv.Itoa(f.Limit)
	rows, err := s.read.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var headers string
		var received int64
		var lastRepeat sql.NullInt64
		if err := rows.Scan(&d.ID, &d.Instance, &d.ProjectID, &d.ProjectPath, &d.EventHeader, &d.EventKind,
			&headers, &d.Outcome, &d.Reason, &d.TokenID, &received, &d.RepeatCount, &lastRepeat); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		if err := json.Unmarshal([]byte(headers), &d.Headers); err != nil {
			return nil, fmt.Errorf("list deliveries: decode headers of %d: %w", d.ID, err)
		}
		d.ReceivedAt = fromMicros(received)
		if lastRepeat.Valid {
			t := fromMicros(lastRepeat.Int64)
			d.LastRepeatAt = &t
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// DeliveryBody returns the stored body and normalised event of one delivery.
func (s *Store) DeliveryBody(ctx context.Context, id int64) (body, event []byte, err error) {
	var ev sql.NullString
	err = s.read.QueryRowContext(ctx, s.q(`SELECT body, event FROM deliveries WHERE id = ?`), id).Scan(&body, &ev)
	if isNoRows(err) {
		return nil, nil, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load delivery %d: %w", id, err)
	}
	if ev.Valid {
		event = []byte(ev.String)
	}
	return body, event, nil
}

// CountDeliveries counts stored deliveries, for checks and benchmarks.
func (s *Store) CountDeliveries(ctx context.Context) (int64, error) {
	var n int64
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM deliveries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count deliveries: %w", err)
	}
	return n, nil
}
