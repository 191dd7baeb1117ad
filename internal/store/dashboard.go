package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
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
	var newest int64
	// One index seek per scheme (runs_project_path), each already newest
	// first; an IN over both schemes would sort every run of the project.
	err := s.read.QueryRowContext(ctx, s.q(`SELECT instance, project_id, id FROM (
			SELECT instance, project_id, id FROM runs WHERE instance = ? AND lower(project_path) = ? ORDER BY id DESC LIMIT 1) a
		UNION ALL SELECT instance, project_id, id FROM (
			SELECT instance, project_id, id FROM runs WHERE instance = ? AND lower(project_path) = ? ORDER BY id DESC LIMIT 1) b
		ORDER BY id DESC LIMIT 1`),
		"https://"+host, strings.ToLower(path), "http://"+host, strings.ToLower(path)).Scan(&p.Instance, &p.ProjectID, &newest)
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

// Stored times are unix microseconds; the charts count per day (since
// 1970, UTC), and the rollups also per hour.
const (
	microsPerHour = 3_600_000_000
	microsPerDay  = 24 * microsPerHour
)

// settleTime is how long after an hour or a day ends its sums may still
// change: a job or delivery stamped just before the end whose transaction
// commits a little later, or a node whose clock is a little behind. Older
// periods are rolled up once and never summed again.
const settleTime = 5 * time.Minute

// period is a rollup's granularity.
type period struct {
	name   string // "day" or "hour", also the bucket column's name
	micros int64
}

var (
	byDay  = period{name: "day", micros: microsPerDay}
	byHour = period{name: "hour", micros: microsPerHour}
)

// number is the period (since 1970, UTC) a time falls on.
func (p period) number(t time.Time) int64 {
	us := micros(t)
	if us < 0 {
		return (us - p.micros + 1) / p.micros
	}
	return us / p.micros
}

// settled is the first period whose sums may still change: every one
// before it ended more than settleTime ago.
func (p period) settled(now time.Time) int64 { return p.number(now.Add(-settleTime)) }

// A rollup series: the tables of its sums per day and per hour (named
// <table>_days and <table>_hours, bucket column day or hour), their value
// columns, and the query that sums the project's rows per period.
type rollupSeries struct {
	name   string
	table  string
	values string
	// sums returns the query that sums rows per bucket of the given length
	// (in microseconds) over a span of the given length: its columns are
	// the bucket number and then values; its arguments instance, project,
	// and the span's start and end in microseconds.
	sums func(bucket, span int64) string
}

// wideSpan is the span from which a project's jobs are cheaper to find
// from its runs than from the jobs that finished in the span.
const wideSpan = 7 * microsPerDay

var (
	jobSeries = rollupSeries{name: "jobs", table: "job",
		values: "status_name, finished, passed, timed, total_run",
		sums: func(bucket, span int64) string {
			// CROSS JOIN fixes SQLite's join order, which it cannot choose
			// well without statistics: for an hour or a day, the jobs that
			// finished then (jobs_finished covers all this reads of them)
			// are few; for a project's first 90 days, its runs lead to its
			// jobs with fewer lookups. PostgreSQL plans either as an inner
			// join.
			from := "jobs j CROSS JOIN runs r"
			if span > wideSpan {
				from = "runs r CROSS JOIN jobs j"
			}
			b := strconv.FormatInt(bucket, 10)
			return `SELECT j.finished_at / ` + b + `, j.status_name,
				count(*),
				CAST(sum(CASE WHEN j.state = 'success' THEN 1 ELSE 0 END) AS BIGINT),
				CAST(sum(CASE WHEN j.started_at IS NULL THEN 0 ELSE 1 END) AS BIGINT),
				CAST(sum(CASE WHEN j.started_at IS NULL THEN 0 ELSE j.finished_at - j.started_at END) AS BIGINT)
				FROM ` + from + `
				WHERE r.id = j.run_id AND r.instance = ? AND r.project_id = ? AND j.finished_at >= ? AND j.finished_at < ?
					AND j.state IN ('success', 'failed', 'error')
				GROUP BY j.finished_at / ` + b + `, j.status_name`
		}}
	deliverySeries = rollupSeries{name: "deliveries", table: "delivery",
		values: "accepted, ignored",
		sums: func(bucket, _ int64) string {
			b := strconv.FormatInt(bucket, 10)
			return `SELECT received_at / ` + b + `,
				CAST(sum(CASE WHEN outcome = 'accepted' THEN 1 ELSE 0 END) AS BIGINT),
				CAST(sum(CASE WHEN outcome = 'accepted' THEN 0 ELSE 1 END) AS BIGINT)
				FROM deliveries WHERE instance = ? AND project_id = ? AND received_at >= ? AND received_at < ?
				GROUP BY received_at / ` + b
		}}
)

