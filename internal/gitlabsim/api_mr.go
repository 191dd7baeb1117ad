package gitlabsim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AwardEmoji is an emoji reaction on a note.
type AwardEmoji struct {
	ID        int64
	Name      string
	UserID    int64
	NoteID    int64
	CreatedAt time.Time
}

// Issue is a project issue.
type Issue struct {
	ID           int64
	IID          int64
	ProjectID    int64
	Title        string
	Description  string
	Confidential bool
	Labels       []string
	State        string
	AuthorID     int64
	CreatedAt    time.Time
}

// visibleMR finds a merge request the caller may read.
func (s *Simulator) visibleMR(q *request, p *Project, iidText string) (MergeRequest, *apiError) {
	iid, err := strconv.ParseInt(iidText, 10, 64)
	if err != nil {
		return MergeRequest{}, notFound("Merge Request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Visibility == Private && s.accessLocked(q.user, p) < Reporter {
		// Guests of private projects cannot see merge requests.
		return MergeRequest{}, notFound("Merge Request")
	}
	mr := s.mrByIIDLocked(p.ID, iid)
	if mr == nil {
		return MergeRequest{}, notFound("Merge Request")
	}
	return copyMR(mr), nil
}

func (s *Simulator) mrJSONLocked(mr *MergeRequest) map[string]any {
	author := s.users[mr.AuthorID]
	var mergeCommit any
	if mr.MergeCommitSHA != "" {
		mergeCommit = mr.MergeCommitSHA
	}
	return map[string]any{
		"id": mr.ID, "iid": mr.IID, "project_id": mr.ProjectID, "title": mr.Title, "description": mr.Description,
		"state": mr.State, "created_at": apiTime(mr.CreatedAt), "updated_at": apiTime(mr.UpdatedAt),
		"target_branch": mr.TargetBranch, "source_branch": mr.SourceBranch,
		"source_project_id": mr.SourceProjectID, "target_project_id": mr.ProjectID,
		"author": s.userJSONLocked(author), "assignees": []any{}, "reviewers": []any{},
		"labels": nonNil(mr.Labels), "draft": mr.Draft, "work_in_progress": mr.Draft,
		"sha": mr.HeadSHA, "merge_commit_sha": mergeCommit, "detailed_merge_status": "mergeable",
		"web_url": s.mrWebURLLocked(mr),
		"references": map[string]string{
			"short": "!" + strconv.FormatInt(mr.IID, 10), "relative": "!" + strconv.FormatInt(mr.IID, 10),
			"full": s.projects[mr.ProjectID].PathWithNamespace + "!" + strconv.FormatInt(mr.IID, 10),
		},
	}
}

func (s *Simulator) getMergeRequest(q *request, p *Project, iidText string) *apiError {
	mr, apiErr := s.visibleMR(q, p, iidText)
	if apiErr != nil {
		return apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(q.w, http.StatusOK, s.mrJSONLocked(s.mrs[mr.ID]))
	return nil
}

func (s *Simulator) noteJSONLocked(n *Note) map[string]any {
	var commitID any
	if n.CommitSHA != "" {
		commitID = n.CommitSHA
	}
	return map[string]any{
		"id": n.ID, "type": nil, "body": n.Body, "attachment": nil, "author": s.userJSONLocked(s.users[n.AuthorID]),
		"created_at": apiTime(n.CreatedAt), "updated_at": apiTime(n.UpdatedAt), "system": n.System,
		"noteable_id": n.NoteableID, "noteable_type": n.NoteableType, "project_id": n.ProjectID,
		"commit_id": commitID, "resolvable": false, "confidential": false, "internal": false,
		"noteable_iid": n.NoteableIID, "commands_changes": map[string]any{},
	}
}

func (s *Simulator) listNotes(q *request, p *Project, iidText string) *apiError {
	mr, apiErr := s.visibleMR(q, p, iidText)
	if apiErr != nil {
		return apiErr
	}
	notes := s.Notes(p.ID, mr.IID)
	orderBy, _ := q.str("order_by")
	sortDir, _ := q.str("sort")
	key := func(n Note) time.Time { return n.CreatedAt }
	if orderBy == "updated_at" {
		key = func(n Note) time.Time { return n.UpdatedAt }
	}
	slices.SortStableFunc(notes, func(a, b Note) int {
		c := key(a).Compare(key(b))
		if c == 0 {
			c = int(a.ID - b.ID)
		}
		if sortDir != "asc" {
			c = -c
		}
		return c
	})
	start, end := paginate(q, len(notes))
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, n := range notes[start:end] {
		out = append(out, s.noteJSONLocked(s.notes[n.ID]))
	}
	writeJSON(q.w, http.StatusOK, out)
	return nil
}

// takeNoteLimit applies the per-user note creation limit; a throttled call
// gets GitLab's application-limit answer.
func (s *Simulator) takeNoteLimit(q *request) *apiError {
	if s.opts.DisableRateLimits {
		return nil
	}
	now := s.now()
	v := s.limits.take("notes_create", q.user.ID, s.opts.NotesPerMinute, now)
	if v.allowed {
		return nil
	}
	v.writeThrottleHeaders(q.w.Header(), now, false)
	return &apiError{http.StatusTooManyRequests, map[string]any{
		"message": map[string]string{"error": "This endpoint has been requested too many times. Try again later."},
	}}
}

func (s *Simulator) postNote(q *request, p *Project, iidText string) *apiError {
	if q.user == nil {
		return errUnauthorized
	}
	mr, apiErr := s.visibleMR(q, p, iidText)
	if apiErr != nil {
		return apiErr
	}
	body, ok := q.str("body")
	if !ok || strings.TrimSpace(body) == "" {
		return badParam("body is missing")
	}
	if apiErr := s.takeNoteLimit(q); apiErr != nil {
		return apiErr
	}
	s.mu.Lock()
	source := s.repos[mr.SourceProjectID]
	s.mu.Unlock()
	last, err := source.commit(q.r.Context(), mr.HeadSHA)
	if err != nil {
		return notFound("Commit")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.createMRNoteLocked(s.mrs[mr.ID], q.user, body, last)
	writeJSON(q.w, http.StatusCreated, s.noteJSONLocked(s.notes[n.ID]))
	return nil
}

func (s *Simulator) mrNoteLocked(mr MergeRequest, noteText string) (*Note, *apiError) {
	id, err := strconv.ParseInt(noteText, 10, 64)
	if err != nil {
		return nil, notFound("Note")
	}
	n, ok := s.notes[id]
	if !ok || n.NoteableType != "MergeRequest" || n.NoteableID != mr.ID {
		return nil, notFound("Note")
	}
	return n, nil
}

func (s *Simulator) getNote(q *request, p *Project, iidText, noteText string) *apiError {
	mr, apiErr := s.visibleMR(q, p, iidText)
	if apiErr != nil {
		return apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, apiErr := s.mrNoteLocked(mr, noteText)
	if apiErr != nil {
		return apiErr
	}
	writeJSON(q.w, http.StatusOK, s.noteJSONLocked(n))
	return nil
}

func (s *Simulator) putNote(q *request, p *Project, iidText, noteText string) *apiError {
	if q.user == nil {
		return errUnauthorized
	}
	mr, apiErr := s.visibleMR(q, p, iidText)
	if apiErr != nil {
		return apiErr
	}
	body, ok := q.str("body")
	if !ok || strings.TrimSpace(body) == "" {
		return badParam("body is missing")
	}
	s.mu.Lock()
	source := s.repos[mr.SourceProjectID]
	s.mu.Unlock()
	last, err := source.commit(q.r.Context(), mr.HeadSHA)
	if err != nil {
		return notFound("Commit")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, apiErr := s.mrNoteLocked(mr, noteText)
	if apiErr != nil {
		return apiErr
	}
	if n.AuthorID != q.user.ID {
		return errForbidden
	}
	if n.Body != body {
		n.Body = body
		n.UpdatedAt = s.now()
		s.fireNoteLocked(n, q.user, "update", s.mrs[mr.ID], &last)
	}
	writeJSON(q.w, http.StatusOK, s.noteJSONLocked(n))
	return nil
}

func (s *Simulator) emojiJSONLocked(e *AwardEmoji) map[string]any {
	return map[string]any{
		"id": e.ID, "name": e.Name, "user": s.userJSONLocked(s.users[e.UserID]),
		"created_at": apiTime(e.CreatedAt), "updated_at": apiTime(e.CreatedAt),
		"awardable_id": e.NoteID, "awardable_type": "Note",
	}
}

func (s *Simulator) listNoteEmoji(q *request, p *Project, iidText, noteText string) *apiError {
	mr, apiErr := s.visibleMR(q, p, iidText)
	if apiErr != nil {
		return apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, apiErr := s.mrNoteLocked(mr, noteText)
	if apiErr != nil {
		return apiErr
	}
	var list []*AwardEmoji
	for id := int64(1); id <= s.seq["emoji"]; id++ {
		if e, ok := s.emoji[id]; ok && e.NoteID == n.ID {
			list = append(list, e)
		}
	}
	start, end := paginate(q, len(list))
	out := []map[string]any{}
	for _, e := range list[start:end] {
		out = append(out, s.emojiJSONLocked(e))
	}
	writeJSON(q.w, http.StatusOK, out)
	return nil
}

func (s *Simulator) postNoteEmoji(q *request, p *Project, iidText, noteText string) *apiError {
	if q.user == nil {
		return errUnauthorized
	}
	mr, apiErr := s.visibleMR(q, p, iidText)
	if apiErr != nil {
		return apiErr
	}
	name, ok := q.str("name")
	if !ok || name == "" {
		return badParam("name is missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, apiErr := s.mrNoteLocked(mr, noteText)
	if apiErr != nil {
		return apiErr
	}
	for _, e := range s.emoji {
		if e.NoteID == n.ID && e.UserID == q.user.ID && e.Name == name {
			return notFound(`Award Emoji {:name=>["has already been taken"]}`)
		}
	}
	e := &AwardEmoji{ID: s.nextIDLocked("emoji"), Name: name, UserID: q.user.ID, NoteID: n.ID, CreatedAt: s.now()}
	s.emoji[e.ID] = e
	writeJSON(q.w, http.StatusCreated, s.emojiJSONLocked(e))
	return nil
}

// AwardEmoji lists the emoji awarded on a note, oldest first.
func (s *Simulator) AwardEmoji(noteID int64) []AwardEmoji {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AwardEmoji
	for id := int64(1); id <= s.seq["emoji"]; id++ {
		if e, ok := s.emoji[id]; ok && e.NoteID == noteID {
			out = append(out, *e)
		}
	}
	return out
}

func (s *Simulator) issueJSONLocked(is *Issue) map[string]any {
	return map[string]any{
		"id": is.ID, "iid": is.IID, "project_id": is.ProjectID, "title": is.Title, "description": is.Description,
		"state": is.State, "confidential": is.Confidential, "labels": nonNil(is.Labels),
		"author": s.userJSONLocked(s.users[is.AuthorID]), "assignees": []any{},
		"created_at": apiTime(is.CreatedAt), "updated_at": apiTime(is.CreatedAt), "type": "ISSUE", "issue_type": "issue",
		"web_url": s.projectCopyLocked(s.projects[is.ProjectID]).WebURL + "/-/issues/" + strconv.FormatInt(is.IID, 10),
	}
}

// canSeeIssueLocked: confidential issues are for their author and members
// with at least Reporter (Planner).
func (s *Simulator) canSeeIssueLocked(u *User, p *Project, is *Issue) bool {
	if p.Visibility == Private && s.accessLocked(u, p) < Guest {
		return false
	}
	if !is.Confidential {
		return true
	}
	return u != nil && (u.ID == is.AuthorID || s.accessLocked(u, p) >= Reporter)
}

func (s *Simulator) listIssues(q *request, p *Project) *apiError {
	state, _ := q.str("state")
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []*Issue
	for id := s.seq["issue"]; id >= 1; id-- {
		is, ok := s.issues[id]
		if !ok || is.ProjectID != p.ID || !s.canSeeIssueLocked(q.user, p, is) {
			continue
		}
		if state != "" && state != "all" && is.State != state {
			continue
		}
		list = append(list, is)
	}
	start, end := paginate(q, len(list))
	out := []map[string]any{}
	for _, is := range list[start:end] {
		out = append(out, s.issueJSONLocked(is))
	}
	writeJSON(q.w, http.StatusOK, out)
	return nil
}

func (s *Simulator) postIssue(q *request, p *Project) *apiError {
	if q.user == nil {
		return errUnauthorized
	}
	title, ok := q.str("title")
	if !ok || strings.TrimSpace(title) == "" {
		return badParam("title is missing")
	}
	description, _ := q.str("description")
	labelText, _ := q.str("labels")
	var labels []string
	for _, l := range strings.Split(labelText, ",") {
		if l = strings.TrimSpace(l); l != "" {
			labels = append(labels, l)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Visibility == Private && s.accessLocked(q.user, p) < Guest {
		return errForbidden
	}
	is := &Issue{
		ID: s.nextIDLocked("issue"), IID: s.nextIDLocked(fmt.Sprintf("issue-iid-%d", p.ID)), ProjectID: p.ID,
		Title: title, Description: description, Confidential: q.boolean("confidential"), Labels: labels,
		State: "opened", AuthorID: q.user.ID, CreatedAt: s.now(),
	}
	s.issues[is.ID] = is
	event := eventIssue
	if is.Confidential {
		event = eventConfidentialIss
	}
	s.fireLocked(p.ID, event, marshalPayload(map[string]any{
		"object_kind": "issue", "event_type": map[bool]string{false: "issue", true: "confidential_issue"}[is.Confidential],
		"user": s.hookUserLocked(q.user), "project": s.hookProjectLocked(p),
		"object_attributes": map[string]any{
			"id": is.ID, "iid": is.IID, "title": is.Title, "description": is.Description,
			"confidential": is.Confidential, "state": is.State, "action": "open", "project_id": p.ID,
			"author_id": is.AuthorID, "created_at": hookTime(is.CreatedAt), "updated_at": hookTime(is.CreatedAt),
			"url": s.issueJSONLocked(is)["web_url"],
		},
		"repository": s.hookRepositoryLocked(p, false), "labels": s.hookLabelsLocked(p.ID, labels),
	}))
	writeJSON(q.w, http.StatusCreated, s.issueJSONLocked(is))
	return nil
}

// Issues lists a project's issues, oldest first.
func (s *Simulator) Issues(projectID int64) []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Issue
	for id := int64(1); id <= s.seq["issue"]; id++ {
		if is, ok := s.issues[id]; ok && is.ProjectID == projectID {
			c := *is
			c.Labels = slices.Clone(is.Labels)
			out = append(out, c)
		}
	}
	return out
}

func (s *Simulator) getMemberAll(q *request, p *Project, userText string) *apiError {
	id, err := strconv.ParseInt(userText, 10, 64)
	if err != nil {
		return notFound("Member")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return notFound("Member")
	}
	m, ok := s.effectiveMemberLocked(u.ID, p)
	if !ok {
		return notFound("Member")
	}
	out := s.userJSONLocked(u)
	out["access_level"] = m.level
	out["created_at"] = apiTime(m.createdAt)
	out["expires_at"] = nil
	out["membership_state"] = "active"
	writeJSON(q.w, http.StatusOK, out)
	return nil
}

func (s *Simulator) hookJSONLocked(h *Hook) map[string]any {
	var disabledUntil any
	if !h.DisabledUntil.IsZero() && s.now().Before(h.DisabledUntil) {
		disabledUntil = apiTime(h.DisabledUntil)
	}
	return map[string]any{
		"id": h.ID, "url": h.URL, "project_id": h.ProjectID, "created_at": apiTime(h.CreatedAt),
		"push_events": !h.NoPushEvents, "tag_push_events": h.TagPushEvents,
		"merge_requests_events": h.MergeRequestsEvents, "note_events": h.NoteEvents,
		"confidential_note_events": h.ConfidentialNoteEvents, "issues_events": h.IssuesEvents,
		"confidential_issues_events": h.ConfidentialIssuesEvents, "releases_events": h.ReleasesEvents,
		"emoji_events": h.EmojiEvents, "enable_ssl_verification": true, "push_events_branch_filter": "",
		"alert_status": h.AlertStatus(s.now()), "disabled_until": disabledUntil,
		"token_present": h.Token != "", "signing_token_present": h.SigningToken != "",
	}
}

func (s *Simulator) listHooks(q *request, p *Project) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.user == nil {
		return errUnauthorized
	}
	if s.accessLocked(q.user, p) < Maintainer {
		return errForbidden
	}
	hooks := s.projectHooksLocked(p.ID)
	start, end := paginate(q, len(hooks))
	out := []map[string]any{}
	for _, h := range hooks[start:end] {
		out = append(out, s.hookJSONLocked(s.hooks[h.ID]))
	}
	writeJSON(q.w, http.StatusOK, out)
	return nil
}

func (s *Simulator) postHook(q *request, p *Project) *apiError {
	if q.user == nil {
		return errUnauthorized
	}
	s.mu.Lock()
	level := s.accessLocked(q.user, p)
	s.mu.Unlock()
	if level < Maintainer {
		return errForbidden
	}
	hookURL, ok := q.str("url")
	if !ok || hookURL == "" {
		return badParam("url is missing")
	}
	flag := func(key string) bool { return q.boolean(key) }
	spec := HookSpec{
		URL: hookURL, TagPushEvents: flag("tag_push_events"), MergeRequestsEvents: flag("merge_requests_events"),
		NoteEvents: flag("note_events"), ConfidentialNoteEvents: flag("confidential_note_events"),
		IssuesEvents: flag("issues_events"), ConfidentialIssuesEvents: flag("confidential_issues_events"),
		ReleasesEvents: flag("releases_events"), EmojiEvents: flag("emoji_events"),
	}
	if v, ok := q.str("push_events"); ok {
		on, _ := strconv.ParseBool(v)
		spec.NoPushEvents = !on
	}
	spec.Token, _ = q.str("token")
	spec.SigningToken, _ = q.str("signing_token")
	if spec.SigningToken != "" {
		if _, err := signingKey(spec.SigningToken); err != nil {
			return badRequest(map[string][]string{"signing_token": {"is invalid"}})
		}
	}
	h, err := s.AddHook(p.ID, spec)
	if err != nil {
		return badParam("Invalid url given")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(q.w, http.StatusCreated, s.hookJSONLocked(s.hooks[h.ID]))
	return nil
}
