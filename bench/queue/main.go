// Command queue measures upbuild's job queue (internal/queue, on River):
// the latency from Enqueue to the handler's start at a steady rate, with and
// without a concurrent intake load on the same database; throughput for a
// burst; and how long Cancel takes to reach a running handler.
//
// Every scenario gets a fresh database: a SQLite file in a temporary
// directory, or a new database on the PostgreSQL server named by -postgres.
//
//	go run ./bench/queue -postgres 'postgres://postgres@127.0.0.1:55433/postgres?sslmode=disable'
//	go run ./bench/queue -engines sqlite -duration 10s
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"upbuild.dev/upbuild/internal/queue"
	"upbuild.dev/upbuild/internal/store"
)

func main() {
	var (
		pgURL      = flag.String("postgres", "", "PostgreSQL server URL; a database is created per scenario (empty: SQLite only)")
		engines    = flag.String("engines", "sqlite,postgres", "engines to measure")
		duration   = flag.Duration("duration", 20*time.Second, "how long each steady-rate scenario runs")
		intakeRate = flag.Int("intake-rate", 1000, "deliveries a second saved through store.Committer as the concurrent intake load")
		burst      = flag.Int("burst", 2000, "jobs enqueued at once for the throughput measurement")
		parts      = flag.String("parts", "intake,latency,throughput,cancel", "what to measure")
	)
	flag.Parse()
	b := &bench{pgURL: *pgURL, duration: *duration, intakeRate: *intakeRate, burst: *burst}
	ctx := context.Background()
	if err := b.run(ctx, strings.Split(*engines, ","), strings.Split(*parts, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "bench/queue:", err)
		os.Exit(1)
	}
}

type bench struct {
	pgURL      string
	duration   time.Duration
	intakeRate int
	burst      int
	tmp        string
}

// setting is one queue configuration under test.
type setting struct {
	name string
	opts queue.Options
}

func settings(engine string) []setting {
	riverDefaults := queue.Options{Workers: 4, FetchCooldown: 100 * time.Millisecond, PollInterval: time.Second}
	tuned := queue.Options{} // the package defaults
	out := []setting{{"river-defaults", riverDefaults}, {"tuned", tuned}}
	if engine == "sqlite" {
		own := tuned
		own.SQLiteOwnConnection = true
		pollOnly := tuned
		pollOnly.SQLitePollOnly = true
		pollOnly.PollInterval = 20 * time.Millisecond
		out = append(out, setting{"tuned+own-conn", own}, setting{"tuned+poll-only-20ms", pollOnly})
	}
	return out
}

func (b *bench) run(ctx context.Context, engines, parts []string) error {
	tmp, err := os.MkdirTemp("", "upbuild-bench-queue-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b.tmp = tmp
	for _, engine := range engines {
		if engine == "postgres" && b.pgURL == "" {
			fmt.Println("# postgres skipped: no -postgres URL")
			continue
		}
		if slices.Contains(parts, "intake") {
			if err := b.intakeAlone(ctx, engine); err != nil {
				return fmt.Errorf("%s intake alone: %w", engine, err)
			}
		}
		if slices.Contains(parts, "latency") {
			fmt.Printf("\n## %s: Enqueue → handler start, one job per Enqueue at a steady rate, %s per row\n\n", engine, b.duration)
			fmt.Println("| setting | rate/s | intake | jobs | enqueue p50 | enqueue p99 | start p50 | start p99 | start max | intake saved/s | intake save p99 | load |")
			fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
			for _, s := range settings(engine) {
				for _, rate := range []int{10, 100} {
					for _, intake := range []bool{false, true} {
						if err := b.latency(ctx, engine, s, rate, intake); err != nil {
							return fmt.Errorf("%s %s %d/s: %w", engine, s.name, rate, err)
						}
					}
				}
			}
		}
		if slices.Contains(parts, "throughput") {
			fmt.Printf("\n## %s: throughput, %d jobs enqueued in batches of 50, no-op handler\n\n", engine, b.burst)
			fmt.Println("| setting | workers | intake | enqueue jobs/s | worked jobs/s | load |")
			fmt.Println("|---|---|---|---|---|---|")
			for _, s := range settings(engine) {
				for _, workers := range []int{4, 16} {
					s.opts.Workers = workers
					for _, intake := range []bool{false, true} {
						if err := b.throughput(ctx, engine, s, intake); err != nil {
							return fmt.Errorf("%s %s throughput: %w", engine, s.name, err)
						}
					}
				}
			}
		}
		if slices.Contains(parts, "cancel") {
			fmt.Printf("\n## %s: Cancel → running handler's context done, 20 jobs\n\n", engine)
			fmt.Println("| setting | canceller | p50 | max |")
			fmt.Println("|---|---|---|---|")
			for _, s := range settings(engine) {
				for _, remote := range []bool{false, true} {
					if err := b.cancel(ctx, engine, s, remote); err != nil {
						return fmt.Errorf("%s %s cancel: %w", engine, s.name, err)
					}
				}
			}
		}
	}
	return nil
}

// env is one scenario's fresh database with its store.
type env struct {
	dbURL string
	st    *store.Store
	drop  func()
}

func (b *bench) newEnv(ctx context.Context, engine string) (*env, error) {
	name := "q" + randomHex()
	dbURL := filepath.Join(b.tmp, name+".db")
	drop := func() {}
	if engine == "postgres" {
		var err error
		dbURL, drop, err = createDatabase(ctx, b.pgURL, "upbuild_bench_"+name)
		if err != nil {
			return nil, err
		}
	}
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		drop()
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		drop()
		return nil, err
	}
	return &env{dbURL: dbURL, st: st, drop: drop}, nil
}

