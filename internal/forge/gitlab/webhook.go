// Package gitlab connects upbuild to GitLab: it turns GitLab webhook
// deliveries into forge-neutral events (webhook*.go).
package gitlab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/forge"
)

// ErrMalformed marks a delivery whose body is not a JSON object or does not
// match the kind its X-Gitlab-Event header declares (object_kind disagrees,
// a field has the wrong type, a commit id is not a commit id). GitLab never
// sends such a body, so the intake answers 400. Messages never quote the body.
var ErrMalformed = errors.New("malformed webhook payload")

// EventKindUnknown is Delivery.EventKind for an X-Gitlab-Event value this
// package does not know (a newer GitLab, or a sender that is not GitLab).
const EventKindUnknown = "unknown"

// Delivery is what one webhook delivery says, ready for the intake to check
// and persist (the JSON tags give it a stable stored form).
type Delivery struct {
	// EventKind is a stable lower_snake name of the hook, derived from the
	// X-Gitlab-Event header: push, tag_push, merge_request, note,
	// confidential_note, release, pipeline, build (Job Hook and the old
	// Build Hook), issue, confidential_issue, wiki_page, deployment,
	// feature_flag, emoji, milestone, member, project, subgroup,
	// resource_access_token, vulnerability, service, system, or
	// EventKindUnknown.
	EventKind string `json:"event_kind"`
	// Project is the project the payload says it is about: for a merge
	// request that is the target project. Zero when the payload names none.
	// When Event is set, Project equals Event.Project.
	Project forge.Project `json:"project"`
	// Event is the normalised event, nil when the delivery is ignored.
	Event *forge.Event `json:"event,omitempty"`
	// IgnoredReason says why nothing is done; non-empty exactly when Event is nil.
	IgnoredReason string `json:"ignored_reason,omitempty"`
}

// Normalize converts one GitLab webhook delivery into a forge-neutral result.
// eventHeader is the X-Gitlab-Event header value, body the raw request body.
//
// Acted-on deliveries (branch and tag pushes, merge request open, reopen,
// update with new commits, close and merge, release creation, new comments on
// merge requests and commits) yield an Event; every other valid delivery,
// including an unknown X-Gitlab-Event value, is ignored with a reason.
//
// A body that is not a JSON object, or that contradicts the kind the header
// declares, returns an error wrapping ErrMalformed; the Delivery then still
// carries EventKind (and Project when it could be read) for logging.
//
// Kinds that upbuild ignores are checked only as far as it reads them
// (object_kind and the project), so that a field GitLab changes in a payload
// we never act on cannot turn into 400 answers, which count towards GitLab
// disabling the whole hook.
func Normalize(eventHeader string, body []byte) (Delivery, error) {
	hook, known := webhookKindFor(eventHeader)
	delivery := Delivery{EventKind: hook.name}

	envelope, err := decodeEnvelope(body)
	if err != nil {
		return delivery, err
	}
	project, conflict, projectErr := envelope.project()

	if !known {
		// Unknown kinds are read leniently: we cannot know their shape.
		if projectErr == nil {
			delivery.Project = project
		}
		if eventHeader == "" {
			delivery.IgnoredReason = "delivery has no X-Gitlab-Event header"
		} else {
			delivery.IgnoredReason = fmt.Sprintf("event kind %q is not known", clip(eventHeader))
		}
		return delivery, nil
	}
	if projectErr != nil {
		return delivery, projectErr
	}
	delivery.Project = project
	if err := hook.checkObjectKind(eventHeader, envelope.ObjectKind); err != nil {
		return delivery, err
	}

	if hook.normalize == nil {
		delivery.IgnoredReason = fmt.Sprintf("event kind %q is not acted on", eventHeader)
		return delivery, nil
	}
	if conflict != "" {
		delivery.IgnoredReason = conflict
		return delivery, nil
	}

	outcome, err := hook.normalize(webhookInput{
		header:  gl.EventType(eventHeader),
		body:    body,
		project: project,
	})
	if err != nil {
		return delivery, err
	}
	if outcome.event == nil {
		delivery.IgnoredReason = outcome.reason
		return delivery, nil
	}
	if outcome.event.Project.ID == 0 {
		delivery.IgnoredReason = "payload names no project id"
		return delivery, nil
	}
	delivery.Project = outcome.event.Project
	delivery.Event = outcome.event
	return delivery, nil
}

