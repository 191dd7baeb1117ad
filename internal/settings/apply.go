package settings

import (
	"fmt"
	"slices"
	"strings"

	"upbuild.dev/upbuild/internal/packitcfg"
)

// Project says what Apply needs to know about the project and the operator.
type Project struct {
	// RepoName and RepoFiles feed the fallback config's defaults (the
	// package name, the spec file found in the repository).
	RepoName  string
	RepoFiles []string
	// OperatorApprovalPolicy is the instance's policy ("" means forks).
	OperatorApprovalPolicy string
}

// Effective is the configuration a run uses.
type Effective struct {
	// Config is the merged config; nil when neither the commit nor the
	// settings have one (nothing runs).
	Config *packitcfg.Config
	// FromFallback is true when Config came from the settings' fallback.
	FromFallback bool
	// ApprovalPolicy is the policy the run's merge request gate applies.
	ApprovalPolicy string
	// Changes say, in words, what the settings changed in the config.
	Changes []string
}

// Apply merges s over repo, the .packit.yaml at the commit (nil when the
// commit has none). repo is not modified. The error holds the fallback
// config's problems (see packitcfg.Errors) when it is used and cannot be
// loaded.
func Apply(repo *packitcfg.Config, s Settings, p Project) (Effective, error) {
	eff := Effective{ApprovalPolicy: Stricter(p.OperatorApprovalPolicy, s.ApprovalPolicy)}
	if s.ApprovalPolicy != ApprovalInherit && eff.ApprovalPolicy != s.ApprovalPolicy {
		eff.Changes = append(eff.Changes, fmt.Sprintf("approval policy %q is looser than the operator's %q, which applies",
			s.ApprovalPolicy, eff.ApprovalPolicy))
	}
	if repo == nil && s.FallbackConfig != "" {
		cfg, err := packitcfg.Load(FallbackFileName, []byte(s.FallbackConfig), packitcfg.Options{RepoName: p.RepoName, RepoFiles: p.RepoFiles})
		if err != nil {
			return eff, err
		}
		repo, eff.FromFallback = cfg, true
		eff.Changes = append(eff.Changes, "the commit has no .packit.yaml: the fallback config from the settings is used")
	}
	if repo == nil {
		return eff, nil
	}
	cfg := *repo
	cfg.Warnings = slices.Clone(repo.Warnings)
	type item struct {
		index int
		pkg   string
	}
	seen := map[item]bool{}
	var jobs []view
	for _, job := range repo.Jobs {
		it := item{job.Index, job.PackageName}
		jobs = append(jobs, overrideJob(job, !seen[it], s, &eff)...)
		seen[it] = true
	}
	cfg.Jobs = dedupe(jobs, &eff)
	eff.Config = &cfg
	return eff, nil
}

// view is a job view and whether a trigger override produced it.
type view struct {
	job       packitcfg.Job
	retrigged bool
}

// overrideJob applies the settings to one job view. A trigger override
// turns the views of one `jobs:` item and package (one per trigger) into
// one view per new trigger: the first view stands for them, later ones
// give nothing.
func overrideJob(job packitcfg.Job, first bool, s Settings, eff *Effective) []view {
	var o *JobOverride
	for i := range s.Jobs {
		if s.Jobs[i].matches(&job) {
			o = &s.Jobs[i]
			break
		}
	}
	if len(s.Targets) > 0 && BuildTestType(job.Type) {
		targets := make(map[string]packitcfg.TargetOptions, len(s.Targets))
		for _, t := range s.Targets {
			targets[t] = job.Targets[t] // options written for the same target name carry over
		}
		job.Targets = targets
		eff.note("targets of %s: %s", describe(&job), strings.Join(s.Targets, ", "))
	}
	if s.StatusNameTemplate != "" {
		job.StatusNameTemplate = s.StatusNameTemplate
		eff.note("status names follow %q", s.StatusNameTemplate)
	}
	if o == nil {
		return []view{{job: job}}
	}
	if o.Disabled {
		eff.note("%s is switched off", describe(&job))
		return nil
	}
	if o.Branch != "" {
		job.Branch = o.Branch
		eff.note("%s runs for branches matching %q", describe(&job), o.Branch)
	}
	if len(o.Triggers) == 0 {
		return []view{{job: job}}
	}
	if !first {
		return nil
	}
	out := make([]view, 0, len(o.Triggers))
	for _, t := range o.Triggers {
		v := job
		v.Trigger = t
		out = append(out, view{job: v, retrigged: true})
	}
	eff.note("%s runs on %s", describe(&job), joinTriggers(o.Triggers))
	return out
}

// dedupe keeps one view where a trigger override made two views of the
// same job, trigger and package (their status names would collide).
func dedupe(views []view, eff *Effective) []packitcfg.Job {
	type key struct {
		t          packitcfg.JobType
		trigger    packitcfg.Trigger
		pkg, ident string
	}
	groups := map[key][]int{}
	for i, v := range views {
		k := key{v.job.Type, v.job.Trigger, v.job.PackageName, v.job.Identifier}
		groups[k] = append(groups[k], i)
	}
	out := make([]packitcfg.Job, 0, len(views))
	for i, v := range views {
		k := key{v.job.Type, v.job.Trigger, v.job.PackageName, v.job.Identifier}
		g := groups[k]
		if len(g) > 1 && g[0] != i && slices.ContainsFunc(g, func(j int) bool { return views[j].retrigged }) {
			eff.note("%s for %s twice after the trigger override: the first is kept", describe(&v.job), v.job.Trigger)
			continue
		}
		out = append(out, v.job)
	}
	return out
}

func describe(job *packitcfg.Job) string {
	s := string(job.Type)
	if job.Identifier != "" {
		s += " " + job.Identifier
	}
	return s
}

func joinTriggers(ts []packitcfg.Trigger) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = string(t)
	}
	return strings.Join(parts, ", ")
}

// note records a change once.
func (e *Effective) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !slices.Contains(e.Changes, msg) {
		e.Changes = append(e.Changes, msg)
	}
}
