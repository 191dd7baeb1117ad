package gitlabsim

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// MergeRequest is a merge request; ProjectID is the target project.
type MergeRequest struct {
	ID              int64
	IID             int64
	ProjectID       int64
	SourceProjectID int64
	SourceBranch    string
	TargetBranch    string
	Title           string
	Description     string
	State           string // opened, closed, merged
	AuthorID        int64
	Labels          []string
	Draft           bool
	HeadSHA         string
	MergeCommitSHA  string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Note is a comment on a merge request or a commit.
type Note struct {
	ID           int64
	ProjectID    int64
	NoteableType string // "MergeRequest" or "Commit"
	NoteableID   int64  // the merge request's global ID; 0 for commits
	NoteableIID  int64  // the merge request's IID; 0 for commits
	CommitSHA    string
	Body         string
	AuthorID     int64
	System       bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// CommitSpec is one commit of a push.
type CommitSpec struct {
	Message string
	Changes []FileChange
}

// MergeRequestSpec describes a merge request to open. SourceProjectID 0
// means the target project (not a fork).
type MergeRequestSpec struct {
	ProjectID       int64
	SourceProjectID int64
	SourceBranch    string
	TargetBranch    string
	Title           string
	Description     string
	Author          string
	Labels          []string
	Draft           bool
}

func marshalPayload(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Payload types are plain structs; failing to marshal one is a bug.
		panic(fmt.Sprintf("marshal webhook payload: %v", err))
	}
	return b
}

func (s *Simulator) userLocked(username string) (*User, error) {
	u := s.userByUsernameLocked(username)
	if u == nil {
		return nil, fmt.Errorf("user %q: %w", username, ErrNotFound)
	}
	return u, nil
}

// PushCommits pushes commits to a branch as username, like `git push` (a
// new branch starts from the default branch): it
// fires a Push Hook on the project and a Merge Request Hook (action
// "update", with oldrev) on every open merge request from that branch,
// whose refs/merge-requests/N/head moves along. It returns the new head.
func (s *Simulator) PushCommits(ctx context.Context, projectID int64, branch, username string, commits ...CommitSpec) (string, error) {
	if len(commits) == 0 {
		return "", fmt.Errorf("push without commits: %w", ErrInvalid)
	}
	r, who, err := s.repoAndIdentity(projectID, username)
	if err != nil {
		return "", err
	}
	before := r.refSHA(ctx, "refs/heads/"+branch)
	after := before
	defaultBranch := s.mustProject(projectID).DefaultBranch
	for _, c := range commits {
		if after, _, err = r.commitFiles(ctx, branch, defaultBranch, c.Message, c.Changes, who); err != nil {
			return "", err
		}
	}
	if err := s.afterPush(ctx, projectID, username, "refs/heads/"+branch, before, after); err != nil {
		return "", err
	}
	return after, nil
}

// afterPush fires what GitLab fires once a branch moved from before to after.
func (s *Simulator) afterPush(ctx context.Context, projectID int64, username, ref, before, after string) error {
	s.mu.Lock()
	r := s.repos[projectID]
	s.mu.Unlock()
	branch := ref[len("refs/heads/"):]
	shas, err := r.newCommits(ctx, before, after, branch)
	if err != nil {
		return err
	}
	total := len(shas)
	if len(shas) > 20 {
		shas = shas[len(shas)-20:]
	}
	infos := make([]commitInfo, 0, len(shas))
	for _, sha := range shas {
		info, err := r.commit(ctx, sha)
		if err != nil {
			return err
		}
		infos = append(infos, info)
	}
	s.mu.Lock()
	u, err := s.userLocked(username)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	p := s.projects[projectID]
	payload := pushPayload{
		ObjectKind: "push", EventName: "push", Before: orZero(before), After: after, Ref: ref,
		RefProtected: branch == p.DefaultBranch, CheckoutSHA: &after,
		UserID: u.ID, UserName: u.Name, UserUsername: u.Username, UserAvatar: s.avatarURL(u),
		ProjectID: p.ID, Project: s.hookProjectLocked(p), Commits: []hookCommit{}, TotalCommitsCount: total,
		Repository: s.hookRepositoryLocked(p, true),
	}
	for _, info := range infos {
		payload.Commits = append(payload.Commits, s.hookCommitLocked(p, info, true))
	}
	s.fireLocked(projectID, eventPush, marshalPayload(payload))
	var affected []*MergeRequest
	for _, mr := range s.sortedMRsLocked() {
		if mr.SourceProjectID == projectID && mr.SourceBranch == branch && mr.State == "opened" {
			affected = append(affected, mr)
		}
	}
	s.mu.Unlock()

	for _, mr := range affected {
		if err := s.syncMRHead(ctx, mr.ID, after, u); err != nil {
			return err
		}
	}
	return nil
}

func orZero(sha string) string {
	if sha == "" {
		return zeroSHA
	}
	return sha
}

func (s *Simulator) sortedMRsLocked() []*MergeRequest {
	out := make([]*MergeRequest, 0, len(s.mrs))
	for _, mr := range s.mrs {
		out = append(out, mr)
	}
	slices.SortFunc(out, func(a, b *MergeRequest) int { return int(a.ID - b.ID) })
	return out
}

// syncMRHead points refs/merge-requests/N/head at head in the target
// project and fires the "update" hook with oldrev.
func (s *Simulator) syncMRHead(ctx context.Context, mrID int64, head string, by *User) error {
	s.mu.Lock()
	mr := s.mrs[mrID]
	target, source := s.repos[mr.ProjectID], s.repos[mr.SourceProjectID]
	iid, sourceBranch, oldHead := mr.IID, mr.SourceBranch, mr.HeadSHA
	s.mu.Unlock()
	if err := s.writeMRRef(ctx, target, source, iid, sourceBranch, head); err != nil {
		return err
	}
	last, err := target.commit(ctx, head)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mr.HeadSHA = head
	mr.UpdatedAt = s.now()
	s.fireMRLocked(mr, by, "update", oldHead, last, map[string]any{
		"updated_at": change[string]{hookTime(mr.CreatedAt), hookTime(mr.UpdatedAt)},
	})
	return nil
}

func (s *Simulator) writeMRRef(ctx context.Context, target, source repo, iid int64, sourceBranch, head string) error {
	if source.dir != target.dir {
		if err := target.fetchCommit(ctx, source, "refs/heads/"+sourceBranch); err != nil {
			return fmt.Errorf("fetch fork commits: %w", err)
		}
	}
	return target.forceRef(ctx, "refs/merge-requests/"+strconv.FormatInt(iid, 10)+"/head", head)
}

func (s *Simulator) fireMRLocked(mr *MergeRequest, by *User, action, oldrev string, last commitInfo, changes map[string]any) {
	target := s.projects[mr.ProjectID]
	attrs := s.mrAttrsLocked(mr, last)
	attrs.Action, attrs.OldRev = action, oldrev
	system := false
	attrs.System = &system
	if changes == nil {
		changes = map[string]any{}
	}
	payload := mergeRequestPayload{
		ObjectKind: "merge_request", EventType: "merge_request", User: s.hookUserLocked(by),
		Project: s.hookProjectLocked(target), ObjectAttributes: attrs, Labels: attrs.Labels,
		Changes: changes, Repository: s.hookRepositoryLocked(target, false),
		Assignees: []hookUser{}, Reviewers: []hookUser{},
	}
	s.fireLocked(mr.ProjectID, eventMergeRequest, marshalPayload(payload))
}

// OpenMergeRequest opens a merge request (fires "open") and creates
// refs/merge-requests/IID/head in the target project.
func (s *Simulator) OpenMergeRequest(ctx context.Context, spec MergeRequestSpec) (MergeRequest, error) {
	if spec.SourceProjectID == 0 {
		spec.SourceProjectID = spec.ProjectID
	}
	s.mu.Lock()
	target, okT := s.repos[spec.ProjectID]
	source, okS := s.repos[spec.SourceProjectID]
	author := s.userByUsernameLocked(spec.Author)
	if targetProject, ok := s.projects[spec.ProjectID]; ok && spec.TargetBranch == "" {
		spec.TargetBranch = targetProject.DefaultBranch
	}
	s.mu.Unlock()
	if !okT || !okS {
		return MergeRequest{}, fmt.Errorf("merge request projects: %w", ErrNotFound)
	}
	if author == nil {
		return MergeRequest{}, fmt.Errorf("author %q: %w", spec.Author, ErrNotFound)
	}
	head := source.refSHA(ctx, "refs/heads/"+spec.SourceBranch)
	if head == "" {
		return MergeRequest{}, fmt.Errorf("source branch %q: %w", spec.SourceBranch, ErrNotFound)
	}
	if target.refSHA(ctx, "refs/heads/"+spec.TargetBranch) == "" {
		return MergeRequest{}, fmt.Errorf("target branch %q: %w", spec.TargetBranch, ErrNotFound)
	}
	last, err := source.commit(ctx, head)
	if err != nil {
		return MergeRequest{}, err
	}

	s.mu.Lock()
	now := s.now()
	mr := &MergeRequest{
		ID: s.nextIDLocked("mr"), IID: s.nextIDLocked("mr-iid-" + strconv.FormatInt(spec.ProjectID, 10)),
		ProjectID: spec.ProjectID, SourceProjectID: spec.SourceProjectID,
		SourceBranch: spec.SourceBranch, TargetBranch: spec.TargetBranch, Title: spec.Title,
		Description: spec.Description, State: "opened", AuthorID: author.ID,
		Labels: slices.Clone(spec.Labels), Draft: spec.Draft, HeadSHA: head, CreatedAt: now, UpdatedAt: now,
	}
	if mr.Title == "" {
		mr.Title = last.Title()
	}
	s.mrs[mr.ID] = mr
	s.mu.Unlock()

	if err := s.writeMRRef(ctx, target, source, mr.IID, mr.SourceBranch, head); err != nil {
		return MergeRequest{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fireMRLocked(mr, author, "open", "", last, map[string]any{
		"state_id":   change[*int]{nil, intPtr(1)},
		"updated_at": change[*string]{nil, strPtr(hookTime(now))},
	})
	return copyMR(mr), nil
}

func intPtr(i int) *int       { return &i }
func strPtr(v string) *string { return &v }
func copyMR(mr *MergeRequest) MergeRequest {
	c := *mr
	c.Labels = slices.Clone(mr.Labels)
	return c
}

// MergeRequestUpdate changes merge request metadata; nil fields stay.
type MergeRequestUpdate struct {
	Title       *string
	Description *string
	Labels      *[]string
	Draft       *bool
}

// UpdateMergeRequest changes metadata and fires "update" without oldrev.
func (s *Simulator) UpdateMergeRequest(ctx context.Context, projectID, iid int64, username string, upd MergeRequestUpdate) (MergeRequest, error) {
	return s.changeMR(ctx, projectID, iid, username, func(mr *MergeRequest, changes map[string]any) (string, error) {
		if upd.Title != nil && *upd.Title != mr.Title {
			changes["title"] = change[string]{mr.Title, *upd.Title}
			mr.Title = *upd.Title
		}
		if upd.Description != nil && *upd.Description != mr.Description {
			changes["description"] = change[string]{mr.Description, *upd.Description}
			mr.Description = *upd.Description
		}
		if upd.Draft != nil && *upd.Draft != mr.Draft {
			changes["draft"] = change[bool]{mr.Draft, *upd.Draft}
			mr.Draft = *upd.Draft
		}
		if upd.Labels != nil {
			changes["labels"] = change[[]hookLabel]{s.hookLabelsLocked(mr.ProjectID, mr.Labels), s.hookLabelsLocked(mr.ProjectID, *upd.Labels)}
			mr.Labels = slices.Clone(*upd.Labels)
		}
		return "update", nil
	})
}

// CloseMergeRequest closes an open merge request (fires "close").
func (s *Simulator) CloseMergeRequest(ctx context.Context, projectID, iid int64, username string) (MergeRequest, error) {
	return s.changeMR(ctx, projectID, iid, username, func(mr *MergeRequest, changes map[string]any) (string, error) {
		if mr.State != "opened" {
			return "", fmt.Errorf("merge request is %s: %w", mr.State, ErrInvalid)
		}
		changes["state_id"] = change[int]{1, 2}
		mr.State = "closed"
		return "close", nil
	})
}

// ReopenMergeRequest reopens a closed merge request (fires "reopen").
func (s *Simulator) ReopenMergeRequest(ctx context.Context, projectID, iid int64, username string) (MergeRequest, error) {
	return s.changeMR(ctx, projectID, iid, username, func(mr *MergeRequest, changes map[string]any) (string, error) {
		if mr.State != "closed" {
			return "", fmt.Errorf("merge request is %s: %w", mr.State, ErrInvalid)
		}
		changes["state_id"] = change[int]{2, 1}
		mr.State = "opened"
		return "reopen", nil
	})
}

func (s *Simulator) changeMR(ctx context.Context, projectID, iid int64, username string, apply func(*MergeRequest, map[string]any) (string, error)) (MergeRequest, error) {
	s.mu.Lock()
	mr := s.mrByIIDLocked(projectID, iid)
	u := s.userByUsernameLocked(username)
	var source repo
	var head string
	if mr != nil {
		source, head = s.repos[mr.SourceProjectID], mr.HeadSHA
	}
	s.mu.Unlock()
	if mr == nil {
		return MergeRequest{}, fmt.Errorf("merge request !%d: %w", iid, ErrNotFound)
	}
	if u == nil {
		return MergeRequest{}, fmt.Errorf("user %q: %w", username, ErrNotFound)
	}
	last, err := source.commit(ctx, head)
	if err != nil {
		return MergeRequest{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before := hookTime(mr.UpdatedAt)
	changes := map[string]any{}
	action, err := apply(mr, changes)
	if err != nil {
		return MergeRequest{}, err
	}
	mr.UpdatedAt = s.now()
	changes["updated_at"] = change[string]{before, hookTime(mr.UpdatedAt)}
	s.fireMRLocked(mr, u, action, "", last, changes)
	return copyMR(mr), nil
}

// MergeMergeRequest merges with a merge commit on the target branch: it fires
// a Push Hook for the target branch and the "merge" hook.
func (s *Simulator) MergeMergeRequest(ctx context.Context, projectID, iid int64, username string) (MergeRequest, error) {
	s.mu.Lock()
	mr := s.mrByIIDLocked(projectID, iid)
	var target repo
	var mrCopy MergeRequest
	if mr != nil {
		target, mrCopy = s.repos[mr.ProjectID], copyMR(mr)
	}
	s.mu.Unlock()
	if mr == nil {
		return MergeRequest{}, fmt.Errorf("merge request !%d: %w", iid, ErrNotFound)
	}
	if mrCopy.State != "opened" {
		return MergeRequest{}, fmt.Errorf("merge request is %s: %w", mrCopy.State, ErrInvalid)
	}
	_, who, err := s.repoAndIdentity(projectID, username)
	if err != nil {
		return MergeRequest{}, err
	}
	message := fmt.Sprintf("Merge branch '%s' into '%s'\n\n%s\n\nSee merge request %s!%d",
		mrCopy.SourceBranch, mrCopy.TargetBranch, mrCopy.Title, s.mustProject(projectID).PathWithNamespace, iid)
	mergeSHA, oldSHA, err := target.mergeCommit(ctx, mrCopy.TargetBranch, mrCopy.HeadSHA, message, who)
	if err != nil {
		return MergeRequest{}, err
	}
	if err := s.afterPush(ctx, projectID, username, "refs/heads/"+mrCopy.TargetBranch, oldSHA, mergeSHA); err != nil {
		return MergeRequest{}, err
	}
	return s.changeMR(ctx, projectID, iid, username, func(mr *MergeRequest, changes map[string]any) (string, error) {
		changes["state_id"] = change[int]{1, 3}
		mr.State, mr.MergeCommitSHA = "merged", mergeSHA
		return "merge", nil
	})
}

func (s *Simulator) mustProject(id int64) Project {
	p, err := s.Project(id)
	if err != nil {
		return Project{}
	}
	return p
}

func (s *Simulator) mrByIIDLocked(projectID, iid int64) *MergeRequest {
	for _, mr := range s.mrs {
		if mr.ProjectID == projectID && mr.IID == iid {
			return mr
		}
	}
	return nil
}

// MergeRequest returns a merge request by target project and IID.
func (s *Simulator) MergeRequest(projectID, iid int64) (MergeRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mr := s.mrByIIDLocked(projectID, iid)
	if mr == nil {
		return MergeRequest{}, fmt.Errorf("merge request !%d: %w", iid, ErrNotFound)
	}
	return copyMR(mr), nil
}

// CreateTag creates a tag (annotated when message is set) at ref and fires a
// Tag Push Hook. It returns the tagged commit.
func (s *Simulator) CreateTag(ctx context.Context, projectID int64, username, tag, ref, message string) (string, error) {
	r, who, err := s.repoAndIdentity(projectID, username)
	if err != nil {
		return "", err
	}
	if username == "" {
		return "", fmt.Errorf("tag needs a user: %w", ErrInvalid)
	}
	commit, err := r.resolveCommit(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("ref %q: %w", ref, ErrNotFound)
	}
	if r.refSHA(ctx, "refs/tags/"+tag) != "" {
		return "", fmt.Errorf("tag %q: %w", tag, ErrConflict)
	}
	target := commit
	if message != "" {
		date := who.When.Format(time.RFC3339)
		env := []string{"GIT_COMMITTER_NAME=" + who.Name, "GIT_COMMITTER_EMAIL=" + who.Email, "GIT_COMMITTER_DATE=" + date}
		obj := fmt.Sprintf("object %s\ntype commit\ntag %s\ntagger %s <%s> %d +0000\n\n%s\n", commit, tag, who.Name, who.Email, who.When.Unix(), message)
		out, err := r.run(ctx, env, []byte(obj), "mktag")
		if err != nil {
			return "", err
		}
		target = string(out[:len(out)-1])
	}
	if err := r.updateRef(ctx, "refs/tags/"+tag, target, ""); err != nil {
		return "", err
	}
	info, err := r.commit(ctx, commit)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(username)
	if err != nil {
		return "", err
	}
	p := s.projects[projectID]
	payload := pushPayload{
		ObjectKind: "tag_push", EventName: "tag_push", Before: zeroSHA, After: target, Ref: "refs/tags/" + tag,
		CheckoutSHA: &commit, UserID: u.ID, UserName: u.Name, UserUsername: u.Username, UserAvatar: s.avatarURL(u),
		ProjectID: p.ID, Project: s.hookProjectLocked(p), Commits: []hookCommit{s.hookCommitLocked(p, info, true)},
		TotalCommitsCount: 1, Repository: s.hookRepositoryLocked(p, true),
	}
	if message != "" {
		payload.Message = &message
	}
	s.fireLocked(projectID, eventTagPush, marshalPayload(payload))
	return commit, nil
}

// Release is a project release.
type Release struct {
	ID          int64
	ProjectID   int64
	Tag         string
	Name        string
	Description string
	CommitSHA   string
	AuthorID    int64
	CreatedAt   time.Time
}

// ReleaseSpec describes a release; Ref is needed only when Tag is new.
type ReleaseSpec struct {
	Tag         string
	Ref         string
	Name        string
	Description string
}

// CreateRelease creates a release, creating its tag from Ref first when the
// tag does not exist (which fires a Tag Push Hook, as GitLab does), then
// fires the Release Hook (action "create").
func (s *Simulator) CreateRelease(ctx context.Context, projectID int64, username string, spec ReleaseSpec) (Release, error) {
	r, _, err := s.repoAndIdentity(projectID, username)
	if err != nil {
		return Release{}, err
	}
	commit, err := r.resolveCommit(ctx, "refs/tags/"+spec.Tag)
	if err != nil {
		if spec.Ref == "" {
			return Release{}, fmt.Errorf("tag %q does not exist and no ref given: %w", spec.Tag, ErrInvalid)
		}
		if commit, err = s.CreateTag(ctx, projectID, username, spec.Tag, spec.Ref, ""); err != nil {
			return Release{}, err
		}
	}
	info, err := r.commit(ctx, commit)
	if err != nil {
		return Release{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(username)
	if err != nil {
		return Release{}, err
	}
	for _, rel := range s.releases {
		if rel.ProjectID == projectID && rel.Tag == spec.Tag {
			return Release{}, fmt.Errorf("release %q: %w", spec.Tag, ErrConflict)
		}
	}
	rel := &Release{
		ID: s.nextIDLocked("release"), ProjectID: projectID, Tag: spec.Tag, Name: spec.Name,
		Description: spec.Description, CommitSHA: commit, AuthorID: u.ID, CreatedAt: s.now(),
	}
	if rel.Name == "" {
		rel.Name = spec.Tag
	}
	s.releases = append(s.releases, rel)
	p := s.projects[projectID]
	web := s.projectCopyLocked(p).WebURL
	payload := releasePayload{
		ID: rel.ID, CreatedAt: hookTime(rel.CreatedAt), Description: rel.Description, Name: rel.Name,
		ReleasedAt: hookTime(rel.CreatedAt), Tag: rel.Tag, ObjectKind: "release", Project: s.hookProjectLocked(p),
		URL: web + "/-/releases/" + rel.Tag, Action: "create", Commit: s.hookCommitLocked(p, info, false),
	}
	payload.Assets.Links = []any{}
	for _, format := range []string{"zip", "tar.gz", "tar.bz2", "tar"} {
		payload.Assets.Sources = append(payload.Assets.Sources, releaseSource{
			Format: format, URL: web + "/-/archive/" + rel.Tag + "/" + p.Path + "-" + rel.Tag + "." + format,
		})
	}
	payload.Assets.Count = len(payload.Assets.Sources)
	s.fireLocked(projectID, eventRelease, marshalPayload(payload))
	return *rel, nil
}

// AddNote comments on a merge request as username and fires a Note Hook.
// The Go API is not rate limited; the REST endpoint is.
func (s *Simulator) AddNote(ctx context.Context, projectID, iid int64, username, body string) (Note, error) {
	s.mu.Lock()
	mr := s.mrByIIDLocked(projectID, iid)
	var source repo
	var head string
	if mr != nil {
		source, head = s.repos[mr.SourceProjectID], mr.HeadSHA
	}
	s.mu.Unlock()
	if mr == nil {
		return Note{}, fmt.Errorf("merge request !%d: %w", iid, ErrNotFound)
	}
	last, err := source.commit(ctx, head)
	if err != nil {
		return Note{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(username)
	if err != nil {
		return Note{}, err
	}
	return s.createMRNoteLocked(mr, u, body, last), nil
}

func (s *Simulator) createMRNoteLocked(mr *MergeRequest, u *User, body string, last commitInfo) Note {
	now := s.now()
	n := &Note{
		ID: s.nextIDLocked("note"), ProjectID: mr.ProjectID, NoteableType: "MergeRequest",
		NoteableID: mr.ID, NoteableIID: mr.IID, Body: body, AuthorID: u.ID, CreatedAt: now, UpdatedAt: now,
	}
	s.notes[n.ID] = n
	s.fireNoteLocked(n, u, "create", mr, &last)
	return *n
}

func (s *Simulator) fireNoteLocked(n *Note, u *User, action string, mr *MergeRequest, last *commitInfo) {
	p := s.projects[n.ProjectID]
	web := s.projectCopyLocked(p).WebURL
	attrs := noteAttrs{
		AuthorID: n.AuthorID, CreatedAt: hookTime(n.CreatedAt), DiscussionID: discussionID(n.ID), ID: n.ID,
		Note: n.Body, NoteableType: n.NoteableType, ProjectID: n.ProjectID, System: n.System,
		UpdatedAt: hookTime(n.UpdatedAt), Description: n.Body, Action: action,
	}
	payload := notePayload{
		ObjectKind: "note", EventType: "note", User: s.hookUserLocked(u), ProjectID: p.ID,
		Project: s.hookProjectLocked(p), Repository: s.hookRepositoryLocked(p, false),
	}
	if mr != nil {
		id := mr.ID
		attrs.NoteableID = &id
		attrs.URL = s.mrWebURLLocked(mr) + "#note_" + strconv.FormatInt(n.ID, 10)
		mrPayload := s.mrAttrsLocked(mr, *last)
		payload.MergeRequest = &mrPayload
	} else {
		sha := n.CommitSHA
		attrs.CommitID = &sha
		attrs.URL = web + "/-/commit/" + sha + "#note_" + strconv.FormatInt(n.ID, 10)
		commit := s.hookCommitLocked(p, *last, false)
		payload.Commit = &commit
	}
	if action == "update" {
		attrs.UpdatedByID = &u.ID
	}
	payload.ObjectAttributes = attrs
	s.fireLocked(n.ProjectID, eventNote, marshalPayload(payload))
}

// AddCommitNote comments on a commit as username and fires a Note Hook.
func (s *Simulator) AddCommitNote(ctx context.Context, projectID int64, sha, username, body string) (Note, error) {
	s.mu.Lock()
	r, ok := s.repos[projectID]
	s.mu.Unlock()
	if !ok {
		return Note{}, fmt.Errorf("project %d: %w", projectID, ErrNotFound)
	}
	info, err := r.commit(ctx, sha)
	if err != nil {
		return Note{}, fmt.Errorf("commit %s: %w", sha, ErrNotFound)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(username)
	if err != nil {
		return Note{}, err
	}
	now := s.now()
	n := &Note{
		ID: s.nextIDLocked("note"), ProjectID: projectID, NoteableType: "Commit", CommitSHA: info.ID,
		Body: body, AuthorID: u.ID, CreatedAt: now, UpdatedAt: now,
	}
	s.notes[n.ID] = n
	s.fireNoteLocked(n, u, "create", nil, &info)
	return *n, nil
}

// Notes lists the notes of a merge request, oldest first.
func (s *Simulator) Notes(projectID, iid int64) []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Note
	for id := int64(1); id <= s.seq["note"]; id++ {
		if n, ok := s.notes[id]; ok && n.ProjectID == projectID && n.NoteableType == "MergeRequest" && n.NoteableIID == iid {
			out = append(out, *n)
		}
	}
	return out
}
