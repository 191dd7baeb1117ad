package joblog

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// closeTimeout bounds the last flush in Close.
const closeTimeout = 30 * time.Second

// Writer returns where a job's commands write their output. It splits the
// bytes into lines and stores them with sequence numbers, in batches: when
// FlushLines lines are waiting, or FlushInterval after the first one
// arrived, or on Close, which also stores an unterminated last line.
//
// Writes that arrive while a batch is being stored wait for it, so a job
// cannot outrun the database by more than one batch. A storage error is
// returned by that Write and every later one. One writer per job at a time:
// a later writer for the same job (a retry) continues its numbering and its
// size cap.
//
// ctx bounds the stores; Close stores what is left even if ctx has ended
// (a canceled job's last lines are the ones that say why).
func (l *Logs) Writer(ctx context.Context, jobID int64) io.WriteCloser {
	return &writer{logs: l, ctx: ctx, jobID: jobID}
}

type writer struct {
	logs  *Logs
	ctx   context.Context
	jobID int64

	mu sync.Mutex
	// line is the current unterminated line, at most MaxLineBytes.
	line []byte
	// lineCut says the current line went past MaxLineBytes.
	lineCut bool
	// full says the job's log reached its cap: later lines are dropped.
	full    bool
	pending []string
	timer   *time.Timer
	err     error
	closed  bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("write job log: writer is closed")
	}
	if w.err != nil {
		return 0, w.err
	}
	maxLine := w.logs.opts.MaxLineBytes
	for rest := p; len(rest) > 0; {
		chunk, after, complete := bytes.Cut(rest, []byte("\n"))
		rest = after
		if room := maxLine - len(w.line); len(chunk) > room {
			w.line = append(w.line, chunk[:room]...)
			w.lineCut = true
		} else {
			w.line = append(w.line, chunk...)
		}
		if !complete {
			break
		}
		w.endLine()
		if len(w.pending) >= w.logs.opts.FlushLines {
			if err := w.flush(w.ctx); err != nil {
				return len(p) - len(rest), err
			}
		}
	}
	if len(w.pending) > 0 && w.timer == nil {
		w.timer = time.AfterFunc(w.logs.opts.FlushInterval, w.flushLater)
	}
	return len(p), nil
}

// endLine moves the current line to the pending batch.
func (w *writer) endLine() {
	if w.full {
		w.line, w.lineCut = w.line[:0], false
		return
	}
	text := clean(w.line)
	if w.lineCut {
		text += LineTruncatedSuffix
	}
	w.pending = append(w.pending, text)
	w.line, w.lineCut = w.line[:0], false
}

func (w *writer) flushLater() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = nil
	if w.closed || w.err != nil {
		return
	}
	// A failure is kept for the next Write or Close to report.
	_ = w.flush(w.ctx)
}

func (w *writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if len(w.line) > 0 || w.lineCut {
		w.endLine()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), closeTimeout)
	defer cancel()
	// Lines a failed flush kept are tried once more here.
	w.err = nil
	return w.flush(ctx)
}

// flush stores the pending lines (w.mu held). On failure they stay pending.
func (w *writer) flush(ctx context.Context) error {
	if len(w.pending) == 0 {
		return nil
	}
	full, err := w.store(ctx)
	if err != nil {
		w.err = fmt.Errorf("store log of job %d: %w", w.jobID, err)
		return w.err
	}
	w.full = full
	w.pending = w.pending[:0]
	w.logs.notifyStored()
	return nil
}

// store appends the pending lines in one transaction, continuing from the
// job's bookkeeping row and stopping with the marker at the cap. It reports
// whether the log is now full.
func (w *writer) store(ctx context.Context) (bool, error) {
	st := w.logs.store
	tx, err := st.WriteDB().BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var lastSeq, size, truncated int64
	err = tx.QueryRowContext(ctx, st.Rebind(`SELECT last_seq, bytes, truncated FROM job_logs WHERE job_id = ?`), w.jobID).
		Scan(&lastSeq, &size, &truncated)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	if truncated != 0 {
		return true, nil
	}
	now := time.Now().UnixMicro()
	var values []string
	var args []any
	for _, text := range w.pending {
		if size+int64(len(text))+1 > w.logs.opts.MaxBytes {
			text, truncated = TruncatedMarker(w.logs.opts.MaxBytes), 1
		} else {
			size += int64(len(text)) + 1
		}
		lastSeq++
		values = append(values, "(?, ?, ?, ?)")
		args = append(args, w.jobID, lastSeq, text, now)
		if truncated != 0 {
			break
		}
	}
	if _, err := tx.ExecContext(ctx, st.Rebind(`INSERT INTO job_log_lines (job_id, seq, line, created_at) VALUES `+
		strings.Join(values, ", ")), args...); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, st.Rebind(`INSERT INTO job_logs (job_id, last_seq, bytes, truncated, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET last_seq = excluded.last_seq, bytes = excluded.bytes,
		truncated = excluded.truncated, updated_at = excluded.updated_at`), w.jobID, lastSeq, size, truncated, now); err != nil {
		return false, err
	}
	return truncated != 0, tx.Commit()
}
