package plan

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/settings"
	"upbuild.dev/upbuild/internal/store"
)

// projectSettings are a project's settings as the planner uses them.
type projectSettings struct {
	s settings.Settings
	// problem is a Markdown message when the stored settings cannot be
	// read (saved by a newer upbuild): nothing runs until they can.
	problem string
}

// projectSettings reads the project's settings from the store, once per
// delivery. They are never cached across deliveries: a save applies to the
// very next run. (What is cached per commit is only what GitLab returned,
// which settings do not change.)
func (in *input) projectSettings(ctx context.Context) (*projectSettings, error) {
	if in.settings != nil {
		return in.settings, nil
	}
	row, _, err := in.p.opts.Store.ProjectSettings(ctx, in.d.Instance, in.ev.Project.ID)
	if err != nil {
		return nil, err
	}
	ps := &projectSettings{}
	if ps.s, err = settings.Decode(row.Data); err != nil {
		ps.problem = fmt.Sprintf("upbuild could not read this project's settings (version %d, saved by %s), so nothing runs: %s. "+
			"An operator can run a newer upbuild, or a maintainer can save the settings page again.",
			row.Version, row.UpdatedBy, err)
	}
	in.settings = ps
	return ps, nil
}

// approvalPolicy is the merge request gate's policy for this project: the
// operator's, or the project's where that is stricter. Settings that cannot
// be read hold every merge request.
func (in *input) approvalPolicy(ctx context.Context) (string, error) {
	ps, err := in.projectSettings(ctx)
	if err != nil {
		return "", err
	}
	if ps.problem != "" {
		return settings.ApprovalAll, nil
	}
	return settings.Stricter(in.p.opts.Policy.ApprovalPolicy, ps.s.ApprovalPolicy), nil
}

// recordDefaultBranchConfig keeps the config file of a push to the
// project's default branch in the store, for the settings page's preview.
// A failure costs only the preview's freshness, so it is logged, not
// returned.
func (in *input) recordDefaultBranchConfig(ctx context.Context, t target, file string, data []byte, files []string) {
	if t.trigger != packitcfg.TriggerCommit || t.ref == "" || t.ref != in.ev.Project.DefaultBranch || t.source.ID != in.ev.Project.ID {
		return
	}
	// PostgreSQL's TEXT holds neither NULs nor invalid UTF-8; Load would
	// refuse such a file anyway.
	if !utf8.Valid(data) || slices.Contains(data, 0) {
		return
	}
	key := fmt.Sprintf("%s|%d", in.d.Instance, in.ev.Project.ID)
	digest := sha256.Sum256([]byte(file + "\x00" + string(data) + "\x00" + strings.Join(files, "\x00")))
	p := in.p
	p.mu.Lock()
	same := p.recorded[key] == digest
	p.mu.Unlock()
	if same {
		return
	}
	err := p.opts.Store.RecordProjectConfig(ctx, store.ProjectConfig{Instance: in.d.Instance, ProjectID: in.ev.Project.ID,
		Ref: t.ref, SHA: t.sha, File: file, Content: data, RepoFiles: files})
	if err != nil {
		p.opts.Logger.Warn("record the default branch's config for the settings preview", "project", in.ev.Project.ID, "err", err)
		return
	}
	p.mu.Lock()
	p.recorded[key] = digest
	p.mu.Unlock()
}
