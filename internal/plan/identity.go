package plan

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/token"
)

// errNotTheTokensProject explains why a delivery is not acted on: its
// project is not one its token speaks for.
var errNotTheTokensProject = errors.New("the delivery's project is not one its token speaks for")

// checkProject makes sure the delivery's project is the token's before
// anything is read from it or written to it. Intake binds the project ID
// of a token's first delivery as the payload states it, having checked
// only the payload's path against the token's scope; a payload may pair
// that path with another project's ID. So the first time a token speaks
// for a project ID, GitLab is asked which project the ID is: its path must
// be the payload's, and the token's scope must cover it. Then the binding
// is marked checked, and later deliveries (also after a rename out of the
// scope's path) need no question. A binding GitLab contradicts is dropped.
func (in *input) checkProject(ctx context.Context) error {
	p := in.p
	id := in.ev.Project.ID
	if in.d.TokenID == 0 || id == 0 {
		return nil // not from a webhook token (nothing to check it against)
	}
	bound, verified, err := p.opts.Store.Binding(ctx, in.d.TokenID, id)
	if err != nil {
		return err
	}
	if verified {
		return nil
	}
	rec, err := p.opts.Store.Token(ctx, in.d.TokenID)
	if err != nil {
		return err
	}
	refuse := func(why string) error {
		if bound {
			if err := p.opts.Store.DropBinding(ctx, in.d.TokenID, id); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: %s", errNotTheTokensProject, why)
	}
	info, err := in.forge.Project(ctx, strconv.FormatInt(id, 10))
	if errors.Is(err, forge.ErrNotFound) {
		return refuse(fmt.Sprintf("the bot cannot see project %d", id))
	}
	if err != nil {
		return err
	}
	if !strings.EqualFold(info.PathWithNamespace, in.ev.Project.PathWithNamespace) {
		return refuse(fmt.Sprintf("project %d is %s at GitLab, not %s as the payload says", id, info.PathWithNamespace, in.ev.Project.PathWithNamespace))
	}
	scope := token.Scope{Kind: token.ScopeKind(rec.ScopeKind), Instance: rec.Instance, Path: rec.ScopePath}
	if !scope.Covers(in.d.Instance, info.PathWithNamespace) {
		return refuse(fmt.Sprintf("project %d (%s) is outside the token's %s", id, info.PathWithNamespace, scope))
	}
	if bound {
		return p.opts.Store.VerifyBinding(ctx, in.d.TokenID, id, time.Now())
	}
	return nil
}

// confirmMR replaces what the payload says of a merge request with what
// GitLab says now: the source project (statuses go to its commit, and a
// fork's author meets the approval gate) and the author.
// Anyone holding the project's webhook token can write a payload naming
// another project as the source. A merge request GitLab does not know, or
// whose source or target is not the payload's, is not acted on.
func (in *input) confirmMR(ctx context.Context, mr *forge.MergeRequest) error {
	st, err := in.forge.MergeRequest(ctx, in.ev.Project.ID, mr.IID)
	if errors.Is(err, forge.ErrNotFound) {
		return fmt.Errorf("%w: project %d has no merge request !%d", errNotTheTokensProject, in.ev.Project.ID, mr.IID)
	}
	if err != nil {
		return err
	}
	if st.TargetProjectID != in.ev.Project.ID || (mr.SourceProject.ID != 0 && st.SourceProjectID != mr.SourceProject.ID) {
		return fmt.Errorf("%w: merge request !%d of project %d comes from project %d at GitLab, not %d as the payload says",
			errNotTheTokensProject, mr.IID, in.ev.Project.ID, st.SourceProjectID, mr.SourceProject.ID)
	}
	// The head commit stays the payload's: a push right after another
	// makes the first event's commit an older one, which still gets its
	// run. A holder of the project's token can already name any commit of
	// the project; what it must not do is name another project.
	mr.SourceProject.ID = st.SourceProjectID
	mr.AuthorID = st.AuthorID
	return nil
}
