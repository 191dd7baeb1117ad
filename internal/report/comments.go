package report

import (
	"context"
	"errors"
	"fmt"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/store"
)

// sendComment puts the latest body of an in-place comment on the MR:
// editing its note, or creating one when there is none yet or it was
// deleted.
func (r *Reporter) sendComment(ctx context.Context, c store.MRComment) error {
	f, err := r.forgeOf(c.Instance)
	if err != nil {
		return r.retryComment(ctx, c, err)
	}
	if c.NoteID != 0 {
		err := f.UpdateMRNote(ctx, c.ProjectID, c.IID, c.NoteID, c.Body)
		switch {
		case err == nil:
			r.log.Debug("reporter: updated MR comment", "instance", c.Instance, "project", c.ProjectID, "mr", c.IID,
				"purpose", c.Purpose, "note", c.NoteID)
			return r.markComment(ctx, c, c.NoteID)
		case errors.Is(err, forge.ErrNotFound):
			// Someone deleted the note: say it again in a new one.
			r.log.Debug("reporter: MR comment is gone; creating a new one", "instance", c.Instance, "project", c.ProjectID,
				"mr", c.IID, "purpose", c.Purpose, "note", c.NoteID)
		default:
			return r.commentFailed(ctx, c, err)
		}
	}
	if c.Attempts > 0 {
		// An earlier create may have reached GitLab though the answer was
		// lost; the forge never repeats a create by itself.
		id, err := findOwnNote(ctx, f, c.ProjectID, c.IID, c.Body)
		if err != nil {
			return r.commentFailed(ctx, c, err)
		}
		if id != 0 {
			return r.markComment(ctx, c, id)
		}
	}
	id, err := f.CreateMRNote(ctx, c.ProjectID, c.IID, c.Body)
	if err != nil {
		return r.commentFailed(ctx, c, err)
	}
	r.log.Debug("reporter: created MR comment", "instance", c.Instance, "project", c.ProjectID, "mr", c.IID,
		"purpose", c.Purpose, "note", id)
	return r.markComment(ctx, c, id)
}

func (r *Reporter) commentFailed(ctx context.Context, c store.MRComment, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case worthRetrying(err):
		return r.retryComment(ctx, c, err)
	default:
		// This body cannot be shown; the next change of the comment tries
		// again (the MR may have been reopened, or access granted).
		r.log.Warn("reporter: MR comment refused; giving up on this version", "instance", c.Instance, "project", c.ProjectID,
			"mr", c.IID, "purpose", c.Purpose, "err", err)
		return r.markComment(ctx, c, c.NoteID)
	}
}

func (r *Reporter) retryComment(ctx context.Context, c store.MRComment, cause error) error {
	wait := retryDelay(cause, c.Attempts)
	r.log.Warn("reporter: MR comment not sent; will retry", "instance", c.Instance, "project", c.ProjectID, "mr", c.IID,
		"purpose", c.Purpose, "attempt", c.Attempts+1, "retry_in", wait, "err", cause)
	if err := r.store.RetryMRComment(ctx, c, r.now().Add(wait), cause.Error()); err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	return nil
}

func (r *Reporter) markComment(ctx context.Context, c store.MRComment, noteID int64) error {
	if err := r.store.MarkMRCommentSent(ctx, c, noteID); err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	return nil
}

// findOwnNote returns the ID of the newest note the bot wrote on the MR with
// exactly this body, or 0.
func findOwnNote(ctx context.Context, f forge.Forge, projectID, iid int64, body string) (int64, error) {
	bot, err := f.CurrentUser(ctx)
	if err != nil {
		return 0, fmt.Errorf("look for an earlier note: %w", err)
	}
	notes, err := f.MRNotes(ctx, projectID, iid)
	if err != nil {
		return 0, fmt.Errorf("look for an earlier note: %w", err)
	}
	for i := len(notes) - 1; i >= 0; i-- {
		n := notes[i]
		if !n.System && n.Body == body && (n.AuthorID == bot.ID || (bot.ID == 0 && n.AuthorUsername == bot.Username)) {
			return n.ID, nil
		}
	}
	return 0, nil
}
