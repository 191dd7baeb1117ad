package gitlabsim

import (
	"net/http"
	"strings"
)

// postCommitComment serves POST /projects/:id/repository/commits/:sha/comments:
// a comment on a commit, which fires a Note Hook like a web comment. GitLab
// answers with the comment's note, author and position; upbuild only posts
// plain comments (no path or line).
func (s *Simulator) postCommitComment(q *request, p *Project, sha string) *apiError {
	if q.user == nil {
		return errUnauthorized
	}
	r, apiErr := s.codeRepo(q, p)
	if apiErr != nil {
		return apiErr
	}
	note, ok := q.str("note")
	if !ok || strings.TrimSpace(note) == "" {
		return badParam("note is missing")
	}
	full, err := r.resolveCommit(q.r.Context(), sha)
	if err != nil {
		return notFound("Commit")
	}
	info, err := r.commit(q.r.Context(), full)
	if err != nil {
		return notFound("Commit")
	}
	if apiErr := s.takeNoteLimit(q); apiErr != nil {
		return apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := &Note{ID: s.nextIDLocked("note"), ProjectID: p.ID, NoteableType: "Commit", CommitSHA: info.ID,
		Body: note, AuthorID: q.user.ID, CreatedAt: now, UpdatedAt: now}
	s.notes[n.ID] = n
	s.fireNoteLocked(n, q.user, "create", nil, &info)
	writeJSON(q.w, http.StatusCreated, map[string]any{
		"note": note, "path": nil, "line": nil, "line_type": nil,
		"author":     map[string]any{"id": q.user.ID, "username": q.user.Username, "name": q.user.Name},
		"created_at": now.UTC().Format("2006-01-02T15:04:05.000Z"),
	})
	return nil
}

// CommitNotes lists the comments on a commit, oldest first.
func (s *Simulator) CommitNotes(projectID int64, sha string) []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Note
	for id := int64(1); id <= s.seq["note"]; id++ {
		if n, ok := s.notes[id]; ok && n.ProjectID == projectID && n.NoteableType == "Commit" && n.CommitSHA == sha {
			out = append(out, *n)
		}
	}
	return out
}
