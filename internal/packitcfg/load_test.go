package packitcfg_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/packitcfg"
)

func mustLoad(t *testing.T, yaml string, opts packitcfg.Options) *packitcfg.Config {
	t.Helper()
	cfg, err := packitcfg.Load(".packit.yaml", []byte(yaml), opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// loadErrors loads a config that must be refused and returns its error texts.
func loadErrors(t *testing.T, yaml string) []string {
	t.Helper()
	_, err := packitcfg.Load(".packit.yaml", []byte(yaml), packitcfg.Options{RepoName: "hello"})
	if err == nil {
		t.Fatal("Load accepted the config")
	}
	var out []string
	for _, e := range packitcfg.Errors(err) {
		out = append(out, e.Error())
	}
	if len(out) == 0 {
		t.Fatalf("error holds no *Error: %v", err)
	}
	return out
}

func TestMergeKeysAndAnchors(t *testing.T) {
	cfg := mustLoad(t, `
specfile_path: hello.spec
_:
  - &base
    job: copr_build
    trigger: pull_request
    targets: [fedora-all]
    owner: base-owner
  - &more {owner: more-owner, project: more-project}
jobs:
  - <<: *base
    trigger: commit
  - <<: [*more, {owner: ignored, timeout: 60}]
    job: tests
    trigger: release
  - <<: *base
    <<: *more
`, packitcfg.Options{RepoName: "hello"})
	if len(cfg.Jobs) != 3 {
		t.Fatalf("got %d jobs, want 3", len(cfg.Jobs))
	}
	// An explicit key beats the merged one.
	eq(t, "job 1 trigger", cfg.Jobs[0].Trigger, packitcfg.TriggerCommit)
	eq(t, "job 1 owner", cfg.Jobs[0].Owner, "base-owner")
	// In a merge list the first mapping wins; keys only in later ones still count.
	eq(t, "job 2 owner", cfg.Jobs[1].Owner, "more-owner")
	eq(t, "job 2 timeout", cfg.Jobs[1].Timeout, 60)
	// With two merge keys, the later one overrides the earlier (PyYAML).
	eq(t, "job 3 owner", cfg.Jobs[2].Owner, "more-owner")
	eq(t, "job 3 project", cfg.Jobs[2].Project, "more-project")
	eq(t, "job 3 targets", cfg.Jobs[2].Targets, map[string]packitcfg.TargetOptions{"fedora-all": {}})
}

func TestUnderscoreKeyIsDropped(t *testing.T) {
	// `_` may hold anything, even keys that would be errors elsewhere.
	cfg := mustLoad(t, `
specfile_path: hello.spec
_:
  synced_files: [x]
  template: &t {job: copr_build, trigger: pull_request}
jobs: [*t]
`, packitcfg.Options{RepoName: "hello"})
	eq(t, "jobs", len(cfg.Jobs), 1)
	eq(t, "type", cfg.Jobs[0].Type, packitcfg.JobCoprBuild)
}

func TestAliasBombIsRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i,
			i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	_, err := packitcfg.Load("bomb.yaml", []byte(b.String()), packitcfg.Options{})
	errs := packitcfg.Errors(err)
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "alias bomb") || errs[0].Line == 0 {
		t.Fatalf("got %v, want one positioned alias bomb error", err)
	}
}

func TestAliasCycleIsRefused(t *testing.T) {
	_, err := packitcfg.Load("cycle.yaml", []byte("a: &a [*a]\n"), packitcfg.Options{})
	if err == nil || !strings.Contains(err.Error(), "cycle.yaml:1:") {
		t.Fatalf("got %v, want a positioned error", err)
	}
}

