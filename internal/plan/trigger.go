package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/settings"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/summary"
	"upbuild.dev/upbuild/internal/upbuildcfg"
)

// input is one delivery being planned.
type input struct {
	p     *Planner
	d     store.UnplannedDelivery
	ev    forge.Event
	forge forge.Forge
	// settings are the project's settings-page overrides, read once per
	// delivery (see projectSettings).
	settings *projectSettings
}

// target describes what a run is about: which commit, where its code lives,
// and where feedback goes.
type target struct {
	trigger packitcfg.Trigger
	sha     string
	ref     string // source branch (MR), branch (push) or tag (release)
	// branchForFilter is what a job's `branch` regex is matched against:
	// the target branch of an MR, the pushed branch.
	branchForFilter string
	source          forge.Project // the project that holds the commit
	mr              *forge.MergeRequest
	runKey          string
	title           string
}

func (in *input) mergeRequest(ctx context.Context) error {
	mr := in.ev.MR
	ref := store.MRRef{Instance: in.d.Instance, ProjectID: in.ev.Project.ID, IID: mr.IID}
	switch mr.Action {
	case forge.MRClosed, forge.MRMerged:
		// Nothing left to test: stop what still runs for this MR.
		res, err := in.p.opts.Store.ApplyPlan(ctx, store.Plan{DeliveryID: in.d.ID, CancelMR: &ref}, nil)
		if err != nil {
			return err
		}
		in.p.afterPlan(ctx, res)
		return nil
	}
	if err := in.confirmMR(ctx, mr); err != nil {
		return err
	}
	t := in.mrTarget(mr)
	return in.plan(ctx, t, &ref, nil)
}

func (in *input) mrTarget(mr *forge.MergeRequest) target {
	return target{
		trigger: packitcfg.TriggerPullRequest, sha: mr.HeadSHA, ref: mr.SourceBranch, branchForFilter: mr.TargetBranch,
		source: mr.SourceProject, mr: mr, title: mr.Title,
		runKey: fmt.Sprintf("pr|%s|%d|%d|%s", in.d.Instance, in.ev.Project.ID, mr.IID, mr.HeadSHA),
	}
}

func (in *input) trigger(ctx context.Context, trig packitcfg.Trigger) error {
	t := target{trigger: trig, sha: in.ev.SHA, ref: in.ev.Ref, branchForFilter: in.ev.Ref, source: in.ev.Project}
	if trig == packitcfg.TriggerCommit {
		t.runKey = fmt.Sprintf("commit|%s|%d|%s|%s", in.d.Instance, in.ev.Project.ID, in.ev.Ref, in.ev.SHA)
	} else {
		// A GitLab release fires a Release Hook and a Tag Push Hook for the
		// same commit: one key, one run.
		t.runKey = fmt.Sprintf("release|%s|%d|%s", in.d.Instance, in.ev.Project.ID, in.ev.SHA)
		if in.ev.Release != nil && in.ev.Release.Tag != "" {
			t.ref = in.ev.Release.Tag
		}
	}
	return in.plan(ctx, t, nil, nil)
}

// selection narrows the jobs of a run started by a comment command.
type selection struct {
	types      map[packitcfg.JobType]bool
	identifier string
	labels     []string
	pkg        string
	// onlyNames keeps jobs whose status name is in the set (retest-failed).
	onlyNames map[string]bool
	// includeManual runs manual_trigger jobs too (a comment is what they wait for).
	includeManual bool
	commentID     int64
}

