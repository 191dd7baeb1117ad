package plan_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/settings"
	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

const packitYAML = `specfile_path: pkg.spec
jobs:
  - job: copr_build
    trigger: commit
    targets: [fedora-rawhide-x86_64]
  - job: copr_build
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
`

var spec = map[string]string{"pkg.spec": "Name: pkg\nVersion: 1.0\n"}

// saveSettings saves s over whatever the project has, as the settings page does.
func saveSettings(t *testing.T, st *stacktest.Stack, projectID int64, s settings.Settings) {
	t.Helper()
	ctx := context.Background()
	current, _, err := st.Server.Store().ProjectSettings(ctx, st.Instance, projectID)
	if err != nil {
		t.Fatal(err)
	}
	data, err := settings.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Server.Store().SaveProjectSettings(ctx, store.SettingsChange{Instance: st.Instance, ProjectID: projectID,
		Data: data, Actor: "alice", Detail: "test", ExpectedVersion: current.Version}); err != nil {
		t.Fatal(err)
	}
}

// statusNames lists a run's jobs by status name.
func statusNames(st *stacktest.Stack, run store.Run) []string {
	var out []string
	for _, j := range st.Jobs(run.ID) {
		out = append(out, j.StatusName)
	}
	slices.Sort(out)
	return out
}

func withSpec(files map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range spec {
		out[k] = v
	}
	for k, v := range files {
		out[k] = v
	}
	return out
}

func TestSavedSettingsApplyToTheNextRun(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		p := st.Project("pkg", withSpec(map[string]string{".packit.yaml": packitYAML}))

		first := st.Push(p, "main", "alice", "first", gitlabsim.FileChange{Path: "README", Content: "one\n"})
		if got := statusNames(st, st.WaitRun(p.ID, first)); !slices.Equal(got, []string{"rpm-build:main:fedora-rawhide-x86_64"}) {
			t.Fatalf("before the settings: %v", got)
		}

		saveSettings(t, st, p.ID, settings.Settings{Targets: []string{"epel-9", "fedora-latest-aarch64"},
			StatusNameTemplate: "upbuild/{job_name}/{chroot}"})
		second := st.Push(p, "main", "alice", "second", gitlabsim.FileChange{Path: "README", Content: "two\n"})
		want := []string{"upbuild/rpm-build/epel-9-x86_64", "upbuild/rpm-build/fedora-45-aarch64"}
		if got := statusNames(st, st.WaitRun(p.ID, second)); !slices.Equal(got, want) {
			t.Fatalf("after the settings: %v, want %v", got, want)
		}
		st.Eventually("the statuses on GitLab use the settings' names", func() (bool, string) {
			got := st.Statuses(p.ID, second)
			_, ok := got[want[0]]
			return ok && len(got) == 2, fmt.Sprint(got)
		})

		// Switching the job off stops it on the next push.
		saveSettings(t, st, p.ID, settings.Settings{Jobs: []settings.JobOverride{{Type: "copr_build", Disabled: true}}})
		third := st.Push(p, "main", "alice", "third", gitlabsim.FileChange{Path: "README", Content: "three\n"})
		// A run with no job is not written; a merge request proves the
		// push was planned after the save (deliveries are planned in order).
		mr := st.OpenMR(p, "alice", "feature", "After the switch")
		if err := st.Sim.WaitDeliveries(st.Context()); err != nil {
			t.Fatal(err)
		}
		st.Eventually("the MR's delivery planned", func() (bool, string) {
			for _, d := range mustUnplanned(t, st) {
				if d.ProjectID == p.ID {
					return false, "still unplanned"
				}
			}
			return true, ""
		})
		for _, sha := range []string{third, mr.HeadSHA} {
			for _, r := range st.Runs(p.ID) {
				if r.SHA == sha {
					t.Fatalf("a switched-off job still ran at %s: %+v", sha[:8], statusNames(st, r))
				}
			}
		}

		// The default branch's config is kept for the settings preview.
		cfg, found, err := st.Server.Store().ProjectConfig(context.Background(), st.Instance, p.ID)
		if err != nil || !found {
			t.Fatalf("recorded config: %v %v", found, err)
		}
		if cfg.Ref != "main" || cfg.File != ".packit.yaml" || string(cfg.Content) != packitYAML || !slices.Contains(cfg.RepoFiles, "pkg.spec") {
			t.Fatalf("recorded config %+v", cfg)
		}
	})
}

