package stacktest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/testdb"
)

const packitYAML = `specfile_path: pkg.spec
upstream_package_name: pkg
downstream_package_name: pkg
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
`

func TestAMergeRequestOnTheSimulatorBecomesARunOnUpbuild(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		p := st.Project("pkg", map[string]string{".packit.yaml": packitYAML, "pkg.spec": "Name: pkg\nVersion: 1.0\n"})
		mr := st.OpenMR(p, "alice", "feature", "Teach pkg a trick")

		final := st.WaitFinal(p.ID, mr.HeadSHA, 1)
		build, ok := final["rpm-build:fedora-rawhide-x86_64"]
		if !ok || build.Status != "skipped" {
			t.Fatalf("statuses on the MR head: %+v", final)
		}
		run := st.WaitRun(p.ID, mr.HeadSHA)
		if run.MRIID != mr.IID || run.Title != "Teach pkg a trick" {
			t.Errorf("run of the MR: MR !%d titled %q, want !%d %q", run.MRIID, run.Title, mr.IID, "Teach pkg a trick")
		}
		if runs := st.Runs(p.ID); len(runs) != 1 || runs[0].ID != run.ID {
			t.Errorf("project runs: %+v", runs)
		}
		jobs := st.Jobs(run.ID)
		if len(jobs) != 1 || jobs[0].StatusName != "rpm-build:fedora-rawhide-x86_64" || jobs[0].State != "skipped" {
			t.Fatalf("jobs of the run: %+v", jobs)
		}
		if build.TargetURL != st.JobPage(jobs[0].ID) {
			t.Errorf("the status links to %q, want the job page %q", build.TargetURL, st.JobPage(jobs[0].ID))
		}

		for _, page := range []string{st.URL + "/", st.ProjectPage(p), st.RunPage(run.ID), st.JobPage(jobs[0].ID)} {
			body := get(t, page)
			if !strings.Contains(body, "Teach pkg a trick") {
				t.Errorf("%s does not show the MR title:\n%s", page, body)
			}
		}
	})
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

func TestSignInThroughTheSimulatorGivesASession(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		client := st.SignIn("alice")
		resp, err := client.Get(st.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "signed in as @alice") {
			t.Fatalf("home page after sign-in: %s\n%s", resp.Status, body)
		}
	})
}
