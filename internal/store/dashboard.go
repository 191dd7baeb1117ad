package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RunQuery selects runs for the dashboard and the JSON API.
type RunQuery struct {
	Instance  string // exact instance URL; empty for all
	ProjectID int64  // 0 for all
	MRIID     int64  // 0 for all
	Ref       string // branch or tag; empty for all
	SHA       string // commit; empty for all
	Trigger   string // pull_request, commit or release; empty for all
	// PublicOnly leaves out runs of projects that are not public.
	PublicOnly bool
	BeforeID   int64 // cursor: only runs with a smaller ID; 0 for the newest
	Limit      int   // 1 to 1000; anything else means 100
}

// ListRuns lists runs newest first.
func (s *Store) ListRuns(ctx context.Context, f RunQuery) ([]Run, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.Instance != "" {
		add("instance = ?", f.Instance)
	}
	if f.ProjectID != 0 {
		add("project_id = ?", f.ProjectID)
	}
	if f.MRIID != 0 {
		add("mr_iid = ?", f.MRIID)
	}
	if f.Ref != "" {
		add("ref = ?", f.Ref)
	}
	if f.SHA != "" {
		add("sha = ?", f.SHA)
	}
	if f.Trigger != "" {
		add("trigger = ?", f.Trigger)
	}
	if f.PublicOnly {
		add("visibility = ?", "public")
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	query := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT " + strconv.Itoa(f.Limit)
	rows, err := s.read.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return scanRuns(rows)
}

// JobTally counts a run's jobs by state.
type JobTally map[string]int

// JobTallies counts the jobs of each given run by state, keyed by run ID.
func (s *Store) JobTallies(ctx context.Context, runIDs []int64) (map[int64]JobTally, error) {
	out := make(map[int64]JobTally, len(runIDs))
	if len(runIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(runIDs))
	for i, id := range runIDs {
		args[i] = id
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(runIDs)), ", ")
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT run_id, state, count(*) FROM jobs WHERE run_id IN (`+marks+`)
		GROUP BY run_id, state`), args...)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var runID int64
		var state string
		var n int
		if err := rows.Scan(&runID, &state, &n); err != nil {
			return nil, fmt.Errorf("count jobs: %w", err)
		}
		if out[runID] == nil {
			out[runID] = JobTally{}
		}
		out[runID][state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	return out, nil
}

// ProjectRef names a project as upbuild knows it: from its newest run.
type ProjectRef struct {
	Instance   string
	ProjectID  int64
	Path       string
	Visibility string
}

// Public reports whether anyone may see the project without signing in.
func (p ProjectRef) Public() bool { return p.Visibility == "public" }

// FindProject finds the project at a path (case-insensitive) on the
// instance with the given host (http or https), from its newest run. A
// project upbuild has never run anything for is ErrNotFound.
func (s *Store) FindProject(ctx context.Context, host, path string) (ProjectRef, error) {
	var p ProjectRef
	err := s.read.QueryRowContext(ctx, s.q(`SELECT instance, project_id FROM runs
		WHERE instance IN (?, ?) AND lower(project_path) = ? ORDER BY id DESC LIMIT 1`),
		"https://"+host, "http://"+host, strings.ToLower(path)).Scan(&p.Instance, &p.ProjectID)
	if isNoRows(err) {
		return ProjectRef{}, fmt.Errorf("project %s/%s: %w", host, path, ErrNotFound)
	}
	if err != nil {
		return ProjectRef{}, fmt.Errorf("find project %s/%s: %w", host, path, err)
	}
	return s.Project(ctx, p.Instance, p.ProjectID)
}

// Project describes a project by its numeric ID, from its newest run: the
// path and visibility it has now.
func (s *Store) Project(ctx context.Context, instance string, projectID int64) (ProjectRef, error) {
	p := ProjectRef{Instance: instance, ProjectID: projectID}
	err := s.read.QueryRowContext(ctx, s.q(`SELECT project_path, visibility FROM runs
		WHERE instance = ? AND project_id = ? ORDER BY id DESC LIMIT 1`), instance, projectID).Scan(&p.Path, &p.Visibility)
	if isNoRows(err) {
		return ProjectRef{}, fmt.Errorf("project %d on %s: %w", projectID, instance, ErrNotFound)
	}
	if err != nil {
		return ProjectRef{}, fmt.Errorf("load project %d on %s: %w", projectID, instance, err)
	}
	return p, nil
}

// microsPerDay turns stored times into day numbers (days since 1970, UTC).
const microsPerDay = 86_400_000_000

// JobDay is what one job name did on one day.
type JobDay struct {
	StatusName string
	Day        time.Time // midnight UTC
	Finished   int       // jobs that ended: success, failed or error
	Passed     int       // of those, the successful ones
	// Timed counts the finished jobs that had started, and TotalRun is
	// their summed run time (start to finish).
	Timed    int
	TotalRun time.Duration
}

// JobDays sums a project's finished jobs per status name and day, from
// since on, ordered by name and day.
func (s *Store) JobDays(ctx context.Context, instance string, projectID int64, since time.Time) ([]JobDay, error) {
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT j.status_name, j.finished_at / `+strconv.Itoa(microsPerDay)+` AS day,
		count(*),
		CAST(sum(CASE WHEN j.state = 'success' THEN 1 ELSE 0 END) AS BIGINT),
		CAST(sum(CASE WHEN j.started_at IS NULL THEN 0 ELSE 1 END) AS BIGINT),
		CAST(sum(CASE WHEN j.started_at IS NULL THEN 0 ELSE j.finished_at - j.started_at END) AS BIGINT)
		FROM jobs j JOIN runs r ON r.id = j.run_id
		WHERE r.instance = ? AND r.project_id = ? AND j.finished_at >= ? AND j.state IN ('success', 'failed', 'error')
		GROUP BY j.status_name, j.finished_at / `+strconv.Itoa(microsPerDay)+`
		ORDER BY j.status_name, day`), instance, projectID, micros(since))
	if err != nil {
		return nil, fmt.Errorf("job history: %w", err)
	}
	defer rows.Close()
	var out []JobDay
	for rows.Next() {
		var d JobDay
		var day, total int64
		if err := rows.Scan(&d.StatusName, &day, &d.Finished, &d.Passed, &d.Timed, &total); err != nil {
			return nil, fmt.Errorf("job history: %w", err)
		}
		d.Day = fromMicros(day * microsPerDay)
		d.TotalRun = time.Duration(total) * time.Microsecond
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("job history: %w", err)
	}
	return out, nil
}

