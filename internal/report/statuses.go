package report

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/store"
)

// noteSkippedRefused is recorded on a "skipped" status an older GitLab
// would not take; the summary or results comment still shows it.
const noteSkippedRefused = "skipped (not accepted by this GitLab)"

// sendStatus sends the latest state of one status. Only the store's errors
// (and ctx's) are returned; the forge's are scheduled or recorded.
func (r *Reporter) sendStatus(ctx context.Context, row store.StatusRow) error {
	f, err := r.forgeOf(row.Instance)
	if err != nil {
		return r.retryStatus(ctx, row, err)
	}
	state := forge.StatusState(row.State)
	if state == forge.StatusSkipped {
		if r.refusesSkipped(row.Instance) {
			return r.markStatus(ctx, row, noteSkippedRefused)
		}
		if row.SentState == string(forge.StatusRunning) {
			// GitLab skips only a status that has not started; one that
			// started and will not finish reads as canceled.
			state = forge.StatusCanceled
		}
	}
	pipelineID, err := r.store.Pipeline(ctx, row.Instance, row.ProjectID, row.SHA)
	if err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	if pipelineID == 0 {
		// The first status of a SHA creates GitLab's external pipeline; the
		// other statuses of the SHA wait for its ID instead of each making
		// their own pipeline.
		unlock, err := r.locks.lock(ctx, pipelineKey(row))
		if err != nil {
			return err
		}
		defer unlock()
		if pipelineID, err = r.store.Pipeline(ctx, row.Instance, row.ProjectID, row.SHA); err != nil {
			return fmt.Errorf("reporter: %w", err)
		}
	}
	// Say we are sending: if this process dies with a request in flight,
	// another reporter waits for it to land before sending newer states.
	if err := r.store.MarkStatusSending(ctx, row, r.id, r.now()); err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	// A send that began before and never finished (a crash) may already
	// have put a state on GitLab: then pending-first would go backwards.
	if row.SentState == "" && !row.Attempted && state != forge.StatusPending {
		// GitLab shows every status as pending first, then its outcome,
		// even when the job finished before its first status went out.
		got, err := f.SetCommitStatus(ctx, row.ProjectID, row.SHA, forge.StatusUpdate{
			State: forge.StatusPending, Name: row.Name, Ref: row.Ref, TargetURL: r.absoluteURL(row.TargetURL),
			Description: "Queued", PipelineID: pipelineID,
		})
		if err != nil {
			return r.statusFailed(ctx, f, row, err)
		}
		if pipelineID == 0 && got != 0 {
			if err := r.store.SetPipeline(ctx, row.Instance, row.ProjectID, row.SHA, got); err != nil {
				return fmt.Errorf("reporter: %w", err)
			}
			pipelineID = got
		}
	}
	got, err := f.SetCommitStatus(ctx, row.ProjectID, row.SHA, forge.StatusUpdate{
		State:       state,
		Name:        row.Name,
		Ref:         row.Ref,
		TargetURL:   r.absoluteURL(row.TargetURL),
		Description: row.Description,
		PipelineID:  pipelineID,
	})
	if err != nil {
		return r.statusFailed(ctx, f, row, err)
	}
	if pipelineID == 0 && got != 0 {
		if err := r.store.SetPipeline(ctx, row.Instance, row.ProjectID, row.SHA, got); err != nil {
			return fmt.Errorf("reporter: %w", err)
		}
	}
	r.log.Debug("reporter: sent commit status", "instance", row.Instance, "project", row.ProjectID, "sha", row.SHA,
		"name", row.Name, "state", state, "pipeline", got)
	return r.markStatus(ctx, row, "")
}

func pipelineKey(row store.StatusRow) string {
	return "pipeline\x00" + row.Instance + "\x00" + strconv.FormatInt(row.ProjectID, 10) + "\x00" + row.SHA
}

// statusFailed decides what a failed send means for the row.
func (r *Reporter) statusFailed(ctx context.Context, f forge.Forge, row store.StatusRow, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case worthRetrying(err):
		return r.retryStatus(ctx, row, err)
	case row.State == string(forge.StatusSkipped) && isSkippedRefusal(err):
		r.rememberSkippedRefused(row.Instance)
		r.log.Warn("reporter: this GitLab does not accept the skipped state; skipped jobs will show in comments only",
			"instance", row.Instance, "err", err)
		return r.markStatus(ctx, row, noteSkippedRefused)
	case (errors.Is(err, forge.ErrForbidden) || errors.Is(err, forge.ErrNotFound)) && row.MRIID != 0 && row.TargetProjectID != 0:
		return r.showInResultsComment(ctx, f, row, err)
	default:
		r.log.Warn("reporter: commit status refused; giving up on this state", "instance", row.Instance,
			"project", row.ProjectID, "sha", row.SHA, "name", row.Name, "state", row.State, "err", err)
		return r.markStatus(ctx, row, "not delivered: "+err.Error())
	}
}

// isSkippedRefusal recognises an older GitLab's answer to state=skipped:
// the API's parameter validation ("state does not have a valid value"),
// not a transition error (those mean the status already moved on).
func isSkippedRefusal(err error) bool {
	if errors.Is(err, forge.ErrNotFound) || errors.Is(err, forge.ErrForbidden) {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "state does not have a valid value") || strings.Contains(msg, "state is invalid")
}

func (r *Reporter) refusesSkipped(instance string) bool {
	r.skippedMu.Lock()
	defer r.skippedMu.Unlock()
	return r.noSkipped[instance]
}

func (r *Reporter) rememberSkippedRefused(instance string) {
	r.skippedMu.Lock()
	defer r.skippedMu.Unlock()
	r.noSkipped[instance] = true
}

func (r *Reporter) retryStatus(ctx context.Context, row store.StatusRow, cause error) error {
	wait := retryDelay(cause, row.Attempts)
	r.log.Warn("reporter: commit status not sent; will retry", "instance", row.Instance, "project", row.ProjectID,
		"sha", row.SHA, "name", row.Name, "state", row.State, "attempt", row.Attempts+1, "retry_in", wait, "err", cause)
	if err := r.store.RetryStatus(ctx, row, r.now().Add(wait), cause.Error()); err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	return nil
}

func (r *Reporter) markStatus(ctx context.Context, row store.StatusRow, note string) error {
	if err := r.store.MarkStatusSent(ctx, row, note); err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	return r.afterStatus(ctx, row)
}

// absoluteURL completes a target URL given as a path on upbuild.
func (r *Reporter) absoluteURL(u string) string {
	if strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") && r.publicURL != "" {
		return strings.TrimRight(r.publicURL, "/") + u
	}
	return u
}
