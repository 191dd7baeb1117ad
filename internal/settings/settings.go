// Package settings holds the per-project settings a maintainer edits on
// upbuild's settings page, and merges them with the project's .packit.yaml
// into the configuration a run uses.
//
// Precedence, strongest first:
//
//  1. the operator's policy (allow-list, instance approval policy, target
//     aliases): settings can make the approval policy stricter, never looser;
//  2. the overrides set here (targets, per-job switches, triggers and branch,
//     the status name template);
//  3. the repository's .packit.yaml at the commit;
//  4. the fallback config set here, used only when the commit has no
//     .packit.yaml at all ("a settings page can stand in for the config file");
//  5. Packit's defaults.
//
// Settings are stored as JSON with a format number, so a later upbuild can
// read what an earlier one wrote.
package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"upbuild.dev/upbuild/internal/packitcfg"
)

// The approval policies, from the loosest to the strictest. Inherit (the
// empty string) keeps the operator's policy.
const (
	ApprovalInherit = ""
	ApprovalOff     = "off"   // nothing waits for approval
	ApprovalForks   = "forks" // merge requests from forks wait
	ApprovalAll     = "all"   // every merge request by a non-Developer waits
)

// approvalRank orders the policies by strictness.
var approvalRank = map[string]int{ApprovalOff: 0, ApprovalForks: 1, ApprovalAll: 2}

// Settings are one project's overrides. The zero value changes nothing.
type Settings struct {
	// Targets replace the targets of every build and test job (copr_build,
	// upstream_koji_build, tests): chroots such as fedora-rawhide-x86_64 or
	// aliases such as fedora-all-aarch64. Empty keeps the config's targets.
	Targets []string `json:"targets,omitempty"`
	// Jobs switch off or re-trigger jobs of the config, by type and identifier.
	Jobs []JobOverride `json:"jobs,omitempty"`
	// ApprovalPolicy is "" (the operator's), off, forks or all; it only
	// counts where it is stricter than the operator's.
	ApprovalPolicy string `json:"approval_policy,omitempty"`
	// StatusNameTemplate replaces every job's commit status name: Packit's
	// status_name_template syntax, with {job_name}, {chroot}, {event},
	// {identifier} and {package}.
	StatusNameTemplate string `json:"status_name_template,omitempty"`
	// FallbackConfig is a whole .packit.yaml used for commits that have none.
	FallbackConfig string `json:"fallback_config,omitempty"`
}

// JobOverride changes the jobs of one type and identifier: every `jobs:`
// item that matches, for every trigger and package it expands to.
type JobOverride struct {
	Type packitcfg.JobType `json:"job"`
	// Identifier is the job's identifier; "" matches jobs without one.
	Identifier string `json:"identifier,omitempty"`
	// Disabled drops the jobs: no status, nothing runs.
	Disabled bool `json:"disabled,omitempty"`
	// Triggers replace the jobs' triggers (pull_request, commit, release);
	// empty keeps them.
	Triggers []packitcfg.Trigger `json:"triggers,omitempty"`
	// Branch replaces the jobs' branch filter (a regular expression matched
	// at the start of the branch name); empty keeps it.
	Branch string `json:"branch,omitempty"`
}

// matches reports whether the override is about job.
func (o JobOverride) matches(job *packitcfg.Job) bool {
	return o.Type == job.Type && o.Identifier == job.Identifier
}

// IsZero reports whether s changes nothing.
func (s Settings) IsZero() bool {
	return len(s.Targets) == 0 && len(s.Jobs) == 0 && s.ApprovalPolicy == "" &&
		s.StatusNameTemplate == "" && s.FallbackConfig == ""
}

// format is the version of the stored JSON layout.
const format = 1

// stored is the JSON layout: the settings plus the format number.
type stored struct {
	Format int `json:"format"`
	Settings
}

// ErrNewerFormat is returned by Decode for settings saved by a newer upbuild.
var ErrNewerFormat = errors.New("the settings were saved by a newer upbuild")

// Encode turns s into its stored form.
func Encode(s Settings) ([]byte, error) {
	data, err := json.Marshal(stored{Format: format, Settings: s})
	if err != nil {
		return nil, fmt.Errorf("encode settings: %w", err)
	}
	return data, nil
}

// Decode reads the stored form. Empty data is the zero Settings.
func Decode(data []byte) (Settings, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Settings{}, nil
	}
	var st stored
	if err := json.Unmarshal(data, &st); err != nil {
		return Settings{}, fmt.Errorf("decode settings: %w", err)
	}
	if st.Format > format {
		return Settings{}, fmt.Errorf("decode settings: format %d: %w", st.Format, ErrNewerFormat)
	}
	return st.Settings, nil
}

// Stricter returns the stricter of two approval policies; "" counts as
// forks, upbuild's default.
func Stricter(a, b string) string {
	if a == ApprovalInherit {
		a = ApprovalForks
	}
	if b == ApprovalInherit {
		return a
	}
	if approvalRank[b] > approvalRank[a] {
		return b
	}
	return a
}

// buildTestTypes are the job types whose targets the Targets setting replaces.
var buildTestTypes = []packitcfg.JobType{packitcfg.JobCoprBuild, packitcfg.JobUpstreamKojiBuild, packitcfg.JobTests}

// overridable are the triggers a job override may set.
var overridable = []packitcfg.Trigger{packitcfg.TriggerPullRequest, packitcfg.TriggerCommit, packitcfg.TriggerRelease}

// BuildTestType reports whether the Targets setting applies to jobs of type t.
func BuildTestType(t packitcfg.JobType) bool { return slices.Contains(buildTestTypes, t) }