// webhookKind describes one X-Gitlab-Event header value.
type webhookKind struct {
	name string
	// objectKinds lists the object_kind values GitLab sends with this
	// header; nil for hooks whose payloads carry no object_kind.
	objectKinds []string
	// normalize is nil for kinds that upbuild does not act on.
	normalize func(webhookInput) (webhookOutcome, error)
}

// webhookKindFor maps an X-Gitlab-Event header to what this package knows
// about it. The header names come from GitLab's WebHookService and the Go
// client's EventType constants.
func webhookKindFor(header string) (webhookKind, bool) {
	switch gl.EventType(header) {
	case gl.EventTypePush:
		return webhookKind{name: "push", objectKinds: []string{"push"}, normalize: normalizePush}, true
	case gl.EventTypeTagPush:
		return webhookKind{name: "tag_push", objectKinds: []string{"tag_push"}, normalize: normalizeTagPush}, true
	case gl.EventTypeMergeRequest:
		return webhookKind{name: "merge_request", objectKinds: []string{"merge_request"}, normalize: normalizeMergeRequest}, true
	case gl.EventTypeNote:
		return webhookKind{name: "note", objectKinds: []string{"note"}, normalize: normalizeNote}, true
	case gl.EventConfidentialNote:
		return webhookKind{name: "confidential_note", objectKinds: []string{"note"}, normalize: normalizeNote}, true
	case gl.EventTypeRelease:
		return webhookKind{name: "release", objectKinds: []string{"release"}, normalize: normalizeRelease}, true
	case gl.EventTypePipeline:
		return webhookKind{name: "pipeline", objectKinds: []string{"pipeline"}}, true
	case gl.EventTypeJob, gl.EventTypeBuild:
		return webhookKind{name: "build", objectKinds: []string{"build"}}, true
	case gl.EventTypeIssue:
		// Work items (tasks, epics, ...) arrive as Issue Hooks too.
		return webhookKind{name: "issue", objectKinds: []string{"issue", "work_item"}}, true
	case gl.EventConfidentialIssue:
		return webhookKind{name: "confidential_issue", objectKinds: []string{"issue", "work_item"}}, true
	case gl.EventTypeWikiPage:
		return webhookKind{name: "wiki_page", objectKinds: []string{"wiki_page"}}, true
	case gl.EventTypeDeployment:
		return webhookKind{name: "deployment", objectKinds: []string{"deployment"}}, true
	case gl.EventTypeFeatureFlag:
		return webhookKind{name: "feature_flag", objectKinds: []string{"feature_flag"}}, true
	case gl.EventTypeEmoji:
		return webhookKind{name: "emoji", objectKinds: []string{"emoji"}}, true
	case gl.EventTypeMilestone:
		return webhookKind{name: "milestone", objectKinds: []string{"milestone"}}, true
	case gl.EventTypeResourceAccessToken:
		return webhookKind{name: "resource_access_token", objectKinds: []string{"access_token"}}, true
	case gl.EventTypeVulnerability:
		return webhookKind{name: "vulnerability", objectKinds: []string{"vulnerability"}}, true
	case gl.EventTypeMember:
		return webhookKind{name: "member"}, true
	case gl.EventTypeProject:
		return webhookKind{name: "project"}, true
	case gl.EventTypeSubGroup:
		return webhookKind{name: "subgroup"}, true
	case gl.EventTypeServiceHook:
		// Integration hooks (Service Hook) re-send push, tag push and merge
		// request payloads; upbuild is configured as a project webhook and
		// does not act on them, so one event never starts work twice.
		return webhookKind{name: "service", objectKinds: []string{"push", "tag_push", "merge_request"}}, true
	case gl.EventTypeSystemHook:
		return webhookKind{name: "system"}, true
	default:
		return webhookKind{name: EventKindUnknown}, false
	}
}

