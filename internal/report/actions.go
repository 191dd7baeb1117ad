package report

import (
	"context"
	"fmt"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/store"
)

// Final states of a forge action.
const (
	actionDone   = "done"
	actionFailed = "failed"
)

// errBadAction marks an action that can never be performed as recorded.
var errBadAction = fmt.Errorf("malformed forge action: %w", forge.ErrPermanent)

// sendAction performs one forge action. Payloads are never logged: a setup
// issue may hold a webhook token.
func (r *Reporter) sendAction(ctx context.Context, a store.ForgeAction) error {
	f, err := r.forgeOf(a.Instance)
	if err != nil {
		return r.actionFailed(ctx, a, err)
	}
	if err := r.perform(ctx, f, a); err != nil {
		return r.actionFailed(ctx, a, err)
	}
	r.log.Debug("reporter: forge action done", "id", a.ID, "kind", a.Kind, "instance", a.Instance, "project", a.ProjectID,
		"mr", a.MRIID, "sha", a.SHA, "note", a.NoteID)
	if err := r.store.FinishAction(ctx, a.ID, actionDone, ""); err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	return nil
}

func (r *Reporter) perform(ctx context.Context, f forge.Forge, a store.ForgeAction) error {
	switch a.Kind {
	case store.ActionMRNote:
		body, err := payloadText(a, "body")
		if err != nil {
			return err
		}
		if a.Attempts > 0 {
			// A failed create may still have made the note.
			id, err := findOwnNote(ctx, f, a.ProjectID, a.MRIID, body)
			if err != nil || id != 0 {
				return err
			}
		}
		_, err = f.CreateMRNote(ctx, a.ProjectID, a.MRIID, body)
		return err
	case store.ActionCommitComment:
		body, err := payloadText(a, "body")
		if err != nil {
			return err
		}
		return f.CreateCommitComment(ctx, a.ProjectID, a.SHA, body)
	case store.ActionAwardEmoji:
		name, err := payloadText(a, "name")
		if err != nil {
			return err
		}
		return f.AwardEmojiOnMRNote(ctx, a.ProjectID, a.MRIID, a.NoteID, name)
	case store.ActionIssue:
		title, err := payloadText(a, "title")
		if err != nil {
			return err
		}
		body, _ := a.Payload["body"].(string) // an issue may have no description
		confidential, _ := a.Payload["confidential"].(bool)
		projectID := a.ProjectID
		if path, _ := a.Payload["project_path"].(string); path != "" {
			// The action came from an unauthenticated delivery: trust the
			// path (checked against the allow-list), never the ID it claimed.
			p, err := f.Project(ctx, path)
			if err != nil {
				return err
			}
			projectID = p.ID
		}
		_, err = f.CreateIssue(ctx, projectID, title, body, confidential)
		return err
	}
	return fmt.Errorf("unknown kind %q: %w", a.Kind, errBadAction)
}

// payloadText is a required string of the payload.
func payloadText(a store.ForgeAction, key string) (string, error) {
	v, _ := a.Payload[key].(string)
	if v == "" {
		return "", fmt.Errorf("%s action without %q: %w", a.Kind, key, errBadAction)
	}
	return v, nil
}

func (r *Reporter) actionFailed(ctx context.Context, a store.ForgeAction, cause error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if worthRetrying(cause) {
		wait := retryDelay(cause, a.Attempts)
		r.log.Warn("reporter: forge action failed; will retry", "id", a.ID, "kind", a.Kind, "instance", a.Instance,
			"project", a.ProjectID, "attempt", a.Attempts+1, "retry_in", wait, "err", cause)
		if err := r.store.RetryAction(ctx, a.ID, r.now().Add(wait), cause.Error()); err != nil {
			return fmt.Errorf("reporter: %w", err)
		}
		return nil
	}
	r.log.Warn("reporter: forge action refused; giving up", "id", a.ID, "kind", a.Kind, "instance", a.Instance,
		"project", a.ProjectID, "err", cause)
	if err := r.store.FinishAction(ctx, a.ID, actionFailed, cause.Error()); err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	return nil
}