func (e *env) close() {
	e.st.Close()
	e.drop()
}

func createDatabase(ctx context.Context, base, name string) (string, func(), error) {
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		dropCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(dropCtx, base)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/queue: drop database:", err)
			return
		}
		defer conn.Close(dropCtx)
		if _, err := conn.Exec(dropCtx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "bench/queue: drop database:", err)
		}
	}
	return u.String(), drop, nil
}

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// intake saves small deliveries through the store's Committer at a steady
// rate, as the webhook intake would, until stopped.
type intake struct {
	saved     atomic.Int64
	mu        sync.Mutex
	latencies []time.Duration
	errs      atomic.Int64
	firstErr  error
	stop      func()
}

func startIntake(st *store.Store, rate int) *intake {
	in := &intake{}
	committer := st.NewCommitter(0)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	work := make(chan int64, rate)
	// Enough senders that a slow commit does not throttle the offered rate.
	for range 256 {
		wg.Go(func() {
			for n := range work {
				d := store.Delivery{
					Instance: "https://gitlab.example", ProjectID: 1 + n%50, ProjectPath: "group/project",
					EventHeader: "Merge Request Hook", EventKind: "merge_request",
					DedupKey: fmt.Sprintf("bench-%d", n), Headers: map[string]string{"X-Gitlab-Event": "Merge Request Hook"},
					Body: []byte(`{"object_kind":"merge_request"}`), Outcome: store.OutcomeAccepted,
					TokenID: 1, ReceivedAt: time.Now(),
				}
				start := time.Now()
				if _, err := committer.Save(ctx, d); err != nil {
					in.fail(err)
					continue
				}
				in.record(time.Since(start))
			}
		})
	}
	wg.Go(func() {
		defer close(work)
		// Offer deliveries in 1 ms slices so the load is smooth.
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		begin := time.Now()
		var n int64
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				due := int64(now.Sub(begin).Seconds() * float64(rate))
				for ; n < due; n++ {
					select {
					case work <- n:
					default: // senders saturated: count as not offered
					}
				}
			}
		}
	})
	in.stop = func() {
		cancel()
		wg.Wait()
		committer.Close()
		if in.firstErr != nil {
			fmt.Fprintf(os.Stderr, "bench/queue: %d intake saves failed, the first with: %v\n", in.errs.Load(), in.firstErr)
		}
	}
	return in
}

func (in *intake) fail(err error) {
	in.errs.Add(1)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.firstErr == nil && !errors.Is(err, context.Canceled) {
		in.firstErr = err
	}
}

// reset forgets what was measured so far.
func (in *intake) reset() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.saved.Store(0)
	in.latencies = nil
}

func (in *intake) record(d time.Duration) {
	in.saved.Add(1)
	in.mu.Lock()
	in.latencies = append(in.latencies, d)
	in.mu.Unlock()
}