// DeliveryDay counts a project's stored deliveries of one day by outcome.
type DeliveryDay struct {
	Day      time.Time // midnight UTC
	Accepted int
	Ignored  int
}

// DeliveryDays counts a project's deliveries per day from since on, oldest
// day first. Rejected deliveries are not stored, so they are not here (see
// Rejections).
func (s *Store) DeliveryDays(ctx context.Context, instance string, projectID int64, since time.Time) ([]DeliveryDay, error) {
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT received_at / `+strconv.Itoa(microsPerDay)+` AS day,
		CAST(sum(CASE WHEN outcome = 'accepted' THEN 1 ELSE 0 END) AS BIGINT),
		CAST(sum(CASE WHEN outcome = 'accepted' THEN 0 ELSE 1 END) AS BIGINT)
		FROM deliveries WHERE instance = ? AND project_id = ? AND received_at >= ?
		GROUP BY received_at / `+strconv.Itoa(microsPerDay)+` ORDER BY day`), instance, projectID, micros(since))
	if err != nil {
		return nil, fmt.Errorf("delivery history: %w", err)
	}
	defer rows.Close()
	var out []DeliveryDay
	for rows.Next() {
		var d DeliveryDay
		var day int64
		if err := rows.Scan(&day, &d.Accepted, &d.Ignored); err != nil {
			return nil, fmt.Errorf("delivery history: %w", err)
		}
		d.Day = fromMicros(day * microsPerDay)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delivery history: %w", err)
	}
	return out, nil
}
