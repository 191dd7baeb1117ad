package gitlab

import (
	"context"
	"fmt"
	"io"
	"strconv"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/forge"
)

// pageSize is GitLab's largest page.
const pageSize = 100

// projectRef turns "42" into the number 42 for client-go, which escapes a
// path but sends a number as is.
func projectRef(idOrPath string) any {
	if id, err := strconv.ParseInt(idOrPath, 10, 64); err == nil {
		return id
	}
	return idOrPath
}

// Project implements forge.Forge.
func (c *Client) Project(ctx context.Context, idOrPath string) (forge.ProjectInfo, error) {
	var p *gl.Project
	err := c.call(ctx, "get project", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
		var resp *gl.Response
		var err error
		p, resp, err = c.api.Projects.GetProject(projectRef(idOrPath), nil, gl.WithContext(ctx))
		return resp, err
	})
	if err != nil {
		return forge.ProjectInfo{}, fmt.Errorf("gitlab: project %q: %w", idOrPath, err)
	}
	info := forge.ProjectInfo{Project: forge.Project{
		ID:                p.ID,
		PathWithNamespace: p.PathWithNamespace,
		WebURL:            p.WebURL,
		GitHTTPURL:        p.HTTPURLToRepo,
		DefaultBranch:     p.DefaultBranch,
		Visibility:        string(p.Visibility),
	}}
	if p.ForkedFromProject != nil {
		info.ForkedFromID = p.ForkedFromProject.ID
	}
	return info, nil
}

// FileAt implements forge.Forge.
func (c *Client) FileAt(ctx context.Context, projectID int64, path, ref string) ([]byte, error) {
	opt := &gl.GetRawFileOptions{}
	if ref != "" {
		opt.Ref = &ref
	}
	var content []byte
	err := c.call(ctx, "get file", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
		body, resp, err := c.api.RepositoryFiles.GetRawFileReader(projectID, path, opt, gl.WithContext(ctx))
		if err != nil {
			return resp, err
		}
		defer body.Close()
		content, err = io.ReadAll(io.LimitReader(body, c.maxFileSize+1))
		if err != nil {
			return resp, fmt.Errorf("read file body: %w", err)
		}
		if int64(len(content)) > c.maxFileSize {
			return resp, permanentError("file is larger than %d bytes", c.maxFileSize)
		}
		return resp, nil
	})
	if err != nil {
		return nil, fmt.Errorf("gitlab: file %q at %q in project %d: %w", path, ref, projectID, err)
	}
	return content, nil
}

// TopLevelFiles implements forge.Forge.
func (c *Client) TopLevelFiles(ctx context.Context, projectID int64, ref string) ([]string, error) {
	opt := &gl.ListTreeOptions{ListOptions: gl.ListOptions{PerPage: pageSize, Page: 1}}
	if ref != "" {
		opt.Ref = &ref
	}
	var names []string
	for {
		var nodes []*gl.TreeNode
		var next int64
		err := c.call(ctx, "list tree", safeToRepeat, func(ctx context.Context) (*gl.Response, error) {
			var resp *gl.Response
			var err error
			nodes, resp, err = c.api.Repositories.ListTree(projectID, opt, gl.WithContext(ctx))
			if resp != nil {
				next = resp.NextPage
			}
			return resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("gitlab: files at %q in project %d: %w", ref, projectID, err)
		}
		for _, node := range nodes {
			if node.Type == "blob" {
				names = append(names, node.Name)
			}
		}
		if next <= opt.Page {
			return names, nil
		}
		opt.Page = next
	}
}
