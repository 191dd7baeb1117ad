// Package joblog keeps what a job leaves behind: its log, stored line by
// line while the job runs, and its artifacts, recorded by name with their
// content in a blob store. Handlers serves both over HTTP, including a
// Server-Sent Events tail of a running job's log.
//
// Everything lives in the upbuild database (and the blob store), so a log
// written by a worker on one machine is readable from the web node on
// another.
package joblog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"upbuild.dev/upbuild/internal/store"
)

// ErrNotFound is returned for an artifact that does not exist.
var ErrNotFound = errors.New("not found")

// Defaults for Options.
const (
	DefaultMaxBytes      = 10 << 20
	DefaultMaxLineBytes  = 64 << 10
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultFlushLines    = 64
	maxFlushLines        = 1000
)

// Options tune how logs are stored. Zero values select the defaults.
type Options struct {
	// MaxBytes caps a job's stored log (each line counts with its newline).
	// The line that would cross it is replaced by one marker line and
	// nothing more is stored for the job.
	MaxBytes int64
	// MaxLineBytes caps one line; the rest of a longer line is dropped and
	// the line ends with LineTruncatedSuffix.
	MaxLineBytes int
	// FlushInterval is the longest a complete line waits before it is stored.
	FlushInterval time.Duration
	// FlushLines stores a batch as soon as this many lines are waiting (at
	// most maxFlushLines, which keeps one INSERT within the engines' limits
	// on bound parameters).
	FlushLines int
}

// LineTruncatedSuffix ends a line that was longer than MaxLineBytes.
const LineTruncatedSuffix = " [line truncated]"

// TruncatedMarker is the line stored in place of everything past the cap.
func TruncatedMarker(maxBytes int64) string {
	return "[log truncated: more than " + strconv.FormatInt(maxBytes, 10) + " bytes]"
}

// Line is one stored log line.
type Line struct {
	// Seq numbers a job's lines from 1 without gaps.
	Seq  int64
	Text string
	// Time is when the line was stored.
	Time time.Time
}

// Logs stores and reads job logs. It is safe for concurrent use.
type Logs struct {
	store *store.Store
	opts  Options

	// changedMu guards changed, which is closed and replaced whenever lines
	// are stored by this process, so readers here need not wait for a poll.
	changedMu sync.Mutex
	changed   chan struct{}
}

// NewLogs returns job log storage on st.
func NewLogs(st *store.Store, opts Options) *Logs {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.FlushLines <= 0 {
		opts.FlushLines = DefaultFlushLines
	}
	opts.FlushLines = min(opts.FlushLines, maxFlushLines)
	return &Logs{store: st, opts: opts, changed: make(chan struct{})}
}

// stored returns a channel that is closed the next time this process
// stores log lines.
func (l *Logs) stored() <-chan struct{} {
	l.changedMu.Lock()
	defer l.changedMu.Unlock()
	return l.changed
}

func (l *Logs) notifyStored() {
	l.changedMu.Lock()
	defer l.changedMu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
}

// Lines returns up to limit lines of a job's log with Seq > afterSeq, in order.
func (l *Logs) Lines(ctx context.Context, jobID, afterSeq int64, limit int) ([]Line, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := l.store.ReadDB().QueryContext(ctx, l.store.Rebind(`SELECT seq, line, created_at FROM job_log_lines
		WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT `+strconv.Itoa(limit)), jobID, afterSeq)
	if err != nil {
		return nil, fmt.Errorf("read log of job %d: %w", jobID, err)
	}
	defer rows.Close()
	var out []Line
	for rows.Next() {
		var ln Line
		var created int64
		if err := rows.Scan(&ln.Seq, &ln.Text, &created); err != nil {
			return nil, fmt.Errorf("read log of job %d: %w", jobID, err)
		}
		ln.Time = time.UnixMicro(created).UTC()
		out = append(out, ln)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read log of job %d: %w", jobID, err)
	}
	return out, nil
}

// Prune deletes the logs of jobs that finished more than olderThan ago and
// returns how many jobs' logs it deleted. Each job's log goes in its own
// transaction, so pruning never holds the database for long.
func (l *Logs) Prune(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan).UnixMicro()
	pruned := 0
	for {
		ids, err := finishedJobsWith(ctx, l.store, "job_logs", cutoff)
		if err != nil || len(ids) == 0 {
			return pruned, err
		}
		for _, id := range ids {
			if err := l.deleteLog(ctx, id); err != nil {
				return pruned, err
			}
			pruned++
		}
	}
}

func (l *Logs) deleteLog(ctx context.Context, jobID int64) error {
	tx, err := l.store.WriteDB().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("prune log of job %d: %w", jobID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, table := range []string{"job_log_lines", "job_logs"} {
		if _, err := tx.ExecContext(ctx, l.store.Rebind(`DELETE FROM `+table+` WHERE job_id = ?`), jobID); err != nil {
			return fmt.Errorf("prune log of job %d: %w", jobID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("prune log of job %d: %w", jobID, err)
	}
	return nil
}

// finishedJobsWith lists (a batch of) jobs finished before cutoff that still
// have rows in table.
func finishedJobsWith(ctx context.Context, st *store.Store, table string, cutoff int64) ([]int64, error) {
	rows, err := st.ReadDB().QueryContext(ctx, st.Rebind(`SELECT DISTINCT t.job_id FROM `+table+` t JOIN jobs j ON j.id = t.job_id
		WHERE j.finished_at IS NOT NULL AND j.finished_at < ? ORDER BY t.job_id LIMIT 100`), cutoff)
	if err != nil {
		return nil, fmt.Errorf("find jobs to prune: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find jobs to prune: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find jobs to prune: %w", err)
	}
	return ids, nil
}

// clean makes one line storable: valid UTF-8 (PostgreSQL refuses anything
// else in TEXT, and so does its NUL byte), without the CR of a CRLF ending.
// Other control characters (a tab and a CR inside the line aside) become
// their visible pictures ("␛" for ESC): a job's output must not drive the
// terminal of whoever reads its log with curl (clear the screen, set the
// clipboard, hide text, forge hyperlinks).
func clean(b []byte) string {
	s := strings.TrimSuffix(string(b), "\r")
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if !strings.ContainsFunc(s, isTerminalControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 && isTerminalControl(r):
			return 0x2400 + r // the control pictures block: ␛ for ESC
		case r == 0x7f:
			return '\u2421'
		case isTerminalControl(r):
			return '\uFFFD'
		}
		return r
	}, s)
}

// isTerminalControl reports the C0 and C1 control characters a terminal
// acts on, but for the tab and the carriage return.
func isTerminalControl(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\r') || r == 0x7f || (r >= 0x80 && r <= 0x9f)
}
