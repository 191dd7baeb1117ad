package e2e

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/exec"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/testdb"
)

// hostTarget is the target whose jobs run on this machine.
func hostTarget() string { return "host-" + exec.HostArch() }

// sampleRepo reads a sample upstream tree from testdata/<name> as the files
// of a simulator project. @HOST_TARGET@ in a file becomes hostTarget(), so
// the configs build on whatever architecture runs the tests.
func sampleRepo(t *testing.T, name string) map[string]string {
	t.Helper()
	root := filepath.Join("testdata", name)
	files := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = strings.ReplaceAll(string(data), "@HOST_TARGET@", hostTarget())
		return nil
	})
	if err != nil {
		t.Fatalf("reading the sample %s: %v", name, err)
	}
	return files
}

// latestStatuses returns a commit's current status per name.
func (e *env) latestStatuses(projectID int64, sha string) map[string]gitlabsim.CommitStatus {
	out := map[string]gitlabsim.CommitStatus{}
	for _, st := range e.Sim.Statuses(projectID, sha) {
		if !st.Retried {
			out[st.Name] = st
		}
	}
	return out
}

// jobLog downloads the log of the job a status links to.
func (e *env) jobLog(t *testing.T, st gitlabsim.CommitStatus) string {
	t.Helper()
	code, log := e.get(t, e.URL+"/api/v1/jobs/"+e.jobID(t, st)+"/log")
	if code != 200 {
		t.Fatalf("log of %s: HTTP %d %s", st.Name, code, log)
	}
	return log
}

// jobID is the upbuild job a status links to.
func (e *env) jobID(t *testing.T, st gitlabsim.CommitStatus) string {
	t.Helper()
	id, ok := strings.CutPrefix(st.TargetURL, e.URL+"/jobs/")
	if !ok {
		t.Fatalf("status %s links to %q, not to an upbuild job page", st.Name, st.TargetURL)
	}
	return id
}

// requireFinal waits for the commit's statuses to be final and fails,
// showing every job's log, unless they are exactly want (name → state).
func (e *env) requireFinal(t *testing.T, projectID int64, sha string, want map[string]string) map[string]gitlabsim.CommitStatus {
	t.Helper()
	got := e.allFinal(projectID, sha, len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		for _, st := range e.latestStatuses(projectID, sha) {
			t.Logf("%s: %s %q", st.Name, st.Status, st.Description)
			if _, ok := strings.CutPrefix(st.TargetURL, e.URL+"/jobs/"); ok {
				t.Logf("log of %s:\n%s", st.Name, tail(e.jobLog(t, st), 3000))
			}
		}
		t.Fatalf("statuses %v, want %v", got, want)
	}
	return e.latestStatuses(projectID, sha)
}

type artifact struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// artifacts lists the files the job behind a status kept.
func (e *env) artifacts(t *testing.T, st gitlabsim.CommitStatus) []artifact {
	t.Helper()
	code, list := e.jobArtifacts(t, e.jobID(t, st))
	if code != 200 {
		t.Fatalf("artifacts of %s: HTTP %d", st.Name, code)
	}
	return list
}

