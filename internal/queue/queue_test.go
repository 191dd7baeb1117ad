package queue_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/queue"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// waitLimit bounds every wait so a broken queue fails the test instead of
// hanging it. It is a liveness bound, not a timing assertion.
const waitLimit = 30 * time.Second

// recorder is a handler that counts runs per job and announces each start.
type recorder struct {
	mu      sync.Mutex
	runs    map[int64]int
	started chan int64
	// block makes the handler for these jobs wait for its context to end.
	block map[int64]bool
	// failOnce makes the first run of these jobs return an error.
	failOnce map[int64]bool
	// busyOnce makes the first run of these jobs say their project is busy.
	busyOnce map[int64]bool
	// ended receives the context error a blocked handler saw.
	ended chan error
}

func newRecorder() *recorder {
	return &recorder{
		runs:     map[int64]int{},
		started:  make(chan int64, 100),
		block:    map[int64]bool{},
		failOnce: map[int64]bool{},
		busyOnce: map[int64]bool{},
		ended:    make(chan error, 100),
	}
}

func (r *recorder) handle(ctx context.Context, jobID int64) error {
	r.mu.Lock()
	block, fail, busy := r.block[jobID], r.failOnce[jobID], r.busyOnce[jobID]
	delete(r.block, jobID)
	delete(r.failOnce, jobID)
	delete(r.busyOnce, jobID)
	r.mu.Unlock()
	if busy {
		return &queue.BusyError{Wait: 100 * time.Millisecond, Reason: "project at its cap"}
	}
	r.started <- jobID
	if block {
		<-ctx.Done()
		r.ended <- context.Cause(ctx)
		return ctx.Err()
	}
	if fail {
		return errors.New("builder unreachable")
	}
	r.mu.Lock()
	r.runs[jobID]++
	r.mu.Unlock()
	return nil
}

func (r *recorder) count(jobID int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[jobID]
}

// waitStarted waits until the handler starts jobID, skipping other starts.
func (r *recorder) waitStarted(t *testing.T, jobID int64) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case id := <-r.started:
			if id == jobID {
				return
			}
		case <-deadline:
			t.Fatalf("job %d did not start", jobID)
		}
	}
}

// waitDone waits until jobID has completed at least once.
func (r *recorder) waitDone(t *testing.T, jobID int64) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for r.count(jobID) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("job %d did not complete", jobID)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func openStore(t *testing.T, dbURL string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// openQueue opens a queue with one worker, so that jobs run in the order
// they were enqueued and a later job proves the earlier ones were handled.
func openQueue(t *testing.T, st *store.Store, dbURL string, r *recorder, runWorkers bool) *queue.Queue {
	t.Helper()
	opts := queue.Options{
		Workers:      1,
		RunWorkers:   runWorkers,
		PollInterval: 50 * time.Millisecond,
		Logger:       slog.New(slog.DiscardHandler),
	}
	if r != nil {
		opts.Handler = r.handle
	}
	q, err := queue.Open(context.Background(), st, dbURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func stop(t *testing.T, q *queue.Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := q.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestEnqueueRunsEachJobOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		st := openStore(t, dbURL)
		r := newRecorder()
		q := openQueue(t, st, dbURL, r, true)
		defer stop(t, q)

		// Enqueued twice before any worker runs, and twice in one call.
		if err := q.Enqueue(ctx, 7); err != nil {
			t.Fatal(err)
		}
		if err := q.Enqueue(ctx, 7, 8, 8); err != nil {
			t.Fatal(err)
		}
		if err := q.Enqueue(ctx, 9); err != nil {
			t.Fatal(err)
		}
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		r.waitDone(t, 9)
		// Enqueued again once done: the planner retrying after a crash.
		if err := q.Enqueue(ctx, 7, 8, 10); err != nil {
			t.Fatal(err)
		}
		r.waitDone(t, 10)
		for _, id := range []int64{7, 8, 9, 10} {
			if n := r.count(id); n != 1 {
				t.Errorf("job %d ran %d times, want 1", id, n)
			}
		}
	})
}

func TestEnqueueNothing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := openStore(t, dbURL)
		q := openQueue(t, st, dbURL, nil, false)
		defer stop(t, q)
		if err := q.Enqueue(context.Background()); err != nil {
			t.Fatalf("enqueue of no jobs: %v", err)
		}
	})
}

func TestJobSurvivesRestart(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		st := openStore(t, dbURL)
		first := newRecorder()
		q := openQueue(t, st, dbURL, first, true)
		if err := q.Enqueue(ctx, 5); err != nil {
			t.Fatal(err)
		}
		stop(t, q)

		second := newRecorder()
		q = openQueue(t, st, dbURL, second, true)
		defer stop(t, q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		second.waitDone(t, 5)
		if n := first.count(5); n != 0 {
			t.Errorf("the stopped queue ran job 5 %d times", n)
		}
	})
}

func TestStopDeadlineHandsRunningJobBack(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		st := openStore(t, dbURL)
		first := newRecorder()
		first.block[5] = true
		q := openQueue(t, st, dbURL, first, true)
		if err := q.Enqueue(ctx, 5); err != nil {
			t.Fatal(err)
		}
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		first.waitStarted(t, 5)
		stopCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := q.Stop(stopCtx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		select {
		case <-first.ended:
		default:
			t.Fatal("Stop returned but the blocked handler's context was not cancelled")
		}

		second := newRecorder()
		q = openQueue(t, st, dbURL, second, true)
		defer stop(t, q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		second.waitDone(t, 5)
		if err := q.Enqueue(ctx, 6); err != nil {
			t.Fatal(err)
		}
		second.waitDone(t, 6)
		if n := first.count(5) + second.count(5); n != 1 {
			t.Errorf("job 5 completed %d times, want 1", n)
		}
	})
}

