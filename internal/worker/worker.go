// Package worker executes queued jobs: the queue hands it a job ID, it runs
// the job and records the outcome in the store, from where the reporter
// tells GitLab.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"upbuild.dev/upbuild/internal/store"
)

// Worker runs jobs.
type Worker struct {
	Store *store.Store
	// Changed is called after a job's state changed.
	Changed func()
	Logger  *slog.Logger
}

// Handle runs one job. It is idempotent: a job already in a final state (a
// retry after a crash, or a canceled job) is left alone. Build failures are
// outcomes, not errors; an error means "hand the job back and retry".
func (w *Worker) Handle(ctx context.Context, jobID int64) error {
	j, err := w.Store.Job(ctx, jobID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load job %d: %w", jobID, err)
	}
	if store.JobFinal(j.State) || j.State == store.JobHeld || j.State == store.JobWaiting {
		return nil
	}
	// Sandboxed execution (SRPM and RPM builds, tests) is not on this
	// service yet. Say so, the way a skipped job does; never fake a result.
	desc := fmt.Sprintf("%s cannot run on this service yet: sandboxed execution is not available", j.JobType)
	if _, err := w.Store.SetJobState(ctx, jobID, store.JobSkipped, desc); err != nil {
		return fmt.Errorf("record job %d: %w", jobID, err)
	}
	if w.Changed != nil {
		w.Changed()
	}
	return nil
}
