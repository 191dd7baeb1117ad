package packitcfg_test

import (
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/packitcfg"
)

func TestBranchMatches(t *testing.T) {
	cases := []struct {
		pattern, branch string
		want            bool
	}{
		{"main", "main", true},
		{"main", "main-v2", true}, // re.match anchors at the start only
		{"main", "old-main", false},
		{"^main$", "main-v2", false},
		{"release/.*", "release/1.0", true},
		{"gh-readonly-queue/.*", "gh-readonly-queue/main/pr-5", true},
		{"a|b", "b-branch", true}, // the whole alternation is anchored
		{"a|b", "xb", false},
		{"a)|(b", "b", false}, // not a valid pattern: matches nothing
		{"(?!wip)", "main", false},
	}
	for _, tc := range cases {
		if got := packitcfg.BranchMatches(tc.pattern, tc.branch); got != tc.want {
			t.Errorf("BranchMatches(%q, %q) = %v, want %v", tc.pattern, tc.branch, got, tc.want)
		}
	}
}

func TestResolveTargetsWithCustomTable(t *testing.T) {
	table, err := packitcfg.ParseAliasTable([]byte("fedora-stable: [fedora-50, fedora-51]\nepel-all: [epel-10]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := mustLoad(t, `
specfile_path: a.spec
jobs:
  - job: copr_build
    trigger: pull_request
    targets:
      fedora-stable-aarch64: {with_opts: [x]}
      epel-all: {}
      fedora-rawhide-s390x: {}
      centos-stream-10: {}
  - {job: copr_build, trigger: commit}
`, packitcfg.Options{RepoName: "a"})
	got, err := packitcfg.ResolveTargets(&cfg.Jobs[0], table)
	eq(t, "err", err, nil)
	eq(t, "chroots", got, []string{"centos-stream-10-x86_64", "epel-10-x86_64", "fedora-50-aarch64", "fedora-51-aarch64", "fedora-rawhide-s390x"})
	opts, err := packitcfg.ResolveTargetOptions(&cfg.Jobs[0], table)
	eq(t, "err", err, nil)
	eq(t, "options follow the alias", opts["fedora-51-aarch64"].WithOpts, []string{"x"})
	got, err = packitcfg.ResolveTargets(&cfg.Jobs[1], table)
	eq(t, "err", err, nil)
	eq(t, "default target", got, []string{"fedora-50-x86_64", "fedora-51-x86_64"})

	if _, err := packitcfg.ParseAliasTable([]byte("fedora-all: []\n")); err == nil {
		t.Error("an alias without chroots was accepted")
	}
}

func TestDefaultAliasTable(t *testing.T) {
	table := packitcfg.DefaultAliasTable()
	for _, alias := range []string{"fedora-all", "fedora-stable", "fedora-development", "fedora-latest",
		"fedora-latest-stable", "fedora-branched", "epel-all", "epel-10-all"} {
		if len(table[alias]) == 0 {
			t.Errorf("default table lacks %s", alias)
		}
	}
	job := &packitcfg.Job{Settings: packitcfg.Settings{Targets: map[string]packitcfg.TargetOptions{"fedora-all-aarch64": {}, "centos-stream": {}}}}
	got, err := packitcfg.ResolveTargets(job, table)
	eq(t, "err", err, nil)
	eq(t, "chroots", got, []string{"centos-stream-8-x86_64", "fedora-43-aarch64", "fedora-44-aarch64", "fedora-45-aarch64", "fedora-rawhide-aarch64"})
}

func TestStatusNames(t *testing.T) {
	job := func(typ packitcfg.JobType, trig packitcfg.Trigger, id, tmpl string) *packitcfg.Job {
		return &packitcfg.Job{Type: typ, Trigger: trig, PackageName: "pkg",
			Settings: packitcfg.Settings{Identifier: id, StatusNameTemplate: tmpl}}
	}
	cases := []struct {
		name   string
		job    *packitcfg.Job
		ref    string
		target string
		want   string
	}{
		{"pr build", job(packitcfg.JobCoprBuild, packitcfg.TriggerPullRequest, "", ""), "feature", "fedora-rawhide-x86_64", "rpm-build:fedora-rawhide-x86_64"},
		{"identifier", job(packitcfg.JobCoprBuild, packitcfg.TriggerPullRequest, "mock", ""), "", "fedora-rawhide-x86_64", "rpm-build:fedora-rawhide-x86_64:mock"},
		{"commit build", job(packitcfg.JobCoprBuild, packitcfg.TriggerCommit, "", ""), "main", "fedora-41-x86_64", "rpm-build:main:fedora-41-x86_64"},
		{"release tag with colon", job(packitcfg.JobTests, packitcfg.TriggerRelease, "e2e", ""), "v1:2", "fedora-41-x86_64", "testing-farm:v1-2:fedora-41-x86_64:e2e"},
		{"koji", job(packitcfg.JobUpstreamKojiBuild, packitcfg.TriggerPullRequest, "", ""), "", "f41", "koji-build:f41"},
		{"propose downstream", job(packitcfg.JobProposeDownstream, packitcfg.TriggerRelease, "", ""), "v1", "f41", "propose-downstream:f41"},
		{"vm image", job(packitcfg.JobVMImageBuild, packitcfg.TriggerPullRequest, "", ""), "", "fedora-41-x86_64", "vm-image-build:fedora-41-x86_64"},
		{"template", job(packitcfg.JobTests, packitcfg.TriggerCommit, "gating", "ci/{job_name}/{event}/{chroot}/{identifier}/{package}"), "main", "fedora-44-x86_64", "ci/testing-farm/main/fedora-44-x86_64/gating/pkg"},
		{"escaped braces", job(packitcfg.JobTests, packitcfg.TriggerPullRequest, "", "{{literal}}-{package}"), "", "c", "{literal}-pkg"},
		{"bad template falls back", job(packitcfg.JobTests, packitcfg.TriggerPullRequest, "", "{{ package }} {nope}"), "", "c", "testing-farm:c"},
	}
	for _, tc := range cases {
		if got := packitcfg.StatusName(tc.job, tc.ref, tc.target); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestStatusTemplateWarnsAtLoad(t *testing.T) {
	cfg := mustLoad(t, "specfile_path: a.spec\njobs: []\nstatus_name_template: \"x/{unknown}\"\n", packitcfg.Options{RepoName: "a"})
	if len(cfg.Warnings) != 1 || !strings.HasPrefix(cfg.Warnings[0], ".packit.yaml:3:23: status_name_template") {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
}

func TestFindConfigFile(t *testing.T) {
	cases := []struct {
		files       []string
		want        string
		wantWarning bool
	}{
		{[]string{"README.md", "packit.yaml"}, "packit.yaml", false},
		{[]string{".packit.yml"}, ".packit.yml", false},
		{[]string{"packit.yml", ".packit.yaml", "src"}, ".packit.yaml", true},
		{[]string{".packit.json", "docs/.packit.yaml"}, "", false},
		{nil, "", false},
	}
	for _, tc := range cases {
		got, warning := packitcfg.FindConfigFile(tc.files)
		if got != tc.want || (warning != "") != tc.wantWarning {
			t.Errorf("FindConfigFile(%q) = %q, %q", tc.files, got, warning)
		}
		if tc.wantWarning && !strings.Contains(warning, "packit.yml") {
			t.Errorf("warning %q does not name the other file", warning)
		}
	}
}
