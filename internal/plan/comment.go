package plan

import (
	"context"
	"fmt"
	"strings"

	"upbuild.dev/upbuild/internal/command"
	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/summary"
)

// supportedCommands are the comment commands this service acts on.
var supportedCommands = map[command.Name]bool{
	command.NameHelp: true, command.NameCoprBuild: true, command.NameBuild: true, command.NameTest: true,
	command.NameRetestFailed: true, command.NameRebuildFailed: true, command.NameApprove: true,
}

// comment handles a new comment: a /packit command or ordinary talk.
func (in *input) comment(ctx context.Context) error {
	p := in.p
	c := in.ev.Comment
	bot, err := p.bot(ctx, in.d.Instance, in.forge)
	if err != nil {
		return err
	}
	if in.ev.Actor.Username == bot.Username || (bot.ID != 0 && in.ev.Actor.ID == bot.ID) {
		return p.done(ctx, in.d.ID) // never answer ourselves
	}
	res := command.Parse(c.Body, p.opts.Policy.CommandPrefixes)
	if len(res.Commands) == 0 && len(res.Errors) == 0 {
		return p.done(ctx, in.d.ID)
	}
	var t target
	if in.ev.MR != nil {
		if err := in.confirmMR(ctx, in.ev.MR); err != nil {
			return err
		}
		t = in.mrTarget(in.ev.MR)
		t.runKey = fmt.Sprintf("cmd|%s|%d|%d", in.d.Instance, in.ev.Project.ID, c.ID)
	} else {
		t = target{sha: in.ev.SHA, source: in.ev.Project}
	}
	prefix := p.opts.Policy.CommandPrefixes[0]
	if len(res.Errors) > 0 {
		e := res.Errors[0]
		// The message quotes what was typed: escaped, so that a stranger
		// cannot make the bot mention people (@all) or link elsewhere.
		return in.answer(ctx, t, fmt.Sprintf("Sorry, I could not understand `%s`: %s\n\nComment `%s help` for the commands I know.",
			codeSpan(e.Raw), summary.Escape(e.Msg), prefix))
	}
	cmd := res.Commands[0]
	name := cmd.Name.Canonical()
	if !p.allowed(in.d.Instance, in.ev.Project.PathWithNamespace) {
		return in.refuseNotAllowed(ctx, t)
	}
	if name == command.NameHelp {
		return in.answer(ctx, t, command.Help(cmd.Prefix, supportedCommands))
	}
	if !supportedCommands[name] {
		return in.answer(ctx, t, fmt.Sprintf("`%s %s` is a Packit command that this service does not support. Comment `%s help` for the ones it does.",
			cmd.Prefix, name, prefix))
	}
	if in.ev.MR == nil {
		return in.answer(ctx, t, fmt.Sprintf("`%s %s` works in merge request comments; this service does not run it from a commit comment.", cmd.Prefix, name))
	}
	mrRef := store.MRRef{Instance: in.d.Instance, ProjectID: in.ev.Project.ID, IID: in.ev.MR.IID}
	level, err := in.forge.AccessLevel(ctx, in.ev.Project.ID, in.ev.Actor.ID)
	if err != nil {
		return fmt.Errorf("access level of the commenter: %w", err)
	}
	developer := level >= forge.Developer
	if name == command.NameApprove {
		if !developer {
			return in.answer(ctx, t, fmt.Sprintf("Sorry @%s, only project members with Developer access or more can approve a merge request's jobs.", in.ev.Actor.Username))
		}
		return in.approve(ctx, t, mrRef)
	}
	// The MR author may re-trigger their own MR, unless the approval gate holds it.
	author := in.ev.MR.AuthorID != 0 && in.ev.MR.AuthorID == in.ev.Actor.ID
	if !developer {
		held := false
		if author {
			held, _, err = in.gate(ctx, t)
			if err != nil {
				return err
			}
		}
		if !author || held {
			why := "only project members with Developer access or more, and the merge request's author, can start jobs"
			if held {
				why = "this merge request waits for a Developer's approval (`" + prefix + " approve`) before its jobs can run"
			}
			return in.answer(ctx, t, fmt.Sprintf("Sorry @%s, %s.", in.ev.Actor.Username, why))
		}
	}
	sel := &selection{includeManual: true, identifier: cmd.Identifier, labels: cmd.Labels, pkg: cmd.Package, commentID: in.ev.Comment.ID}
	switch name {
	case command.NameCoprBuild, command.NameRebuildFailed:
		sel.types = map[packitcfg.JobType]bool{packitcfg.JobCoprBuild: true, packitcfg.JobUpstreamKojiBuild: true}
	case command.NameTest, command.NameRetestFailed:
		sel.types = map[packitcfg.JobType]bool{packitcfg.JobTests: true}
	}
	if name == command.NameRetestFailed || name == command.NameRebuildFailed {
		states, err := in.p.opts.Store.LatestJobStates(ctx, mrRef, t.sha)
		if err != nil {
			return err
		}
		sel.onlyNames = map[string]bool{}
		for n, st := range states {
			if st == store.JobFailed || st == store.JobError {
				sel.onlyNames[n] = true
			}
		}
		if len(sel.onlyNames) == 0 {
			return in.answer(ctx, t, "Nothing failed at this commit, so there is nothing to run again.")
		}
	}
	// Acknowledge, then plan like an MR event limited to the selection.
	if err := in.p.opts.Store.AddActions(ctx, in.eyes()); err != nil {
		return err
	}
	return in.plan(ctx, t, nil, sel)
}

// approve records an approval for the MR's current commit and releases the
// jobs held for it.
func (in *input) approve(ctx context.Context, t target, mr store.MRRef) error {
	ids, err := in.p.opts.Store.ApproveCommit(ctx, mr, t.sha, in.ev.Actor.Username, "with /packit approve")
	if err != nil {
		return err
	}
	if err := in.p.opts.Store.AddActions(ctx, in.eyes()); err != nil {
		return err
	}
	if len(ids) > 0 {
		if err := in.p.opts.Enqueue(ctx, ids...); err != nil {
			in.p.opts.Logger.Error("enqueue approved jobs", "jobs", ids, "err", err)
		}
	}
	in.p.opts.Changed()
	return in.p.done(ctx, in.d.ID)
}

// eyes acknowledges a valid command with an award emoji.
func (in *input) eyes() store.ForgeAction {
	return store.ForgeAction{Instance: in.d.Instance, Kind: store.ActionAwardEmoji, ProjectID: in.ev.Project.ID,
		MRIID: in.ev.MR.IID, NoteID: in.ev.Comment.ID, Payload: map[string]any{"name": "eyes"},
		DedupKey: fmt.Sprintf("eyes|%s|%d", in.d.Instance, in.ev.Comment.ID)}
}

// answer replies to the comment and finishes the delivery.
func (in *input) answer(ctx context.Context, t target, body string) error {
	plan := store.Plan{DeliveryID: in.d.ID, Actions: []store.ForgeAction{in.reply(t, in.ev.Comment.ID, body)}}
	res, err := in.p.opts.Store.ApplyPlan(ctx, plan, nil)
	if err != nil {
		return err
	}
	in.p.afterPlan(ctx, res)
	return nil
}

// codeSpan quotes text a user wrote inside a Markdown code span safely.
func codeSpan(s string) string {
	s = strings.ReplaceAll(s, "`", "'")
	s = strings.ReplaceAll(s, "\n", " ")
	return truncate(s, 200)
}
