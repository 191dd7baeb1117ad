package report_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/report"
	"upbuild.dev/upbuild/internal/store"
)

func TestForgeActionsHappenExactlyOnce(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		mr := e.openMR(t, e.project.ID, "feature", "alice")
		asked := must(e.sim.AddNote(ctx, e.project.ID, mr.IID, "alice", "/packit build"))(t)
		actions := []store.ForgeAction{
			{Instance: e.url, Kind: store.ActionAwardEmoji, ProjectID: e.project.ID, MRIID: mr.IID, NoteID: asked.ID,
				Payload: map[string]any{"name": "eyes"}, DedupKey: fmt.Sprintf("ack:%d", asked.ID)},
			{Instance: e.url, Kind: store.ActionMRNote, ProjectID: e.project.ID, MRIID: mr.IID,
				Payload: map[string]any{"body": "Builds are queued."}, DedupKey: fmt.Sprintf("reply:%d", asked.ID)},
			{Instance: e.url, Kind: store.ActionIssue, ProjectID: e.project.ID,
				Payload:  map[string]any{"title": "upbuild setup", "body": "Webhook token: keep me private", "confidential": true},
				DedupKey: "setup-issue"},
		}
		check(t, e.store.AddActions(ctx, actions...))
		rep := e.reporter(t)
		flush(t, rep)
		flush(t, rep)
		// A planner that retries records the same actions again.
		check(t, e.store.AddActions(ctx, actions...))
		e.clock.Advance(time.Hour)
		flush(t, rep)

		emoji := e.sim.AwardEmoji(asked.ID)
		if len(emoji) != 1 || emoji[0].Name != "eyes" || emoji[0].UserID != e.bot.ID {
			t.Errorf("emoji on the command: %+v", emoji)
		}
		notes := e.botNotes(e.project.ID, mr.IID)
		if len(notes) != 1 || notes[0].Body != "Builds are queued." {
			t.Errorf("bot notes: %+v", notes)
		}
		issues := e.sim.Issues(e.project.ID)
		if len(issues) != 1 || !issues[0].Confidential || issues[0].Title != "upbuild setup" ||
			issues[0].Description != "Webhook token: keep me private" || issues[0].AuthorID != e.bot.ID {
			t.Errorf("issues: %+v", issues)
		}
	})
}

func TestRateLimitedNoteWaitsForRetryAfterAndArrivesOnce(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		mr := e.openMR(t, e.project.ID, "feature", "alice")
		notesPath := fmt.Sprintf("/api/v4/projects/%d/merge_requests/%d/notes", e.project.ID, mr.IID)
		e.sim.InjectFault(gitlabsim.Fault{Method: "POST", PathPrefix: notesPath, Kind: gitlabsim.FaultRateLimit,
			RetryAfter: 30 * time.Second, Times: 1})
		check(t, e.store.AddActions(ctx, store.ForgeAction{Instance: e.url, Kind: store.ActionMRNote, ProjectID: e.project.ID,
			MRIID: mr.IID, Payload: map[string]any{"body": "Hello"}, DedupKey: "hello"}))
		rep := e.reporter(t)
		flush(t, rep)
		if n := len(e.botNotes(e.project.ID, mr.IID)); n != 0 {
			t.Fatalf("%d notes despite the 429", n)
		}
		e.clock.Advance(29 * time.Second)
		flush(t, rep)
		if n := e.requests.count("POST", notesPath); n != 1 {
			t.Fatalf("%d note posts before Retry-After passed, want only the throttled one", n)
		}
		e.clock.Advance(time.Second)
		flush(t, rep)
		flush(t, rep)
		if notes := e.botNotes(e.project.ID, mr.IID); len(notes) != 1 || notes[0].Body != "Hello" {
			t.Fatalf("notes after Retry-After: %+v, want exactly one", notes)
		}
	})
}