func TestOversizeIsRefused(t *testing.T) {
	data := []byte("specfile_path: x.spec\n# " + strings.Repeat("x", 1<<20) + "\n")
	_, err := packitcfg.Load("big.yaml", data, packitcfg.Options{})
	if !errors.Is(err, packitcfg.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	_, err = packitcfg.Load("small.yaml", []byte("specfile_path: x.spec\n"), packitcfg.Options{MaxBytes: 10})
	if !errors.Is(err, packitcfg.ErrTooLarge) {
		t.Fatalf("custom limit: got %v, want ErrTooLarge", err)
	}
}

func TestDefaultJobs(t *testing.T) {
	cfg := mustLoad(t, "downstream_package_name: hello\ntargets: [epel-9]\n", packitcfg.Options{})
	var got []string
	for _, j := range cfg.Jobs {
		got = append(got, summary(j))
	}
	eq(t, "default jobs", got, []string{
		"copr_build pull_request hello targets=fedora-stable",
		"tests pull_request hello targets=fedora-stable",
		"propose_downstream release hello targets=epel-9 branches=fedora-all",
	})
	eq(t, "spec from downstream name", cfg.Jobs[0].SpecfilePath, "hello.spec")
	eq(t, "no jobs", len(mustLoad(t, "specfile_path: a.spec\njobs: []\n", packitcfg.Options{RepoName: "a"}).Jobs), 0)
}

func TestSpecfileSearchAndRequirement(t *testing.T) {
	cfg := mustLoad(t, "jobs: [{job: copr_build, trigger: pull_request}]\n",
		packitcfg.Options{RepoName: "hello", RepoFiles: []string{"README", "dist/hello.spec"}})
	eq(t, "searched spec", cfg.Jobs[0].SpecfilePath, "dist/hello.spec")
	eq(t, "names from repo", cfg.Jobs[0].UpstreamPackageName+"/"+cfg.Jobs[0].DownstreamPackageName, "hello/hello")

	// Without a spec only tests with skip_build are allowed.
	mustLoad(t, "jobs: [{job: tests, trigger: pull_request, skip_build: true}]\n", packitcfg.Options{RepoName: "hello"})
	errs := loadErrors(t, "upstream_package_name: x\njobs:\n  - job: copr_build\n    trigger: pull_request\n")
	eq(t, "missing spec", len(errs) == 1 && strings.HasPrefix(errs[0], ".packit.yaml:3:5: job 1 (copr_build)"), true)
}

func TestMonorepoInheritance(t *testing.T) {
	cfg := mustLoad(t, `
upstream_project_url: https://example.com/top
specfile_path: top.spec
release_suffix: top
packages:
  a:
    specfile_path: a/a.spec
    upstream_project_url: https://example.com/ignored
    release_suffix: a
  b:
    downstream_package_name: bee
jobs:
  - job: copr_build
    trigger: pull_request
  - job: copr_build
    trigger: commit
    release_suffix: job
    packages:
      b: {release_suffix: override}
`, packitcfg.Options{})
	a, b := cfg.Packages["a"], cfg.Packages["b"]
	eq(t, "top-level url wins", a.UpstreamProjectURL, "https://example.com/top")
	eq(t, "package value wins", a.ReleaseSuffix, "a")
	eq(t, "inherited", b.ReleaseSuffix, "top")
	eq(t, "spec not inherited in a monorepo", b.SpecfilePath, "bee.spec")
	eq(t, "downstream name defaults to the key", a.DownstreamPackageName, "a")
	var got []string
	for _, j := range cfg.Jobs {
		got = append(got, summary(j)+" suffix="+j.ReleaseSuffix)
	}
	eq(t, "views", got, []string{
		"copr_build pull_request a id=a suffix=a",
		"copr_build pull_request b id=b suffix=top",
		"copr_build commit b id=b suffix=override",
	})
}

func TestTriggerExpansion(t *testing.T) {
	cfg := mustLoad(t, "specfile_path: a.spec\njobs:\n  - {job: koji_build, trigger: commit | koji_build}\n", packitcfg.Options{RepoName: "a"})
	eq(t, "triggers", []packitcfg.Trigger{cfg.Jobs[0].Trigger, cfg.Jobs[1].Trigger},
		[]packitcfg.Trigger{packitcfg.TriggerCommit, packitcfg.TriggerKojiBuild})
}

func TestMetadataIsMerged(t *testing.T) {
	cfg := mustLoad(t, `
specfile_path: a.spec
jobs:
  - job: propose_downstream
    trigger: release
    metadata:
      dist-git-branch: fedora-all
`, packitcfg.Options{RepoName: "a"})
	eq(t, "renamed", cfg.Jobs[0].DistGitBranches, []packitcfg.DistGitBranch{{Name: "fedora-all"}})
	eq(t, "warning", cfg.Warnings, []string{".packit.yaml:7:7: the metadata key is deprecated; move its keys into the job"})
}

func TestRefusedConfigs(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "specfile_path: a.spec\nfoo: 1\n", `.packit.yaml:2:1: unknown key "foo" at the top level`},
		{"job-only key at top level", "specfile_path: a.spec\nmanual_trigger: true\n", `.packit.yaml:2:1: key "manual_trigger" is only allowed inside a job`},
		{"unknown job key", "specfile_path: a.spec\njobs:\n  - job: tests\n    trigger: commit\n    follow_fedora_branching: true\n", `.packit.yaml:5:5: key "follow_fedora_branching" is not accepted in job 1`},
		{"dist-git-branches outside metadata", "specfile_path: a.spec\njobs:\n  - {job: propose_downstream, trigger: release, dist-git-branches: [f40]}\n", `.packit.yaml:3:49: key "dist-git-branches" is not accepted in job 1`},
		{"unknown job type", "specfile_path: a.spec\njobs: [{job: check_downstream, trigger: commit}]\n", `.packit.yaml:2:14: unknown job type "check_downstream"`},
		{"unknown trigger", "specfile_path: a.spec\njobs: [{job: tests, trigger: push}]\n", `.packit.yaml:2:30: unknown trigger "push"`},
		{"trigger list", "specfile_path: a.spec\njobs: [{job: tests, trigger: [commit]}]\n", `.packit.yaml:2:30: expected a string, found a list`},
		{"missing trigger", "specfile_path: a.spec\njobs: [{job: tests}]\n", `.packit.yaml:2:8: job 1 has no trigger key`},
		{"undefined package", "packages: {a: {specfile_path: a.spec}}\njobs: [{job: tests, trigger: commit, packages: [b]}]\n", `.packit.yaml:2:49: undefined package "b" referenced`},
		{"int identifier", "specfile_path: a.spec\nidentifier: 42\n", `.packit.yaml:2:13: expected a string, found an integer`},
		{"YAML 1.1 boolean as a string", "specfile_path: a.spec\nowner: yes\n", `.packit.yaml:2:8: expected a string, found a boolean`},
		{"top-level targets string", "specfile_path: a.spec\ntargets: fedora-all\n", `.packit.yaml:2:10: targets at the top level must be a list or a mapping`},
		{"unknown target option", "specfile_path: a.spec\ntargets: {fedora-all: {arch: x}}\n", `.packit.yaml:2:24: unknown key "arch" in the options of target "fedora-all"`},
		{"env string", "specfile_path: a.spec\nenv: RPM_NAME=kernel\n", `.packit.yaml:2:6: expected a mapping of variable names to values, found a string`},
		{"unknown action", "specfile_path: a.spec\nactions: {post-build: x}\n", `.packit.yaml:2:11: unknown action "post-build"`},
		{"unclosed quote in action", "specfile_path: a.spec\nactions: {create-archive: \"bash -c 'x\"}\n", `.packit.yaml:2:27: cannot split the command: no closing quotation`},
		{"unknown notification", "specfile_path: a.spec\nnotifications: {failure_comment: {msg: x}}\n", `.packit.yaml:2:35: unknown key "msg" in notifications.failure_comment`},
		{"lookahead branch", "specfile_path: a.spec\nbranch: '^(?!wip).*'\n", `.packit.yaml:2:9: branch "^(?!wip).*": uses a construct Go's regexp engine (RE2) lacks`},
		{"backreference branch", "specfile_path: a.spec\nbranch: '(a)\\1'\n", `.packit.yaml:2:9: branch "(a)\\1": uses an escape Go's regexp engine (RE2) lacks`},
		{"two documents", "a: 1\n---\nb: 2\n", `.packit.yaml:2:1: the file holds more than one YAML document`},
		{"syntax error", "a: [1\n", `.packit.yaml:`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := loadErrors(t, tc.yaml)
			if !strings.HasPrefix(errs[0], tc.want) {
				t.Errorf("got %q, want prefix %q", errs, tc.want)
			}
		})
	}
}

