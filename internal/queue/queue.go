// Package queue executes upbuild's jobs durably with River: a job enqueued
// here runs at least once, across restarts and across machines sharing the
// database, and a job whose worker stops is handed back rather than lost.
//
// upbuild keeps its own record of each job (the jobs table); the queue only
// carries the job's ID to a Handler. Because execution is at-least-once, the
// Handler must be idempotent: it reads the job's state first and does nothing
// for a job that already finished. See docs/QUEUE-MEASUREMENTS.md for the
// settings chosen and the latencies measured.
package queue

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"upbuild.dev/upbuild/internal/store"
)

// Defaults for Options left at zero.
const (
	DefaultWorkers     = 4
	DefaultMaxAttempts = 5
	DefaultJobTimeout  = time.Hour
	// DefaultPollInterval bounds how long a job inserted by another process
	// can wait unnoticed, should its insert notification be missed.
	DefaultPollInterval = time.Second
	// DefaultFetchCooldown is the shortest gap between two fetches. River's
	// own default (100 ms) dominates insert-to-start latency at low load; 5
	// ms keeps latency low while bounding fetch queries to 200 a second.
	DefaultFetchCooldown = 5 * time.Millisecond
	// stopGrace is how long Stop waits, after cancelling handlers whose
	// deadline passed, for them to return so their jobs are handed back.
	stopGrace = 10 * time.Second
)

// BusyError is what a Handler returns for a job that may not start yet (its
// project is at its concurrency cap): the job is put back for Wait, without
// using up an attempt.
type BusyError struct {
	Wait   time.Duration
	Reason string
}

func (e *BusyError) Error() string { return "busy: " + e.Reason }

// ErrNotFound is returned by Cancel for a job the queue never had.
var ErrNotFound = errors.New("job not in queue")

// ErrNoHandler is returned by Open when RunWorkers is set without a Handler.
var ErrNoHandler = errors.New("queue: RunWorkers needs a Handler")

// ExecuteJob is the one kind of River job upbuild inserts: run upbuild's job
// JobID (jobs.id).
type ExecuteJob struct {
	JobID int64 `json:"job_id"`
}

// Kind names the job kind in River's tables.
func (ExecuteJob) Kind() string { return "upbuild_execute" }

// Options configure a Queue.
type Options struct {
	// Workers is how many jobs this process runs at once (default 4).
	Workers int
	// Handler runs one job. It returns nil when the job reached an outcome,
	// including a failed build; an error means an infrastructure problem and
	// makes River retry the job with back-off. It must return promptly once
	// ctx is done, and must be idempotent (see the package comment).
	Handler func(ctx context.Context, jobID int64) error
	// RunWorkers makes this process execute jobs. Without it the Queue only
	// inserts and cancels, for processes that do not execute.
	RunWorkers bool
	// PollInterval is how often workers look for jobs when no insert
	// notification arrived (default DefaultPollInterval).
	PollInterval time.Duration
	// FetchCooldown is the shortest time between two fetches of jobs
	// (default DefaultFetchCooldown).
	FetchCooldown time.Duration
	// MaxAttempts is how many times a job runs before River discards it
	// (default 5).
	MaxAttempts int
	// JobTimeout cancels a handler's context after this long (default one
	// hour; it cannot be unlimited). A job still running after JobTimeout plus 15 minutes, for
	// instance because its worker was killed, is rescued and retried.
	JobTimeout time.Duration
	// SQLiteOwnConnection gives River its own write connection to the SQLite
	// file instead of sharing the store's single writer. The shared writer is
	// the default because it measured faster under intake load; this switch
	// exists to reproduce that measurement.
	SQLiteOwnConnection bool
	// SQLitePollOnly stops River's workers on SQLite from reading its
	// notification table every 50 ms; they then find new jobs and
	// cancellations only by polling (PollInterval, and 2 s for
	// cancellations). For measurement; see docs/QUEUE-MEASUREMENTS.md.
	SQLitePollOnly bool
	// Logger receives River's logs (default slog.Default()).
	Logger *slog.Logger
}

// riverClient is the part of river.Client the Queue uses; it hides the
// driver's transaction type, which differs between SQLite and PostgreSQL.
type riverClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	JobCancel(ctx context.Context, jobID int64) (*rivertype.JobRow, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
}

// Queue inserts, runs and cancels upbuild jobs. It is safe for concurrent use.
type Queue struct {
	client     riverClient
	runWorkers bool
	dialect    store.Dialect
	// release closes what Open opened for River alone (a pool or a connection).
	release func() error
}

// Open connects River to upbuild's database, runs River's migrations and
// returns a stopped Queue. On SQLite it shares st's write connection (or,
// with SQLiteOwnConnection, opens its own on the same file); on PostgreSQL it
// opens its own pool from dbURL.
func Open(ctx context.Context, st *store.Store, dbURL string, opts Options) (*Queue, error) {
	if opts.RunWorkers && opts.Handler == nil {
		return nil, ErrNoHandler
	}
	config, err := riverConfig(opts)
	if err != nil {
		return nil, err
	}
	if st.Dialect() == store.Postgres {
		return openPostgres(ctx, dbURL, opts, config)
	}
	return openSQLite(ctx, st, opts, config)
}

