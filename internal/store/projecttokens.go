package store

import (
	"context"
	"fmt"
	"net/url"
	"slices"
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

// ProjectTokens lists the token records that cover a project on an
// instance, oldest first: those scoped to its path, those of the groups
// above it (which the project page names but cannot revoke), and those
// bound to its numeric ID (projectID, 0 for none) under an older path.
func (s *Store) ProjectTokens(ctx context.Context, instance, path string, projectID int64) ([]TokenRecord, error) {
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
		// A project token authenticates the project it was first used by,
		// wherever that project has moved since: it follows the ID.
		if scope == path || (t.ScopeKind == "group" && strings.HasPrefix(path, scope+"/")) ||
			(projectID != 0 && slices.Contains(t.ProjectIDs, projectID)) {
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
