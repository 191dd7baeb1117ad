package main

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/store"
)

// The seeded projects. The big one is public, so anonymous readers see it;
// one smaller project is private and only the admin token shows it.
const (
	bigProjectID     = 1001
	groupPath        = "bench"
	bigProjectPath   = "bench/big-project"
	privateProjectID = 1002
	privatePath      = "bench/private-project"
	smallProjects    = 20   // public neighbours, so home is a mix
	smallRuns        = 500  // runs of each neighbour and of the private project
	wideJobs         = 1000 // jobs of the one wide run
	mrCount          = 3000 // merge requests of the big project
	branchCount      = 20
	loggedJobs       = 20   // jobs of the wide run with a log
	logLines         = 1000 // lines of each of those logs
	history          = 90 * 24 * time.Hour
)

// The regular jobs of every run: a build and tests on two targets.
var regularJobs = []struct{ jobType, target string }{
	{"copr_build", "fedora-rawhide-x86_64"}, {"copr_build", "fedora-41-x86_64"},
	{"tests", "fedora-rawhide-x86_64"}, {"tests", "fedora-41-x86_64"},
}

// seeded says what the readers may ask for.
type seeded struct {
	Instance  string
	Runs      int // in all
	BigRuns   int
	Jobs      int
	Delivered int
	// BigRunIDs are the big project's run IDs, oldest first.
	BigRunIDs []int64
	// WideRunID is the run with wideJobs jobs.
	WideRunID int64
	// LoggedJobIDs have a log of logLines lines; PlainJobIDs are other
	// jobs of the big project.
	LoggedJobIDs []int64
	PlainJobIDs  []int64
	MRs          []int64
	Branches     []string
	Took         time.Duration
}

// runSeed is one run before it has an ID.
type runSeed struct {
	projectID  int64
	path       string
	visibility string
	trigger    string
	ref        string
	mrIID      int64
	created    time.Time
	jobs       int // regular jobs; wide runs have wideJobs
	wide       bool
}

