package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

const packitYAML = `specfile_path: pkg.spec
upstream_package_name: pkg
downstream_package_name: pkg
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
  - job: tests
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
  - job: copr_build
    trigger: commit
    branch: main
    targets: [fedora-rawhide-x86_64]
  - job: copr_build
    trigger: release
    targets: [fedora-rawhide-x86_64]
  - job: propose_downstream
    trigger: release
    dist_git_branches: [fedora-rawhide]
`

var projectFiles = map[string]string{".packit.yaml": packitYAML, "pkg.spec": "Name: pkg\nVersion: 1.0\n"}

// allFinal waits until the commit has want statuses, all final.
func (e *env) allFinal(projectID int64, sha string, want int) map[string]string {
	e.t.Helper()
	got := map[string]string{}
	for name, st := range e.WaitFinal(projectID, sha, want) {
		got[name] = st.Status
	}
	return got
}

// neverBackwards checks the simulator's transition log: per status job,
// pending → running → final only.
func (e *env) neverBackwards(projectID int64) {
	e.t.Helper()
	rank := map[string]int{"created": 0, "pending": 1, "running": 2}
	last := map[int64]string{}
	for _, tr := range e.Sim.StatusTransitions() {
		if tr.ProjectID != projectID {
			continue
		}
		r, ok := rank[tr.To]
		if !ok {
			r = 3
		}
		prev, seen := last[tr.StatusID]
		if seen {
			pr, ok := rank[prev]
			if !ok {
				pr = 3
			}
			if r <= pr {
				e.t.Errorf("status %s (job %d) went from %s to %s", tr.Name, tr.StatusID, prev, tr.To)
			}
		}
		last[tr.StatusID] = tr.To
	}
}

func (e *env) openMR(p gitlabsim.Project, author, branch string) gitlabsim.MergeRequest {
	e.t.Helper()
	return e.OpenMR(p, author, branch, "Change "+branch)
}

func TestMergeRequestStatusesReachTheirFinalState(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("pkg", projectFiles)
		mr := e.openMR(p, "alice", "feature")
		got := e.allFinal(p.ID, mr.HeadSHA, 2)
		want := map[string]string{"rpm-build:fedora-rawhide-x86_64": "skipped", "testing-farm:fedora-rawhide-x86_64": "skipped"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
		// Every status is in one external pipeline, and links to its job page.
		pipelines := map[int64]bool{}
		for _, st := range e.Sim.Statuses(p.ID, mr.HeadSHA) {
			pipelines[st.PipelineID] = true
			if !strings.HasPrefix(st.TargetURL, e.URL+"/jobs/") {
				t.Errorf("status %s links to %q", st.Name, st.TargetURL)
			}
			if !strings.Contains(st.Description, "no build environment for fedora-rawhide-x86_64") {
				t.Errorf("status %s says %q; it must say there is no build environment", st.Name, st.Description)
			}
		}
		if len(pipelines) != 1 {
			t.Errorf("statuses spread over %d pipelines", len(pipelines))
		}
		// The transition log: pending first, then the final state, never back.
		var seq []string
		for _, tr := range e.Sim.StatusTransitions() {
			if tr.SHA == mr.HeadSHA && tr.Name == "rpm-build:fedora-rawhide-x86_64" {
				seq = append(seq, tr.From+">"+tr.To)
			}
		}
		if strings.Join(seq, ",") != "created>pending,pending>skipped" {
			t.Errorf("transitions %v", seq)
		}
		e.neverBackwards(p.ID)
		// The push of the feature branch matched no commit job (branch: main).
		for _, r := range e.Runs(p.ID) {
			if r.Trigger == "commit" {
				t.Errorf("a push to a feature branch started run %+v", r)
			}
		}
	})
}