func mustUnplanned(t *testing.T, st *stacktest.Stack) []store.UnplannedDelivery {
	t.Helper()
	list, err := st.Server.Store().UnplannedDeliveries(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestFallbackConfigStandsInForAMissingPackitYAML(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		p := st.Project("bare", withSpec(map[string]string{"README": "no packit config here\n"}))
		saveSettings(t, st, p.ID, settings.Settings{FallbackConfig: packitYAML})

		sha := st.Push(p, "main", "alice", "change", gitlabsim.FileChange{Path: "README", Content: "changed\n"})
		run := st.WaitRun(p.ID, sha)
		if run.ConfigFile != settings.FallbackFileName {
			t.Errorf("run config file %q, want %q", run.ConfigFile, settings.FallbackFileName)
		}
		if got := statusNames(st, run); !slices.Equal(got, []string{"rpm-build:main:fedora-rawhide-x86_64"}) {
			t.Fatalf("jobs from the fallback: %v", got)
		}

		// Once the repository has its own config, that one counts.
		own := strings.Replace(packitYAML, "targets: [fedora-rawhide-x86_64]", "targets: [epel-9-x86_64]", 1)
		sha = st.Push(p, "main", "alice", "add a config", gitlabsim.FileChange{Path: ".packit.yaml", Content: own})
		run = st.WaitRun(p.ID, sha)
		if got := statusNames(st, run); run.ConfigFile != ".packit.yaml" || !slices.Equal(got, []string{"rpm-build:main:epel-9-x86_64"}) {
			t.Fatalf("with its own config: %s %v", run.ConfigFile, got)
		}
	})
}

func TestProjectApprovalPolicyHoldsMergeRequestsOfNonDevelopers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		p := st.Project("gated", withSpec(map[string]string{".packit.yaml": packitYAML}))
		st.User("rita", gitlabsim.Reporter)

		// The operator's policy (forks) lets a branch in the project run.
		open := st.OpenMR(p, "rita", "first", "Runs at once")
		if run := st.WaitRun(p.ID, open.HeadSHA); run.State == store.RunWaiting {
			t.Fatalf("held under the operator's policy: %+v", run)
		}
		// The project asks for approval of every non-Developer's MR.
		saveSettings(t, st, p.ID, settings.Settings{ApprovalPolicy: settings.ApprovalAll})
		held := st.OpenMR(p, "rita", "second", "Waits for approval")
		run := st.WaitRun(p.ID, held.HeadSHA)
		if run.State != store.RunWaiting || !strings.Contains(run.Message, "by people without Developer access") {
			t.Fatalf("run under the project's policy: %s %q", run.State, run.Message)
		}
		for _, j := range st.Jobs(run.ID) {
			if j.State != store.JobHeld {
				t.Errorf("job %s is %s, want held", j.StatusName, j.State)
			}
		}
	})
}

func TestProjectApprovalPolicyCannotLoosenTheOperators(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{Configure: func(c *config.Config) { c.ApprovalPolicy = "all" }})
		p := st.Project("strict", withSpec(map[string]string{".packit.yaml": packitYAML}))
		st.User("rita", gitlabsim.Reporter)
		saveSettings(t, st, p.ID, settings.Settings{ApprovalPolicy: settings.ApprovalOff})
		mr := st.OpenMR(p, "rita", "feature", "Still waits")
		if run := st.WaitRun(p.ID, mr.HeadSHA); run.State != store.RunWaiting {
			t.Fatalf("the project's off loosened the operator's all: %s", run.State)
		}
	})
}