// dailySums returns a project's sums per day from day from on, as the
// day and then the series' values. A day may come in several rows, to be
// added up: settled days come from the day table, the hours of the days
// after from the hour table, and the last hour or so is summed live.
// Periods not rolled up yet are rolled up first.
func (s *Store) dailySums(ctx context.Context, series rollupSeries, instance string, projectID, from int64, now time.Time) (*sql.Rows, error) {
	days, hours := byDay.settled(now), byHour.settled(now)
	if err := s.rollUp(ctx, series, byDay, instance, projectID, from, days); err != nil {
		return nil, err
	}
	firstHour := max(from, days) * 24
	if err := s.rollUp(ctx, series, byHour, instance, projectID, firstHour, hours); err != nil {
		return nil, err
	}
	liveFrom := max(firstHour, hours) * microsPerHour
	rows, err := s.read.QueryContext(ctx, s.q(`SELECT day, `+series.values+` FROM `+series.table+`_days
			WHERE instance = ? AND project_id = ? AND day >= ? AND day < ?
		UNION ALL SELECT hour / 24, `+series.values+` FROM `+series.table+`_hours
			WHERE instance = ? AND project_id = ? AND hour >= ? AND hour < ?
		UNION ALL `+series.sums(microsPerDay, micros(now)-liveFrom)),
		instance, projectID, from, days,
		instance, projectID, firstHour, hours,
		instance, projectID, liveFrom, int64(math.MaxInt64))
	if err != nil {
		return nil, fmt.Errorf("%s per day: %w", series.name, err)
	}
	return rows, nil
}

// claimTime bounds how long one request may take to roll up a series
// while others wait for it; after that another may take over.
const claimTime = time.Minute

// rollUp makes sure the series' sums of the project's periods in
// [from, to) are in its table for that period. One request at a time does
// it (it claims the series in day_rollups, so sixteen readers of a page
// that was never seen do not sum 90 days sixteen times); the others wait
// for it. Rows are summed on the read pool, so the write lock is held only
// to store a few hundred of them.
func (s *Store) rollUp(ctx context.Context, series rollupSeries, per period, instance string, projectID, from, to int64) error {
	name := series.name + "/" + per.name
	for {
		var through int64
		err := s.read.QueryRowContext(ctx, s.q(`SELECT through_day FROM day_rollups WHERE instance = ? AND project_id = ? AND series = ?`),
			instance, projectID, name).Scan(&through)
		if err != nil && !isNoRows(err) {
			return fmt.Errorf("roll up %s: %w", name, err)
		}
		if max(from, through) >= to {
			return nil
		}
		now := time.Now()
		err = s.write.QueryRowContext(ctx, s.q(`INSERT INTO day_rollups (instance, project_id, series, through_day, claimed_until)
			VALUES (?, ?, ?, 0, ?)
			ON CONFLICT (instance, project_id, series) DO UPDATE SET claimed_until = excluded.claimed_until
			WHERE day_rollups.claimed_until < ? AND day_rollups.through_day < ?
			RETURNING through_day`),
			instance, projectID, name, micros(now.Add(claimTime)), micros(now), to).Scan(&through)
		switch {
		case err == nil:
			// Ours: it goes on if the request that asked goes away, since
			// others may be waiting for it.
			work, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTime)
			err = s.sumPeriods(work, series, per, instance, projectID, max(from, through), to)
			cancel()
			return err
		case !isNoRows(err):
			return fmt.Errorf("roll up %s: %w", name, err)
		}
		// Someone else is at it: look again shortly.
		select {
		case <-ctx.Done():
			return fmt.Errorf("roll up %s: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sumPeriods sums the periods in [from, to) into the series' table for
// them, moves the series' mark to to and lets go of the claim. Rolling up
// days drops the hours they cover.
func (s *Store) sumPeriods(ctx context.Context, series rollupSeries, per period, instance string, projectID, from, to int64) error {
	name := series.name + "/" + per.name
	sums, err := s.periodSums(ctx, series, per, instance, projectID, from, to)
	if err == nil {
		table := series.table + "_" + per.name + "s"
		insert := s.q(`INSERT INTO ` + table + ` (instance, project_id, ` + per.name + `, ` + series.values + `) VALUES (?, ?, ?, ` +
			strings.TrimSuffix(strings.Repeat("?, ", strings.Count(series.values, ",")+1), ", ") + `) ON CONFLICT DO NOTHING`)
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			for _, row := range sums {
				if _, err := tx.ExecContext(ctx, insert, append([]any{instance, projectID}, row...)...); err != nil {
					return err
				}
			}
			if per == byDay {
				if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+series.table+`_hours WHERE instance = ? AND project_id = ? AND hour < ?`),
					instance, projectID, to*24); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`UPDATE day_rollups SET through_day = ?, claimed_until = 0
				WHERE instance = ? AND project_id = ? AND series = ?`), to, instance, projectID, name)
			return err
		})
	}
	if err != nil {
		// Let the next request try at once rather than after claimTime.
		_, uerr := s.write.ExecContext(ctx, s.q(`UPDATE day_rollups SET claimed_until = 0
			WHERE instance = ? AND project_id = ? AND series = ?`), instance, projectID, name)
		return fmt.Errorf("roll up %s: %w", name, errors.Join(err, uerr))
	}
	return nil
}

