package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/exec"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/testdb"
)

// helloSpec is the hello package at 0.1, built from the repository's archive.
var helloSpec = gitlabsim.HelloArchiveSpec("0.1")

func helloFiles(spec string) map[string]string {
	host := "host-" + exec.HostArch()
	return map[string]string{
		"hello.spec": spec,
		"hello.sh":   "#!/bin/sh\necho hello\n",
		".packit.yaml": `specfile_path: hello.spec
upstream_package_name: hello
downstream_package_name: hello
upstream_tag_template: v{version}
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [` + host + `, fedora-rawhide-x86_64]
  - job: tests
    trigger: pull_request
    targets: [` + host + `]
`,
		".upbuild.yaml": "tests:\n  - name: installed files\n    run: ls $UPBUILD_RPMS_DIR/noarch/hello-1.0-*.noarch.rpm && sh hello.sh\n",
	}
}

// get fetches a URL on upbuild and returns the body.
func (e *env) get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRealBuildOfAMergeRequest(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("greeter", helloFiles(helloSpec))
		if _, err := e.Sim.CreateTag(e.Context(), p.ID, "alice", "v1.0", "main", "release 1.0"); err != nil {
			t.Fatal(err)
		}
		mr := e.openMR(p, "alice", "feature")
		host := "host-" + exec.HostArch()
		got := e.allFinal(p.ID, mr.HeadSHA, 3)
		want := map[string]string{"rpm-build:" + host: "success", "rpm-build:fedora-rawhide-x86_64": "skipped",
			"testing-farm:" + host: "success"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			for _, st := range e.Sim.Statuses(p.ID, mr.HeadSHA) {
				t.Logf("%s: %s %q %s", st.Name, st.Status, st.Description, st.TargetURL)
				if id := strings.TrimPrefix(st.TargetURL, e.URL+"/jobs/"); id != st.TargetURL {
					_, log := e.get(t, e.URL+"/api/v1/jobs/"+id+"/log")
					t.Logf("log of job %s:\n%s", id, tail(log, 3000))
				}
			}
			t.Fatalf("statuses %v, want %v", got, want)
		}
		var buildURL string
		for _, st := range e.Sim.Statuses(p.ID, mr.HeadSHA) {
			switch st.Name {
			case "rpm-build:" + host:
				buildURL = st.TargetURL
				if !strings.Contains(st.Description, "Built hello-1.0-") {
					t.Errorf("build status says %q", st.Description)
				}
			case "rpm-build:fedora-rawhide-x86_64":
				if st.Description != "no build environment for fedora-rawhide-x86_64 on this service" {
					t.Errorf("the Fedora target says %q", st.Description)
				}
			}
		}
		id := strings.TrimPrefix(buildURL, e.URL+"/jobs/")
		code, arts := e.jobArtifacts(t, id)
		if code != 200 {
			t.Fatalf("artifacts of job %s: %d", id, code)
		}
		var srpm, rpm string
		for _, a := range arts {
			switch {
			case strings.HasSuffix(a.Name, ".src.rpm"):
				srpm = a.URL
			case strings.HasSuffix(a.Name, ".noarch.rpm"):
				rpm = a.URL
			}
		}
		if srpm == "" || rpm == "" {
			t.Fatalf("artifacts %+v: want the SRPM and the RPM", arts)
		}
		code, body := e.get(t, e.URL+rpm)
		if code != 200 || !strings.HasPrefix(body, "\xed\xab\xee\xdb") {
			t.Fatalf("RPM download: %d, %d bytes, not an RPM", code, len(body))
		}
		code, log := e.get(t, e.URL+"/api/v1/jobs/"+id+"/log")
		if code != 200 || !strings.Contains(log, "rpmbuild") || !strings.Contains(log, "Wrote:") {
			t.Fatalf("build log (%d):\n%s", code, tail(log, 2000))
		}
		// The run's two local jobs (the build and the tests) asked the
		// forge once: whichever came second used the first one's fetch.
		// Both built the same SRPM: the run's merge commit and the run's
		// timestamp, as Packit builds one SRPM per run.
		var fetched, reused int
		srpms := map[string]bool{}
		for _, st := range e.Sim.Statuses(p.ID, mr.HeadSHA) {
			id := strings.TrimPrefix(st.TargetURL, e.URL+"/jobs/")
			if !strings.HasSuffix(st.Name, host) || id == st.TargetURL {
				continue
			}
			_, log := e.get(t, e.URL+"/api/v1/jobs/"+id+"/log")
			if strings.Contains(log, "fetched for this run") {
				reused++
			} else if strings.Contains(log, "Fetching "+p.HTTPURLToRepo) {
				fetched++
			}
			_, arts := e.jobArtifacts(t, id)
			for _, a := range arts {
				if strings.HasSuffix(a.Name, ".src.rpm") {
					srpms[a.Name] = true
				}
			}
		}
		if fetched != 1 || reused != 1 {
			t.Errorf("of the run's two local jobs, %d fetched from the forge and %d used that fetch; want 1 and 1", fetched, reused)
		}
		if len(srpms) != 1 {
			t.Errorf("the run's local jobs built the SRPMs %v; want one and the same", srpms)
		}
	})
}

func TestBrokenSpecFailsWithRpmbuildsError(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	broken := strings.Replace(helloSpec, "%files\n", "%files\n/usr/share/missing-file\n", 1)
	p := e.Project("greeter", helloFiles(broken))
	if _, err := e.Sim.CreateTag(e.Context(), p.ID, "alice", "v1.0", "main", "release 1.0"); err != nil {
		t.Fatal(err)
	}
	mr := e.openMR(p, "alice", "feature")
	host := "host-" + exec.HostArch()
	got := e.allFinal(p.ID, mr.HeadSHA, 3)
	if got["rpm-build:"+host] != "failed" {
		t.Fatalf("statuses %v: the broken spec's build must fail", got)
	}
	for _, st := range e.Sim.Statuses(p.ID, mr.HeadSHA) {
		if st.Name != "rpm-build:"+host {
			continue
		}
		id := strings.TrimPrefix(st.TargetURL, e.URL+"/jobs/")
		_, log := e.get(t, e.URL+"/api/v1/jobs/"+id+"/log")
		if !strings.Contains(log, "File not found") || !strings.Contains(log, "missing-file") {
			t.Fatalf("the log does not show rpmbuild's error:\n%s", tail(log, 2000))
		}
		if !strings.Contains(st.Description, "RPM build failed") {
			t.Errorf("status says %q", st.Description)
		}
	}
}