func TestErrorsAreCollected(t *testing.T) {
	errs := loadErrors(t, "specfile_path: a.spec\nsynced_files: [a]\njobs:\n  - {job: build, trigger: pull_request}\n")
	if len(errs) != 2 {
		t.Fatalf("got %q, want 2 errors", errs)
	}
	eq(t, "first", strings.HasPrefix(errs[0], `.packit.yaml:2:1: key "synced_files"`), true)
	eq(t, "second", strings.HasPrefix(errs[1], `.packit.yaml:4:11: job type "build" is not accepted`), true)
}

func TestYAML11Booleans(t *testing.T) {
	cfg := mustLoad(t, "specfile_path: a.spec\nmerge_pr_in_ci: off\nsync_changelog: \"yes\"\njobs: []\n", packitcfg.Options{RepoName: "a"})
	eq(t, "off", cfg.Packages["a"].MergePRInCI, false)
	eq(t, "quoted yes", cfg.Packages["a"].SyncChangelog, true)
}

func TestActionForms(t *testing.T) {
	cfg := mustLoad(t, `
specfile_path: a.spec
jobs: []
actions:
  get-current-version: echo "1.0 final"
  create-archive:
    - make dist
    - [ls, "-1", "*.tar.gz"]
`, packitcfg.Options{RepoName: "a"})
	a := cfg.Packages["a"].Actions
	eq(t, "string", a[packitcfg.ActionGetCurrentVersion], []packitcfg.Command{{"echo", "1.0 final"}})
	eq(t, "list", a[packitcfg.ActionCreateArchive], []packitcfg.Command{{"make", "dist"}, {"ls", "-1", "*.tar.gz"}})
}