// checkObjectKind rejects a body whose object_kind contradicts the header.
func (k webhookKind) checkObjectKind(header string, raw json.RawMessage) error {
	if k.objectKinds == nil {
		return nil
	}
	var objectKind string
	if !isJSONNull(raw) {
		if err := json.Unmarshal(raw, &objectKind); err != nil {
			return fmt.Errorf("%w: object_kind must be a string", ErrMalformed)
		}
	}
	if objectKind == "" {
		return fmt.Errorf("%w: %q payload has no object_kind", ErrMalformed, header)
	}
	for _, want := range k.objectKinds {
		if objectKind == want {
			return nil
		}
	}
	return fmt.Errorf("%w: object_kind does not match X-Gitlab-Event %q", ErrMalformed, header)
}

// webhookInput is what a kind-specific normaliser works from.
type webhookInput struct {
	header  gl.EventType
	body    []byte
	project forge.Project // from the payload's project fields, already checked
}

// webhookOutcome is either an event or the reason for ignoring the delivery.
type webhookOutcome struct {
	event  *forge.Event
	reason string
}

func ignore(format string, args ...any) (webhookOutcome, error) {
	return webhookOutcome{reason: fmt.Sprintf(format, args...)}, nil
}

func act(event *forge.Event) (webhookOutcome, error) {
	return webhookOutcome{event: event}, nil
}

// ---- the fields every payload may carry ----

// webhookEnvelope holds the generic top-level fields, undecoded so that a
// payload of an unknown kind never fails on their types.
type webhookEnvelope struct {
	ObjectKind        json.RawMessage `json:"object_kind"`
	Project           json.RawMessage `json:"project"`
	ProjectID         json.RawMessage `json:"project_id"`
	PathWithNamespace json.RawMessage `json:"path_with_namespace"`
	ObjectAttributes  json.RawMessage `json:"object_attributes"`
}

func decodeEnvelope(body []byte) (webhookEnvelope, error) {
	var envelope webhookEnvelope
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return envelope, fmt.Errorf("%w: body is empty", ErrMalformed)
	}
	if trimmed[0] != '{' {
		if json.Valid(trimmed) {
			return envelope, fmt.Errorf("%w: body is JSON but not an object", ErrMalformed)
		}
		return envelope, fmt.Errorf("%w: body is not JSON", ErrMalformed)
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		return envelope, describeDecodeError("body", err)
	}
	return envelope, nil
}

