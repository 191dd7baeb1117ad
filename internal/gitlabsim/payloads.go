package gitlabsim

import (
	"crypto/sha1"
	"encoding/hex"
	"net/url"
	"strconv"
	"time"
)

// Webhook payload shapes, field for field after GitLab's own payloads (the
// client module's testdata/webhooks). Times inside object_attributes go
// through Sidekiq in GitLab and come out as "2006-01-02 15:04:05 UTC"; commit
// timestamps are ISO 8601.

const hookTimeLayout = "2006-01-02 15:04:05 UTC"

func hookTime(t time.Time) string { return t.UTC().Format(hookTimeLayout) }

func isoTime(t time.Time) string { return t.Format("2006-01-02T15:04:05-07:00") }

type hookUser struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	Username  string `json:"username"`
	AvatarURL string `json:"avatar_url"`
	Email     string `json:"email"`
}

type hookProject struct {
	ID                int64   `json:"id"`
	Name              string  `json:"name"`
	Description       string  `json:"description"`
	WebURL            string  `json:"web_url"`
	AvatarURL         *string `json:"avatar_url"`
	GitSSHURL         string  `json:"git_ssh_url"`
	GitHTTPURL        string  `json:"git_http_url"`
	Namespace         string  `json:"namespace"`
	VisibilityLevel   int     `json:"visibility_level"`
	PathWithNamespace string  `json:"path_with_namespace"`
	DefaultBranch     string  `json:"default_branch"`
	CIConfigPath      string  `json:"ci_config_path"`
	Homepage          string  `json:"homepage"`
	URL               string  `json:"url"`
	SSHURL            string  `json:"ssh_url"`
	HTTPURL           string  `json:"http_url"`
}

type hookRepository struct {
	Name            string `json:"name"`
	URL             string `json:"url"`
	Description     string `json:"description"`
	Homepage        string `json:"homepage"`
	GitHTTPURL      string `json:"git_http_url,omitempty"`
	GitSSHURL       string `json:"git_ssh_url,omitempty"`
	VisibilityLevel *int   `json:"visibility_level,omitempty"`
}

type hookAuthor struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

type hookCommit struct {
	ID        string     `json:"id"`
	Message   string     `json:"message"`
	Title     string     `json:"title"`
	Timestamp string     `json:"timestamp"`
	URL       string     `json:"url"`
	Author    hookAuthor `json:"author"`
	Added     []string   `json:"added,omitempty"`
	Modified  []string   `json:"modified,omitempty"`
	Removed   []string   `json:"removed,omitempty"`
}

type pushPayload struct {
	ObjectKind        string         `json:"object_kind"`
	EventName         string         `json:"event_name"`
	Before            string         `json:"before"`
	After             string         `json:"after"`
	Ref               string         `json:"ref"`
	RefProtected      bool           `json:"ref_protected"`
	CheckoutSHA       *string        `json:"checkout_sha"`
	Message           *string        `json:"message"`
	UserID            int64          `json:"user_id"`
	UserName          string         `json:"user_name"`
	UserUsername      string         `json:"user_username"`
	UserEmail         string         `json:"user_email"`
	UserAvatar        string         `json:"user_avatar"`
	ProjectID         int64          `json:"project_id"`
	Project           hookProject    `json:"project"`
	Commits           []hookCommit   `json:"commits"`
	TotalCommitsCount int            `json:"total_commits_count"`
	PushOptions       struct{}       `json:"push_options"`
	Repository        hookRepository `json:"repository"`
}

