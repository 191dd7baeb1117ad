package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/forge"
)

// maxStatusField is GitLab's limit on a commit status's name, ref,
// target_url and description, counted in characters.
const maxStatusField = 255

// SetCommitStatus implements forge.Forge.
func (c *Client) SetCommitStatus(ctx context.Context, projectID int64, sha string, u forge.StatusUpdate) (int64, error) {
	if !u.State.Valid() {
		return 0, permanentError("gitlab: commit status state %q is not one of pending, running, success, failed, canceled, skipped", u.State)
	}
	name := truncate(u.Name, "")
	ref := truncate(u.Ref, "")
	opt := &gl.SetCommitStatusOptions{
		State:       gl.BuildStateValue(u.State),
		Name:        optional(name),
		Ref:         optional(ref),
		TargetURL:   optional(truncate(u.TargetURL, "")),
		Description: optional(truncate(u.Description, "…")),
	}
	if u.PipelineID != 0 {
		opt.PipelineID = &u.PipelineID
	}
	var status *gl.CommitStatus
	// Safe to repeat: re-posting a state that already took answers "Cannot
	// transition", which counts as done below.
	err := c.call(ctx, "set commit status", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
		var resp *gl.Response
		var err error
		status, resp, err = c.api.Commits.SetCommitStatus(projectID, sha, opt, gl.WithContext(ctx))
		return resp, err
	})
	switch {
	case err == nil:
		return status.PipelineID, nil
	case alreadyInState(err):
		if u.PipelineID != 0 {
			return u.PipelineID, nil
		}
		return c.pipelineOfStatus(ctx, projectID, sha, name, ref), nil
	default:
		return 0, fmt.Errorf("gitlab: set status %q to %s on %s in project %d: %w", name, u.State, sha, projectID, err)
	}
}

// alreadyInState recognises GitLab's answer to a status that already has
// the requested state: 400 "Cannot transition status via :run from
// :running" (or :enqueue from :pending, and so on).
func alreadyInState(err error) bool {
	var e *apiError
	return errors.As(err, &e) && e.status == http.StatusBadRequest && strings.Contains(e.message, "Cannot transition status")
}

// pipelineOfStatus finds the pipeline that holds the newest status with
// this name (and ref); 0 when it cannot be found. The status itself is set,
// so a failed lookup is logged, not returned.
func (c *Client) pipelineOfStatus(ctx context.Context, projectID int64, sha, name, ref string) int64 {
	opt := &gl.GetCommitStatusesOptions{ListOptions: gl.ListOptions{PerPage: pageSize}, Name: optional(name), Ref: optional(ref)}
	var statuses []*gl.CommitStatus
	err := c.call(ctx, "list commit statuses", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
		var resp *gl.Response
		var err error
		statuses, resp, err = c.api.Commits.GetCommitStatuses(projectID, sha, opt, gl.WithContext(ctx))
		return resp, err
	})
	if err != nil {
		c.log.Warn("gitlab: cannot find the pipeline of an unchanged commit status", "project", projectID, "sha", sha, "name", name, "err", err)
		return 0
	}
	var newest *gl.CommitStatus
	for _, st := range statuses {
		if st.Name == name && (newest == nil || st.ID > newest.ID) {
			newest = st
		}
	}
	if newest == nil {
		return 0
	}
	return newest.PipelineID
}

// truncate shortens s to GitLab's status field limit without splitting a
// character, ending it with marker when it had to cut. Invalid UTF-8 is
// replaced, since GitLab would count it differently.
func truncate(s, marker string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= maxStatusField {
		return s
	}
	keep := maxStatusField - utf8.RuneCountInString(marker)
	cut := 0
	for i := range s {
		if keep == 0 {
			cut = i
			break
		}
		keep--
	}
	return s[:cut] + marker
}

// optional is nil for an empty string, so client-go leaves the field out.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
