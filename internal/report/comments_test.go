package report_test

import (
	"context"
	"testing"

	"upbuild.dev/upbuild/internal/store"
)

func TestInPlaceCommentIsEditedNotRepeated(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		mr := e.openMR(t, e.project.ID, "feature", "alice")
		ref := store.MRRef{Instance: e.url, ProjectID: e.project.ID, IID: mr.IID}
		rep := e.reporter(t)
		check(t, e.store.SetMRComment(ctx, ref, store.CommentSummary, "2 builds queued"))
		flush(t, rep)
		first := e.botNotes(e.project.ID, mr.IID)
		check(t, e.store.SetMRComment(ctx, ref, store.CommentSummary, "2 builds succeeded"))
		flush(t, rep)
		flush(t, rep)
		after := e.botNotes(e.project.ID, mr.IID)
		if len(first) != 1 || len(after) != 1 || after[0].ID != first[0].ID || after[0].Body != "2 builds succeeded" {
			t.Fatalf("notes: first %+v, after %+v; want one note edited in place", first, after)
		}
	})
}

func TestInPlaceCommentWhoseNoteWasDeletedIsPostedAgain(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		mr := e.openMR(t, e.project.ID, "feature", "alice")
		ref := store.MRRef{Instance: e.url, ProjectID: e.project.ID, IID: mr.IID}
		// The comment was posted once as a note that someone has since deleted.
		check(t, e.store.SetMRComment(ctx, ref, store.CommentSummary, "old"))
		c := must(e.store.MRCommentOf(ctx, ref, store.CommentSummary))(t)
		check(t, e.store.MarkMRCommentSent(ctx, c, 987654))
		check(t, e.store.SetMRComment(ctx, ref, store.CommentSummary, "new"))

		rep := e.reporter(t)
		flush(t, rep)
		flush(t, rep)
		notes := e.botNotes(e.project.ID, mr.IID)
		if len(notes) != 1 || notes[0].Body != "new" {
			t.Fatalf("notes %+v, want the comment posted again", notes)
		}
		// And later edits go to the new note.
		check(t, e.store.SetMRComment(ctx, ref, store.CommentSummary, "newer"))
		flush(t, rep)
		if notes := e.botNotes(e.project.ID, mr.IID); len(notes) != 1 || notes[0].Body != "newer" {
			t.Fatalf("notes %+v, want the new note edited", notes)
		}
	})
}
