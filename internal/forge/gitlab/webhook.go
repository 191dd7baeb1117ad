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

	segjson "github.com/segmentio/encoding/json"
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

	if err := checkIsObject(body); err != nil {
		return delivery, err
	}
	// Acted-on kinds are decoded once, into a struct of just the fields
	// upbuild reads; the generic fields stay raw in it so that they are
	// checked in the same order as for every other kind. Other kinds only
	// need those generic fields, which splitEnvelope finds without decoding
	// the rest of the body.
	var (
		payload   webhookPayload
		source    projectSource
		decodeErr error
	)
	if hook.newPayload == nil {
		envelope, err := splitEnvelope(body)
		if err != nil {
			return delivery, err
		}
		source = envelope
	} else {
		// segmentio's decoder is about three times as fast as encoding/json
		// and decodes a well-formed body to the same values. On an error it
		// stops where encoding/json goes on past a wrongly typed value, so
		// such a body is decoded again by encoding/json, whose errors and
		// partial results the checks below are written for.
		payload = hook.newPayload()
		if segjson.Unmarshal(body, payload) != nil {
			payload = hook.newPayload()
			decodeErr = json.Unmarshal(body, payload)
		}
		var syntaxErr *json.SyntaxError
		if errors.As(decodeErr, &syntaxErr) {
			return delivery, describeDecodeError("body", decodeErr)
		}
		source = payload
	}
	project, conflict, projectErr := readProject(source)

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
	if err := hook.checkObjectKind(eventHeader, source.envelope().ObjectKind); err != nil {
		return delivery, err
	}

	if payload == nil {
		delivery.IgnoredReason = fmt.Sprintf("event kind %q is not acted on", eventHeader)
		return delivery, nil
	}
	if conflict != "" {
		delivery.IgnoredReason = conflict
		return delivery, nil
	}

	outcome, err := payload.normalize(webhookInput{
		header:    gl.EventType(eventHeader),
		body:      body,
		project:   project,
		decodeErr: decodeErr,
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
	// newPayload is nil for kinds that upbuild does not act on; otherwise
	// it gives the struct that the whole body is decoded into.
	newPayload func() webhookPayload
}

// webhookKindFor maps an X-Gitlab-Event header to what this package knows
// about it. The header names come from GitLab's WebHookService and the Go
// client's EventType constants.
func webhookKindFor(header string) (webhookKind, bool) {
	switch gl.EventType(header) {
	case gl.EventTypePush:
		return webhookKind{name: "push", objectKinds: []string{"push"}, newPayload: func() webhookPayload { return new(pushPayload) }}, true
	case gl.EventTypeTagPush:
		return webhookKind{name: "tag_push", objectKinds: []string{"tag_push"}, newPayload: func() webhookPayload { return new(tagPushPayload) }}, true
	case gl.EventTypeMergeRequest:
		return webhookKind{name: "merge_request", objectKinds: []string{"merge_request"}, newPayload: func() webhookPayload { return new(mergeRequestPayload) }}, true
	case gl.EventTypeNote:
		return webhookKind{name: "note", objectKinds: []string{"note"}, newPayload: func() webhookPayload { return new(notePayload) }}, true
	case gl.EventConfidentialNote:
		return webhookKind{name: "confidential_note", objectKinds: []string{"note"}, newPayload: func() webhookPayload { return new(notePayload) }}, true
	case gl.EventTypeRelease:
		return webhookKind{name: "release", objectKinds: []string{"release"}, newPayload: func() webhookPayload { return new(releasePayload) }}, true
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
	// decodeErr is what decoding the body into the kind's payload struct
	// reported; never a syntax error, which Normalize answers first. The
	// decoder goes on past a value of the wrong type, so every other field
	// of the payload is filled in all the same.
	decodeErr error
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

// describePayloadError describes a decodeErr as an error in the payload of
// the header's kind.
func describePayloadError(in webhookInput) error {
	return describeDecodeError(fmt.Sprintf("%q payload", string(in.header)), in.decodeErr)
}

// ---- the fields every payload may carry ----

// webhookEnvelope holds the generic top-level fields, undecoded so that a
// payload of an unknown kind never fails on their types. The payload structs
// of acted-on kinds embed it, so that one decode fills both.
type webhookEnvelope struct {
	ObjectKind        json.RawMessage `json:"object_kind"`
	Project           json.RawMessage `json:"project"`
	ProjectID         json.RawMessage `json:"project_id"`
	PathWithNamespace json.RawMessage `json:"path_with_namespace"`
}

func (e *webhookEnvelope) envelope() *webhookEnvelope { return e }

// projectSource is what readProject needs from a decoded payload.
type projectSource interface {
	envelope() *webhookEnvelope
	// attributesProjectID reads object_attributes.project_id, a last
	// resort (vulnerability hooks name their project only there). It is
	// read leniently because object_attributes has a different shape in
	// every kind: anything but an integer reads as 0.
	attributesProjectID() int64
}

// webhookPayload is the decoded body of a kind that upbuild acts on.
type webhookPayload interface {
	projectSource
	normalize(in webhookInput) (webhookOutcome, error)
}

// rawAttributes keeps object_attributes undecoded, for the payloads that
// read nothing else from it.
type rawAttributes struct {
	ObjectAttributes json.RawMessage `json:"object_attributes"`
}

func (a *rawAttributes) attributesProjectID() int64 {
	var attributes struct {
		ProjectID json.RawMessage `json:"project_id"`
	}
	if json.Unmarshal(a.ObjectAttributes, &attributes) != nil {
		return 0
	}
	return lenientInt64(attributes.ProjectID)
}

// genericPayload is the whole of what upbuild reads of a kind it does not
// act on, or does not know.
type genericPayload struct {
	webhookEnvelope
	rawAttributes
}

// checkIsObject answers bodies that cannot be a webhook payload at all.
func checkIsObject(body []byte) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return fmt.Errorf("%w: body is empty", ErrMalformed)
	}
	if trimmed[0] != '{' {
		if json.Valid(trimmed) {
			return fmt.Errorf("%w: body is JSON but not an object", ErrMalformed)
		}
		return fmt.Errorf("%w: body is not JSON", ErrMalformed)
	}
	return nil
}

// splitEnvelope reads the generic fields of a body that checkIsObject
// accepted. It gives what json.Unmarshal into genericPayload gives (the same
// syntax errors, the last of repeated keys, keys matched ignoring case) at
// a fraction of the cost, because it picks the fields out of the body once
// segmentio's Valid (which accepts exactly what json.Valid accepts) has
// vouched for it, instead of decoding every value.
func splitEnvelope(body []byte) (*genericPayload, error) {
	payload := new(genericPayload)
	if !segjson.Valid(body) {
		// Decoding reports where the syntax breaks.
		return nil, describeDecodeError("body", json.Unmarshal(body, payload))
	}
	members := newMemberScanner(body)
	for members.next() {
		key := members.keyText()
		switch {
		case bytes.EqualFold(key, []byte("object_kind")):
			payload.ObjectKind = members.value
		case bytes.EqualFold(key, []byte("project")):
			payload.Project = members.value
		case bytes.EqualFold(key, []byte("project_id")):
			payload.ProjectID = members.value
		case bytes.EqualFold(key, []byte("path_with_namespace")):
			payload.PathWithNamespace = members.value
		case bytes.EqualFold(key, []byte("object_attributes")):
			payload.ObjectAttributes = members.value
		}
	}
	return payload, nil
}

// memberScanner walks the members of a JSON object whose syntax has been
// checked already, so it never checks it again.
type memberScanner struct {
	data  []byte
	pos   int
	key   []byte // the key as written, quotes included
	value []byte // the value as written
}

func newMemberScanner(object []byte) memberScanner {
	return memberScanner{data: object, pos: skipJSONSpace(object, 0) + 1}
}

// next moves to the next member; it reports false at the closing brace.
func (s *memberScanner) next() bool {
	s.pos = skipJSONSpace(s.data, s.pos)
	if s.data[s.pos] == ',' {
		s.pos = skipJSONSpace(s.data, s.pos+1)
	}
	if s.data[s.pos] == '}' {
		return false
	}
	keyEnd := endOfJSONString(s.data, s.pos)
	s.key = s.data[s.pos:keyEnd]
	colon := skipJSONSpace(s.data, keyEnd)
	valueStart := skipJSONSpace(s.data, colon+1)
	s.pos = endOfJSONValue(s.data, valueStart)
	s.value = s.data[valueStart:s.pos]
	return true
}

// keyText is the key unquoted, as encoding/json compares it with field names.
func (s *memberScanner) keyText() []byte {
	inner := s.key[1 : len(s.key)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		// Without escapes the key compares as written: invalid UTF-8,
		// which decoding would replace, matches no ASCII name either way.
		return inner
	}
	var key string
	if json.Unmarshal(s.key, &key) != nil {
		return nil
	}
	return []byte(key)
}

func skipJSONSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// endOfJSONString returns the index just past the string opening at start.
func endOfJSONString(data []byte, start int) int {
	i := start + 1
	for {
		end := i + bytes.IndexByte(data[i:], '"')
		// A quote after an odd number of backslashes is escaped.
		backslashes := 0
		for k := end - 1; k > start && data[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return end + 1
		}
		i = end + 1
	}
}

// endOfJSONValue returns the index just past the value starting at start.
func endOfJSONValue(data []byte, start int) int {
	switch data[start] {
	case '"':
		return endOfJSONString(data, start)
	case '{', '[':
		depth := 0
		for i := start; ; {
			switch data[i] {
			case '"':
				i = endOfJSONString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	default: // a number, true, false or null
		i := start
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
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

// readProject reads the project a payload names: the project object, else
// the top-level project_id (with path_with_namespace on group-level project
// hooks), else object_attributes.project_id. conflict is non-empty when two
// of those fields name different projects.
func readProject(source projectSource) (project forge.Project, conflict string, err error) {
	e := source.envelope()
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
		id = source.attributesProjectID()
	}
	return object.toForge(id), conflict, nil
}

// Field types shared by several payloads; each holds only what is read.
type (
	eventUser struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
	}
	eventLabel struct {
		Title string `json:"title"`
	}
	commitRef struct {
		ID string `json:"id"`
	}
)

// ---- push and tag push ----

// pushPayload is what upbuild reads of a Push Hook; tagPushPayload reads the
// same fields of a Tag Push Hook.
type pushPayload struct {
	webhookEnvelope
	rawAttributes
	Ref          string `json:"ref"`
	After        string `json:"after"`
	CheckoutSHA  string `json:"checkout_sha"`
	UserID       int64  `json:"user_id"`
	UserUsername string `json:"user_username"`
}

// tagPushPayload is a defined type rather than an embedding so that decode
// errors name its fields as they appear in the payload.
type tagPushPayload pushPayload

func (push *pushPayload) normalize(in webhookInput) (webhookOutcome, error) {
	if in.decodeErr != nil {
		return webhookOutcome{}, describePayloadError(in)
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

func (push *tagPushPayload) normalize(in webhookInput) (webhookOutcome, error) {
	if in.decodeErr != nil {
		return webhookOutcome{}, describePayloadError(in)
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

// mergeRequestPayload is what upbuild reads of a Merge Request Hook.
type mergeRequestPayload struct {
	webhookEnvelope
	User             *eventUser             `json:"user"`
	Labels           []*eventLabel          `json:"labels"`
	ObjectAttributes mergeRequestAttributes `json:"object_attributes"`
}

type mergeRequestAttributes struct {
	ProjectID       json.RawMessage `json:"project_id"` // see attributesProjectID
	IID             int64           `json:"iid"`
	Action          string          `json:"action"`
	Title           string          `json:"title"`
	URL             string          `json:"url"`
	SourceProjectID int64           `json:"source_project_id"`
	TargetProjectID int64           `json:"target_project_id"`
	SourceBranch    string          `json:"source_branch"`
	TargetBranch    string          `json:"target_branch"`
	LastCommit      commitRef       `json:"last_commit"`
	OldRev          string          `json:"oldrev"`
	Draft           bool            `json:"draft"`
	WorkInProgress  bool            `json:"work_in_progress"`
	Labels          []*eventLabel   `json:"labels"`
	AuthorID        int64           `json:"author_id"`
	Source          *payloadProject `json:"source"`
	Target          *payloadProject `json:"target"`
	// MergeParams is not read, only checked with the client's type, which
	// has always refused a force_remove_source_branch that is neither a
	// boolean nor a boolean string.
	MergeParams json.RawMessage `json:"merge_params"`
}

func (p *mergeRequestPayload) attributesProjectID() int64 {
	return lenientInt64(p.ObjectAttributes.ProjectID)
}

func (p *mergeRequestPayload) normalize(in webhookInput) (webhookOutcome, error) {
	if in.decodeErr != nil {
		return webhookOutcome{}, describePayloadError(in)
	}
	attrs := &p.ObjectAttributes
	if err := checkMergeParams(in, attrs.MergeParams); err != nil {
		return webhookOutcome{}, err
	}

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
		labels = p.Labels
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
		draft:           attrs.Draft || attrs.WorkInProgress,
		labels:          labels,
		authorID:        attrs.AuthorID,
		source:          attrs.Source,
		target:          attrs.Target,
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
		Actor:   eventActor(p.User),
		SHA:     forgeMR.HeadSHA,
		Ref:     forgeMR.SourceBranch,
		MR:      forgeMR,
	})
}

// checkMergeParams decodes merge_params with the client's type, as decoding
// the whole payload with the client's types did.
func checkMergeParams(in webhookInput, raw json.RawMessage) error {
	if isJSONNull(raw) {
		return nil
	}
	var params gl.MergeParams
	err := json.Unmarshal(raw, &params)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		// Decoding the whole payload names the field from the top.
		typeErr.Field = "object_attributes.merge_params"
	}
	in.decodeErr = err
	return describePayloadError(in)
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
	labels                           []*eventLabel
	authorID                         int64
	source, target                   *payloadProject
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
	if f.target != nil && f.target.PathWithNamespace != "" && project.PathWithNamespace != "" &&
		f.target.PathWithNamespace != project.PathWithNamespace {
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
	if f.target != nil {
		target = f.target.toForge(project.ID)
		target = fillProject(target, project)
	}
	var source forge.Project
	switch {
	case f.source != nil:
		source = f.source.toForge(f.sourceProjectID)
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

// notePayload is what upbuild reads of a Note Hook: the fields of comments
// on merge requests and on commits together, so one decode serves both.
type notePayload struct {
	webhookEnvelope
	User             *eventUser       `json:"user"`
	ObjectAttributes noteAttributes   `json:"object_attributes"`
	MergeRequest     noteMergeRequest `json:"merge_request"` // merge request comments only
	Commit           *commitRef       `json:"commit"`        // commit comments only
}

type noteAttributes struct {
	ProjectID    json.RawMessage `json:"project_id"` // see attributesProjectID
	NoteableType string          `json:"noteable_type"`
	Action       string          `json:"action"`
	System       bool            `json:"system"`
	ID           int64           `json:"id"`
	Note         string          `json:"note"`
	URL          string          `json:"url"`
	CommitID     string          `json:"commit_id"`
}

// noteTarget is what decides whether a comment is acted on.
type noteTarget struct {
	NoteableType string `json:"noteable_type"`
	Action       string `json:"action"`
	System       bool   `json:"system"`
}

type noteMergeRequest struct {
	IID             int64           `json:"iid"`
	Title           string          `json:"title"`
	URL             string          `json:"url"`
	SourceProjectID int64           `json:"source_project_id"`
	TargetProjectID int64           `json:"target_project_id"`
	SourceBranch    string          `json:"source_branch"`
	TargetBranch    string          `json:"target_branch"`
	LastCommit      commitRef       `json:"last_commit"`
	WorkInProgress  bool            `json:"work_in_progress"`
	Draft           bool            `json:"draft"`
	Labels          []*eventLabel   `json:"labels"`
	AuthorID        int64           `json:"author_id"`
	Source          *payloadProject `json:"source"`
	Target          *payloadProject `json:"target"`
}

func (p *notePayload) attributesProjectID() int64 {
	return lenientInt64(p.ObjectAttributes.ProjectID)
}

func (p *notePayload) normalize(in webhookInput) (webhookOutcome, error) {
	attrs := &p.ObjectAttributes
	if in.decodeErr != nil {
		if err := recheckNote(in); err != nil {
			return webhookOutcome{}, err
		}
		// The field that failed is one this comment does not read; the
		// fields it does read decoded as usual.
	}
	if reason := noteIgnoreReason(in.header, noteTarget{attrs.NoteableType, attrs.Action, attrs.System}); reason != "" {
		return webhookOutcome{reason: reason}, nil
	}
	if attrs.NoteableType == "Commit" {
		return p.normalizeCommitNote(in)
	}
	return p.normalizeMergeRequestNote(in)
}

// recheckNote finds out whether a failed decode of a note payload concerns
// what this comment reads: what decides whether it is acted on, then the
// fields of its kind of comment. A comment on an issue is not failed by an
// odd merge_request field, nor a commit comment by anything in one.
func recheckNote(in webhookInput) error {
	var target struct {
		ObjectAttributes noteTarget `json:"object_attributes"`
	}
	if err := json.Unmarshal(in.body, &target); err != nil {
		return describeDecodeError("note payload", err)
	}
	if noteIgnoreReason(in.header, target.ObjectAttributes) != "" {
		return nil
	}
	var err error
	if target.ObjectAttributes.NoteableType == "Commit" {
		var commitNote struct {
			User             *eventUser     `json:"user"`
			ObjectAttributes noteAttributes `json:"object_attributes"`
			Commit           *commitRef     `json:"commit"`
		}
		err = json.Unmarshal(in.body, &commitNote)
	} else {
		var mergeRequestNote struct {
			User             *eventUser       `json:"user"`
			ObjectAttributes noteAttributes   `json:"object_attributes"`
			MergeRequest     noteMergeRequest `json:"merge_request"`
		}
		err = json.Unmarshal(in.body, &mergeRequestNote)
	}
	if err != nil {
		in.decodeErr = err
		return describePayloadError(in)
	}
	return nil
}

// noteIgnoreReason says why a comment starts no work, or "" when it may.
func noteIgnoreReason(header gl.EventType, target noteTarget) string {
	switch target.NoteableType {
	case "MergeRequest", "Commit":
	case "Issue":
		if header == gl.EventConfidentialNote {
			return "comments on confidential issues start no work"
		}
		return "comments on issues start no work"
	case "Snippet":
		return "comments on snippets start no work"
	case "":
		return "comment payload has no noteable_type"
	default:
		return fmt.Sprintf("comments on %q start no work", clip(target.NoteableType))
	}
	switch target.Action {
	case "create", "": // GitLab before 16.11 sends no action, only for new notes
	case "update":
		return "comment edits do not trigger"
	default:
		return fmt.Sprintf("comment action %q starts no work", clip(target.Action))
	}
	if target.System {
		return "system notes start no work"
	}
	return ""
}

func (p *notePayload) normalizeMergeRequestNote(in webhookInput) (webhookOutcome, error) {
	attrs := &p.ObjectAttributes
	if attrs.CommitID != "" && !isObjectID(attrs.CommitID) {
		return webhookOutcome{}, fmt.Errorf("%w: note commit_id is not a commit id", ErrMalformed)
	}
	mrPayload := &p.MergeRequest
	mr := mergeRequestFields{
		iid:             mrPayload.IID,
		title:           mrPayload.Title,
		url:             mrPayload.URL,
		sourceProjectID: mrPayload.SourceProjectID,
		targetProjectID: mrPayload.TargetProjectID,
		sourceBranch:    mrPayload.SourceBranch,
		targetBranch:    mrPayload.TargetBranch,
		headSHA:         mrPayload.LastCommit.ID,
		draft:           mrPayload.WorkInProgress || mrPayload.Draft,
		labels:          mrPayload.Labels,
		authorID:        mrPayload.AuthorID,
		source:          mrPayload.Source,
		target:          mrPayload.Target,
	}
	// A comment may ask for a build, so it needs the head like an open does.
	project, forgeMR, reason, err := mr.build(in.project, true)
	if err != nil || reason != "" {
		return webhookOutcome{reason: reason}, err
	}
	return act(&forge.Event{
		Kind:    forge.KindComment,
		Project: project,
		Actor:   eventActor(p.User),
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

func (p *notePayload) normalizeCommitNote(in webhookInput) (webhookOutcome, error) {
	attrs := &p.ObjectAttributes
	var sha string
	if p.Commit != nil {
		sha = p.Commit.ID
	}
	sha = firstNonEmpty(sha, attrs.CommitID)
	if sha == "" {
		return ignore("commit comment names no commit")
	}
	if !isObjectID(sha) {
		return webhookOutcome{}, fmt.Errorf("%w: commented commit id is not a commit id", ErrMalformed)
	}
	return act(&forge.Event{
		Kind:    forge.KindComment,
		Project: in.project,
		Actor:   eventActor(p.User),
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

// releasePayload is what upbuild reads of a Release Hook.
type releasePayload struct {
	webhookEnvelope
	rawAttributes
	Action string    `json:"action"`
	Tag    string    `json:"tag"`
	Name   string    `json:"name"`
	URL    string    `json:"url"`
	Commit commitRef `json:"commit"`
}

// normalize acts on release creation only, as Packit does: an update
// (notes or assets edited) or a deletion changes no code worth building.
func (release *releasePayload) normalize(in webhookInput) (webhookOutcome, error) {
	if in.decodeErr != nil {
		return webhookOutcome{}, describePayloadError(in)
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

func eventActor(u *eventUser) forge.User {
	if u == nil {
		return forge.User{}
	}
	return forge.User{ID: u.ID, Username: u.Username}
}

func labelTitles(labels []*eventLabel) []string {
	var titles []string
	for _, label := range labels {
		if label != nil && label.Title != "" {
			titles = append(titles, label.Title)
		}
	}
	return titles
}

// lenientInt64 reads an integer, taking anything else (or nothing) as 0.
func lenientInt64(raw json.RawMessage) int64 {
	var n int64
	if json.Unmarshal(raw, &n) != nil {
		return 0
	}
	return n
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