func riverConfig(opts Options) (*river.Config, error) {
	workers := river.NewWorkers()
	handler := opts.Handler
	if handler == nil {
		handler = func(context.Context, int64) error { return errors.New("this process does not execute jobs") }
	}
	if err := river.AddWorkerSafely(workers, &executeWorker{handler: handler}); err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	if opts.JobTimeout < 0 {
		// Without a timeout, no rescue delay is safe: a long job would be
		// taken for a stuck one and run twice.
		return nil, errors.New("open queue: JobTimeout must not be negative")
	}
	jobTimeout := cmp.Or(opts.JobTimeout, DefaultJobTimeout)
	config := &river.Config{
		FetchCooldown:     cmp.Or(opts.FetchCooldown, DefaultFetchCooldown),
		FetchPollInterval: cmp.Or(opts.PollInterval, DefaultPollInterval),
		JobTimeout:        jobTimeout,
		// Only a killed worker leaves a job running; wait for the
		// timeout to pass before deciding it is stuck.
		RescueStuckJobsAfter: jobTimeout + 15*time.Minute,
		MaxAttempts:          cmp.Or(opts.MaxAttempts, DefaultMaxAttempts),
		Logger:               cmp.Or(opts.Logger, slog.Default()),
		Workers:              workers,
	}
	if config.FetchPollInterval < config.FetchCooldown {
		config.FetchPollInterval = config.FetchCooldown
	}
	if opts.RunWorkers {
		config.Queues = map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: cmp.Or(opts.Workers, DefaultWorkers)},
		}
	}
	return config, nil
}

func openPostgres(ctx context.Context, dbURL string, opts Options, config *river.Config) (*Queue, error) {
	poolConfig, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		// pgx redacts passwords from its parse errors only on a best-effort
		// basis, so its message is not passed on.
		return nil, errors.New("open queue: cannot parse the PostgreSQL URL")
	}
	poolConfig.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	// River holds one connection for LISTEN and uses others to fetch,
	// complete and run maintenance; leave room beside the workers.
	poolConfig.MaxConns = int32(cmp.Or(opts.Workers, DefaultWorkers) + 6)
	pool, err := pgxpool.NewWithConfig(ctx, poolConfig)
	if err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	driver := riverpgxv5.New(pool)
	if err := migratePostgres(ctx, pool, driver); err != nil {
		pool.Close()
		return nil, err
	}
	client, err := river.NewClient(driver, config)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open queue: %w", err)
	}
	release := func() error { pool.Close(); return nil }
	return &Queue{client: client, runWorkers: opts.RunWorkers, dialect: store.Postgres, release: release}, nil
}

// migrateLockKey is the PostgreSQL advisory lock that serialises River's
// migrations between upbuild processes starting together.
const migrateLockKey int64 = 0x7570_6275_696c_6451 // "upbuildQ"

// migratePostgres runs River's migrations under an advisory lock: rivermigrate
// itself takes none, and two processes applying the same version at once
// would make one of them fail.
func migratePostgres(ctx context.Context, pool *pgxpool.Pool, driver *riverpgxv5.Driver) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate queue: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return fmt.Errorf("migrate queue: lock: %w", err)
	}
	migrateErr := migrate(ctx, driver)
	// Unlock even when ctx is done, or the pooled session keeps the lock.
	unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := conn.Exec(unlockCtx, "SELECT pg_advisory_unlock($1)", migrateLockKey); err != nil {
		// A session left holding the lock must not go back to the pool.
		conn.Conn().Close(unlockCtx) //nolint:errcheck // the unlock error is what matters
		return errors.Join(migrateErr, fmt.Errorf("migrate queue: unlock: %w", err))
	}
	return migrateErr
}

func migrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx]) error {
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("migrate queue: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate queue: %w", err)
	}
	return nil
}

func openSQLite(ctx context.Context, st *store.Store, opts Options, config *river.Config) (*Queue, error) {
	db := st.WriteDB()
	release := func() error { return nil }
	if opts.SQLiteOwnConnection {
		own, err := openSQLiteWriter(st.Location())
		if err != nil {
			return nil, err
		}
		db = own
		release = own.Close
	}
	config.PollOnly = opts.SQLitePollOnly
	driver := riversqlite.New(db)
	if err := migrateSQLite(ctx, driver); err != nil {
		return nil, errors.Join(err, release())
	}
	client, err := river.NewClient(driver, config)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open queue: %w", err), release())
	}
	return &Queue{client: client, runWorkers: opts.RunWorkers, dialect: store.SQLite, release: release}, nil
}