func TestCancelQueuedJobNeverRuns(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		st := openStore(t, dbURL)
		r := newRecorder()
		q := openQueue(t, st, dbURL, r, true)
		defer stop(t, q)
		if err := q.Enqueue(ctx, 1, 2); err != nil {
			t.Fatal(err)
		}
		if err := q.Cancel(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		r.waitDone(t, 2)
		// A cancelled job stays cancelled when the planner enqueues it again.
		if err := q.Enqueue(ctx, 1, 3); err != nil {
			t.Fatal(err)
		}
		r.waitDone(t, 3)
		if n := r.count(1); n != 0 {
			t.Errorf("cancelled job 1 ran %d times", n)
		}
		// Cancelling a finished job changes nothing.
		if err := q.Cancel(ctx, 2); err != nil {
			t.Errorf("cancel of a completed job: %v", err)
		}
	})
}

func TestCancelUnknownJob(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := openStore(t, dbURL)
		q := openQueue(t, st, dbURL, nil, false)
		defer stop(t, q)
		if err := q.Cancel(context.Background(), 404); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("cancel of a job never enqueued: got %v, want ErrNotFound", err)
		}
	})
}

func TestCancelRunningJobCancelsItsContext(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		st := openStore(t, dbURL)
		r := newRecorder()
		r.block[3] = true
		q := openQueue(t, st, dbURL, r, true)
		defer stop(t, q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := q.Enqueue(ctx, 3); err != nil {
			t.Fatal(err)
		}
		r.waitStarted(t, 3)
		if err := q.Cancel(ctx, 3); err != nil {
			t.Fatal(err)
		}
		select {
		case cause := <-r.ended:
			if cause == nil {
				t.Fatal("handler's context ended without a cause")
			}
		case <-time.After(waitLimit):
			t.Fatal("the running job's context was not cancelled")
		}
	})
}

func TestInfrastructureErrorIsRetried(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		st := openStore(t, dbURL)
		r := newRecorder()
		r.failOnce[4] = true
		q := openQueue(t, st, dbURL, r, true)
		defer stop(t, q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := q.Enqueue(ctx, 4); err != nil {
			t.Fatal(err)
		}
		r.waitDone(t, 4)
		if n := r.count(4); n != 1 {
			t.Errorf("job 4 completed %d times, want 1", n)
		}
	})
}

// A busy job waits its turn: it is put back, other jobs run meanwhile, and
// it runs later.
func TestBusyJobWaitsWhileOthersRun(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		st := openStore(t, dbURL)
		r := newRecorder()
		r.busyOnce[5] = true
		q := openQueue(t, st, dbURL, r, true)
		defer stop(t, q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := q.Enqueue(ctx, 5, 6); err != nil {
			t.Fatal(err)
		}
		r.waitDone(t, 6)
		r.waitDone(t, 5)
		if n := r.count(5); n != 1 {
			t.Errorf("job 5 completed %d times, want 1", n)
		}
	})
}

func TestInsertOnlyQueueLeavesJobsToWorkers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		// The inserting process and the worker have their own stores, as
		// two machines (or processes) would.
		inserter := newRecorder()
		q := openQueue(t, openStore(t, dbURL), dbURL, inserter, false)
		defer stop(t, q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := q.Enqueue(ctx, 11, 12); err != nil {
			t.Fatal(err)
		}

		worker := newRecorder()
		w := openQueue(t, openStore(t, dbURL), dbURL, worker, true)
		defer stop(t, w)
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		worker.waitDone(t, 11)
		worker.waitDone(t, 12)
		if n := inserter.count(11) + inserter.count(12); n != 0 {
			t.Errorf("the insert-only queue ran %d jobs", n)
		}
	})
}

func TestOpenConcurrentlyMigratesOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := openStore(t, dbURL)
		// Open first on one store, so the file exists before a second
		// store opens it on SQLite; then race several opens.
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for range 3 {
			wg.Go(func() {
				other, err := store.Open(context.Background(), dbURL)
				if err != nil {
					errs <- err
					return
				}
				defer other.Close()
				q, err := queue.Open(context.Background(), other, dbURL, queue.Options{Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					errs <- err
					return
				}
				errs <- q.Stop(context.Background())
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent open: %v", err)
			}
		}
		q := openQueue(t, st, dbURL, nil, false)
		defer stop(t, q)
		if err := q.Enqueue(context.Background(), 1); err != nil {
			t.Errorf("enqueue after concurrent migrations: %v", err)
		}
	})
}

func TestRunWorkersNeedsHandler(t *testing.T) {
	st := openStore(t, testdb.SQLite(t))
	_, err := queue.Open(context.Background(), st, "", queue.Options{RunWorkers: true})
	if !errors.Is(err, queue.ErrNoHandler) {
		t.Fatalf("got %v, want ErrNoHandler", err)
	}
}

func TestUnlimitedJobTimeoutIsRefused(t *testing.T) {
	st := openStore(t, testdb.SQLite(t))
	_, err := queue.Open(context.Background(), st, "", queue.Options{JobTimeout: -1})
	if err == nil {
		t.Fatal("Open accepted a negative JobTimeout")
	}
}