// starts records when each job's handler started.
type starts struct {
	mu      sync.Mutex
	started map[int64]time.Time
	all     chan struct{}
	want    int
}

func newStarts(want int) *starts {
	return &starts{started: make(map[int64]time.Time, want), all: make(chan struct{}), want: want}
}

func (s *starts) handle(_ context.Context, jobID int64) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.started[jobID]; !seen {
		s.started[jobID] = now
		if len(s.started) == s.want {
			close(s.all)
		}
	}
	return nil
}

func (s *starts) at(jobID int64) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.started[jobID]
	return t, ok
}

func (b *bench) open(ctx context.Context, e *env, s setting, handler func(context.Context, int64) error) (*queue.Queue, error) {
	opts := s.opts
	opts.Handler = handler
	opts.RunWorkers = true
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := queue.Open(ctx, e.st, e.dbURL, opts)
	if err != nil {
		return nil, err
	}
	if err := q.Start(ctx); err != nil {
		return nil, errors.Join(err, q.Stop(ctx))
	}
	return q, nil
}

func (b *bench) latency(ctx context.Context, engine string, s setting, rate int, withIntake bool) error {
	e, err := b.newEnv(ctx, engine)
	if err != nil {
		return err
	}
	defer e.close()
	jobs := int(b.duration.Seconds() * float64(rate))
	st := newStarts(jobs)
	q, err := b.open(ctx, e, s, st.handle)
	if err != nil {
		return err
	}
	var in *intake
	if withIntake {
		in = startIntake(e.st, b.intakeRate)
		time.Sleep(time.Second) // let the intake reach its pace
		in.reset()
	}
	enqueued := make([]time.Time, jobs+1)
	enqueueLat := make([]time.Duration, 0, jobs)
	interval := time.Second / time.Duration(rate)
	begin := time.Now()
	for i := 1; i <= jobs; i++ {
		time.Sleep(time.Until(begin.Add(time.Duration(i-1) * interval)))
		enqueued[i] = time.Now()
		if err := q.Enqueue(ctx, int64(i)); err != nil {
			return errors.Join(err, q.Stop(ctx))
		}
		enqueueLat = append(enqueueLat, time.Since(enqueued[i]))
	}
	select {
	case <-st.all:
	case <-time.After(time.Minute):
	}
	elapsed := time.Since(begin)
	intakeCell, intakeRateCell, intakeP99Cell := "off", "", ""
	if in != nil {
		in.stop()
		intakeCell = fmt.Sprintf("%d/s", b.intakeRate)
		intakeRateCell = fmt.Sprintf("%.0f", float64(in.saved.Load())/elapsed.Seconds())
		intakeP99Cell = fmtDur(percentile(in.latencies, 0.99))
		if n := in.errs.Load(); n > 0 {
			intakeP99Cell += fmt.Sprintf(" (%d errors)", n)
		}
	}
	if err := q.Stop(ctx); err != nil {
		return err
	}
	var startLat []time.Duration
	missing := 0
	for i := 1; i <= jobs; i++ {
		t, ok := st.at(int64(i))
		if !ok {
			missing++
			continue
		}
		startLat = append(startLat, t.Sub(enqueued[i]))
	}
	jobsCell := fmt.Sprint(len(startLat))
	if missing > 0 {
		jobsCell += fmt.Sprintf(" (%d not started)", missing)
	}
	fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.name, rate, intakeCell, jobsCell,
		fmtDur(percentile(enqueueLat, 0.5)), fmtDur(percentile(enqueueLat, 0.99)),
		fmtDur(percentile(startLat, 0.5)), fmtDur(percentile(startLat, 0.99)), fmtDur(percentile(startLat, 1)),
		intakeRateCell, intakeP99Cell, loadAverage())
	return nil
}

