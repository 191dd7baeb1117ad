package store

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// RevokeToken revokes one token record. It returns false when the record
// does not exist or was revoked already.
func (s *Store) RevokeToken(ctx context.Context, id int64, at time.Time) (bool, error) {
	res, err := s.write.ExecContext(ctx, s.q(`UPDATE hook_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`),
		micros(at), id)
	if err != nil {
		return false, fmt.Errorf("revoke token %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("revoke token %d: %w", id, err)
	}
	return n == 1, nil
}

// ProjectTokens lists the token records that cover a project path on an
// instance, oldest first: the project's own, and those of the groups above
// it (which the project page names but cannot revoke).
func (s *Store) ProjectTokens(ctx context.Context, instance, path string) ([]TokenRecord, error) {
	all, err := s.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	path = strings.ToLower(path)
	var out []TokenRecord
	for _, t := range all {
		if t.Instance != instance {
			continue
		}
		scope := strings.ToLower(t.ScopePath)
		if scope == path || (t.ScopeKind == "group" && strings.HasPrefix(path, scope+"/")) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Host is the instance's host (with its port), as the dashboard's project
// URLs name it: /p/<host>/<path>.
func (p ProjectRef) Host() string {
	if u, err := url.Parse(p.Instance); err == nil && u.Host != "" {
		return u.Host
	}
	return p.Instance
}