func TestTestsInheritBuildTargets(t *testing.T) {
	cfg := mustLoad(t, `
specfile_path: a.spec
jobs:
  - {job: copr_build, trigger: pull_request, targets: [epel-9]}
  - {job: tests, trigger: pull_request}
  - {job: tests, trigger: commit}
`, packitcfg.Options{RepoName: "a"})
	eq(t, "from build", cfg.Jobs[1].Targets, map[string]packitcfg.TargetOptions{"epel-9": {}})
	chroots, err := packitcfg.ResolveTargets(&cfg.Jobs[2], packitcfg.DefaultAliasTable())
	eq(t, "err", err, nil)
	eq(t, "default", chroots, []string{"fedora-43-x86_64", "fedora-44-x86_64"})
}

func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob("testdata/corpus/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("<<: [1]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := packitcfg.Load("fuzz.yaml", data, packitcfg.Options{RepoName: "fuzz"})
		if err != nil {
			if len(packitcfg.Errors(err)) == 0 && !errors.Is(err, packitcfg.ErrTooLarge) {
				t.Fatalf("error without position type: %v", err)
			}
			return
		}
		for i := range cfg.Jobs {
			j := &cfg.Jobs[i]
			if _, err := packitcfg.ResolveTargets(j, packitcfg.DefaultAliasTable()); err != nil {
				t.Fatalf("ResolveTargets: %v", err)
			}
			packitcfg.StatusName(j, "main", "fedora-rawhide-x86_64")
			packitcfg.BranchMatches(j.Branch, "main")
		}
	})
}

func TestTooManyJobViewsIsRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString("packages:\n")
	for i := range 40 {
		fmt.Fprintf(&b, "  p%d: {specfile_path: a.spec}\n", i)
	}
	b.WriteString("jobs:\n")
	for range 30 {
		b.WriteString("  - {job: tests, trigger: commit}\n")
	}
	errs := loadErrors(t, b.String())
	// 25 jobs × 40 packages = 1,000 views fit; the 26th job (line 42+26) does not.
	eq(t, "errors", errs, []string{".packit.yaml:68:5: the jobs expand to more than 1000 job views (job × trigger × package); refusing the file"})
}

// TestTooManyTargetsIsRefused covers the fan-out a small file can cause
// through targets: each (job, target) is a build and a commit status.
func TestTooManyTargetsIsRefused(t *testing.T) {
	targets := func(n int) string {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("fedora-%d-x86_64", i)
		}
		return "[" + strings.Join(names, ", ") + "]"
	}
	t.Run("one job", func(t *testing.T) {
		errs := loadErrors(t, "specfile_path: a.spec\njobs:\n  - job: copr_build\n    trigger: pull_request\n    targets: "+targets(201)+"\n")
		eq(t, "errors", errs, []string{".packit.yaml:5:14: targets: 201 names, more than the 200 this service builds for one job"})
	})
	t.Run("inherited by many jobs", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("specfile_path: a.spec\ntargets: " + targets(200) + "\njobs:\n")
		for range 11 {
			b.WriteString("  - {job: copr_build, trigger: pull_request}\n")
		}
		errs := loadErrors(t, b.String())
		// 10 jobs × 200 targets fit; the 11th job does not.
		eq(t, "errors", errs, []string{".packit.yaml:14:5: the jobs name more than 2000 targets in all (job × trigger × package × target); refusing the file"})
	})
	t.Run("within the limits", func(t *testing.T) {
		cfg, err := packitcfg.Load(".packit.yaml", []byte("specfile_path: a.spec\ndownstream_package_name: a\ntargets: "+targets(200)+"\njobs:\n  - {job: copr_build, trigger: pull_request}\n"),
			packitcfg.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Jobs) != 1 || len(cfg.Jobs[0].Targets) != 200 {
			t.Fatalf("200 targets: %d jobs", len(cfg.Jobs))
		}
	})
}

func TestErrorListIsCapped(t *testing.T) {
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, "k%d: 1\n", i)
	}
	errs := loadErrors(t, b.String())
	eq(t, "count", len(errs), 51)
	eq(t, "last", strings.HasSuffix(errs[50], "too many errors; stopping here"), true)
}

func TestNullClearsInheritedValue(t *testing.T) {
	cfg := mustLoad(t, `
specfile_path: a.spec
update_release: false
release_suffix: top
jobs:
  - {job: copr_build, trigger: pull_request, update_release: null, release_suffix: null}
  - {job: copr_build, trigger: commit}
`, packitcfg.Options{RepoName: "a"})
	eq(t, "cleared to the default", cfg.Jobs[0].UpdateRelease, true)
	eq(t, "cleared suffix", cfg.Jobs[0].ReleaseSuffix, "")
	eq(t, "inherited", cfg.Jobs[1].UpdateRelease, false)
	eq(t, "inherited suffix", cfg.Jobs[1].ReleaseSuffix, "top")
}
