package store

import (
	"context"
	"fmt"
	"strings"
)

// ProjectInstances lists, in order, the instances on which upbuild has runs
// of a project with this numeric ID: the API's way to tell whether an ID
// alone names one project. Project IDs are per instance, so two instances
// may both have a project 7.
func (s *Store) ProjectInstances(ctx context.Context, projectID int64) ([]string, error) {
	// Walks the distinct instances through the runs_project index (instance,
	// project_id, id), one seek each, instead of scanning every run: there
	// are a handful of instances and many runs.
	rows, err := s.read.QueryContext(ctx, s.q(`WITH RECURSIVE instances (name) AS (
			SELECT min(instance) FROM runs
			UNION ALL
			SELECT (SELECT min(instance) FROM runs WHERE instance > instances.name) FROM instances WHERE instances.name IS NOT NULL)
		SELECT name FROM instances WHERE name IS NOT NULL
			AND EXISTS (SELECT 1 FROM runs WHERE instance = instances.name AND project_id = ?)
		ORDER BY name`), projectID)
	if err != nil {
		return nil, fmt.Errorf("instances of project %d: %w", projectID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("instances of project %d: %w", projectID, err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("instances of project %d: %w", projectID, err)
	}
	return out, nil
}

// ProjectRejections are the refusal counters that concern a project: its
// own and those of the groups above it (a group token covers its
// projects), most recent first. This is what the project page shows as
// webhook health.
func (s *Store) ProjectRejections(ctx context.Context, p ProjectRef) ([]Rejection, error) {
	all, err := s.Rejections(ctx, p.Instance)
	if err != nil {
		return nil, err
	}
	path := strings.ToLower(p.Path)
	var out []Rejection
	for _, x := range all {
		scope := strings.ToLower(x.ScopePath)
		if scope != "" && (scope == path || strings.HasPrefix(path, scope+"/")) {
			out = append(out, x)
		}
	}
	return out, nil
}