// plan loads the config at the target commit and writes the run.
func (in *input) plan(ctx context.Context, t target, cancel *store.MRRef, sel *selection) error {
	p := in.p
	if !p.allowed(in.d.Instance, in.ev.Project.PathWithNamespace) {
		return in.refuseNotAllowed(ctx, t)
	}
	cfg, extra, cfgErr, err := in.loadConfig(ctx, t)
	if err != nil {
		return err
	}
	run := &store.Run{
		Instance: in.d.Instance, ProjectID: in.ev.Project.ID, ProjectPath: in.ev.Project.PathWithNamespace,
		Trigger: string(t.trigger), RunKey: t.runKey, SHA: t.sha, Ref: t.ref, SourceProjectID: t.source.ID,
		SourceProjectPath: t.source.PathWithNamespace, Actor: in.ev.Actor.Username, Title: truncate(t.title, 500),
		DeliveryID: in.d.ID, State: store.RunRunning, Visibility: in.ev.Project.Visibility,
		SummaryComment: extra.settings.SummaryComment && t.mr != nil,
	}
	if t.mr != nil {
		run.MRIID, run.TargetBranch = t.mr.IID, t.mr.TargetBranch
	}
	plan := store.Plan{DeliveryID: in.d.ID, Run: run, CancelMR: cancel}
	switch {
	case cfg == nil && cfgErr == "":
		// No config file at this commit: Packit does nothing, and so do we.
		if sel != nil {
			plan.Actions = append(plan.Actions, in.reply(t, sel.commentID, "There is no `.packit.yaml` at this commit, so there is nothing to run."))
		}
		plan.Run = nil
	case cfgErr != "" && t.trigger == packitcfg.TriggerCommit && t.ref != in.ev.Project.DefaultBranch:
		// A broken config on a side branch is reported where it matters:
		// on its merge request, or once it reaches the default branch.
		plan.Run = nil
	case cfgErr != "":
		run.State, run.Message, run.ConfigFile = store.RunConfigError, cfgErr, extra.file
		if !run.SummaryComment {
			plan.Actions = append(plan.Actions, in.say(t, "cfgerr|"+t.runKey, cfgErr))
		}
	default:
		run.ConfigFile = cfg.File
		if t.mr != nil && t.mr.Draft && !extra.settings.Drafts && sel == nil {
			// Drafts run only when .upbuild.yaml asks for it.
			plan.Run = nil
			break
		}
		held, heldMsg, err := in.gate(ctx, t)
		if err != nil {
			return err
		}
		plan.Jobs = in.jobs(cfg, t, sel, held)
		if len(plan.Jobs) == 0 {
			if sel != nil {
				plan.Actions = append(plan.Actions, in.reply(t, sel.commentID, "No job in `"+cfg.File+"` matches this command."))
			}
			plan.Run = nil
			break
		}
		if held {
			run.State, run.Message = store.RunWaiting, heldMsg
			if !run.SummaryComment {
				plan.Actions = append(plan.Actions, in.say(t, "gate|"+t.runKey, heldMsg))
			}
		} else if !anyOpen(plan.Jobs) {
			run.State = store.RunFinished
		}
		if len(cfg.Warnings) > 0 || extra.warning != "" {
			run.Message = strings.Join(append(slices.Clone(cfg.Warnings), extra.warning), "\n")
		}
	}
	res, err := p.opts.Store.ApplyPlan(ctx, plan, in.statusFor(t))
	if err != nil {
		return err
	}
	if plan.Run != nil && plan.Run.SummaryComment && res.Created {
		if err := in.renderSummary(ctx, res.RunID); err != nil {
			return err
		}
	}
	p.afterPlan(ctx, res)
	return nil
}

// renderSummary records the MR's summary comment for a new run; the
// reporter keeps it up to date as the jobs move.
func (in *input) renderSummary(ctx context.Context, runID int64) error {
	run, err := in.p.opts.Store.Run(ctx, runID)
	if err != nil {
		return err
	}
	jobs, err := in.p.opts.Store.RunJobs(ctx, runID)
	if err != nil {
		return err
	}
	mr := store.MRRef{Instance: run.Instance, ProjectID: run.ProjectID, IID: run.MRIID}
	return in.p.opts.Store.SetMRComment(ctx, mr, store.CommentSummary, summary.Render(run, jobs, in.p.opts.PublicURL))
}

func anyOpen(jobs []store.Job) bool {
	for _, j := range jobs {
		if !store.JobFinal(j.State) {
			return true
		}
	}
	return false
}

// afterPlan enqueues what the plan queued and nudges the reporter. A failed
// enqueue is not lost: the queued job rows stay, and Recover enqueues them.
func (p *Planner) afterPlan(ctx context.Context, res store.PlanResult) {
	if p.opts.Cancel != nil {
		for _, j := range res.Canceled {
			if err := p.opts.Cancel(ctx, j.ID); err != nil {
				p.opts.Logger.Warn("cancel superseded job", "job", j.ID, "err", err)
			}
		}
	}
	var queued []int64
	for _, id := range res.JobIDs {
		j, err := p.opts.Store.Job(ctx, id)
		if err == nil && j.State == store.JobQueued {
			queued = append(queued, id)
		}
	}
	if len(queued) > 0 {
		if err := p.opts.Enqueue(ctx, queued...); err != nil {
			p.opts.Logger.Error("enqueue jobs", "jobs", queued, "err", err)
		}
	}
	p.opts.Changed()
}