// periodSums runs the series' query for the periods in [from, to) and
// returns its rows.
func (s *Store) periodSums(ctx context.Context, series rollupSeries, per period, instance string, projectID, from, to int64) ([][]any, error) {
	rows, err := s.read.QueryContext(ctx, s.q(series.sums(per.micros, (to-from)*per.micros)),
		instance, projectID, from*per.micros, to*per.micros)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	width := strings.Count(series.values, ",") + 2
	var out [][]any
	for rows.Next() {
		row := make([]any, width)
		ptrs := make([]any, width)
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

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

// JobDays sums a project's finished jobs per status name and day, from the
// day since falls on, ordered by name and day. Sums of hours and days that
// ended more than a few minutes ago are computed once and kept (job_hours,
// job_days); a project's first call sums its whole window.
func (s *Store) JobDays(ctx context.Context, instance string, projectID int64, since time.Time) ([]JobDay, error) {
	rows, err := s.dailySums(ctx, jobSeries, instance, projectID, byDay.number(since), time.Now())
	if err != nil {
		return nil, fmt.Errorf("job history: %w", err)
	}
	defer rows.Close()
	type key struct {
		name string
		day  int64
	}
	sums := map[key]*JobDay{}
	for rows.Next() {
		var d JobDay
		var day, total int64
		if err := rows.Scan(&day, &d.StatusName, &d.Finished, &d.Passed, &d.Timed, &total); err != nil {
			return nil, fmt.Errorf("job history: %w", err)
		}
		d.TotalRun = time.Duration(total) * time.Microsecond
		k := key{d.StatusName, day}
		if sum, ok := sums[k]; ok {
			sum.Finished += d.Finished
			sum.Passed += d.Passed
			sum.Timed += d.Timed
			sum.TotalRun += d.TotalRun
			continue
		}
		d.Day = fromMicros(day * microsPerDay)
		sums[k] = &d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("job history: %w", err)
	}
	out := make([]JobDay, 0, len(sums))
	for _, d := range sums {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b JobDay) int {
		return cmp.Or(cmp.Compare(a.StatusName, b.StatusName), a.Day.Compare(b.Day))
	})
	return out, nil
}

// DeliveryDay counts a project's stored deliveries of one day by outcome.
type DeliveryDay struct {
	Day      time.Time // midnight UTC
	Accepted int
	Ignored  int
}

// DeliveryDays counts a project's deliveries per day from the day since
// falls on, oldest day first, rolled up like JobDays. Rejected deliveries
// are not stored, so they are not here (see Rejections).
func (s *Store) DeliveryDays(ctx context.Context, instance string, projectID int64, since time.Time) ([]DeliveryDay, error) {
	rows, err := s.dailySums(ctx, deliverySeries, instance, projectID, byDay.number(since), time.Now())
	if err != nil {
		return nil, fmt.Errorf("delivery history: %w", err)
	}
	defer rows.Close()
	sums := map[int64]*DeliveryDay{}
	for rows.Next() {
		var d DeliveryDay
		var day int64
		if err := rows.Scan(&day, &d.Accepted, &d.Ignored); err != nil {
			return nil, fmt.Errorf("delivery history: %w", err)
		}
		if sum, ok := sums[day]; ok {
			sum.Accepted += d.Accepted
			sum.Ignored += d.Ignored
			continue
		}
		d.Day = fromMicros(day * microsPerDay)
		sums[day] = &d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delivery history: %w", err)
	}
	out := make([]DeliveryDay, 0, len(sums))
	for _, d := range sums {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DeliveryDay) int { return a.Day.Compare(b.Day) })
	return out, nil
}