// seed fills a migrated, empty database: the big project's runs spread
// evenly over the last 90 days with four jobs each, the neighbours' runs
// interleaved, one wide run of 1,000 jobs at the end, one delivery per run
// (and an ignored comment every tenth), logs for some jobs, and a few
// rejection counters. Rows go in with multi-row INSERTs in one transaction
// per table batch, through the store's own write pool.
func seed(ctx context.Context, st *store.Store, instance string, bigRuns int, now time.Time) (seeded, error) {
	began := time.Now()
	rng := rand.New(rand.NewPCG(5, 100_000))
	out := seeded{Instance: instance, BigRuns: bigRuns}
	for i := range branchCount {
		out.Branches = append(out.Branches, "branch-"+strconv.Itoa(i+1))
	}
	first := now.Add(-history + time.Hour)
	span := history - 2*time.Hour

	var runs []runSeed
	for i := range bigRuns - 1 {
		r := runSeed{projectID: bigProjectID, path: bigProjectPath, visibility: "public", jobs: len(regularJobs),
			created: first.Add(time.Duration(int64(span) / int64(bigRuns) * int64(i)))}
		switch x := rng.IntN(100); {
		case x < 70:
			r.trigger, r.mrIID = "pull_request", int64(1+rng.IntN(mrCount))
			r.ref = "feature-" + strconv.FormatInt(r.mrIID, 10)
		case x < 98:
			r.trigger, r.ref = "commit", "main"
			if rng.IntN(3) == 0 {
				r.ref = out.Branches[rng.IntN(branchCount)]
			}
		default:
			r.trigger, r.ref = "release", fmt.Sprintf("v1.%d.%d", i/1000, i%1000)
		}
		runs = append(runs, r)
	}
	runs = append(runs, runSeed{projectID: bigProjectID, path: bigProjectPath, visibility: "public", trigger: "release",
		ref: "v2.0.0", created: now.Add(-30 * time.Minute), jobs: wideJobs, wide: true})
	neighbour := func(id int64, path, visibility string) {
		for i := range smallRuns {
			runs = append(runs, runSeed{projectID: id, path: path, visibility: visibility, trigger: "commit", ref: "main",
				jobs: len(regularJobs), created: first.Add(time.Duration(int64(span) / smallRuns * int64(i)))})
		}
	}
	neighbour(privateProjectID, privatePath, "private")
	for p := range smallProjects {
		neighbour(smallProjectID(p), smallProjectPath(p), "public")
	}
	// IDs grow with time, as they do when runs are planned as they come.
	slices.SortStableFunc(runs, func(a, b runSeed) int { return a.created.Compare(b.created) })

	w := newBatcher(ctx, st)
	defer w.rollback()
	var runID, jobID, deliveryID int64
	for _, r := range runs {
		runID++
		deliveryID++
		event, kind := "Push Hook", "push"
		switch r.trigger {
		case "pull_request":
			event, kind = "Merge Request Hook", "merge_request"
		case "release":
			event, kind = "Tag Push Hook", "tag_push"
		}
		received := r.created.Add(-time.Second)
		if err := w.add("deliveries", deliveryColumns, deliveryID, instance, r.projectID, r.path, event, kind,
			"seed-"+strconv.FormatInt(deliveryID, 10), `{"User-Agent":"GitLab/18.6.0"}`, []byte(`{"object_kind":"`+kind+`"}`),
			store.OutcomeAccepted, "", `{}`, 0, micros(received)); err != nil {
			return out, err
		}
		runDelivery := deliveryID
		if runID%10 == 0 {
			deliveryID++
			if err := w.add("deliveries", deliveryColumns, deliveryID, instance, r.projectID, r.path, "Note Hook", "comment",
				"seed-"+strconv.FormatInt(deliveryID, 10), `{"User-Agent":"GitLab/18.6.0"}`, []byte(`{"object_kind":"note"}`),
				store.OutcomeIgnored, "not a command", nil, 0, micros(received.Add(30*time.Second))); err != nil {
				return out, err
			}
		}
		sha := fakeSHA(runID)
		lastFinish := r.created
		var jobRows [][]any
		for k := range r.jobs {
			jobID++
			jobType, target, pkg := regularJobs[k%len(regularJobs)].jobType, regularJobs[k%len(regularJobs)].target, ""
			name := "upbuild:" + jobType + ":" + target
			if r.wide {
				// A monorepo matrix: 2 job types x 10 packages x 50 targets.
				jobType = [2]string{"copr_build", "tests"}[k%2]
				pkg = fmt.Sprintf("pkg-%02d", k/2%10)
				target = fmt.Sprintf("fedora-%d-x86_64", 1+k/20)
				name = "upbuild:" + jobType + ":" + pkg + ":" + target
			}
			state := jobState(rng)
			started := r.created.Add(time.Duration(5+rng.IntN(55)) * time.Second)
			finished := started.Add(time.Duration(120+rng.IntN(1080)) * time.Second)
			if finished.After(now) {
				finished = now.Add(-time.Second)
			}
			var startedAt any = micros(started)
			if state == store.JobCanceled {
				startedAt = nil
			}
			lastFinish = later(lastFinish, finished)
			jobRows = append(jobRows, []any{jobID, runID, jobType, k, pkg, target, "", name, state, "", "{}",
				micros(r.created), startedAt, micros(finished)})
			switch {
			case r.wide && len(out.LoggedJobIDs) < loggedJobs:
				out.LoggedJobIDs = append(out.LoggedJobIDs, jobID)
			case r.projectID == bigProjectID && jobID%97 == 0:
				out.PlainJobIDs = append(out.PlainJobIDs, jobID)
			}
		}
		out.Jobs += r.jobs
		if err := w.add("runs", runColumns, runID, instance, r.projectID, r.path, r.trigger, "seed-run-"+strconv.FormatInt(runID, 10),
			sha, r.ref, r.mrIID, r.projectID, r.path, "alice", "Change "+strconv.FormatInt(runID, 10), runDelivery,
			store.RunFinished, "", ".packit.yaml", micros(r.created), micros(lastFinish), r.visibility, 0, targetBranch(r)); err != nil {
			return out, err
		}
		for _, row := range jobRows {
			if err := w.add("jobs", jobColumns, row...); err != nil {
				return out, err
			}
		}
		if r.projectID == bigProjectID {
			out.BigRunIDs = append(out.BigRunIDs, runID)
		}
		if r.wide {
			out.WideRunID = runID
		}
	}
	out.Runs, out.Delivered = int(runID), int(deliveryID)
	for _, id := range out.LoggedJobIDs {
		for seq := 1; seq <= logLines; seq++ {
			line := fmt.Sprintf("[%04d] + /usr/bin/make -O -j2 V=1 VERBOSE=1 -C build install DESTDIR=/builddir/build/BUILDROOT (step %d)", seq, seq)
			if err := w.add("job_log_lines", logLineColumns, id, seq, line, micros(now.Add(-time.Hour))); err != nil {
				return out, err
			}
		}
		if err := w.add("job_logs", jobLogColumns, id, logLines, logLines*100, 0, micros(now.Add(-time.Hour))); err != nil {
			return out, err
		}
	}
	for i, reason := range []string{"wrong token", "token revoked", "unknown token"} {
		if err := w.add("rejections", rejectionColumns, instance, []string{bigProjectPath, "bench", privatePath}[i],
			10*(i+1), micros(now.Add(-48*time.Hour)), micros(now.Add(-time.Duration(i+1)*time.Hour)), reason); err != nil {
			return out, err
		}
	}
	if err := w.commit(); err != nil {
		return out, err
	}
	if err := afterSeed(ctx, st); err != nil {
		return out, err
	}
	for i := int64(1); i <= mrCount; i++ {
		out.MRs = append(out.MRs, i)
	}
	out.Took = time.Since(began)
	return out, nil
}