// statusFor builds the first commit status of each job.
func (in *input) statusFor(t target) func(store.Run, store.Job) *store.StatusUpdate {
	return func(r store.Run, j store.Job) *store.StatusUpdate {
		if j.State == store.JobWaiting {
			return nil // manual jobs show nothing until a comment starts them
		}
		u := &store.StatusUpdate{Instance: r.Instance, ProjectID: r.SourceProjectID, SHA: r.SHA, Name: j.StatusName,
			JobID: j.ID, Ref: r.Ref, State: store.GitLabState(j.State), Description: j.Description,
			TargetURL: in.p.jobURL(j.ID), MRIID: r.MRIID, TargetProjectID: r.ProjectID}
		return u
	}
}

// jobs expands the config's matching jobs into one job per (job, target, package).
func (in *input) jobs(cfg *packitcfg.Config, t target, sel *selection, held bool) []store.Job {
	var out []store.Job
	for i := range cfg.Jobs {
		job := &cfg.Jobs[i]
		if job.Trigger != t.trigger || !in.matches(job, t, sel) {
			continue
		}
		state, desc := store.JobQueued, "Waiting for a worker"
		switch {
		case !Supported(job.Type):
			state, desc = store.JobSkipped, fmt.Sprintf("%s is not supported by this service", job.Type)
		case job.ManualTrigger && (sel == nil || !sel.includeManual):
			state, desc = store.JobWaiting, "Waiting for a /packit command"
		case held:
			state, desc = store.JobHeld, "Waiting for approval: a Developer must comment /packit approve, or approve on the run page"
		}
		targets := jobTargets(job, in.p.opts.Policy.Aliases)
		for _, tg := range targets {
			name := packitcfg.StatusName(job, t.ref, tg)
			if sel != nil && sel.onlyNames != nil && !sel.onlyNames[name] {
				continue
			}
			out = append(out, store.Job{JobType: string(job.Type), JobIndex: job.Index, Package: job.PackageName,
				Target: tg, Identifier: job.Identifier, StatusName: name, State: state, Description: desc,
				Spec: jobSpec(job)})
		}
	}
	return out
}

// matches applies a job's branch filter, label requirements and a comment's selection.
func (in *input) matches(job *packitcfg.Job, t target, sel *selection) bool {
	switch t.trigger {
	case packitcfg.TriggerCommit:
		if job.Branch != "" {
			if !packitcfg.BranchMatches(job.Branch, t.branchForFilter) {
				return false
			}
		} else if t.branchForFilter != in.ev.Project.DefaultBranch {
			return false
		}
	case packitcfg.TriggerPullRequest:
		if job.Branch != "" && !packitcfg.BranchMatches(job.Branch, t.branchForFilter) {
			return false
		}
	}
	if t.mr != nil {
		for _, l := range job.RequireLabelsPresent {
			if !slices.Contains(t.mr.Labels, l) {
				return false
			}
		}
		for _, l := range job.RequireLabelsAbsent {
			if slices.Contains(t.mr.Labels, l) {
				return false
			}
		}
	}
	if sel == nil {
		return true
	}
	if sel.types != nil && !sel.types[job.Type] {
		return false
	}
	if sel.identifier != "" && job.Identifier != sel.identifier {
		return false
	}
	if sel.pkg != "" && job.PackageName != sel.pkg {
		return false
	}
	for _, l := range sel.labels {
		if !slices.Contains(job.Labels, l) {
			return false
		}
	}
	return true
}

// Supported reports whether this service can run a job type.
func Supported(t packitcfg.JobType) bool {
	switch t {
	case packitcfg.JobCoprBuild, packitcfg.JobUpstreamKojiBuild, packitcfg.JobTests:
		return true
	}
	return false
}

// gate decides whether an MR's jobs wait for /packit approve.
func (in *input) gate(ctx context.Context, t target) (bool, string, error) {
	if t.mr == nil {
		return false, "", nil
	}
	policy, err := in.approvalPolicy(ctx)
	if err != nil {
		return false, "", err
	}
	if policy == settings.ApprovalOff {
		return false, "", nil
	}
	fork := t.mr.SourceProject.ID != 0 && t.mr.SourceProject.ID != in.ev.Project.ID
	if policy == settings.ApprovalForks && !fork {
		return false, "", nil
	}
	level, err := in.forge.AccessLevel(ctx, in.ev.Project.ID, t.mr.AuthorID)
	if err != nil {
		return false, "", fmt.Errorf("access level of the MR author: %w", err)
	}
	if level >= forge.Developer {
		return false, "", nil
	}
	ok, err := in.p.opts.Store.Approved(ctx, store.MRRef{Instance: in.d.Instance, ProjectID: in.ev.Project.ID, IID: t.mr.IID}, t.sha)
	if err != nil || ok {
		return false, "", err
	}
	short := t.sha
	if len(short) > 8 {
		short = short[:8]
	}
	whose := "from forks"
	if policy == settings.ApprovalAll {
		whose = "by people without Developer access"
	}
	return true, fmt.Sprintf("upbuild runs merge requests %s only after a project member with Developer access "+
		"has looked at the change. A Developer can start the jobs for commit %s by commenting `%s approve`. "+
		"New commits need a new approval.", whose, short, in.p.opts.Policy.CommandPrefixes[0]), nil
}

