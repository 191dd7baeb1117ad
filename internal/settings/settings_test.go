package settings_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/settings"
)

// repoConfig is a project's .packit.yaml: a build for merge requests, a
// build for pushes, tests and a downstream job that has no targets.
const repoConfig = `specfile_path: pkg.spec
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-all]
  - job: copr_build
    trigger: commit
    branch: main
    targets:
      epel-9:
        additional_packages: [extra]
  - job: tests
    trigger: pull_request
    identifier: smoke
    targets: [fedora-rawhide]
  - job: propose_downstream
    trigger: release
    dist_git_branches: [rawhide]
`

const fallbackConfig = `specfile_path: other.spec
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-rawhide]
`

func load(t *testing.T, text string) *packitcfg.Config {
	t.Helper()
	cfg, err := packitcfg.Load(".packit.yaml", []byte(text), packitcfg.Options{RepoName: "pkg"})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// row is one job of an effective config as a user would describe it.
func rows(t *testing.T, cfg *packitcfg.Config, ref string) []string {
	t.Helper()
	if cfg == nil {
		return nil
	}
	var out []string
	for i := range cfg.Jobs {
		j := &cfg.Jobs[i]
		targets, err := packitcfg.ResolveTargets(j, packitcfg.DefaultAliasTable())
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, len(targets))
		for k, tg := range targets {
			names[k] = packitcfg.StatusName(j, ref, tg)
		}
		if j.Type == packitcfg.JobProposeDownstream {
			names = []string{packitcfg.StatusName(j, ref, "rawhide")}
		}
		row := fmt.Sprintf("%s/%s", j.Type, j.Trigger)
		if j.Branch != "" {
			row += " branch=" + j.Branch
		}
		out = append(out, row+" "+strings.Join(names, ","))
	}
	return out
}

