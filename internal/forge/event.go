// Package forge holds the forge-neutral types that flow from intake to the
// planner and the reporter. Nothing in here knows about GitLab's JSON; the
// forge/gitlab package converts into these types.
package forge

// EventKind is the kind of a normalised event that upbuild acts on.
type EventKind string

// The event kinds upbuild acts on. Every other webhook is recorded as ignored.
const (
	KindMergeRequest EventKind = "merge_request"
	KindPush         EventKind = "push"
	KindTagPush      EventKind = "tag_push"
	KindRelease      EventKind = "release"
	KindComment      EventKind = "comment"
)

// MRAction says what happened to a merge request.
type MRAction string

// Merge request actions that upbuild distinguishes.
const (
	MROpened     MRAction = "opened"
	MRReopened   MRAction = "reopened"
	MRNewCommits MRAction = "new_commits" // an update that brought new code (oldrev present)
	MRClosed     MRAction = "closed"
	MRMerged     MRAction = "merged"
)

// Project identifies a project on a forge instance.
type Project struct {
	ID                int64  `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
	WebURL            string `json:"web_url,omitempty"`
	GitHTTPURL        string `json:"git_http_url,omitempty"`
	DefaultBranch     string `json:"default_branch,omitempty"`
	Visibility        string `json:"visibility,omitempty"` // public, internal, private; empty when the payload does not say
}

// User is the forge account that caused an event.
type User struct {
	ID       int64  `json:"id,omitempty"`
	Username string `json:"username"`
}

// MergeRequest is the merge request an event is about.
type MergeRequest struct {
	IID           int64    `json:"iid"`
	Action        MRAction `json:"action,omitempty"`
	Title         string   `json:"title,omitempty"`
	URL           string   `json:"url,omitempty"`
	SourceProject Project  `json:"source_project"`
	TargetProject Project  `json:"target_project"`
	SourceBranch  string   `json:"source_branch"`
	TargetBranch  string   `json:"target_branch"`
	HeadSHA       string   `json:"head_sha"`
	OldRev        string   `json:"oldrev,omitempty"`
	Draft         bool     `json:"draft,omitempty"`
	Labels        []string `json:"labels,omitempty"`
	AuthorID      int64    `json:"author_id,omitempty"`
}

// Comment is a note created on a merge request or a commit.
type Comment struct {
	ID           int64  `json:"id"`
	Body         string `json:"body"`
	URL          string `json:"url,omitempty"`
	NoteableType string `json:"noteable_type"` // "MergeRequest" or "Commit"
	CommitSHA    string `json:"commit_sha,omitempty"`
}

// Release is a release on the forge.
type Release struct {
	Tag    string `json:"tag"`
	Name   string `json:"name,omitempty"`
	Action string `json:"action"`
	URL    string `json:"url,omitempty"`
}

// Event is a forge-neutral event. Project is the project the hook fired
// for; for a merge request that is the target project.
type Event struct {
	Kind    EventKind     `json:"kind"`
	Project Project       `json:"project"`
	Actor   User          `json:"actor"`
	SHA     string        `json:"sha,omitempty"` // the commit the event is about
	Ref     string        `json:"ref,omitempty"` // branch or tag name, without refs/heads/ or refs/tags/
	MR      *MergeRequest `json:"merge_request,omitempty"`
	Comment *Comment      `json:"comment,omitempty"`
	Release *Release      `json:"release,omitempty"`
}