// openSQLiteWriter opens a second single-connection writer on the store's
// file, with the store's durability settings.
func openSQLiteWriter(path string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// migrateSQLite runs River's migrations, trying again when another process
// applied the same version first: each version is its own transaction, so
// the loser's attempt rolls back and the next one finds the version done.
func migrateSQLite(ctx context.Context, driver *riversqlite.Driver) error {
	var err error
	for range 3 {
		if err = migrate(ctx, driver); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return err
}

// Start begins executing jobs when the Queue was opened with RunWorkers; it
// does nothing otherwise. Execution continues until Stop, whatever happens
// to ctx afterwards.
func (q *Queue) Start(ctx context.Context) error {
	if !q.runWorkers {
		return nil
	}
	if err := q.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start queue: %w", err)
	}
	return nil
}

// Stop shuts the Queue down and releases its connections. Workers stop
// taking jobs at once; jobs in flight may finish until ctx is done. Then
// their contexts are cancelled, and a job whose handler returns with the
// context's error is handed back to River unchanged (its attempt is not
// counted), to run again on the next start or on another worker. Stop then
// waits up to 10 s more for handlers to return.
//
// A job can never be recorded complete twice: River completes a job with
// an update that only applies to a row still marked running. It can run
// twice if the process dies after the handler finished but before that
// update, which is why the handler checks upbuild's own job state first.
func (q *Queue) Stop(ctx context.Context) error {
	err := q.stopClient(ctx)
	return errors.Join(err, q.release())
}

func (q *Queue) stopClient(ctx context.Context) error {
	if !q.runWorkers {
		return nil
	}
	if err := q.client.Stop(ctx); err == nil {
		return nil
	}
	hardCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
	defer cancel()
	if err := q.client.StopAndCancel(hardCtx); err != nil {
		return fmt.Errorf("stop queue: handlers still running after cancel: %w", err)
	}
	return nil
}

// Enqueue queues upbuild jobs for execution, in one transaction. It is
// idempotent: a job ID the queue already holds, in any state, is skipped, so
// a planner that crashed after saving its jobs can enqueue them again.
func (q *Queue) Enqueue(ctx context.Context, jobIDs ...int64) error {
	ids := slices.Clone(jobIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: ExecuteJob{JobID: id}, InsertOpts: &river.InsertOpts{
			UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: allJobStates},
		}}
	}
	if _, err := q.client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("enqueue %d jobs: %w", len(ids), err)
	}
	return nil
}

// allJobStates makes uniqueness cover a job's whole life, so that a
// cancelled or finished job is not revived by a repeated Enqueue.
var allJobStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStateCancelled, rivertype.JobStateCompleted,
	rivertype.JobStateDiscarded, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}

// Cancel stops upbuild job jobID: a queued job never runs, a running one has
// its handler's context cancelled (and is not retried if the handler then
// returns an error). A job that already finished is left as it is. It
// returns ErrNotFound if the queue never had the job.
//
// A running job's worker learns of the cancellation through PostgreSQL's
// LISTEN/NOTIFY, or on SQLite through River's notification table, which
// workers poll every 50 ms (see docs/QUEUE-MEASUREMENTS.md).
func (q *Queue) Cancel(ctx context.Context, jobID int64) error {
	rows, err := q.riverJobs(ctx, jobID)
	if err != nil {
		return fmt.Errorf("cancel job %d: %w", jobID, err)
	}
	if len(rows) == 0 {
		return fmt.Errorf("cancel job %d: %w", jobID, ErrNotFound)
	}
	for _, row := range rows {
		if finalized(row.State) {
			continue
		}
		if _, err := q.client.JobCancel(ctx, row.ID); err != nil && !errors.Is(err, river.ErrNotFound) {
			return fmt.Errorf("cancel job %d: %w", jobID, err)
		}
	}
	return nil
}

func finalized(s rivertype.JobState) bool {
	return s == rivertype.JobStateCancelled || s == rivertype.JobStateCompleted || s == rivertype.JobStateDiscarded
}

// riverJobs lists River's rows for an upbuild job: one, unless River's
// retention deleted a finished row and the job was enqueued again.
func (q *Queue) riverJobs(ctx context.Context, jobID int64) ([]*rivertype.JobRow, error) {
	predicate := "args ->> '$.job_id' = @job_id"
	if q.dialect == store.Postgres {
		predicate = "(args ->> 'job_id')::bigint = @job_id"
	}
	params := river.NewJobListParams().Kinds(ExecuteJob{}.Kind()).
		Where(predicate, river.NamedArgs{"job_id": jobID}).First(100)
	res, err := q.client.JobList(ctx, params)
	if err != nil {
		return nil, err
	}
	return res.Jobs, nil
}

// executeWorker runs ExecuteJob jobs through the Handler.
type executeWorker struct {
	river.WorkerDefaults[ExecuteJob]
	handler func(ctx context.Context, jobID int64) error
}

func (w *executeWorker) Work(ctx context.Context, job *river.Job[ExecuteJob]) error {
	err := w.handler(ctx, job.Args.JobID)
	var busy *BusyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &busy):
		// Not a failure: the job waits its turn and keeps its attempts,
		// while other projects' jobs are fetched meanwhile.
		return river.JobSnooze(busy.Wait)
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		// Carry the context's error so River recognises a stop (and hands
		// the job back) even when the handler reports something else,
		// such as a build process killed by the cancellation.
		return fmt.Errorf("job %d: %w (job context ended: %w)", job.Args.JobID, err, ctx.Err())
	default:
		return fmt.Errorf("job %d: %w", job.Args.JobID, err)
	}
}