func TestPermanentlyFailingActionIsGivenUp(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		mr := e.openMR(t, e.project.ID, "feature", "alice")
		const missingNote = 424242
		check(t, e.store.AddActions(ctx,
			store.ForgeAction{Instance: e.url, Kind: store.ActionAwardEmoji, ProjectID: e.project.ID, MRIID: mr.IID,
				NoteID: missingNote, Payload: map[string]any{"name": "eyes"}, DedupKey: "ack:gone"},
			store.ForgeAction{Instance: e.url, Kind: store.ActionMRNote, ProjectID: e.project.ID, MRIID: mr.IID,
				Payload: map[string]any{}, DedupKey: "reply:empty"},
		))
		rep := e.reporter(t)
		flush(t, rep)
		for range 3 {
			e.clock.Advance(10 * time.Minute)
			flush(t, rep)
		}
		awardPath := fmt.Sprintf("/api/v4/projects/%d/merge_requests/%d/notes/%d/award_emoji", e.project.ID, mr.IID, missingNote)
		if n := e.requests.count("POST", awardPath); n != 1 {
			t.Fatalf("the refused award was posted %d times, want once", n)
		}
		if n := e.requests.count("POST", fmt.Sprintf("/api/v4/projects/%d/merge_requests/%d/notes", e.project.ID, mr.IID)); n != 0 {
			t.Fatalf("a note without a body was posted %d times", n)
		}
		if due := must(e.store.DueActions(ctx, e.clock.Now().Add(24*time.Hour), 10))(t); len(due) != 0 {
			t.Fatalf("failed actions are still pending: %+v", due)
		}
	})
}

// lostAnswers is a forge whose first note creation reaches GitLab but whose
// answer is lost on the way back, as with a timeout after GitLab committed.
type lostAnswers struct {
	forge.Forge
	lost atomic.Bool
}

func (l *lostAnswers) CreateMRNote(ctx context.Context, projectID, iid int64, body string) (int64, error) {
	id, err := l.Forge.CreateMRNote(ctx, projectID, iid, body)
	if err == nil && l.lost.CompareAndSwap(false, true) {
		return 0, fmt.Errorf("gitlab: comment on merge request: no answer from GitLab: EOF: %w", forge.ErrTransient)
	}
	return id, err
}

func TestNoteWhoseAnswerWasLostIsNotPostedTwice(t *testing.T) {
	for _, kind := range []string{"reply", "in-place comment"} {
		t.Run(kind, func(t *testing.T) {
			each(t, func(t *testing.T, e *env) {
				ctx := context.Background()
				mr := e.openMR(t, e.project.ID, "feature", "alice")
				wire := &lostAnswers{Forge: e.forge}
				rep := e.reporter(t, func(o *report.Options) { o.Forges = map[string]forge.Forge{e.url: wire} })
				ref := store.MRRef{Instance: e.url, ProjectID: e.project.ID, IID: mr.IID}
				if kind == "reply" {
					check(t, e.store.AddActions(ctx, store.ForgeAction{Instance: e.url, Kind: store.ActionMRNote,
						ProjectID: e.project.ID, MRIID: mr.IID, Payload: map[string]any{"body": "Hi"}, DedupKey: "hi"}))
				} else {
					check(t, e.store.SetMRComment(ctx, ref, store.CommentSummary, "Hi"))
				}
				flush(t, rep)
				e.clock.Advance(time.Minute)
				flush(t, rep)
				if notes := e.botNotes(e.project.ID, mr.IID); len(notes) != 1 || notes[0].Body != "Hi" {
					t.Fatalf("notes %+v, want the one that was created", notes)
				}
				if kind == "in-place comment" {
					// The found note is the one edited from now on.
					check(t, e.store.SetMRComment(ctx, ref, store.CommentSummary, "Hi again"))
					flush(t, rep)
					if notes := e.botNotes(e.project.ID, mr.IID); len(notes) != 1 || notes[0].Body != "Hi again" {
						t.Fatalf("notes %+v, want the found note edited", notes)
					}
				}
			})
		})
	}
}