// payloadProject is a project as GitLab webhooks describe it (the top-level
// project and a merge request's source and target).
type payloadProject struct {
	ID                int64  `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
	WebURL            string `json:"web_url"`
	GitHTTPURL        string `json:"git_http_url"`
	DefaultBranch     string `json:"default_branch"`
	Visibility        string `json:"visibility"`
	VisibilityLevel   *int   `json:"visibility_level"`
}

func (p *payloadProject) toForge(id int64) forge.Project {
	if p == nil {
		return forge.Project{ID: id}
	}
	return forge.Project{
		ID:                id,
		PathWithNamespace: p.PathWithNamespace,
		WebURL:            p.WebURL,
		GitHTTPURL:        p.GitHTTPURL,
		DefaultBranch:     p.DefaultBranch,
		Visibility:        p.visibility(),
	}
}

// visibility prefers the named visibility and falls back to GitLab's numeric
// levels (0 private, 10 internal, 20 public) that most payloads carry.
func (p *payloadProject) visibility() string {
	switch p.Visibility {
	case "private", "internal", "public":
		return p.Visibility
	}
	if p.VisibilityLevel == nil {
		return ""
	}
	switch *p.VisibilityLevel {
	case 0:
		return "private"
	case 10:
		return "internal"
	case 20:
		return "public"
	}
	return ""
}

// project reads the project a payload names: the project object, else the
// top-level project_id (with path_with_namespace on group-level project
// hooks), else object_attributes.project_id. conflict is non-empty when two
// of those fields name different projects.
func (e webhookEnvelope) project() (project forge.Project, conflict string, err error) {
	var object payloadProject
	hasObject := !isJSONNull(e.Project)
	if hasObject {
		if err := json.Unmarshal(e.Project, &object); err != nil {
			return forge.Project{}, "", describeDecodeError("project", err)
		}
	}
	var topLevelID int64
	if !isJSONNull(e.ProjectID) {
		if err := json.Unmarshal(e.ProjectID, &topLevelID); err != nil {
			return forge.Project{}, "", describeDecodeError("project_id", err)
		}
	}
	if !hasObject && !isJSONNull(e.PathWithNamespace) {
		if err := json.Unmarshal(e.PathWithNamespace, &object.PathWithNamespace); err != nil {
			return forge.Project{}, "", describeDecodeError("path_with_namespace", err)
		}
	}

	id := object.ID
	switch {
	case id == 0:
		id = topLevelID
	case topLevelID != 0 && topLevelID != id:
		conflict = fmt.Sprintf("project.id %d and project_id %d name different projects", id, topLevelID)
	}
	if id == 0 {
		id = e.attributesProjectID()
	}
	return object.toForge(id), conflict, nil
}

// attributesProjectID is a last resort (vulnerability hooks name their
// project only there). It is read leniently because object_attributes has a
// different shape in every kind.
func (e webhookEnvelope) attributesProjectID() int64 {
	var attributes struct {
		ProjectID json.RawMessage `json:"project_id"`
	}
	if json.Unmarshal(e.ObjectAttributes, &attributes) != nil {
		return 0
	}
	var id int64
	if json.Unmarshal(attributes.ProjectID, &id) != nil {
		return 0
	}
	return id
}

// ---- push and tag push ----

func normalizePush(in webhookInput) (webhookOutcome, error) {
	push, err := parseWebhookAs[*gl.PushEvent](in)
	if err != nil {
		return webhookOutcome{}, err
	}
	if isZeroSHA(push.After) {
		return ignore("branch deletion")
	}
	branch, isBranch := strings.CutPrefix(push.Ref, "refs/heads/")
	if !isBranch || branch == "" {
		return ignore("push to a ref outside refs/heads/ is not a branch push")
	}
	sha := firstNonEmpty(push.CheckoutSHA, push.After)
	if sha == "" {
		return ignore("push names no commit")
	}
	if !isObjectID(sha) {
		return webhookOutcome{}, fmt.Errorf("%w: push checkout_sha is not a commit id", ErrMalformed)
	}
	return act(&forge.Event{
		Kind:    forge.KindPush,
		Project: in.project,
		Actor:   forge.User{ID: push.UserID, Username: push.UserUsername},
		SHA:     sha,
		Ref:     branch,
	})
}

func normalizeTagPush(in webhookInput) (webhookOutcome, error) {
	push, err := parseWebhookAs[*gl.TagEvent](in)
	if err != nil {
		return webhookOutcome{}, err
	}
	if isZeroSHA(push.After) {
		return ignore("tag deletion")
	}
	tag, isTag := strings.CutPrefix(push.Ref, "refs/tags/")
	if !isTag || tag == "" {
		return ignore("tag push to a ref outside refs/tags/")
	}
	// For an annotated tag "after" is the tag object; checkout_sha is the
	// commit it points at, which is what gets built.
	sha := firstNonEmpty(push.CheckoutSHA, push.After)
	if sha == "" {
		return ignore("tag push names no commit")
	}
	if !isObjectID(sha) {
		return webhookOutcome{}, fmt.Errorf("%w: tag push checkout_sha is not a commit id", ErrMalformed)
	}
	return act(&forge.Event{
		Kind:    forge.KindTagPush,
		Project: in.project,
		Actor:   forge.User{ID: push.UserID, Username: push.UserUsername},
		SHA:     sha,
		Ref:     tag,
	})
}

// ---- merge requests ----

// mergeRequestExtras holds merge request fields the client's types lack
// or type differently: visibility levels of both ends, and draft on notes.
type mergeRequestExtras struct {
	Source *payloadProject `json:"source"`
	Target *payloadProject `json:"target"`
	Draft  bool            `json:"draft"`
}

func normalizeMergeRequest(in webhookInput) (webhookOutcome, error) {
	hook, err := parseWebhookAs[*gl.MergeEvent](in)
	if err != nil {
		return webhookOutcome{}, err
	}
	var extras struct {
		ObjectAttributes mergeRequestExtras `json:"object_attributes"`
	}
	if err := json.Unmarshal(in.body, &extras); err != nil {
		return webhookOutcome{}, describeDecodeError("merge request payload", err)
	}
	attrs := hook.ObjectAttributes

	var action forge.MRAction
	switch attrs.Action {
	case "open":
		action = forge.MROpened
	case "reopen":
		action = forge.MRReopened
	case "update":
		if attrs.OldRev == "" {
			return ignore("merge request update without new commits (no oldrev) starts no work")
		}
		action = forge.MRNewCommits
	case "close":
		action = forge.MRClosed
	case "merge":
		action = forge.MRMerged
	case "":
		return ignore("merge request delivery has no action (older GitLab test deliveries send none)")
	default:
		// approved, unapproved, approval, unapproval, and actions GitLab may add.
		return ignore("merge request action %q starts no work", clip(attrs.Action))
	}
	if attrs.OldRev != "" && !isObjectID(attrs.OldRev) {
		return webhookOutcome{}, fmt.Errorf("%w: merge request oldrev is not a commit id", ErrMalformed)
	}

	labels := attrs.Labels
	if len(labels) == 0 {
		labels = hook.Labels
	}
	mr := mergeRequestFields{
		iid:             attrs.IID,
		title:           attrs.Title,
		url:             attrs.URL,
		sourceProjectID: attrs.SourceProjectID,
		targetProjectID: attrs.TargetProjectID,
		sourceBranch:    attrs.SourceBranch,
		targetBranch:    attrs.TargetBranch,
		headSHA:         attrs.LastCommit.ID,
		oldRev:          attrs.OldRev,
		draft:           attrs.Draft || attrs.WorkInProgress || extras.ObjectAttributes.Draft,
		labels:          labels,
		authorID:        attrs.AuthorID,
		extras:          extras.ObjectAttributes,
	}
	// Closing or merging needs no code, so only work-starting actions
	// insist on a head commit.
	startsWork := action == forge.MROpened || action == forge.MRReopened || action == forge.MRNewCommits
	project, forgeMR, reason, err := mr.build(in.project, startsWork)
	if err != nil || reason != "" {
		return webhookOutcome{reason: reason}, err
	}
	forgeMR.Action = action
	return act(&forge.Event{
		Kind:    forge.KindMergeRequest,
		Project: project,
		Actor:   eventUser(hook.User),
		SHA:     forgeMR.HeadSHA,
		Ref:     forgeMR.SourceBranch,
		MR:      forgeMR,
	})
}

// mergeRequestFields gathers what merge request hooks and merge request
// comments both say about a merge request, so both build it the same way.
type mergeRequestFields struct {
	iid                              int64
	title, url                       string
	sourceProjectID, targetProjectID int64
	sourceBranch, targetBranch       string
	headSHA, oldRev                  string
	draft                            bool
	labels                           []*gl.EventLabel
	authorID                         int64
	extras                           mergeRequestExtras
}

// build checks the merge request against the hook's project (which GitLab
// always sets to the target project) and returns the project with its id
// filled in, the merge request, or a reason to ignore the delivery.
func (f mergeRequestFields) build(hookProject forge.Project, needHead bool) (forge.Project, *forge.MergeRequest, string, error) {
	project := hookProject
	if project.ID == 0 {
		project.ID = f.targetProjectID
	}
	// A delivery is authenticated for its project only; it must not steer
	// work into another one.
	if f.targetProjectID != 0 && f.targetProjectID != project.ID {
		return project, nil, fmt.Sprintf("merge request target project %d is not the hook's project %d", f.targetProjectID, project.ID), nil
	}
	if f.extras.Target != nil && f.extras.Target.PathWithNamespace != "" && project.PathWithNamespace != "" &&
		f.extras.Target.PathWithNamespace != project.PathWithNamespace {
		return project, nil, "merge request target path is not the hook's project path", nil
	}
	if f.iid <= 0 {
		return project, nil, "merge request payload has no iid", nil
	}
	if f.headSHA != "" && !isObjectID(f.headSHA) {
		return project, nil, "", fmt.Errorf("%w: merge request last_commit.id is not a commit id", ErrMalformed)
	}
	if needHead {
		switch {
		case f.headSHA == "":
			return project, nil, "merge request payload has no last_commit", nil
		case f.sourceProjectID == 0:
			return project, nil, "merge request payload has no source_project_id", nil
		case f.sourceBranch == "" || f.targetBranch == "":
			return project, nil, "merge request payload lacks a source or target branch", nil
		}
	}

	target := project
	if f.extras.Target != nil {
		target = f.extras.Target.toForge(project.ID)
		target = fillProject(target, project)
	}
	var source forge.Project
	switch {
	case f.extras.Source != nil:
		source = f.extras.Source.toForge(f.sourceProjectID)
	case f.sourceProjectID == project.ID:
		source = target
	default:
		source = forge.Project{ID: f.sourceProjectID}
	}
	return project, &forge.MergeRequest{
		IID:           f.iid,
		Title:         f.title,
		URL:           f.url,
		SourceProject: source,
		TargetProject: target,
		SourceBranch:  f.sourceBranch,
		TargetBranch:  f.targetBranch,
		HeadSHA:       f.headSHA,
		OldRev:        f.oldRev,
		Draft:         f.draft,
		Labels:        labelTitles(f.labels),
		AuthorID:      f.authorID,
	}, "", nil
}

// fillProject completes the empty fields of p from the same project as
// described elsewhere in the payload.
func fillProject(p, from forge.Project) forge.Project {
	if p.PathWithNamespace == "" {
		p.PathWithNamespace = from.PathWithNamespace
	}
	if p.WebURL == "" {
		p.WebURL = from.WebURL
	}
	if p.GitHTTPURL == "" {
		p.GitHTTPURL = from.GitHTTPURL
	}
	if p.DefaultBranch == "" {
		p.DefaultBranch = from.DefaultBranch
	}
	if p.Visibility == "" {
		p.Visibility = from.Visibility
	}
	return p
}

// ---- comments ----

func normalizeNote(in webhookInput) (webhookOutcome, error) {
	var peek struct {
		ObjectAttributes struct {
			NoteableType string `json:"noteable_type"`
			Action       string `json:"action"`
			System       bool   `json:"system"`
		} `json:"object_attributes"`
	}
	if err := json.Unmarshal(in.body, &peek); err != nil {
		return webhookOutcome{}, describeDecodeError("note payload", err)
	}
	attrs := peek.ObjectAttributes
	switch attrs.NoteableType {
	case "MergeRequest", "Commit":
	case "Issue":
		if in.header == gl.EventConfidentialNote {
			return ignore("comments on confidential issues start no work")
		}
		return ignore("comments on issues start no work")
	case "Snippet":
		return ignore("comments on snippets start no work")
	case "":
		return ignore("comment payload has no noteable_type")
	default:
		return ignore("comments on %q start no work", clip(attrs.NoteableType))
	}
	switch attrs.Action {
	case "create", "": // GitLab before 16.11 sends no action, only for new notes
	case "update":
		return ignore("comment edits do not trigger")
	default:
		return ignore("comment action %q starts no work", clip(attrs.Action))
	}
	if attrs.System {
		return ignore("system notes start no work")
	}
	if attrs.NoteableType == "Commit" {
		return normalizeCommitNote(in)
	}
	return normalizeMergeRequestNote(in)
}

func normalizeMergeRequestNote(in webhookInput) (webhookOutcome, error) {
	note, err := parseWebhookAs[*gl.MergeCommentEvent](in)
	if err != nil {
		return webhookOutcome{}, err
	}
	var extras struct {
		MergeRequest mergeRequestExtras `json:"merge_request"`
	}
	if err := json.Unmarshal(in.body, &extras); err != nil {
		return webhookOutcome{}, describeDecodeError("note payload", err)
	}
	attrs := note.ObjectAttributes
	if attrs.CommitID != "" && !isObjectID(attrs.CommitID) {
		return webhookOutcome{}, fmt.Errorf("%w: note commit_id is not a commit id", ErrMalformed)
	}
	mrPayload := note.MergeRequest
	mr := mergeRequestFields{
		iid:             mrPayload.IID,
		title:           mrPayload.Title,
		url:             mrPayload.URL,
		sourceProjectID: mrPayload.SourceProjectID,
		targetProjectID: mrPayload.TargetProjectID,
		sourceBranch:    mrPayload.SourceBranch,
		targetBranch:    mrPayload.TargetBranch,
		headSHA:         mrPayload.LastCommit.ID,
		draft:           mrPayload.WorkInProgress || extras.MergeRequest.Draft,
		labels:          mrPayload.Labels,
		authorID:        mrPayload.AuthorID,
		extras:          extras.MergeRequest,
	}
	// A comment may ask for a build, so it needs the head like an open does.
	project, forgeMR, reason, err := mr.build(in.project, true)
	if err != nil || reason != "" {
		return webhookOutcome{reason: reason}, err
	}
	return act(&forge.Event{
		Kind:    forge.KindComment,
		Project: project,
		Actor:   eventUser(note.User),
		SHA:     forgeMR.HeadSHA,
		Ref:     forgeMR.SourceBranch,
		MR:      forgeMR,
		Comment: &forge.Comment{
			ID:           attrs.ID,
			Body:         attrs.Note,
			URL:          attrs.URL,
			NoteableType: attrs.NoteableType,
			CommitSHA:    attrs.CommitID,
		},
	})
}

func normalizeCommitNote(in webhookInput) (webhookOutcome, error) {
	note, err := parseWebhookAs[*gl.CommitCommentEvent](in)
	if err != nil {
		return webhookOutcome{}, err
	}
	attrs := note.ObjectAttributes
	var sha string
	if note.Commit != nil {
		sha = note.Commit.ID
	}
	sha = firstNonEmpty(sha, attrs.CommitID)
	if sha == "" {
		return ignore("commit comment names no commit")
	}
	if !isObjectID(sha) {
		return webhookOutcome{}, fmt.Errorf("%w: commented commit id is not a commit id", ErrMalformed)
	}
	var actor forge.User
	if note.User != nil {
		actor = forge.User{ID: note.User.ID, Username: note.User.Username}
	}
	return act(&forge.Event{
		Kind:    forge.KindComment,
		Project: in.project,
		Actor:   actor,
		SHA:     sha,
		Comment: &forge.Comment{
			ID:           attrs.ID,
			Body:         attrs.Note,
			URL:          attrs.URL,
			NoteableType: attrs.NoteableType,
			CommitSHA:    sha,
		},
	})
}

// ---- releases ----

// normalizeRelease acts on release creation only, as Packit does: an update
// (notes or assets edited) or a deletion changes no code worth building.
func normalizeRelease(in webhookInput) (webhookOutcome, error) {
	release, err := parseWebhookAs[*gl.ReleaseEvent](in)
	if err != nil {
		return webhookOutcome{}, err
	}
	switch release.Action {
	case "create":
	case "update":
		return ignore("release updates start no work; only release creation does")
	case "delete":
		return ignore("release deletion starts no work")
	default:
		return ignore("release action %q starts no work", clip(release.Action))
	}
	if release.Tag == "" {
		return ignore("release payload has no tag")
	}
	if release.Commit.ID == "" {
		return ignore("release payload has no commit")
	}
	if !isObjectID(release.Commit.ID) {
		return webhookOutcome{}, fmt.Errorf("%w: release commit.id is not a commit id", ErrMalformed)
	}
	// Release payloads name no user, so the event has no actor.
	return act(&forge.Event{
		Kind:    forge.KindRelease,
		Project: in.project,
		SHA:     release.Commit.ID,
		Ref:     release.Tag,
		Release: &forge.Release{
			Tag:    release.Tag,
			Name:   release.Name,
			Action: release.Action,
			URL:    release.URL,
		},
	})
}

// ---- helpers ----

// parseWebhookAs runs the client's parser and insists on the type the
// header implies.
func parseWebhookAs[T any](in webhookInput) (T, error) {
	var zero T
	parsed, err := gl.ParseWebhook(in.header, in.body)
	if err != nil {
		return zero, describeDecodeError(fmt.Sprintf("%q payload", string(in.header)), err)
	}
	typed, ok := parsed.(T)
	if !ok {
		return zero, fmt.Errorf("%w: %q payload has an unexpected shape", ErrMalformed, string(in.header))
	}
	return typed, nil
}

// describeDecodeError wraps a JSON decoding error in ErrMalformed, keeping
// the position or field name but never a value from the body (the standard
// messages quote characters and numbers, custom decoders whole values).
func describeDecodeError(what string, err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("%w: %s is not valid JSON (byte %d)", ErrMalformed, what, syntaxErr.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return fmt.Errorf("%w: %s must be %s", ErrMalformed, what, jsonKindOf(typeErr.Type))
		}
		return fmt.Errorf("%w: %s: field %q must be %s", ErrMalformed, what, clip(typeErr.Field), jsonKindOf(typeErr.Type))
	default:
		return fmt.Errorf("%w: %s does not match its declared kind", ErrMalformed, what)
	}
}

func jsonKindOf(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "of another type"
	}
}

func eventUser(u *gl.EventUser) forge.User {
	if u == nil {
		return forge.User{}
	}
	return forge.User{ID: u.ID, Username: u.Username}
}

func labelTitles(labels []*gl.EventLabel) []string {
	var titles []string
	for _, label := range labels {
		if label != nil && label.Title != "" {
			titles = append(titles, label.Title)
		}
	}
	return titles
}

func isJSONNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// isZeroSHA reports GitLab's all-zeros object id, which marks the missing
// side of a ref creation or deletion (SHA-1 or SHA-256 repositories).
func isZeroSHA(sha string) bool {
	return sha != "" && strings.Trim(sha, "0") == ""
}

// isObjectID accepts lower-case hex SHA-1 or SHA-256 ids, as GitLab sends
// them. Ids end up in API paths, so nothing else may pass.
func isObjectID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// clip bounds text taken from a request before it goes into a reason or an
// error message.
func clip(s string) string {
	const limit = 64
	runes := []rune(s)
	if len(runes) <= limit {
		return s
	}
	return string(runes[:limit]) + "…"
}
