package browser_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"upbuild.dev/upbuild/internal/exec"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// hostTarget is the build environment every upbuild has: this machine.
var hostTarget = "host-" + exec.HostArch()

// greeterSpec is a tiny noarch package that rpmbuild builds in seconds.
const greeterSpec = `Name:           greeter
Version:        0.1
Release:        1%{?dist}
Summary:        Greets
License:        MIT
Source0:        greeter-%{version}.tar.gz
BuildArch:      noarch

%description
A package for upbuild's browser tests.

%prep
%setup -q

%build

%install
install -D -m 0755 greeter.sh %{buildroot}%{_bindir}/greeter

%files
%{_bindir}/greeter

%changelog
* Mon Jan 01 2024 Alice <alice@example.com> - 0.1-1
- First release
`

// greeterFiles is the greeter package with jobs (Packit's jobs: list) and
// an optional .upbuild.yaml.
func greeterFiles(jobs, upbuildYAML string) map[string]string {
	files := map[string]string{
		"greeter.spec": greeterSpec,
		"greeter.sh":   "#!/bin/sh\necho hello\n",
		".packit.yaml": "specfile_path: greeter.spec\nupstream_package_name: greeter\ndownstream_package_name: greeter\n" +
			"upstream_tag_template: v{version}\njobs:\n" + jobs,
	}
	if upbuildYAML != "" {
		files[".upbuild.yaml"] = upbuildYAML
	}
	return files
}

// greeterProject creates the greeter project on the stack, tagged v1.0 so
// that its builds are version 1.0.
func greeterProject(t *testing.T, st *stacktest.Stack, path, jobs, upbuildYAML string) gitlabsim.Project {
	t.Helper()
	p := st.Project(path, greeterFiles(jobs, upbuildYAML))
	if _, err := st.Sim.CreateTag(st.Context(), p.ID, "alice", "v1.0", "main", "release 1.0"); err != nil {
		t.Fatalf("tag v1.0: %v", err)
	}
	return p
}

// rowOf selects the table row that links to a page.
func rowOf(href string) string { return fmt.Sprintf(`tr:has(a[href=%q])`, href) }

// plainLog fetches a job's log as plain text from the API.
func plainLog(t *testing.T, st *stacktest.Stack, jobID int64) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/api/v1/jobs/%d/log", st.URL, jobID))
	if err != nil {
		t.Fatalf("job log: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("job log: %s %v\n%s", resp.Status, err, body)
	}
	return string(body)
}

func TestPagesShowRunsCreatedThroughTheSimulator(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		p := greeterProject(t, st, "greeter", "  - job: copr_build\n    trigger: pull_request\n    targets: ["+hostTarget+", fedora-rawhide-x86_64]\n", "")
		const title = "Greet in French"
		mr := st.OpenMR(p, "alice", "french", title)
		final := st.WaitFinal(p.ID, mr.HeadSHA, 2)
		if got := final["rpm-build:"+hostTarget].Status; got != "success" {
			t.Fatalf("the host build ended %q: %+v", got, final)
		}
		run := st.WaitRun(p.ID, mr.HeadSHA)
		jobs := st.Jobs(run.ID)
		b := newBrowser(t)
		runRow := rowOf(fmt.Sprintf("/runs/%d", run.ID))

		b.open(st.URL+"/", runRow)
		checkRunRow(t, b, runRow, p, mr, title)
		b.screenshot("home")

		b.open(st.ProjectPage(p), runRow)
		if h1 := b.text("h1"); h1 != p.PathWithNamespace {
			t.Errorf("the project page is titled %q, want %q", h1, p.PathWithNamespace)
		}
		checkRunRow(t, b, runRow, p, mr, title)
		b.screenshot("project")

		// The run page lists every job with its target and final state.
		if err := b.do(chromedp.Click(chromedp.CSS(runRow+" a[href^='/runs/']")), chromedp.WaitVisible(chromedp.CSS("h2"))); err != nil {
			t.Fatalf("follow the run link: %v", err)
		}
		if h1 := b.text("h1"); !strings.HasPrefix(h1, fmt.Sprintf("Run #%d", run.ID)) {
			t.Errorf("the run page is titled %q", h1)
		}
		if dd := b.text("dl"); !strings.Contains(dd, title) {
			t.Errorf("the run page does not show the MR title %q: %q", title, dd)
		}
		var build store.Job
		for _, j := range jobs {
			row := b.text(rowOf(fmt.Sprintf("/jobs/%d", j.ID)))
			for _, want := range []string{j.StatusName, j.Target, j.State} {
				if !strings.Contains(row, want) {
					t.Errorf("the run page's row of job %d says %q, want %q in it", j.ID, row, want)
				}
			}
			if j.Target == hostTarget {
				build = j
			}
		}
		if n := eval[int](b, `document.querySelectorAll("a[href^='/jobs/']").length`); n != len(jobs) {
			t.Errorf("the run page links %d jobs, want %d", n, len(jobs))
		}
		b.screenshot("run")

		// The job page shows the build's whole log.
		if err := b.do(chromedp.Click(chromedp.CSS(fmt.Sprintf("a[href='/jobs/%d']", build.ID))), chromedp.WaitVisible(chromedp.CSS("#log"))); err != nil {
			t.Fatalf("follow the job link: %v", err)
		}
		if h1 := b.text("h1"); h1 != build.StatusName {
			t.Errorf("the job page is titled %q, want %q", h1, build.StatusName)
		}
		if state := b.text("#job-state"); state != "success" {
			t.Errorf("the job page says the job is %q, want success", state)
		}
		shown := b.text("#log")
		if want := plainLog(t, st, build.ID); shown != want {
			t.Errorf("the job page's log differs from the job's log:\n--- page\n%s\n--- log\n%s", shown, want)
		}
		if !strings.Contains(shown, "built greeter-1.0-1") {
			t.Errorf("the job page's log does not say the SRPM was built:\n%s", shown)
		}
		b.screenshot("job")
	})
}

// checkRunRow checks a run's row in a run table (home or project page).
func checkRunRow(t *testing.T, b *browser, sel string, p gitlabsim.Project, mr gitlabsim.MergeRequest, title string) {
	t.Helper()
	row := b.text(sel)
	for _, want := range []string{p.PathWithNamespace, fmt.Sprintf("!%d", mr.IID), title, mr.HeadSHA[:8]} {
		if !strings.Contains(row, want) {
			t.Errorf("the run's row says %q, want %q in it", row, want)
		}
	}
}