// smallProjectID and smallProjectPath name the p-th public neighbour.
func smallProjectID(p int) int64    { return int64(2001 + p) }
func smallProjectPath(p int) string { return fmt.Sprintf("bench/small-%02d", p+1) }

func jobState(rng *rand.Rand) string {
	switch x := rng.IntN(100); {
	case x < 85:
		return store.JobSuccess
	case x < 95:
		return store.JobFailed
	case x < 98:
		return store.JobError
	default:
		return store.JobCanceled
	}
}

func targetBranch(r runSeed) string {
	if r.trigger == "pull_request" {
		return "main"
	}
	return ""
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

func fakeSHA(n int64) string {
	sum := sha1.Sum([]byte(strconv.FormatInt(n, 10)))
	return hex.EncodeToString(sum[:])
}

const (
	runColumns = `id, instance, project_id, project_path, trigger, run_key, sha, ref, mr_iid, source_project_id,
		source_project_path, actor, title, delivery_id, state, message, config_file, created_at, finished_at,
		visibility, summary_comment, target_branch`
	jobColumns = `id, run_id, job_type, job_index, package, target, identifier, status_name, state, description, spec,
		created_at, started_at, finished_at`
	deliveryColumns = `id, instance, project_id, project_path, event_header, event_kind, dedup_key, headers, body,
		outcome, reason, event, token_id, received_at`
	logLineColumns   = `job_id, seq, line, created_at`
	jobLogColumns    = `job_id, last_seq, bytes, truncated, updated_at`
	rejectionColumns = `instance, scope_path, count, first_at, last_at, last_reason`
)

// paramsPerInsert keeps one INSERT under both engines' limits on bound
// parameters (32,766 for SQLite, 65,535 for PostgreSQL).
const paramsPerInsert = 20_000

// batcher gathers rows per table and writes them with multi-row INSERTs,
// all in one transaction.
type batcher struct {
	ctx     context.Context
	st      *store.Store
	tx      *sql.Tx
	err     error
	pending map[string]*pendingRows
}

type pendingRows struct {
	columns string
	width   int
	args    []any
}

func newBatcher(ctx context.Context, st *store.Store) *batcher {
	b := &batcher{ctx: ctx, st: st, pending: map[string]*pendingRows{}}
	b.tx, b.err = st.WriteDB().BeginTx(ctx, nil)
	if b.err != nil {
		b.err = fmt.Errorf("seed: begin: %w", b.err)
	}
	return b
}

func (b *batcher) add(table, columns string, values ...any) error {
	if b.err != nil {
		return b.err
	}
	p := b.pending[table]
	if p == nil {
		p = &pendingRows{columns: columns, width: len(values)}
		b.pending[table] = p
	}
	p.args = append(p.args, values...)
	if len(p.args)+p.width > paramsPerInsert {
		// Every table, parents first: a job's run must exist before it.
		return b.flushAll()
	}
	return nil
}

// tableOrder lists the seeded tables parents first.
var tableOrder = []string{"deliveries", "runs", "jobs", "job_log_lines", "job_logs", "rejections"}

func (b *batcher) flushAll() error {
	for _, table := range tableOrder {
		if err := b.flush(table); err != nil {
			return err
		}
	}
	return nil
}

func (b *batcher) flush(table string) error {
	p := b.pending[table]
	if p == nil || len(p.args) == 0 || b.err != nil {
		return b.err
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", p.width), ", ") + ")"
	rows := len(p.args) / p.width
	query := "INSERT INTO " + table + " (" + p.columns + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
	if _, err := b.tx.ExecContext(b.ctx, b.st.Rebind(query), p.args...); err != nil {
		b.err = fmt.Errorf("seed %s: %w", table, err)
		return b.err
	}
	p.args = p.args[:0]
	return nil
}

// commit writes what is pending, parents before children, and commits.
func (b *batcher) commit() error {
	if err := b.flushAll(); err != nil {
		return err
	}
	if err := b.tx.Commit(); err != nil {
		return fmt.Errorf("seed: commit: %w", err)
	}
	b.tx = nil
	return nil
}

// rollback undoes an unfinished seed.
func (b *batcher) rollback() {
	if b.tx != nil {
		_ = b.tx.Rollback() // the error that stopped the seed is what matters
	}
}

// afterSeed moves PostgreSQL's identity sequences past the seeded IDs (rows
// were inserted with explicit IDs) and gathers its statistics, as
// autovacuum would soon after a bulk load. SQLite gets no ANALYZE: nothing
// in upbuild runs one, so its queries must do well without statistics.
func afterSeed(ctx context.Context, st *store.Store) error {
	if st.Dialect() != store.Postgres {
		return nil
	}
	db := st.WriteDB()
	for _, table := range []string{"runs", "jobs", "deliveries"} {
		if _, err := db.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+table+`', 'id'), (SELECT max(id) FROM `+table+`))`); err != nil {
			return fmt.Errorf("seed: advance the %s sequence: %w", table, err)
		}
	}
	if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("seed: analyze: %w", err)
	}
	return nil
}
