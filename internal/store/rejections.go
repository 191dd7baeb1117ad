package store

import (
	"context"
	"fmt"
	"time"
)

// Rejection is a counter of refused deliveries for one scope.
type Rejection struct {
	Instance   string
	ScopePath  string // the project or group path; "" for deliveries naming no known project
	Count      int64
	FirstAt    time.Time
	LastAt     time.Time
	LastReason string
}

// AddRejections adds counts to the rejection counters in one transaction.
func (s *Store) AddRejections(ctx context.Context, deltas []Rejection) error {
	if len(deltas) == 0 {
		return nil
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add rejections: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, d := range deltas {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO rejections (instance, scope_path, count, first_at, last_at, last_reason)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (instance, scope_path) DO UPDATE SET count = rejections.count + excluded.count,
				last_at = excluded.last_at, last_reason = excluded.last_reason`),
			d.Instance, d.ScopePath, d.Count, micros(d.FirstAt), micros(d.LastAt), d.LastReason); err != nil {
			return fmt.Errorf("add rejections: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add rejections: %w", err)
	}
	return nil
}

// Rejections lists the rejection counters, optionally of one instance.
func (s *Store) Rejections(ctx context.Context, instance string) ([]Rejection, error) {
	query := `SELECT instance, scope_path, count, first_at, last_at, last_reason FROM rejections`
	var args []any
	if instance != "" {
		query += ` WHERE instance = ?`
		args = append(args, instance)
	}
	query += ` ORDER BY last_at DESC`
	rows, err := s.read.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list rejections: %w", err)
	}
	defer rows.Close()
	var out []Rejection
	for rows.Next() {
		var r Rejection
		var first, last int64
		if err := rows.Scan(&r.Instance, &r.ScopePath, &r.Count, &first, &last, &r.LastReason); err != nil {
			return nil, fmt.Errorf("list rejections: %w", err)
		}
		r.FirstAt, r.LastAt = fromMicros(first), fromMicros(last)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list rejections: %w", err)
	}
	return out, nil
}