func TestApplyPrecedence(t *testing.T) {
	repo := load(t, repoConfig)
	for _, tc := range []struct {
		name     string
		repo     *packitcfg.Config
		settings settings.Settings
		want     []string
		fallback bool
	}{
		{name: "no config anywhere: nothing runs", repo: nil, want: nil},
		{name: "the repository's config as written", repo: repo, want: []string{
			"copr_build/pull_request rpm-build:fedora-43-x86_64,rpm-build:fedora-44-x86_64,rpm-build:fedora-45-x86_64,rpm-build:fedora-rawhide-x86_64",
			"copr_build/commit branch=main rpm-build:main:epel-9-x86_64",
			"tests/pull_request testing-farm:fedora-rawhide-x86_64:smoke",
			"propose_downstream/release propose-downstream:rawhide",
		}},
		{name: "fallback config stands in for a missing .packit.yaml", repo: nil,
			settings: settings.Settings{FallbackConfig: fallbackConfig}, fallback: true,
			want: []string{"copr_build/pull_request rpm-build:fedora-rawhide-x86_64"}},
		{name: "the repository's config beats the fallback", repo: repo,
			settings: settings.Settings{FallbackConfig: fallbackConfig, Jobs: []settings.JobOverride{
				{Type: packitcfg.JobCoprBuild, Disabled: true}, {Type: packitcfg.JobTests, Identifier: "smoke", Disabled: true}}},
			want: []string{"propose_downstream/release propose-downstream:rawhide"}},
		{name: "settings targets replace every build and test job's targets", repo: repo,
			settings: settings.Settings{Targets: []string{"epel-9", "centos-stream-10-aarch64"}},
			want: []string{
				"copr_build/pull_request rpm-build:centos-stream-10-aarch64,rpm-build:epel-9-x86_64",
				"copr_build/commit branch=main rpm-build:main:centos-stream-10-aarch64,rpm-build:main:epel-9-x86_64",
				"tests/pull_request testing-farm:centos-stream-10-aarch64:smoke,testing-farm:epel-9-x86_64:smoke",
				"propose_downstream/release propose-downstream:rawhide",
			}},
		{name: "overrides apply to the fallback config too", repo: nil,
			settings: settings.Settings{FallbackConfig: fallbackConfig, Targets: []string{"fedora-latest"}}, fallback: true,
			want: []string{"copr_build/pull_request rpm-build:fedora-45-x86_64"}},
		{name: "status name template from the settings", repo: repo,
			settings: settings.Settings{StatusNameTemplate: "upbuild/{job_name}/{chroot}"},
			want: []string{
				"copr_build/pull_request upbuild/rpm-build/fedora-43-x86_64,upbuild/rpm-build/fedora-44-x86_64,upbuild/rpm-build/fedora-45-x86_64,upbuild/rpm-build/fedora-rawhide-x86_64",
				"copr_build/commit branch=main upbuild/rpm-build/epel-9-x86_64",
				"tests/pull_request upbuild/testing-farm/fedora-rawhide-x86_64",
				"propose_downstream/release upbuild/propose-downstream/rawhide",
			}},
		{name: "a trigger override moves a job", repo: repo,
			settings: settings.Settings{Jobs: []settings.JobOverride{
				{Type: packitcfg.JobTests, Identifier: "smoke", Triggers: []packitcfg.Trigger{packitcfg.TriggerCommit, packitcfg.TriggerRelease}, Branch: "^release/"}}},
			want: []string{
				"copr_build/pull_request rpm-build:fedora-43-x86_64,rpm-build:fedora-44-x86_64,rpm-build:fedora-45-x86_64,rpm-build:fedora-rawhide-x86_64",
				"copr_build/commit branch=main rpm-build:main:epel-9-x86_64",
				"tests/commit branch=^release/ testing-farm:main:fedora-rawhide-x86_64:smoke",
				"tests/release branch=^release/ testing-farm:main:fedora-rawhide-x86_64:smoke",
				"propose_downstream/release propose-downstream:rawhide",
			}},
		{name: "a trigger override that makes two jobs the same keeps the first", repo: repo,
			settings: settings.Settings{Jobs: []settings.JobOverride{
				{Type: packitcfg.JobCoprBuild, Triggers: []packitcfg.Trigger{packitcfg.TriggerCommit}}}},
			want: []string{
				"copr_build/commit rpm-build:main:fedora-43-x86_64,rpm-build:main:fedora-44-x86_64,rpm-build:main:fedora-45-x86_64,rpm-build:main:fedora-rawhide-x86_64",
				"tests/pull_request testing-farm:fedora-rawhide-x86_64:smoke",
				"propose_downstream/release propose-downstream:rawhide",
			}},
		{name: "an override for a job the config lacks changes nothing", repo: repo,
			settings: settings.Settings{Jobs: []settings.JobOverride{{Type: packitcfg.JobTests, Identifier: "other", Disabled: true}}},
			want: []string{
				"copr_build/pull_request rpm-build:fedora-43-x86_64,rpm-build:fedora-44-x86_64,rpm-build:fedora-45-x86_64,rpm-build:fedora-rawhide-x86_64",
				"copr_build/commit branch=main rpm-build:main:epel-9-x86_64",
				"tests/pull_request testing-farm:fedora-rawhide-x86_64:smoke",
				"propose_downstream/release propose-downstream:rawhide",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rows(t, repo, "main")
			eff, err := settings.Apply(tc.repo, tc.settings, settings.Project{RepoName: "pkg"})
			if err != nil {
				t.Fatal(err)
			}
			if got := rows(t, eff.Config, "main"); !slices.Equal(got, tc.want) {
				t.Errorf("effective jobs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if eff.FromFallback != tc.fallback {
				t.Errorf("FromFallback = %v, want %v", eff.FromFallback, tc.fallback)
			}
			if changed := tc.repo != nil && !slices.Equal(tc.want, before); changed && len(eff.Changes) == 0 {
				t.Error("the jobs changed, but no change is described")
			}
			if after := rows(t, repo, "main"); !slices.Equal(before, after) {
				t.Errorf("Apply changed the repository's config:\n%s", strings.Join(after, "\n"))
			}
		})
	}
}

func TestTargetOptionsCarryOverForTheSameTarget(t *testing.T) {
	eff, err := settings.Apply(load(t, repoConfig), settings.Settings{Targets: []string{"epel-9", "fedora-rawhide"}}, settings.Project{})
	if err != nil {
		t.Fatal(err)
	}
	job := eff.Config.Jobs[1]
	opts, err := packitcfg.ResolveTargetOptions(&job, packitcfg.DefaultAliasTable())
	if err != nil {
		t.Fatal(err)
	}
	if got := opts["epel-9-x86_64"].AdditionalPackages; !slices.Equal(got, []string{"extra"}) {
		t.Errorf("epel-9 options = %v, want the config's additional_packages", got)
	}
	if got := opts["fedora-rawhide-x86_64"].AdditionalPackages; got != nil {
		t.Errorf("fedora-rawhide options = %v, want none", got)
	}
}

func TestApprovalPolicyIsNeverLooserThanTheOperators(t *testing.T) {
	for _, tc := range []struct{ operator, project, want string }{
		{"", "", "forks"},
		{"off", "", "off"},
		{"off", "forks", "forks"},
		{"forks", "all", "all"},
		{"forks", "off", "forks"},
		{"all", "off", "all"},
		{"all", "forks", "all"},
	} {
		eff, err := settings.Apply(nil, settings.Settings{ApprovalPolicy: tc.project}, settings.Project{OperatorApprovalPolicy: tc.operator})
		if err != nil {
			t.Fatal(err)
		}
		if eff.ApprovalPolicy != tc.want {
			t.Errorf("operator %q, project %q: %q, want %q", tc.operator, tc.project, eff.ApprovalPolicy, tc.want)
		}
		looser := tc.project != "" && tc.want != tc.project
		if said := slices.ContainsFunc(eff.Changes, func(s string) bool { return strings.Contains(s, "looser") }); said != looser {
			t.Errorf("operator %q, project %q: changes %q", tc.operator, tc.project, eff.Changes)
		}
	}
}

func TestApplyReportsABrokenFallbackWithItsLine(t *testing.T) {
	_, err := settings.Apply(nil, settings.Settings{FallbackConfig: "jobs:\n  - job: copr_build\n    trigger: sometimes\n"}, settings.Project{RepoName: "pkg"})
	list := packitcfg.Errors(err)
	if len(list) == 0 || list[0].Line != 3 || list[0].File != settings.FallbackFileName {
		t.Fatalf("error %v, want one at line 3 of the fallback", err)
	}
}

func TestValidate(t *testing.T) {
	check := settings.Check{RepoName: "pkg", Aliases: packitcfg.DefaultAliasTable()}
	for _, tc := range []struct {
		name  string
		s     settings.Settings
		field string
		msg   string
	}{
		{"unknown alias", settings.Settings{Targets: []string{"fedora-al"}}, "targets", `"fedora-al" is neither a chroot`},
		{"unknown architecture", settings.Settings{Targets: []string{"fedora-all-x86"}}, "targets", "neither a chroot"},
		{"capitals", settings.Settings{Targets: []string{"Fedora-40"}}, "targets", "not a target name"},
		{"duplicate target", settings.Settings{Targets: []string{"epel-9", "epel-9"}}, "targets", "listed twice"},
		{"unknown job type", settings.Settings{Jobs: []settings.JobOverride{{Type: "build"}}}, "jobs[0].job", "not a Packit job type"},
		{"identifier with a space", settings.Settings{Jobs: []settings.JobOverride{{Type: "tests", Identifier: "a b"}}}, "jobs[0].identifier", "spaces"},
		{"two overrides of one job", settings.Settings{Jobs: []settings.JobOverride{{Type: "tests"}, {Type: "tests", Disabled: true}}}, "jobs[1]", "first in jobs[0]"},
		{"trigger settings cannot set", settings.Settings{Jobs: []settings.JobOverride{{Type: "tests", Triggers: []packitcfg.Trigger{"koji_build"}}}}, "jobs[0].triggers", "pull_request, commit or release"},
		{"lookahead in a branch", settings.Settings{Jobs: []settings.JobOverride{{Type: "tests", Branch: "main(?!-old)"}}}, "jobs[0].branch", "RE2"},
		{"looser spelling of a policy", settings.Settings{ApprovalPolicy: "none"}, "approval_policy", "not one of off, forks or all"},
		{"unknown placeholder", settings.Settings{StatusNameTemplate: "ci/{job}"}, "status_name_template", "unknown placeholder {job}"},
		{"unclosed brace", settings.Settings{StatusNameTemplate: "ci/{chroot"}, "status_name_template", "not closed"},
		{"single closing brace", settings.Settings{StatusNameTemplate: "ci}"}, "status_name_template", "single '}'"},
		{"fallback with an unknown key", settings.Settings{FallbackConfig: "specfile_path: a.spec\nsynced_files: [a]\n"}, "fallback_config line 2, column 1", "synced_files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := settings.Validate(tc.s, check)
			list := settings.FieldErrors(err)
			if len(list) != 1 {
				t.Fatalf("errors %v, want one", err)
			}
			if got := list[0].Error(); !strings.HasPrefix(got, tc.field) || !strings.Contains(got, tc.msg) {
				t.Errorf("error %q, want %s: …%s…", got, tc.field, tc.msg)
			}
		})
	}
}

