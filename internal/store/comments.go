package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Purposes of comments kept up to date in place.
const (
	CommentSummary = "summary" // the per-MR summary a project asked for
	CommentResults = "results" // the results table when statuses cannot be set on a fork
)

// MRComment is a comment upbuild keeps editing in place.
type MRComment struct {
	MRRef
	Purpose     string
	NoteID      int64 // 0 until created
	Body        string
	Version     int64
	SentVersion int64
	Attempts    int
}

// SetMRComment records the desired body of an in-place comment. An
// unchanged body changes nothing.
func (s *Store) SetMRComment(ctx context.Context, mr MRRef, purpose, body string) error {
	now := micros(time.Now())
	_, err := s.write.ExecContext(ctx, s.q(`INSERT INTO mr_comments (instance, project_id, mr_iid, purpose, body, version, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, 1, ?)
		ON CONFLICT (instance, project_id, mr_iid, purpose) DO UPDATE SET body = excluded.body,
			version = mr_comments.version + 1, attempts = 0, next_attempt_at = excluded.next_attempt_at
		WHERE mr_comments.body <> excluded.body`), mr.Instance, mr.ProjectID, mr.IID, purpose, body, now)
	if err != nil {
		return fmt.Errorf("set MR comment: %w", err)
	}
	return nil
}

// MRCommentOf loads one in-place comment, or ErrNotFound.
func (s *Store) MRCommentOf(ctx context.Context, mr MRRef, purpose string) (MRComment, error) {
	c := MRComment{MRRef: mr, Purpose: purpose}
	err := s.read.QueryRowContext(ctx, s.q(`SELECT note_id, body, version, sent_version, attempts FROM mr_comments
		WHERE instance = ? AND project_id = ? AND mr_iid = ? AND purpose = ?`), mr.Instance, mr.ProjectID, mr.IID, purpose).
		Scan(&c.NoteID, &c.Body, &c.Version, &c.SentVersion, &c.Attempts)
	if isNoRows(err) {
		return MRComment{}, fmt.Errorf("MR comment: %w", ErrNotFound)
	}
	if err != nil {
		return MRComment{}, fmt.Errorf("load MR comment: %w", err)
	}
	return c, nil
}

// DueMRComments returns in-place comments with an unsent body.
func (s *Store) DueMRComments(ctx context.Context, now time.Time, limit int) ([]MRComment, error) {
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT instance, project_id, mr_iid, purpose, note_id, body, version, sent_version, attempts
		FROM mr_comments WHERE version > sent_version AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`), micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due MR comments: %w", err)
	}
	return scanMRComments(rows)
}

func scanMRComments(rows *sql.Rows) ([]MRComment, error) {
	defer rows.Close()
	var out []MRComment
	for rows.Next() {
		var c MRComment
		if err := rows.Scan(&c.Instance, &c.ProjectID, &c.IID, &c.Purpose, &c.NoteID, &c.Body, &c.Version, &c.SentVersion, &c.Attempts); err != nil {
			return nil, fmt.Errorf("scan MR comment: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan MR comments: %w", err)
	}
	return out, nil
}

// MarkMRCommentSent records that a version of the body is on the forge,
// under noteID.
func (s *Store) MarkMRCommentSent(ctx context.Context, c MRComment, noteID int64) error {
	_, err := s.write.ExecContext(ctx, s.q(`UPDATE mr_comments SET note_id = ?, sent_version = ?, attempts = 0, last_error = ''
		WHERE instance = ? AND project_id = ? AND mr_iid = ? AND purpose = ? AND sent_version < ?`),
		noteID, c.Version, c.Instance, c.ProjectID, c.IID, c.Purpose, c.Version)
	if err != nil {
		return fmt.Errorf("mark MR comment sent: %w", err)
	}
	return nil
}

// RetryMRComment schedules another attempt.
func (s *Store) RetryMRComment(ctx context.Context, c MRComment, at time.Time, lastError string) error {
	_, err := s.write.ExecContext(ctx, s.q(`UPDATE mr_comments SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
		WHERE instance = ? AND project_id = ? AND mr_iid = ? AND purpose = ?`),
		micros(at), lastError, c.Instance, c.ProjectID, c.IID, c.Purpose)
	if err != nil {
		return fmt.Errorf("retry MR comment: %w", err)
	}
	return nil
}