// intakeAlone is the baseline: the intake load with no queue on the database.
func (b *bench) intakeAlone(ctx context.Context, engine string) error {
	e, err := b.newEnv(ctx, engine)
	if err != nil {
		return err
	}
	defer e.close()
	in := startIntake(e.st, b.intakeRate)
	time.Sleep(time.Second)
	in.reset()
	begin := time.Now()
	time.Sleep(b.duration)
	elapsed := time.Since(begin)
	in.stop()
	fmt.Printf("\n## %s: intake alone (no queue), %d deliveries/s offered for %s\n\n", engine, b.intakeRate, b.duration)
	fmt.Printf("saved %.0f/s, Save p50 %s, p99 %s, errors %d, load %s\n", float64(in.saved.Load())/elapsed.Seconds(),
		fmtDur(percentile(in.latencies, 0.5)), fmtDur(percentile(in.latencies, 0.99)), in.errs.Load(), loadAverage())
	return nil
}

func (b *bench) throughput(ctx context.Context, engine string, s setting, withIntake bool) error {
	e, err := b.newEnv(ctx, engine)
	if err != nil {
		return err
	}
	defer e.close()
	st := newStarts(b.burst)
	q, err := b.open(ctx, e, s, st.handle)
	if err != nil {
		return err
	}
	var in *intake
	if withIntake {
		in = startIntake(e.st, b.intakeRate)
		time.Sleep(time.Second)
	}
	begin := time.Now()
	const batch = 50
	ids := make([]int64, 0, batch)
	for i := 1; i <= b.burst; i++ {
		ids = append(ids, int64(i))
		if len(ids) == batch || i == b.burst {
			if err := q.Enqueue(ctx, ids...); err != nil {
				return errors.Join(err, q.Stop(ctx))
			}
			ids = ids[:0]
		}
	}
	enqueueTime := time.Since(begin)
	worked := "timeout"
	select {
	case <-st.all:
		worked = fmt.Sprintf("%.0f", float64(b.burst)/time.Since(begin).Seconds())
	case <-time.After(2 * time.Minute):
	}
	intakeCell := "off"
	if in != nil {
		in.stop()
		intakeCell = fmt.Sprintf("%d/s", b.intakeRate)
	}
	if err := q.Stop(ctx); err != nil {
		return err
	}
	fmt.Printf("| %s | %d | %s | %.0f | %s | %s |\n", s.name, s.opts.Workers, intakeCell,
		float64(b.burst)/enqueueTime.Seconds(), worked, loadAverage())
	return nil
}

// cancel measures Cancel of a running job, from this Queue (local) or from a
// second, insert-only Queue on its own store (remote: another process).
func (b *bench) cancel(ctx context.Context, engine string, s setting, remote bool) error {
	e, err := b.newEnv(ctx, engine)
	if err != nil {
		return err
	}
	defer e.close()
	running := make(chan int64, 1)
	ended := make(chan time.Time, 1)
	handler := func(ctx context.Context, jobID int64) error {
		running <- jobID
		<-ctx.Done()
		ended <- time.Now()
		return ctx.Err()
	}
	q, err := b.open(ctx, e, s, handler)
	if err != nil {
		return err
	}
	canceller := q
	name := "same process"
	if remote {
		name = "other process"
		other, err := store.Open(ctx, e.dbURL)
		if err != nil {
			return errors.Join(err, q.Stop(ctx))
		}
		defer other.Close()
		opts := s.opts
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		canceller, err = queue.Open(ctx, other, e.dbURL, opts)
		if err != nil {
			return errors.Join(err, q.Stop(ctx))
		}
		defer canceller.Stop(ctx) //nolint:errcheck // insert-only: nothing to report
	}
	var lat []time.Duration
	for i := int64(1); i <= 20; i++ {
		if err := q.Enqueue(ctx, i); err != nil {
			return errors.Join(err, q.Stop(ctx))
		}
		<-running
		start := time.Now()
		if err := canceller.Cancel(ctx, i); err != nil {
			return errors.Join(err, q.Stop(ctx))
		}
		select {
		case t := <-ended:
			lat = append(lat, t.Sub(start))
		case <-time.After(time.Minute):
			return errors.Join(fmt.Errorf("job %d: cancel never reached the handler", i), q.Stop(ctx))
		}
	}
	if err := q.Stop(ctx); err != nil {
		return err
	}
	fmt.Printf("| %s | %s | %s | %s |\n", s.name, name, fmtDur(percentile(lat, 0.5)), fmtDur(percentile(lat, 1)))
	return nil
}

// loadAverage is the machine's one-minute load average, printed beside each
// row because other work on a shared machine skews latencies.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return "?"
	}
	return fields[0]
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	}
}
