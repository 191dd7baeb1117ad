package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenRecord is the stored side of a webhook token. The token itself is
// never stored: it is derived from the service key and this record's ID.
type TokenRecord struct {
	ID        int64
	Instance  string
	ScopeKind string // "project" or "group"
	ScopePath string
	KeyID     string
	Signing   bool
	CreatedAt time.Time
	CreatedBy string
	RevokedAt *time.Time
	// ProjectIDs are the numeric project IDs this token has authenticated.
	ProjectIDs []int64
}

// CreateToken stores a new token record and returns its ID.
func (s *Store) CreateToken(ctx context.Context, r TokenRecord) (int64, error) {
	var id int64
	err := s.write.QueryRowContext(ctx, s.q(`INSERT INTO hook_tokens
		(instance, scope_kind, scope_path, key_id, signing, created_at, created_by)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		r.Instance, r.ScopeKind, r.ScopePath, r.KeyID, boolInt(r.Signing), micros(r.CreatedAt), r.CreatedBy).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create token record: %w", err)
	}
	return id, nil
}

// Token loads one token record with the project IDs bound to it.
func (s *Store) Token(ctx context.Context, id int64) (TokenRecord, error) {
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT t.id, t.instance, t.scope_kind, t.scope_path, t.key_id,
		t.signing, t.created_at, t.created_by, t.revoked_at, p.project_id
		FROM hook_tokens t LEFT JOIN token_projects p ON p.token_id = t.id
		WHERE t.id = ?`), id)
	if err != nil {
		return TokenRecord{}, fmt.Errorf("load token record: %w", err)
	}
	list, err := scanTokens(rows)
	if err != nil {
		return TokenRecord{}, err
	}
	if len(list) == 0 {
		return TokenRecord{}, fmt.Errorf("token record %d: %w", id, ErrNotFound)
	}
	return list[0], nil
}

// Tokens lists every token record, oldest first.
func (s *Store) Tokens(ctx context.Context) ([]TokenRecord, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT t.id, t.instance, t.scope_kind, t.scope_path, t.key_id,
		t.signing, t.created_at, t.created_by, t.revoked_at, p.project_id
		FROM hook_tokens t LEFT JOIN token_projects p ON p.token_id = t.id
		ORDER BY t.id, p.project_id`)
	if err != nil {
		return nil, fmt.Errorf("list token records: %w", err)
	}
	return scanTokens(rows)
}

func scanTokens(rows *sql.Rows) ([]TokenRecord, error) {
	defer rows.Close()
	var out []TokenRecord
	for rows.Next() {
		var r TokenRecord
		var signing, created int64
		var revoked, projectID sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Instance, &r.ScopeKind, &r.ScopePath, &r.KeyID,
			&signing, &created, &r.CreatedBy, &revoked, &projectID); err != nil {
			return nil, fmt.Errorf("scan token record: %w", err)
		}
		if n := len(out); n > 0 && out[n-1].ID == r.ID {
			if projectID.Valid {
				out[n-1].ProjectIDs = append(out[n-1].ProjectIDs, projectID.Int64)
			}
			continue
		}
		r.Signing = signing != 0
		r.CreatedAt = fromMicros(created)
		if revoked.Valid {
			t := fromMicros(revoked.Int64)
			r.RevokedAt = &t
		}
		if projectID.Valid {
			r.ProjectIDs = []int64{projectID.Int64}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list token records: %w", err)
	}
	return out, nil
}

// RevokeTokens revokes every unrevoked token of exactly this instance and
// scope path (project or group) and returns how many it revoked.
func (s *Store) RevokeTokens(ctx context.Context, instance, scopePath string, at time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, s.q(`UPDATE hook_tokens SET revoked_at = ?
		WHERE instance = ? AND lower(scope_path) = ? AND revoked_at IS NULL`),
		micros(at), instance, strings.ToLower(scopePath))
	if err != nil {
		return 0, fmt.Errorf("revoke tokens: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("revoke tokens: %w", err)
	}
	return n, nil
}

// KnownScopes returns the scope paths of the unrevoked tokens of an
// instance. Rejection counters are kept only for these, which bounds them.
func (s *Store) KnownScopes(ctx context.Context) (map[string][]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT DISTINCT instance, scope_path FROM hook_tokens WHERE revoked_at IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("list known scopes: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var inst, path string
		if err := rows.Scan(&inst, &path); err != nil {
			return nil, fmt.Errorf("list known scopes: %w", err)
		}
		out[inst] = append(out[inst], path)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list known scopes: %w", err)
	}
	return out, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }

// Binding says whether tokenID has authenticated deliveries for projectID
// (intake bound it from a payload) and whether the planner has checked that
// binding with GitLab since.
func (s *Store) Binding(ctx context.Context, tokenID, projectID int64) (bound, verified bool, err error) {
	var at sql.NullInt64
	err = s.read.QueryRowContext(ctx, s.q(`SELECT verified_at FROM token_projects WHERE token_id = ? AND project_id = ?`),
		tokenID, projectID).Scan(&at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, false, nil
	case err != nil:
		return false, false, fmt.Errorf("token binding: %w", err)
	}
	return true, at.Valid, nil
}

// VerifyBinding records that the planner checked tokenID's binding of
// projectID with GitLab.
func (s *Store) VerifyBinding(ctx context.Context, tokenID, projectID int64, at time.Time) error {
	if _, err := s.write.ExecContext(ctx, s.q(`UPDATE token_projects SET verified_at = ? WHERE token_id = ? AND project_id = ?`),
		micros(at), tokenID, projectID); err != nil {
		return fmt.Errorf("verify token binding: %w", err)
	}
	return nil
}

// DropBinding forgets an unchecked binding that GitLab contradicted: the
// payload that made it named another project's ID.
func (s *Store) DropBinding(ctx context.Context, tokenID, projectID int64) error {
	if _, err := s.write.ExecContext(ctx, s.q(`DELETE FROM token_projects WHERE token_id = ? AND project_id = ? AND verified_at IS NULL`),
		tokenID, projectID); err != nil {
		return fmt.Errorf("drop token binding: %w", err)
	}
	return nil
}