func TestPushToBranchRunsCommitJobs(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("pkg", projectFiles)
		sha, err := e.Sim.PushCommits(e.Context(), p.ID, "main", "alice", gitlabsim.CommitSpec{Message: "on main",
			Changes: []gitlabsim.FileChange{{Path: "NEWS", Content: "news\n"}}})
		if err != nil {
			t.Fatal(err)
		}
		got := e.allFinal(p.ID, sha, 1)
		for name := range got {
			if !strings.HasPrefix(name, "rpm-build:main:") {
				t.Errorf("commit status %q; Packit names commit builds rpm-build:<branch>:<target>", name)
			}
		}
		runs := e.Runs(p.ID)
		if len(runs) != 1 || runs[0].Trigger != "commit" || runs[0].Ref != "main" {
			t.Fatalf("runs %+v", runs)
		}
	})
}

func TestReleaseFiresTwoHooksAndMakesOneRun(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("pkg", projectFiles)
		rel, err := e.Sim.CreateRelease(e.Context(), p.ID, "alice", gitlabsim.ReleaseSpec{Tag: "v1.0", Ref: "main", Name: "1.0"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Sim.WaitDeliveries(e.Context()); err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for _, d := range e.Sim.Deliveries() {
			if d.ProjectID == p.ID {
				kinds[d.Event]++
			}
		}
		if kinds["Release Hook"] != 1 || kinds["Tag Push Hook"] != 1 {
			t.Fatalf("the simulator sent %v; a release fires a Release Hook and a Tag Push Hook", kinds)
		}
		got := e.allFinal(p.ID, rel.CommitSHA, 2)
		e.Eventually("one release run", func() (bool, string) {
			runs := e.Runs(p.ID)
			return len(runs) == 1 && runs[0].Trigger == "release", fmt.Sprint(runs)
		})
		if got["propose-downstream:fedora-rawhide"] != "skipped" {
			names := make([]string, 0, len(got))
			for n := range got {
				names = append(names, n)
			}
			sort.Strings(names)
			t.Errorf("statuses %v: propose_downstream must be skipped as not supported", got)
		}
	})
}

func TestDuplicateDeliveryMakesOneRun(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("pkg", projectFiles)
		mr := e.openMR(p, "alice", "feature")
		e.allFinal(p.ID, mr.HeadSHA, 2)
		if err := e.Sim.WaitDeliveries(e.Context()); err != nil {
			t.Fatal(err)
		}
		for _, d := range e.Sim.Deliveries() {
			if d.Event == "Merge Request Hook" && d.ProjectID == p.ID {
				if err := e.Sim.ResendDelivery(d.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := e.Sim.WaitDeliveries(e.Context()); err != nil {
			t.Fatal(err)
		}
		for _, d := range e.Sim.Deliveries() {
			if d.Resend && d.StatusCode != 202 {
				t.Fatalf("resend answered %d", d.StatusCode)
			}
		}
		runs := e.Runs(p.ID)
		prRuns := 0
		for _, r := range runs {
			if r.Trigger == "pull_request" {
				prRuns++
			}
		}
		if prRuns != 1 {
			t.Fatalf("%d pull_request runs after a resend, want 1", prRuns)
		}
		if n := len(e.Sim.StatusTransitions()); n == 0 {
			t.Fatal("no transitions recorded")
		}
	})
}

func TestRestartInTheMiddleOfARun(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("pkg", projectFiles)
		// Stop upbuild right after GitLab got its 202, before the run is done.
		mr := e.openMR(p, "alice", "feature")
		if err := e.Sim.WaitDeliveries(e.Context()); err != nil {
			t.Fatal(err)
		}
		e.Restart()
		e.allFinal(p.ID, mr.HeadSHA, 2)
		e.neverBackwards(p.ID)
		jobs := 0
		for _, r := range e.Runs(p.ID) {
			js, _ := e.Server.Store().RunJobs(e.Context(), r.ID)
			for _, j := range js {
				jobs++
				if !store.JobFinal(j.State) {
					t.Errorf("job %d still %s", j.ID, j.State)
				}
			}
		}
		if jobs != 2 {
			t.Fatalf("%d jobs, want 2 (no duplicates after restart)", jobs)
		}
	})
}