// jobArtifacts lists a job's artifacts through the API: the status code
// and, on 200, the list.
func (e *env) jobArtifacts(t *testing.T, jobID string) (int, []artifact) {
	t.Helper()
	code, body := e.get(t, e.URL+"/api/v1/jobs/"+jobID+"/artifacts")
	if code != 200 {
		return code, nil
	}
	var list struct {
		Artifacts []artifact `json:"artifacts"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("artifacts of job %s, JSON %q: %v", jobID, body, err)
	}
	return code, list.Artifacts
}

// packageBuild is what a build job kept: its SRPM, with the release read
// from the SRPM's file name, and its binary RPMs.
type packageBuild struct {
	Release string
	SRPM    artifact
	RPMs    []artifact
}

// builtPackage reads a build's artifacts, expecting exactly one SRPM of
// the named package with the given version.
func (e *env) builtPackage(t *testing.T, st gitlabsim.CommitStatus, name, version string) packageBuild {
	t.Helper()
	var out packageBuild
	var srpms []string
	for _, a := range e.artifacts(t, st) {
		if strings.HasSuffix(a.Name, ".src.rpm") {
			srpms = append(srpms, a.Name)
			out.SRPM = a
		} else if strings.HasSuffix(a.Name, ".rpm") {
			out.RPMs = append(out.RPMs, a)
		}
	}
	if len(srpms) != 1 {
		t.Fatalf("%s kept SRPMs %v, want exactly one", st.Name, srpms)
	}
	prefix := name + "-" + version + "-"
	release, ok := strings.CutPrefix(strings.TrimSuffix(out.SRPM.Name, ".src.rpm"), prefix)
	if !ok || release == "" {
		t.Fatalf("%s built %s, want %s<release>.src.rpm", st.Name, out.SRPM.Name, prefix)
	}
	out.Release = release
	if len(out.RPMs) == 0 {
		t.Fatalf("%s kept no binary RPM, only %s", st.Name, out.SRPM.Name)
	}
	return out
}

// rpmNames lists the binary RPMs' file names.
func (b packageBuild) rpmNames() []string {
	var names []string
	for _, a := range b.RPMs {
		names = append(names, a.Name)
	}
	return names
}

// download fetches an artifact into a file of the test's temp dir.
func (e *env) download(t *testing.T, a artifact) string {
	t.Helper()
	code, body := e.get(t, e.URL+a.URL)
	if code != 200 || !strings.HasPrefix(body, "\xed\xab\xee\xdb") {
		t.Fatalf("download of %s: HTTP %d, %d bytes, not an RPM", a.Name, code, len(body))
	}
	path := filepath.Join(t.TempDir(), a.Name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// packitRelease matches the Release Packit gives an MR build of a spec
// whose Release is 1: 1.<%Y%m%d%H%M%S%f>.<branch>.<commits since tag>.g<hash>.
var packitRelease = regexp.MustCompile(`^1\.(\d{14})(\d{6})\.([^.]+)\.(\d+)\.g([0-9a-f]{7,40})$`)

// mergedAs reads the merge commit upbuild built from the checkout's log line
// "Merged <source> onto <branch> (<target>) as <merge>".
var mergedAs = regexp.MustCompile(`Merged [0-9a-f]+ onto \S+ \([0-9a-f]+\) as ([0-9a-f]+)`)

func TestCProjectBuildsWithPackitsSnapshotRelease(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("cgreet", sampleRepo(t, "cgreet"))
		if _, err := e.Sim.CreateTag(e.Context(), p.ID, "alice", "v1.2.0", "main", "release 1.2.0"); err != nil {
			t.Fatal(err)
		}
		// Three commits after the tag, on the MR branch; the second changes
		// what the program prints, so the test shows the MR's code was built.
		greeting := strings.Replace(sampleRepo(t, "cgreet")["hello.c"], `"Hello, %s`, `"Hi, %s`, 1)
		if _, err := e.Sim.PushCommits(e.Context(), p.ID, "friendlier", "alice",
			gitlabsim.CommitSpec{Message: "Add a README", Changes: []gitlabsim.FileChange{{Path: "README", Content: "cgreet greets.\n"}}},
			gitlabsim.CommitSpec{Message: "Say hi", Changes: []gitlabsim.FileChange{{Path: "hello.c", Content: greeting}}},
			gitlabsim.CommitSpec{Message: "Add NEWS", Changes: []gitlabsim.FileChange{{Path: "NEWS", Content: "Says hi now.\n"}}},
		); err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		mr, err := e.Sim.OpenMergeRequest(e.Context(), gitlabsim.MergeRequestSpec{ProjectID: p.ID, SourceBranch: "friendlier",
			TargetBranch: "main", Title: "Say hi", Author: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		host := hostTarget()
		sts := e.requireFinal(t, p.ID, mr.HeadSHA, map[string]string{"rpm-build:" + host: "success", "testing-farm:" + host: "success"})
		after := time.Now()

		build := sts["rpm-build:"+host]
		got := e.builtPackage(t, build, "cgreet", "1.2.0")
		m := packitRelease.FindStringSubmatch(got.Release)
		if m == nil {
			t.Fatalf("release %q does not follow Packit's 1.<timestamp>.<branch>.<commits>.g<hash>", got.Release)
		}
		stamp, err := time.ParseInLocation("20060102150405", m[1], time.Local)
		if err != nil {
			t.Fatal(err)
		}
		if stamp.Before(before.Truncate(time.Second)) || stamp.After(after) {
			t.Errorf("release timestamp %s is not the build's time (between %s and %s)", stamp, before, after)
		}
		if want := fmt.Sprintf("pr%d", mr.IID); m[3] != want {
			t.Errorf("release branch part %q, want %q (Packit's pr/<iid> without the slash)", m[3], want)
		}
		// upbuild builds the MR merged onto main, as Packit does, so git
		// describe counts the three commits and the merge commit.
		if m[4] != "4" {
			t.Errorf("release says %s commits since v1.2.0, want 4 (three on the branch and the merge)", m[4])
		}
		log := e.jobLog(t, build)
		merged := mergedAs.FindStringSubmatch(log)
		if merged == nil {
			t.Fatalf("the build log does not say what was merged:\n%s", tail(log, 2000))
		}
		if !strings.HasPrefix(merged[1], m[5]) && !strings.HasPrefix(m[5], merged[1]) {
			t.Errorf("release hash g%s is not the built merge commit %s", m[5], merged[1])
		}
		if want := "Built cgreet-1.2.0-" + got.Release + " for " + host; build.Description != want {
			t.Errorf("build status says %q, want %q", build.Description, want)
		}
		arch := exec.HostArch()
		if names := got.rpmNames(); len(names) != 1 || names[0] != "cgreet-1.2.0-"+got.Release+"."+arch+".rpm" {
			t.Errorf("binary RPMs %v, want [cgreet-1.2.0-%s.%s.rpm]", names, got.Release, arch)
		}
		if !strings.Contains(log, "gcc -O2 -g0 -o cgreet hello.c") {
			t.Errorf("the build log does not show the compile:\n%s", tail(log, 3000))
		}

		// The RPM holds the compiled program, and the tests job ran it.
		files, err := osexec.CommandContext(e.Context(), "rpm", "-qlp", e.download(t, got.RPMs[0])).Output()
		if err != nil {
			t.Fatalf("rpm -qlp: %v", err)
		}
		// Beside the program, rpmbuild adds its build-id links.
		if !slices.Contains(strings.Split(string(files), "\n"), "/usr/bin/cgreet") {
			t.Errorf("the RPM holds %q, want /usr/bin/cgreet", files)
		}
		testLog := e.jobLog(t, sts["testing-farm:"+host])
		if !strings.Contains(testLog, "Hi, tester, from cgreet") {
			t.Errorf("the tests job did not run the MR's program:\n%s", tail(testLog, 2000))
		}
	})
}

func TestCreateArchiveActionSetsTheTarballAndVersion(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("archived", sampleRepo(t, "archived"))
		// An older tag: the get-current-version action, not the tag, decides.
		if _, err := e.Sim.CreateTag(e.Context(), p.ID, "alice", "0.9", "main", "release 0.9"); err != nil {
			t.Fatal(err)
		}
		mr := e.openMR(p, "alice", "tweak")
		host := hostTarget()
		sts := e.requireFinal(t, p.ID, mr.HeadSHA, map[string]string{"rpm-build:" + host: "success"})
		build := sts["rpm-build:"+host]
		got := e.builtPackage(t, build, "archived", "2.5.1")
		if names := got.rpmNames(); len(names) != 1 || names[0] != "archived-2.5.1-"+got.Release+".noarch.rpm" {
			t.Errorf("binary RPMs %v, want [archived-2.5.1-%s.noarch.rpm]", names, got.Release)
		}
		if want := "Built archived-2.5.1-" + got.Release + " for " + host; build.Description != want {
			t.Errorf("build status says %q, want %q", build.Description, want)
		}
		if log := e.jobLog(t, build); !strings.Contains(log, "created the release tarball for 2.5.1") {
			t.Errorf("the build log does not show the create-archive action's output:\n%s", tail(log, 3000))
		}
		files, err := osexec.CommandContext(e.Context(), "rpm", "-qlp", e.download(t, got.SRPM)).Output()
		if err != nil {
			t.Fatalf("rpm -qlp: %v", err)
		}
		if !strings.Contains(string(files), "archived-2.5.1.tar.gz") {
			t.Errorf("the SRPM holds %q, want the action's archived-2.5.1.tar.gz", files)
		}
	})
}

func TestMonorepoPackagesGetTheirOwnStatusesAndSRPMs(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		p := e.Project("duo", sampleRepo(t, "duo"))
		for _, tag := range []string{"client-1.4", "server-2.0"} {
			if _, err := e.Sim.CreateTag(e.Context(), p.ID, "alice", tag, "main", "release "+tag); err != nil {
				t.Fatal(err)
			}
		}
		mr := e.openMR(p, "alice", "both")
		host := hostTarget()
		// Packit names a monorepo's checks with the package as identifier.
		sts := e.requireFinal(t, p.ID, mr.HeadSHA, map[string]string{
			"rpm-build:" + host + ":duo-client": "success",
			"rpm-build:" + host + ":duo-server": "success",
		})
		srpmURLs := map[string]bool{}
		for _, pkg := range []struct{ name, version string }{{"duo-client", "1.4"}, {"duo-server", "2.0"}} {
			build := sts["rpm-build:"+host+":"+pkg.name]
			got := e.builtPackage(t, build, pkg.name, pkg.version)
			if names := got.rpmNames(); len(names) != 1 || names[0] != pkg.name+"-"+pkg.version+"-"+got.Release+".noarch.rpm" {
				t.Errorf("%s: binary RPMs %v, want [%s-%s-%s.noarch.rpm]", pkg.name, names, pkg.name, pkg.version, got.Release)
			}
			srpmURLs[got.SRPM.URL] = true
			files, err := osexec.CommandContext(e.Context(), "rpm", "-qlp", e.download(t, got.RPMs[0])).Output()
			if err != nil {
				t.Fatalf("rpm -qlp: %v", err)
			}
			if strings.TrimSpace(string(files)) != "/usr/bin/"+pkg.name {
				t.Errorf("%s's RPM holds %q, want only /usr/bin/%s", pkg.name, files, pkg.name)
			}
		}
		if len(srpmURLs) != 2 {
			t.Errorf("the two packages share an SRPM: %v", srpmURLs)
		}
	})
}

func TestFailingTestCommandFailsTheTestsJobWithItsOutput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		files := helloFiles(helloSpec)
		files[".upbuild.yaml"] = `tests:
  - name: the package was built
    run: ls $UPBUILD_RPMS_DIR/noarch/
  - name: greets in French
    run: |
      echo "hello.sh says: $(sh hello.sh)"
      sh hello.sh | grep -q bonjour || { echo "expected bonjour" >&2; exit 3; }
`
		p := e.Project("greeter", files)
		if _, err := e.Sim.CreateTag(e.Context(), p.ID, "alice", "v1.0", "main", "release 1.0"); err != nil {
			t.Fatal(err)
		}
		mr := e.openMR(p, "alice", "feature")
		host := hostTarget()
		sts := e.requireFinal(t, p.ID, mr.HeadSHA, map[string]string{"rpm-build:" + host: "success",
			"rpm-build:fedora-rawhide-x86_64": "skipped", "testing-farm:" + host: "failed"})
		tests := sts["testing-farm:"+host]
		if !strings.Contains(tests.Description, "greets in French failed (exit 3)") {
			t.Errorf("the tests status says %q, want the failing command's name and exit status", tests.Description)
		}
		log := e.jobLog(t, tests)
		for _, want := range []string{"hello-1.0-", "hello.sh says: hello", "expected bonjour"} {
			if !strings.Contains(log, want) {
				t.Errorf("the tests log lacks %q:\n%s", want, tail(log, 3000))
			}
		}
	})
}