func jobSpec(job *packitcfg.Job) string {
	spec := store.JobSpec{FailureComment: job.Notifications.FailureCommentMessage, SuccessfulBuild: job.Notifications.PullRequestSuccessfulBuild}
	b, err := json.Marshal(spec)
	if err != nil {
		return "{}"
	}
	return string(b)
}

type configExtra struct {
	file     string
	warning  string
	settings upbuildcfg.Settings
}

// loadConfig reads .packit.yaml (and .upbuild.yaml) at the target commit,
// from the project that holds it, and merges the project's settings over
// it (see package settings). It returns cfg nil and cfgErr "" when neither
// the commit nor the settings have a config; cfgErr is a Markdown message
// for a broken one.
func (in *input) loadConfig(ctx context.Context, t target) (*packitcfg.Config, configExtra, string, error) {
	var extra configExtra
	files, err := in.cachedFiles(ctx, t)
	if err != nil {
		if errors.Is(err, forge.ErrNotFound) {
			return nil, extra, "", nil
		}
		return nil, extra, "", fmt.Errorf("list files at %s: %w", t.sha, err)
	}
	ps, err := in.projectSettings(ctx)
	if err != nil {
		return nil, extra, "", err
	}
	if ps.problem != "" {
		return nil, extra, ps.problem, nil
	}
	name, warning := packitcfg.FindConfigFile(files)
	extra.file, extra.warning = name, warning
	var repo *packitcfg.Config
	if name != "" {
		data, err := in.cachedFile(ctx, t, name)
		switch {
		case errors.Is(err, forge.ErrNotFound):
			extra.file = ""
		case err != nil:
			return nil, extra, "", fmt.Errorf("read %s: %w", name, err)
		default:
			in.recordDefaultBranchConfig(ctx, t, name, data, files)
			repo, err = packitcfg.Load(name, data, packitcfg.Options{RepoName: path.Base(t.source.PathWithNamespace), RepoFiles: files})
			if err != nil {
				return nil, extra, configErrorMessage(name, t.sha, err), nil
			}
		}
	}
	eff, err := settings.Apply(repo, ps.s, settings.Project{RepoName: path.Base(t.source.PathWithNamespace), RepoFiles: files,
		OperatorApprovalPolicy: in.p.opts.Policy.ApprovalPolicy})
	if err != nil {
		return nil, extra, configErrorMessage(settings.FallbackFileName, t.sha, err), nil
	}
	cfg := eff.Config
	if cfg == nil {
		return nil, extra, "", nil
	}
	extra.file = cfg.File
	if err := pathsInsideRepo(cfg.File, cfg); err != nil {
		return nil, extra, configErrorMessage(cfg.File, t.sha, err), nil
	}
	if slices.Contains(files, upbuildcfg.FileName) {
		raw, err := in.cachedFile(ctx, t, upbuildcfg.FileName)
		if err != nil && !errors.Is(err, forge.ErrNotFound) {
			return nil, extra, "", fmt.Errorf("read .upbuild.yaml: %w", err)
		}
		if err == nil {
			s, perr := upbuildcfg.Parse(raw)
			if perr != nil {
				return nil, extra, configErrorMessage(upbuildcfg.FileName, t.sha, perr), nil
			}
			extra.settings = s
		}
	}
	return cfg, extra, "", nil
}

