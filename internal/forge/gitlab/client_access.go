package gitlab

import (
	"context"
	"errors"
	"fmt"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/forge"
)

// AccessLevel implements forge.Forge with GET /projects/:id/members/all/:user_id,
// which includes roles inherited from groups.
func (c *Client) AccessLevel(ctx context.Context, projectID, userID int64) (forge.AccessLevel, error) {
	var m *gl.ProjectMember
	err := c.call(ctx, "get effective member", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
		var resp *gl.Response
		var err error
		m, resp, err = c.api.ProjectMembers.GetInheritedProjectMember(projectID, userID, gl.WithContext(ctx))
		return resp, err
	})
	switch {
	case err == nil:
		return forge.AccessLevel(m.AccessLevel), nil
	case errors.Is(err, forge.ErrNotFound):
		// GitLab answers 404 for a user who is no member at all.
		return forge.NoAccess, nil
	default:
		return forge.NoAccess, fmt.Errorf("gitlab: access of user %d to project %d: %w", userID, projectID, err)
	}
}

// CurrentUser implements forge.Forge. The answer is kept: the token's
// account does not change while the client lives.
func (c *Client) CurrentUser(ctx context.Context) (forge.User, error) {
	c.userMu.Lock()
	defer c.userMu.Unlock()
	if c.user != nil {
		return *c.user, nil
	}
	var u *gl.User
	err := c.call(ctx, "get current user", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
		var resp *gl.Response
		var err error
		u, resp, err = c.api.Users.CurrentUser(gl.WithContext(ctx))
		return resp, err
	})
	if err != nil {
		return forge.User{}, fmt.Errorf("gitlab: current user: %w", err)
	}
	c.user = &forge.User{ID: u.ID, Username: u.Username}
	return *c.user, nil
}

// CreateProjectHook implements forge.Forge.
func (c *Client) CreateProjectHook(ctx context.Context, projectID int64, h forge.HookOptions) (int64, error) {
	opt := &gl.AddProjectHookOptions{
		URL:                   &h.URL,
		PushEvents:            gl.Ptr(true),
		TagPushEvents:         &h.TagPushEvents,
		MergeRequestsEvents:   &h.MergeRequestEvents,
		NoteEvents:            &h.NoteEvents,
		ReleasesEvents:        &h.ReleaseEvents,
		EnableSSLVerification: gl.Ptr(!h.SkipTLSVerify),
		Token:                 optional(h.Token),
		SigningToken:          optional(h.SigningToken),
	}
	var hook *gl.ProjectHook
	err := c.call(ctx, "create project hook", sendOnce, func(ctx context.Context) (*gl.Response, error) {
		var resp *gl.Response
		var err error
		hook, resp, err = c.api.Projects.AddProjectHook(projectID, opt, gl.WithContext(ctx))
		return resp, err
	}, h.Token, h.SigningToken)
	if err != nil {
		// The hook URL may carry a secret in its query, so it is not quoted.
		return 0, fmt.Errorf("gitlab: add a webhook to project %d: %w", projectID, err)
	}
	return hook.ID, nil
}