func TestValidateAcceptsWhatPackitAccepts(t *testing.T) {
	s := settings.Settings{
		Targets: []string{"fedora-all", "fedora-all-aarch64", "fedora-rawhide-x86_64", "epel-10", "rhel+epel-10",
			"centos-stream-10-aarch64", "opensuse-tumbleweed-x86_64", "openeuler-24.03", "fedora-eln", "mageia-cauldron"},
		Jobs: []settings.JobOverride{{Type: "copr_build", Triggers: []packitcfg.Trigger{"pull_request", "commit"}, Branch: "^(main|rhel-[0-9]+)$"},
			{Type: "tests", Identifier: "smoke", Disabled: true}},
		ApprovalPolicy:     "all",
		StatusNameTemplate: "{{upbuild}} {job_name}:{chroot}:{event}:{identifier}:{package}",
		FallbackConfig:     fallbackConfig,
	}
	if err := settings.Validate(s, settings.Check{RepoName: "pkg", Aliases: packitcfg.DefaultAliasTable()}); err != nil {
		t.Fatal(err)
	}
	if err := settings.Validate(settings.Settings{}, settings.Check{}); err != nil {
		t.Fatalf("empty settings: %v", err)
	}
}

func TestEncodeDecode(t *testing.T) {
	s := settings.Settings{Targets: []string{"fedora-all"}, ApprovalPolicy: "all",
		Jobs: []settings.JobOverride{{Type: "tests", Identifier: "smoke", Triggers: []packitcfg.Trigger{"commit"}}}}
	data, err := settings.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := settings.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Targets, s.Targets) || got.ApprovalPolicy != "all" || len(got.Jobs) != 1 || got.Jobs[0].Triggers[0] != "commit" {
		t.Fatalf("round trip: %+v", got)
	}
	if empty, err := settings.Decode(nil); err != nil || !empty.IsZero() {
		t.Fatalf("no row: %+v %v", empty, err)
	}
	if _, err := settings.Decode([]byte(`{"format": 99, "targets": ["x"]}`)); !errors.Is(err, settings.ErrNewerFormat) {
		t.Fatalf("newer format: %v", err)
	}
}

func TestDiffSaysWhatChanged(t *testing.T) {
	old := settings.Settings{Targets: []string{"fedora-all"}, Jobs: []settings.JobOverride{{Type: "tests", Identifier: "smoke", Disabled: true}}}
	new := settings.Settings{Targets: []string{"fedora-rawhide"}, ApprovalPolicy: "all", FallbackConfig: fallbackConfig,
		Jobs: []settings.JobOverride{{Type: "copr_build", Triggers: []packitcfg.Trigger{"commit"}}}}
	got := settings.Diff(old, new)
	want := []string{
		"targets: fedora-all → fedora-rawhide",
		"approval policy: the operator's → all",
		"fallback config set (5 lines)",
		"job copr_build: triggers commit",
		"job tests smoke: override removed",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := settings.Diff(new, new); d != nil {
		t.Fatalf("no change: %q", d)
	}
}