func configErrorMessage(file, sha string, err error) string {
	var b strings.Builder
	short := sha
	if len(short) > 8 {
		short = short[:8]
	}
	fmt.Fprintf(&b, "upbuild could not use `%s` at commit %s, so nothing runs for it:\n\n", file, short)
	list := packitcfg.Errors(err)
	if len(list) == 0 {
		fmt.Fprintf(&b, "- %s\n", summary.Escape(err.Error()))
	}
	for _, e := range list {
		fmt.Fprintf(&b, "- `%s` line %d, column %d: %s\n", file, e.Line, e.Column, summary.Escape(e.Msg))
	}
	b.WriteString("\nCheck it locally with `upbuild config check " + file + "`.")
	return b.String()
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// say posts a message where the event happened: on the MR, else on the commit.
func (in *input) say(t target, key, body string) store.ForgeAction {
	a := store.ForgeAction{Instance: in.d.Instance, ProjectID: in.ev.Project.ID, Payload: map[string]any{"body": body}, DedupKey: key}
	if t.mr != nil {
		a.Kind, a.MRIID = store.ActionMRNote, t.mr.IID
	} else {
		a.Kind, a.SHA = store.ActionCommitComment, t.sha
	}
	return a
}

// reply answers a comment.
func (in *input) reply(t target, commentID int64, body string) store.ForgeAction {
	return in.say(t, fmt.Sprintf("reply|%s|%d", in.d.Instance, commentID), body)
}

// refuseNotAllowed explains, once per merge request, that the project is
// outside the allow-list. Pushes, tags and releases get no comment: a
// commit comment on every push would be noise, and nothing runs anyway.
func (in *input) refuseNotAllowed(ctx context.Context, t target) error {
	msg := "This project is not in the list of namespaces this upbuild service works for, so nothing runs here. " +
		"Ask the service's operator to add it, or remove the webhook."
	plan := store.Plan{DeliveryID: in.d.ID}
	if t.mr != nil {
		plan.Actions = append(plan.Actions, in.say(t, fmt.Sprintf("notallowed|%s|%d|%d", in.d.Instance, in.ev.Project.ID, t.mr.IID), msg))
	}
	res, err := in.p.opts.Store.ApplyPlan(ctx, plan, nil)
	if err != nil {
		return err
	}
	in.p.afterPlan(ctx, res)
	return nil
}

// jobTargets lists what a job runs on: chroots for builds and tests, the
// dist-git branches for downstream jobs (as written; this service does not
// run those, it only names them in their "not supported" status).
func jobTargets(job *packitcfg.Job, aliases packitcfg.AliasTable) []string {
	if len(job.DistGitBranches) > 0 && !Supported(job.Type) {
		out := make([]string, 0, len(job.DistGitBranches))
		for _, b := range job.DistGitBranches {
			out = append(out, b.Name)
		}
		return out
	}
	targets, err := packitcfg.ResolveTargets(job, aliases)
	if err != nil || len(targets) == 0 {
		return []string{""}
	}
	return targets
}

// A commit's files never change, so what the planner read at a SHA is kept
// for the next event about the same commit (a branch push and the MR it
// opens, a release and its tag): fewer calls against the instance's budget.

func (in *input) cacheKey(t target, what string) string {
	return fmt.Sprintf("%s|%d|%s|%s", in.d.Instance, t.source.ID, t.sha, what)
}

func (in *input) cachedFiles(ctx context.Context, t target) ([]string, error) {
	key := in.cacheKey(t, "\x00tree")
	if v, ok := in.p.files.get(key); ok {
		return strings.Split(string(v), "\x00"), nil
	}
	files, err := in.forge.TopLevelFiles(ctx, t.source.ID, t.sha)
	if err != nil {
		return nil, err
	}
	in.p.files.put(key, []byte(strings.Join(files, "\x00")))
	return files, nil
}

func (in *input) cachedFile(ctx context.Context, t target, name string) ([]byte, error) {
	key := in.cacheKey(t, name)
	if v, ok := in.p.files.get(key); ok {
		return v, nil
	}
	data, err := in.forge.FileAt(ctx, t.source.ID, name, t.sha)
	if err != nil {
		return nil, err
	}
	in.p.files.put(key, data)
	return data, nil
}

// pathsInsideRepo refuses a config whose package paths or spec files lie
// outside the repository (absolute, or climbing out with ".."): nothing
// would build, and no job should be planned to try.
func pathsInsideRepo(file string, cfg *packitcfg.Config) error {
	var errs []error
	seen := map[string]bool{}
	for _, j := range cfg.Jobs {
		dir := "."
		if len(j.Paths) > 0 {
			dir = j.Paths[0]
		}
		for what, p := range map[string]string{"paths": dir, "specfile_path": filepath.Join(dir, j.SpecfilePath)} {
			if p == "" || filepath.IsLocal(filepath.Clean(p)) || filepath.Clean(p) == "." || seen[what+p] {
				continue
			}
			seen[what+p] = true
			errs = append(errs, &packitcfg.Error{File: file, Line: j.Line, Column: j.Column,
				Msg: fmt.Sprintf("%s %q points outside the repository", what, p)})
		}
	}
	return errors.Join(errs...)
}