type hookLabel struct {
	ID          int64   `json:"id"`
	Title       string  `json:"title"`
	Color       string  `json:"color"`
	ProjectID   int64   `json:"project_id"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
	Template    bool    `json:"template"`
	Description *string `json:"description"`
	Type        string  `json:"type"`
	GroupID     *int64  `json:"group_id"`
}

// mrAttrs is MergeRequest#hook_attrs: the object_attributes of a Merge
// Request Hook (plus action/oldrev) and the merge_request of a Note Hook.
type mrAttrs struct {
	AssigneeID                  *int64            `json:"assignee_id"`
	AuthorID                    int64             `json:"author_id"`
	CreatedAt                   string            `json:"created_at"`
	Description                 string            `json:"description"`
	Draft                       bool              `json:"draft"`
	HeadPipelineID              *int64            `json:"head_pipeline_id"`
	ID                          int64             `json:"id"`
	IID                         int64             `json:"iid"`
	LastEditedAt                *string           `json:"last_edited_at"`
	LastEditedByID              *int64            `json:"last_edited_by_id"`
	MergeCommitSHA              *string           `json:"merge_commit_sha"`
	MergeError                  *string           `json:"merge_error"`
	MergeParams                 map[string]string `json:"merge_params"`
	MergeStatus                 string            `json:"merge_status"`
	MergeUserID                 *int64            `json:"merge_user_id"`
	MergeWhenPipelineSucceeds   bool              `json:"merge_when_pipeline_succeeds"`
	MilestoneID                 *int64            `json:"milestone_id"`
	SourceBranch                string            `json:"source_branch"`
	SourceProjectID             int64             `json:"source_project_id"`
	StateID                     int               `json:"state_id"`
	TargetBranch                string            `json:"target_branch"`
	TargetProjectID             int64             `json:"target_project_id"`
	TimeEstimate                int               `json:"time_estimate"`
	Title                       string            `json:"title"`
	UpdatedAt                   string            `json:"updated_at"`
	UpdatedByID                 *int64            `json:"updated_by_id"`
	URL                         string            `json:"url"`
	Source                      hookProject       `json:"source"`
	Target                      hookProject       `json:"target"`
	LastCommit                  mrLastCommit      `json:"last_commit"`
	WorkInProgress              bool              `json:"work_in_progress"`
	TotalTimeSpent              int               `json:"total_time_spent"`
	TimeChange                  int               `json:"time_change"`
	HumanTotalTimeSpent         *string           `json:"human_total_time_spent"`
	HumanTimeChange             *string           `json:"human_time_change"`
	HumanTimeEstimate           *string           `json:"human_time_estimate"`
	AssigneeIDs                 []int64           `json:"assignee_ids"`
	ReviewerIDs                 []int64           `json:"reviewer_ids"`
	Labels                      []hookLabel       `json:"labels"`
	State                       string            `json:"state"`
	BlockingDiscussionsResolved bool              `json:"blocking_discussions_resolved"`
	FirstContribution           bool              `json:"first_contribution"`
	DetailedMergeStatus         string            `json:"detailed_merge_status"`
	Action                      string            `json:"action,omitempty"`
	OldRev                      string            `json:"oldrev,omitempty"`
	System                      *bool             `json:"system,omitempty"`
}

type mrLastCommit struct {
	ID        string     `json:"id"`
	Message   string     `json:"message"`
	Title     string     `json:"title"`
	Timestamp string     `json:"timestamp"`
	URL       string     `json:"url"`
	Author    hookAuthor `json:"author"`
}

type change[T any] struct {
	Previous T `json:"previous"`
	Current  T `json:"current"`
}

type mergeRequestPayload struct {
	ObjectKind       string         `json:"object_kind"`
	EventType        string         `json:"event_type"`
	User             hookUser       `json:"user"`
	Project          hookProject    `json:"project"`
	ObjectAttributes mrAttrs        `json:"object_attributes"`
	Labels           []hookLabel    `json:"labels"`
	Changes          map[string]any `json:"changes"`
	Repository       hookRepository `json:"repository"`
	Assignees        []hookUser     `json:"assignees"`
	Reviewers        []hookUser     `json:"reviewers"`
}

type noteAttrs struct {
	Attachment       *string `json:"attachment"`
	AuthorID         int64   `json:"author_id"`
	ChangePosition   any     `json:"change_position"`
	CommitID         *string `json:"commit_id"`
	CreatedAt        string  `json:"created_at"`
	DiscussionID     string  `json:"discussion_id"`
	ID               int64   `json:"id"`
	LineCode         *string `json:"line_code"`
	Note             string  `json:"note"`
	NoteableID       *int64  `json:"noteable_id"`
	NoteableType     string  `json:"noteable_type"`
	OriginalPosition any     `json:"original_position"`
	Position         any     `json:"position"`
	ProjectID        int64   `json:"project_id"`
	ResolvedAt       *string `json:"resolved_at"`
	ResolvedByID     *int64  `json:"resolved_by_id"`
	ResolvedByPush   *bool   `json:"resolved_by_push"`
	StDiff           any     `json:"st_diff"`
	System           bool    `json:"system"`
	Type             *string `json:"type"`
	UpdatedAt        string  `json:"updated_at"`
	UpdatedByID      *int64  `json:"updated_by_id"`
	Description      string  `json:"description"`
	Internal         bool    `json:"internal"`
	Action           string  `json:"action"`
	URL              string  `json:"url"`
}

type notePayload struct {
	ObjectKind       string         `json:"object_kind"`
	EventType        string         `json:"event_type"`
	User             hookUser       `json:"user"`
	ProjectID        int64          `json:"project_id"`
	Project          hookProject    `json:"project"`
	ObjectAttributes noteAttrs      `json:"object_attributes"`
	Repository       hookRepository `json:"repository"`
	MergeRequest     *mrAttrs       `json:"merge_request,omitempty"`
	Commit           *hookCommit    `json:"commit,omitempty"`
}

type releaseSource struct {
	Format string `json:"format"`
	URL    string `json:"url"`
}

type releasePayload struct {
	ID          int64       `json:"id"`
	CreatedAt   string      `json:"created_at"`
	Description string      `json:"description"`
	Name        string      `json:"name"`
	ReleasedAt  string      `json:"released_at"`
	Tag         string      `json:"tag"`
	ObjectKind  string      `json:"object_kind"`
	Project     hookProject `json:"project"`
	URL         string      `json:"url"`
	Action      string      `json:"action"`
	Assets      struct {
		Count   int             `json:"count"`
		Links   []any           `json:"links"`
		Sources []releaseSource `json:"sources"`
	} `json:"assets"`
	Commit hookCommit `json:"commit"`
}

func (s *Simulator) hookUserLocked(u *User) hookUser {
	return hookUser{ID: u.ID, Name: u.Name, Username: u.Username, AvatarURL: s.avatarURL(u), Email: "[REDACTED]"}
}

func (s *Simulator) avatarURL(u *User) string {
	sum := sha1.Sum([]byte(u.Email))
	return "https://www.gravatar.com/avatar/" + hex.EncodeToString(sum[:]) + "?s=80&d=identicon"
}

func (s *Simulator) sshURLLocked(p *Project) string {
	host := "gitlab.invalid"
	if u, err := url.Parse(s.baseURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return "git@" + host + ":" + p.PathWithNamespace + ".git"
}

func (s *Simulator) namespaceNameLocked(p *Project) string {
	if p.NamespaceKind == "group" {
		if g, ok := s.groups[p.NamespaceID]; ok {
			return g.Name
		}
	}
	if u, ok := s.users[p.NamespaceID]; ok {
		return u.Name
	}
	return ""
}

func (s *Simulator) hookProjectLocked(p *Project) hookProject {
	c := s.projectCopyLocked(p)
	ssh := s.sshURLLocked(p)
	return hookProject{
		ID: p.ID, Name: p.Name, Description: p.Description, WebURL: c.WebURL,
		GitSSHURL: ssh, GitHTTPURL: c.HTTPURLToRepo, Namespace: s.namespaceNameLocked(p),
		VisibilityLevel: p.Visibility.level(), PathWithNamespace: p.PathWithNamespace,
		DefaultBranch: p.DefaultBranch, Homepage: c.WebURL, URL: ssh, SSHURL: ssh, HTTPURL: c.HTTPURLToRepo,
	}
}

func (s *Simulator) hookRepositoryLocked(p *Project, full bool) hookRepository {
	c := s.projectCopyLocked(p)
	r := hookRepository{Name: p.Name, URL: s.sshURLLocked(p), Description: p.Description, Homepage: c.WebURL}
	if full {
		level := p.Visibility.level()
		r.GitHTTPURL, r.GitSSHURL, r.VisibilityLevel = c.HTTPURLToRepo, r.URL, &level
	}
	return r
}

func (s *Simulator) hookCommitLocked(p *Project, c commitInfo, withFiles bool) hookCommit {
	hc := hookCommit{
		ID: c.ID, Message: c.Message, Title: c.Title(), Timestamp: isoTime(c.AuthoredAt),
		URL:    s.projectCopyLocked(p).WebURL + "/-/commit/" + c.ID,
		Author: hookAuthor{Name: c.AuthorName, Email: c.AuthorEmail},
	}
	if withFiles {
		hc.Added, hc.Modified, hc.Removed = nonNil(c.Added), nonNil(c.Modified), nonNil(c.Removed)
	}
	return hc
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

func (s *Simulator) hookLabelsLocked(projectID int64, titles []string) []hookLabel {
	labels := []hookLabel{}
	for _, title := range titles {
		id := s.labelIDLocked(projectID, title)
		created := hookTime(s.now())
		labels = append(labels, hookLabel{
			ID: id, Title: title, Color: "#6699cc", ProjectID: projectID,
			CreatedAt: created, UpdatedAt: created, Type: "ProjectLabel",
		})
	}
	return labels
}

func (s *Simulator) labelIDLocked(projectID int64, title string) int64 {
	key := strconv.FormatInt(projectID, 10) + "/" + title
	if id, ok := s.labels[key]; ok {
		return id
	}
	id := s.nextIDLocked("label")
	s.labels[key] = id
	return id
}

func mrStateID(state string) int {
	switch state {
	case "closed":
		return 2
	case "merged":
		return 3
	case "locked":
		return 4
	default:
		return 1
	}
}

func (s *Simulator) mrAttrsLocked(mr *MergeRequest, last commitInfo) mrAttrs {
	target := s.projects[mr.ProjectID]
	source := s.projects[mr.SourceProjectID]
	a := mrAttrs{
		AuthorID: mr.AuthorID, CreatedAt: hookTime(mr.CreatedAt), Description: mr.Description,
		Draft: mr.Draft, ID: mr.ID, IID: mr.IID, MergeParams: map[string]string{"force_remove_source_branch": "0"},
		MergeStatus: "can_be_merged", SourceBranch: mr.SourceBranch, SourceProjectID: mr.SourceProjectID,
		StateID: mrStateID(mr.State), TargetBranch: mr.TargetBranch, TargetProjectID: mr.ProjectID,
		Title: mr.Title, UpdatedAt: hookTime(mr.UpdatedAt), URL: s.mrWebURLLocked(mr),
		Source: s.hookProjectLocked(source), Target: s.hookProjectLocked(target),
		LastCommit: mrLastCommit{
			ID: last.ID, Message: last.Message, Title: last.Title(), Timestamp: isoTime(last.AuthoredAt),
			URL:    s.projectCopyLocked(source).WebURL + "/-/commit/" + last.ID,
			Author: hookAuthor{Name: last.AuthorName, Email: last.AuthorEmail},
		},
		WorkInProgress: mr.Draft, AssigneeIDs: []int64{}, ReviewerIDs: []int64{},
		Labels: s.hookLabelsLocked(mr.ProjectID, mr.Labels), State: mr.State,
		BlockingDiscussionsResolved: true, DetailedMergeStatus: "mergeable",
	}
	if mr.MergeCommitSHA != "" {
		sha := mr.MergeCommitSHA
		a.MergeCommitSHA = &sha
	}
	if mr.State == "merged" {
		a.DetailedMergeStatus = "merged"
	}
	if mr.State == "closed" {
		a.DetailedMergeStatus = "not_open"
	}
	return a
}

func (s *Simulator) mrWebURLLocked(mr *MergeRequest) string {
	return s.projectCopyLocked(s.projects[mr.ProjectID]).WebURL + "/-/merge_requests/" + strconv.FormatInt(mr.IID, 10)
}

// discussionID is a stable 40-hex discussion id for a note.
func discussionID(noteID int64) string {
	sum := sha1.Sum([]byte("note-discussion-" + strconv.FormatInt(noteID, 10)))
	return hex.EncodeToString(sum[:])
}
