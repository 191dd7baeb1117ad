package forge

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Forge is everything the planner and the reporter ask of a forge's API.
// Implementations are safe for concurrent use and make every call with a
// deadline, inside their own request budget.
//
// Errors: every failure matches exactly one of ErrTransient (worth trying
// again later; a *RateLimitedError is also ErrTransient and says when),
// ErrPermanent (trying again will fail the same way; ErrNotFound and
// ErrForbidden are permanent too), or the error of ctx when it ended first.
// Callers branch with errors.Is and errors.As. No error string ever holds the
// forge token or a webhook secret.
type Forge interface {
	// Project looks a project up by its numeric ID (as a decimal string) or
	// its full path ("group/subgroup/name"). ErrNotFound when it does not
	// exist or the bot cannot see it.
	Project(ctx context.Context, idOrPath string) (ProjectInfo, error)

	// FileAt returns the content of the file at path (relative to the
	// repository root) at ref, a branch, tag or commit SHA; an empty ref
	// means the default branch. ErrNotFound when the file or the ref does
	// not exist.
	FileAt(ctx context.Context, projectID int64, path, ref string) ([]byte, error)

	// TopLevelFiles lists the names of the files in the repository root at
	// ref (empty: the default branch), over all pages. Directories and
	// submodules are left out. ErrNotFound when the ref does not exist.
	TopLevelFiles(ctx context.Context, projectID int64, ref string) ([]string, error)

	// SetCommitStatus sets the status named u.Name on commit sha of the
	// project (for a merge request: the SOURCE project) and returns the ID
	// of the pipeline that holds it. Passing that ID back in u.PipelineID
	// keeps all of a run's statuses in one pipeline. Setting the state a
	// status already has is not an error: it returns u.PipelineID, or the
	// pipeline of the existing status when it can be found (0 otherwise).
	// Name, Ref, TargetURL and Description are shortened to the forge's
	// limits. ErrNotFound when the project lacks the commit, ErrForbidden
	// when the bot may not set statuses there. Safe to call again after a
	// failure.
	SetCommitStatus(ctx context.Context, projectID int64, sha string, u StatusUpdate) (pipelineID int64, err error)

	// CreateMRNote comments on merge request iid and returns the note's ID.
	// It is never repeated automatically: a failure may still have created
	// the note, so a caller that retries should look in MRNotes first.
	CreateMRNote(ctx context.Context, projectID, iid int64, body string) (noteID int64, err error)

	// UpdateMRNote replaces the body of a note the bot wrote. Safe to
	// repeat.
	UpdateMRNote(ctx context.Context, projectID, iid, noteID int64, body string) error

	// MRNotes lists every note of merge request iid, oldest first.
	MRNotes(ctx context.Context, projectID, iid int64) ([]Note, error)

	// MergeRequest is merge request iid of the project as the forge has it
	// now. A webhook payload says the same, but anyone holding a project's
	// webhook token can write a payload. ErrNotFound when there is no such
	// merge request.
	MergeRequest(ctx context.Context, projectID, iid int64) (MRState, error)

	// CreateCommitComment comments on a commit. Never repeated
	// automatically, like CreateMRNote.
	CreateCommitComment(ctx context.Context, projectID int64, sha, body string) error

	// AwardEmojiOnMRNote reacts to a note with the emoji called name (e.g.
	// "eyes"). Awarding an emoji the bot already awarded succeeds.
	AwardEmojiOnMRNote(ctx context.Context, projectID, iid, noteID int64, name string) error

	// CreateIssue opens an issue and returns its project-scoped number
	// (IID). A confidential issue is visible to project members only. Never
	// repeated automatically.
	CreateIssue(ctx context.Context, projectID int64, title, body string, confidential bool) (iid int64, err error)

	// AccessLevel is the user's effective role on the project, inherited
	// group memberships included; NoAccess when the user is not a member.
	AccessLevel(ctx context.Context, projectID, userID int64) (AccessLevel, error)

	// CurrentUser is the account the forge token belongs to (the bot).
	CurrentUser(ctx context.Context) (User, error)

	// CreateProjectHook adds a webhook to the project and returns its ID.
	// ErrForbidden when the bot is not a Maintainer. Never repeated
	// automatically (a repeat would add a second hook).
	CreateProjectHook(ctx context.Context, projectID int64, h HookOptions) (hookID int64, err error)
}

