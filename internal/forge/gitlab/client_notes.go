package gitlab

import (
	"context"
	"errors"
	"fmt"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/forge"
)

// CreateMRNote implements forge.Forge.
func (c *Client) CreateMRNote(ctx context.Context, projectID, iid int64, body string) (int64, error) {
	var note *gl.Note
	err := c.call(ctx, "create merge request note", sendOnce, func(ctx context.Context) (*gl.Response, error) {
		var resp *gl.Response
		var err error
		note, resp, err = c.api.Notes.CreateMergeRequestNote(projectID, iid, &gl.CreateMergeRequestNoteOptions{Body: &body}, gl.WithContext(ctx))
		return resp, err
	})
	if err != nil {
		return 0, fmt.Errorf("gitlab: comment on merge request !%d in project %d: %w", iid, projectID, err)
	}
	return note.ID, nil
}

// UpdateMRNote implements forge.Forge.
func (c *Client) UpdateMRNote(ctx context.Context, projectID, iid, noteID int64, body string) error {
	err := c.call(ctx, "update merge request note", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
		_, resp, err := c.api.Notes.UpdateMergeRequestNote(projectID, iid, noteID, &gl.UpdateMergeRequestNoteOptions{Body: &body}, gl.WithContext(ctx))
		return resp, err
	})
	if err != nil {
		return fmt.Errorf("gitlab: edit note %d on merge request !%d in project %d: %w", noteID, iid, projectID, err)
	}
	return nil
}

// MRNotes implements forge.Forge.
func (c *Client) MRNotes(ctx context.Context, projectID, iid int64) ([]forge.Note, error) {
	opt := &gl.ListMergeRequestNotesOptions{
		ListOptions: gl.ListOptions{PerPage: pageSize, Page: 1},
		OrderBy:     gl.Ptr("created_at"),
		Sort:        gl.Ptr("asc"),
	}
	var out []forge.Note
	for {
		var notes []*gl.Note
		var next int64
		err := c.call(ctx, "list merge request notes", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
			var resp *gl.Response
			var err error
			notes, resp, err = c.api.Notes.ListMergeRequestNotes(projectID, iid, opt, gl.WithContext(ctx))
			if resp != nil {
				next = resp.NextPage
			}
			return resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("gitlab: notes of merge request !%d in project %d: %w", iid, projectID, err)
		}
		for _, n := range notes {
			out = append(out, forge.Note{ID: n.ID, Body: n.Body, AuthorID: n.Author.ID, AuthorUsername: n.Author.Username, System: n.System})
		}
		if next <= opt.Page {
			return out, nil
		}
		opt.Page = next
	}
}

// CreateCommitComment implements forge.Forge.
func (c *Client) CreateCommitComment(ctx context.Context, projectID int64, sha, body string) error {
	err := c.call(ctx, "create commit comment", sendOnce, func(ctx context.Context) (*gl.Response, error) {
		_, resp, err := c.api.Commits.PostCommitComment(projectID, sha, &gl.PostCommitCommentOptions{Note: &body}, gl.WithContext(ctx))
		return resp, err
	})
	if err != nil {
		return fmt.Errorf("gitlab: comment on commit %s in project %d: %w", sha, projectID, err)
	}
	return nil
}

// AwardEmojiOnMRNote implements forge.Forge.
func (c *Client) AwardEmojiOnMRNote(ctx context.Context, projectID, iid, noteID int64, name string) error {
	// Safe to repeat: a second award of the same emoji is refused and then
	// recognised below as already done.
	err := c.call(ctx, "award emoji", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
		_, resp, err := c.api.AwardEmoji.CreateMergeRequestAwardEmojiOnNote(projectID, iid, noteID, &gl.CreateAwardEmojiOptions{Name: name}, gl.WithContext(ctx))
		return resp, err
	})
	if err == nil {
		return nil
	}
	// GitLab refuses a duplicate award with 404 "has already been taken",
	// and client-go drops the body of a 404, so look whether the bot's
	// award is there.
	if errors.Is(err, forge.ErrNotFound) {
		if awarded, lookupErr := c.awardedByBot(ctx, projectID, iid, noteID, name); lookupErr == nil && awarded {
			return nil
		}
	}
	return fmt.Errorf("gitlab: award %q on note %d of merge request !%d in project %d: %w", name, noteID, iid, projectID, err)
}

func (c *Client) awardedByBot(ctx context.Context, projectID, iid, noteID int64, name string) (bool, error) {
	bot, err := c.CurrentUser(ctx)
	if err != nil {
		return false, err
	}
	opt := &gl.ListAwardEmojiOptions{ListOptions: gl.ListOptions{PerPage: pageSize, Page: 1}}
	for {
		var awards []*gl.AwardEmoji
		var next int64
		err := c.call(ctx, "list award emoji", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
			var resp *gl.Response
			var err error
			awards, resp, err = c.api.AwardEmoji.ListMergeRequestAwardEmojiOnNote(projectID, iid, noteID, opt, gl.WithContext(ctx))
			if resp != nil {
				next = resp.NextPage
			}
			return resp, err
		})
		if err != nil {
			return false, err
		}
		for _, a := range awards {
			if a.Name == name && a.User.ID == bot.ID {
				return true, nil
			}
		}
		if next <= opt.Page {
			return false, nil
		}
		opt.Page = next
	}
}

// CreateIssue implements forge.Forge.
func (c *Client) CreateIssue(ctx context.Context, projectID int64, title, body string, confidential bool) (int64, error) {
	opt := &gl.CreateIssueOptions{Title: &title, Description: &body, Confidential: &confidential}
	var issue *gl.Issue
	err := c.call(ctx, "create issue", sendOnce, func(ctx context.Context) (*gl.Response, error) {
		var resp *gl.Response
		var err error
		issue, resp, err = c.api.Issues.CreateIssue(projectID, opt, gl.WithContext(ctx))
		return resp, err
	})
	if err != nil {
		return 0, fmt.Errorf("gitlab: open an issue in project %d: %w", projectID, err)
	}
	return issue.IID, nil
}

// MergeRequest implements forge.Forge.
func (c *Client) MergeRequest(ctx context.Context, projectID, iid int64) (forge.MRState, error) {
	var mr *gl.MergeRequest
	err := c.call(ctx, "get merge request", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
		var resp *gl.Response
		var err error
		mr, resp, err = c.api.MergeRequests.GetMergeRequest(projectID, iid, nil, gl.WithContext(ctx))
		return resp, err
	})
	if err != nil {
		return forge.MRState{}, fmt.Errorf("gitlab: merge request !%d in project %d: %w", iid, projectID, err)
	}
	st := forge.MRState{SourceProjectID: mr.SourceProjectID, TargetProjectID: mr.TargetProjectID, HeadSHA: mr.SHA}
	if mr.Author != nil {
		st.AuthorID = mr.Author.ID
	}
	return st, nil
}