// MRState is what the forge says of a merge request: where its commits
// come from, its head commit and who opened it.
type MRState struct {
	SourceProjectID int64
	TargetProjectID int64
	HeadSHA         string
	AuthorID        int64
}

// ProjectInfo is a project as the forge's API describes it.
type ProjectInfo struct {
	Project
	// ForkedFromID is the project this one was forked from; 0 when it is
	// not a fork or the bot cannot see the parent.
	ForkedFromID int64 `json:"forked_from_id,omitempty"`
}

// StatusState is the state of a commit status.
type StatusState string

// The commit status states upbuild reports.
const (
	StatusPending  StatusState = "pending"
	StatusRunning  StatusState = "running"
	StatusSuccess  StatusState = "success"
	StatusFailed   StatusState = "failed"
	StatusCanceled StatusState = "canceled"
	StatusSkipped  StatusState = "skipped"
)

// Valid says whether s is one of the states above.
func (s StatusState) Valid() bool {
	switch s {
	case StatusPending, StatusRunning, StatusSuccess, StatusFailed, StatusCanceled, StatusSkipped:
		return true
	}
	return false
}

// StatusUpdate is one commit status to set.
type StatusUpdate struct {
	State StatusState
	// Name identifies the status on the commit (e.g. "upbuild/rpm-build:fedora-rawhide").
	Name string
	// Ref is the branch the commit is on; pass the merge request's source
	// branch, or the forge picks one.
	Ref         string
	TargetURL   string
	Description string
	// PipelineID, when not 0, puts the status into that pipeline.
	PipelineID int64
}

// Note is a comment on a merge request.
type Note struct {
	ID             int64  `json:"id"`
	Body           string `json:"body"`
	AuthorID       int64  `json:"author_id"`
	AuthorUsername string `json:"author_username"`
	// System notes are written by the forge itself ("added 1 commit").
	System bool `json:"system,omitempty"`
}

// HookOptions describe a project webhook. Push events are always on.
type HookOptions struct {
	URL string
	// Token is sent back in every delivery (X-Gitlab-Token on GitLab).
	Token string
	// SigningToken, when set, makes the forge sign deliveries.
	SigningToken       string
	TagPushEvents      bool
	MergeRequestEvents bool
	NoteEvents         bool
	ReleaseEvents      bool
	// SkipTLSVerify turns off certificate checks on deliveries (a test
	// receiver with a self-signed certificate).
	SkipTLSVerify bool
}

// AccessLevel is a user's role on a project, as GitLab numbers them.
type AccessLevel int

// Roles, weakest first.
const (
	NoAccess   AccessLevel = 0
	Guest      AccessLevel = 10
	Reporter   AccessLevel = 20
	Developer  AccessLevel = 30
	Maintainer AccessLevel = 40
	Owner      AccessLevel = 50
)

// Errors a Forge's calls match with errors.Is.
var (
	// ErrNotFound: the thing does not exist, or the bot cannot see it.
	ErrNotFound = errors.New("not found on the forge")
	// ErrForbidden: the bot may see the thing but not do this to it.
	ErrForbidden = errors.New("forbidden by the forge")
	// ErrTransient: the forge or the network failed; the same call may
	// succeed later.
	ErrTransient = errors.New("transient forge failure")
	// ErrPermanent: the forge refused the call; repeating it will not help.
	ErrPermanent = errors.New("forge refused the request")
)

// RateLimitedError says the forge throttled the bot. RetryAfter is how long
// the forge asked to wait; 0 when it did not say. It matches ErrTransient.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	if e.RetryAfter <= 0 {
		return "rate limited by the forge"
	}
	return fmt.Sprintf("rate limited by the forge, retry after %s", e.RetryAfter)
}

// Is makes a rate limit an ErrTransient.
func (e *RateLimitedError) Is(target error) bool { return target == ErrTransient }
