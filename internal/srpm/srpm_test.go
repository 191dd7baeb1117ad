package srpm_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/srpm"
)

// snapshotTime is the builder's clock in these tests.
var snapshotTime = time.Date(2024, 3, 5, 3, 4, 5, 6000, time.UTC)

const snapshotStamp = "20240305030405000006"

// repo is an upstream git repository made from testdata at run time.
type repo struct {
	t    *testing.T
	dir  string
	date time.Time // the next commit's date; each commit and tag moves it on
	// frozen keeps date where it is: every later commit gets the same one.
	frozen bool
}

// newRepo copies testdata/<name> into a temporary dir and commits it on
// branch main.
func newRepo(t *testing.T, name string) *repo {
	t.Helper()
	for _, tool := range []string{"git", "rpmbuild", "rpmspec", "rpm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for these tests (apt-get install git rpm): %v", tool, err)
		}
	}
	r := &repo{t: t, dir: filepath.Join(t.TempDir(), name), date: time.Date(2023, 6, 1, 12, 0, 0, 0, time.UTC)}
	src := filepath.Join("testdata", name)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		dest := filepath.Join(r.dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dest, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dest, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	r.git("init", "-q", "-b", "main")
	r.commit("Initial import")
	return r
}

func (r *repo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	stamp := r.date.Format(time.RFC3339)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ann Upstream", "GIT_AUTHOR_EMAIL=ann@example.org",
		"GIT_COMMITTER_NAME=Ann Upstream", "GIT_COMMITTER_EMAIL=ann@example.org",
		"GIT_AUTHOR_DATE="+stamp, "GIT_COMMITTER_DATE="+stamp, "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if !r.frozen {
		r.date = r.date.Add(time.Hour)
	}
	return strings.TrimSpace(string(out))
}

func (r *repo) commit(msg string) {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
}

// change appends a line to a file and commits it.
func (r *repo) change(file, msg string) {
	r.t.Helper()
	f, err := os.OpenFile(filepath.Join(r.dir, file), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := f.WriteString("/* " + msg + " */\n"); err != nil {
		r.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.commit(msg)
}

// config loads the repository's .packit.yaml as upbuild does.
func (r *repo) config() *packitcfg.Config {
	r.t.Helper()
	data, err := os.ReadFile(filepath.Join(r.dir, ".packit.yaml"))
	if err != nil {
		r.t.Fatal(err)
	}
	cfg, err := packitcfg.Load(".packit.yaml", data, packitcfg.Options{RepoName: filepath.Base(r.dir)})
	if err != nil {
		r.t.Fatal(err)
	}
	return cfg
}

// syncBuffer is a job log that tests can read after the build.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newBuilder(log *syncBuffer) *srpm.Builder {
	return &srpm.Builder{
		Sandbox: srpm.HostRunner{}, Host: srpm.HostRunner{}, Log: log,
		Now:             func() time.Time { return snapshotTime },
		ChangelogAuthor: "upbuild CI <ci@upbuild.example>",
	}
}

func build(t *testing.T, r *repo, pkg string) (*srpm.Result, string, error) {
	t.Helper()
	cfg := r.config()
	p, ok := cfg.Packages[pkg]
	if !ok {
		t.Fatalf("package %q not in the config (have %v)", pkg, cfg.PackageNames)
	}
	log := &syncBuffer{}
	res, err := newBuilder(log).Build(context.Background(), srpm.Request{
		WorkTree: r.dir, Package: p.Name, Settings: p.Settings, OutDir: filepath.Join(t.TempDir(), "out-"+pkg),
	})
	return res, log.String(), err
}

func rpmQuery(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("rpm", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func tarList(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("tar", "-tf", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -tf %s: %v\n%s", path, err, out)
	}
	return strings.Fields(string(out))
}

func TestTaggedCProjectGetsPackitSnapshotRelease(t *testing.T) {
	r := newRepo(t, "hello")
	r.git("tag", "v1.2.0")
	r.change("hello.c", "Say hello louder")
	r.change("Makefile", "Build with warnings")
	r.change("hello.c", "Fix a typo")
	short := r.git("rev-parse", "--short", "HEAD")

	res, log, err := build(t, r, "hello")
	if err != nil {
		t.Fatalf("build: %v\nlog:\n%s", err, log)
	}
	if res.Name != "hello" || res.Version != "1.2.0" {
		t.Errorf("SRPM is %s %s, want hello 1.2.0", res.Name, res.Version)
	}
	// {release}.{timestamp}.{branch}.{commits since tag}.g{short hash}%{?dist};
	// %{?dist} is empty on this Debian machine.
	want := "1." + snapshotStamp + ".main.3.g" + short
	if res.Release != want {
		t.Errorf("Release %q, want %q", res.Release, want)
	}
	if filepath.Base(res.SRPM) != "hello-1.2.0-"+want+".src.rpm" {
		t.Errorf("SRPM file %s", res.SRPM)
	}
	header := rpmQuery(t, "-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE}", res.SRPM)
	if header != "hello 1.2.0 "+want {
		t.Errorf("rpm -qp says %q", header)
	}
	if files := rpmQuery(t, "-qpl", res.SRPM); !strings.Contains(files, "hello-1.2.0.tar.gz") || !strings.Contains(files, "hello.spec") {
		t.Errorf("SRPM files:\n%s", files)
	}
	if got := tarList(t, res.Archive); !contains(got, "hello-1.2.0/hello.c") || !contains(got, "hello-1.2.0/Makefile") {
		t.Errorf("archive %s holds %v", res.Archive, got)
	}

	spec := readFile(t, res.SpecFile)
	for _, line := range []string{
		"Version:        1.2.0\n",
		"Release:        " + want + "%{?dist}\n",
		"Source0:        hello-1.2.0.tar.gz\n",
		"%setup -n hello-1.2.0 -q\n",
		"%changelog\n* Tue Mar 05 2024 upbuild CI <ci@upbuild.example> - 1.2.0-" + want + "\n" +
			"- Fix a typo (Ann Upstream)\n- Build with warnings (Ann Upstream)\n- Say hello louder (Ann Upstream)\n\n* Mon Jan 08 2024",
	} {
		if !strings.Contains(spec, line) {
			t.Errorf("edited spec lacks %q:\n%s", line, spec)
		}
	}
	for _, l := range []string{"$ git -c core.fsmonitor=false", "$ rpmbuild -bs", "Wrote: " + res.SRPM} {
		if !strings.Contains(log, l) {
			t.Errorf("job log lacks %q:\n%s", l, log)
		}
	}
}

func TestActionsDecideVersionArchiveAndChangelog(t *testing.T) {
	r := newRepo(t, "greeter")
	res, log, err := build(t, r, "greeter")
	if err != nil {
		t.Fatalf("build: %v\nlog:\n%s", err, log)
	}
	// No tags: no commits-since-tag part in the release.
	want := "3." + snapshotStamp + ".main"
	if res.Name != "greeter" || res.Version != "2.5.1" || res.Release != want {
		t.Errorf("SRPM is %s %s %s, want greeter 2.5.1 %s", res.Name, res.Version, res.Release, want)
	}
	if filepath.Base(res.Archive) != "greeter-2.5.1.tar.gz" || filepath.Dir(res.Archive) != r.dir {
		t.Errorf("archive %s, want greeter-2.5.1.tar.gz copied next to the spec", res.Archive)
	}
	spec := readFile(t, res.SpecFile)
	for _, line := range []string{
		"Source0:        greeter-2.5.1.tar.gz\n",
		"%autosetup -n greeter-src\n", // the tarball's own top directory
		" - 2.5.1-" + want + "\n- Snapshot of 2.5.1, 100% automatic\n\n",
	} {
		if !strings.Contains(spec, line) {
			t.Errorf("edited spec lacks %q:\n%s", line, spec)
		}
	}
	env := readFile(t, filepath.Join(r.dir, "packit-env.txt"))
	for _, v := range []string{
		"PACKIT_CONFIG_PACKAGE_NAME=greeter\n", "PACKIT_DOWNSTREAM_PACKAGE_NAME=greeter\n",
		"PACKIT_PWD=" + r.dir + "\n", "PACKIT_SPECFILE_PATH=greeter.spec\n",
		"PACKIT_UPSTREAM_PACKAGE_NAME=greeter\n", "PACKIT_UPSTREAM_REPO=" + r.dir + "\n",
	} {
		if !strings.Contains(env, v) {
			t.Errorf("post-upstream-clone env lacks %q:\n%s", v, env)
		}
	}
	if strings.Contains(env, "PACKIT_PROJECT_VERSION") {
		t.Errorf("post-upstream-clone got a version before it is known:\n%s", env)
	}
	if !strings.Contains(log, "archive ready\n") {
		t.Errorf("action output not streamed to the job log:\n%s", log)
	}
}

func TestFixSpecFileActionReplacesTheDefaultEdits(t *testing.T) {
	r := newRepo(t, "greeter")
	cfg := r.config()
	s := cfg.Packages["greeter"].Settings
	s.Actions[packitcfg.ActionFixSpecFile] = []packitcfg.Command{{"bash", "-c",
		`sed -i -e "s/^Version:.*/Version: $PACKIT_RPMSPEC_VERSION/" -e "s/^Release:.*/Release: $PACKIT_RPMSPEC_RELEASE/" ` +
			`-e "s/^Source0:.*/Source0: $PACKIT_PROJECT_ARCHIVE/" -e "s/^%autosetup/%autosetup -n greeter-src/" greeter.spec && ` +
			`echo "$PACKIT_PROJECT_COMMIT $PACKIT_PROJECT_BRANCH $PACKIT_PROJECT_SNAPSHOTID" > fix-env.txt`}}
	s.ReleaseSuffix = "9.{PACKIT_PROJECT_BRANCH}"
	res, err := newBuilder(&syncBuffer{}).Build(context.Background(), srpm.Request{
		WorkTree: r.dir, Package: "greeter", Settings: s, OutDir: t.TempDir(), Branch: "pr/12",
	})
	if err != nil {
		t.Fatal(err)
	}
	// release_suffix naming a variable is the whole Release.
	if res.Version != "2.5.1" || res.Release != "9.pr12" {
		t.Errorf("SRPM %s-%s, want 2.5.1-9.pr12", res.Version, res.Release)
	}
	if spec := readFile(t, res.SpecFile); strings.Contains(spec, "Snapshot of") {
		t.Errorf("a changelog entry was added although fix-spec-file replaces the default edits:\n%s", spec)
	}
	head := r.git("rev-parse", "HEAD")
	if got := readFile(t, filepath.Join(r.dir, "fix-env.txt")); got != head+" pr12 "+snapshotStamp+".pr12\n" {
		t.Errorf("fix-spec-file env: %q", got)
	}
}

func TestVersionAndReleaseSuffixes(t *testing.T) {
	r := newRepo(t, "hello")
	r.git("tag", "v1.2.0")
	s := r.config().Packages["hello"].Settings
	s.VersionSuffix = "~pre{PACKIT_PROJECT_BRANCH}"
	s.ReleaseSuffix = "42"
	res, err := newBuilder(&syncBuffer{}).Build(context.Background(), srpm.Request{WorkTree: r.dir, Settings: s, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// A plain release_suffix follows the spec's release; version_suffix is
	// formatted and appended to the version.
	if res.Version != "1.2.0~premain" || res.Release != "1.42" {
		t.Errorf("SRPM %s-%s, want 1.2.0~premain-1.42", res.Version, res.Release)
	}
}

func TestMonorepoPackagesEachGetTheirOwnSRPM(t *testing.T) {
	r := newRepo(t, "monorepo")
	r.git("tag", "alpha-0.3.0")
	r.git("tag", "beta-2.0.0")
	r.change("alpha/alpha.txt", "More alpha data")

	tests := []struct {
		pkg, name, version, setup string
		archiveHas, archiveLacks  string
	}{
		{"alpha", "alpha", "0.3.0", "%setup -n alpha-0.3.0 -q", "alpha-0.3.0/alpha.txt", "beta.txt"},
		{"beta", "python-beta", "2.0.0", "%autosetup -p1 -n beta-2.0.0", "beta-2.0.0/pkg/beta.spec", "alpha.txt"},
	}
	srpms := map[string]bool{}
	for _, tc := range tests {
		res, log, err := build(t, r, tc.pkg)
		if err != nil {
			t.Fatalf("%s: %v\nlog:\n%s", tc.pkg, err, log)
		}
		if res.Name != tc.name || res.Version != tc.version {
			t.Errorf("%s: SRPM %s %s, want %s %s", tc.pkg, res.Name, res.Version, tc.name, tc.version)
		}
		srpms[res.SRPM] = true
		if spec := readFile(t, res.SpecFile); !strings.Contains(spec, tc.setup+"\n") {
			t.Errorf("%s: spec lacks %q:\n%s", tc.pkg, tc.setup, spec)
		}
		files := tarList(t, res.Archive)
		if !contains(files, tc.archiveHas) || strings.Contains(strings.Join(files, " "), tc.archiveLacks) {
			t.Errorf("%s: archive holds %v, want %s and no %s", tc.pkg, files, tc.archiveHas, tc.archiveLacks)
		}
	}
	if len(srpms) != 2 {
		t.Errorf("SRPMs %v, want two different files", srpms)
	}
}

func TestMonorepoAutochangelogGetsNoEntry(t *testing.T) {
	r := newRepo(t, "monorepo")
	r.git("tag", "beta-2.0.0")
	res, log, err := build(t, r, "beta")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if spec := readFile(t, res.SpecFile); !strings.HasSuffix(spec, "%changelog\n%autochangelog\n") {
		t.Errorf("changelog changed:\n%s", spec)
	}
	// Release 7 with no commits since the tag.
	if want := "7." + snapshotStamp + ".main.0.g" + r.git("rev-parse", "--short", "HEAD"); res.Release != want {
		t.Errorf("Release %q, want %q", res.Release, want)
	}
}

func TestErrorsUsersCanActOn(t *testing.T) {
	t.Run("rpmbuild failure shows rpmbuild's message", func(t *testing.T) {
		r := newRepo(t, "broken")
		_, _, err := build(t, r, "broken")
		var ce *srpm.CommandError
		if !errors.As(err, &ce) || ce.Step != "rpmbuild" || ce.ExitCode == 0 {
			t.Fatalf("err %v, want a failed rpmbuild", err)
		}
		if !strings.Contains(err.Error(), "0001-missing-fix.patch: No such file or directory") {
			t.Errorf("error does not show rpmbuild's message:\n%v", err)
		}
	})
	t.Run("spec that rpm cannot parse", func(t *testing.T) {
		r := newRepo(t, "broken")
		spec := strings.Replace(readFile(t, filepath.Join(r.dir, "broken.spec")), "Version:        1.0\n", "", 1)
		writeFile(t, filepath.Join(r.dir, "broken.spec"), spec)
		r.commit("Drop the version")
		_, _, err := build(t, r, "broken")
		if err == nil || !strings.Contains(err.Error(), "Version field must be present") {
			t.Errorf("err %v, want rpm's complaint about Version", err)
		}
	})
	t.Run("missing spec", func(t *testing.T) {
		r := newRepo(t, "hello")
		r.git("rm", "-q", "hello.spec")
		r.commit("Remove the spec")
		_, _, err := build(t, r, "hello")
		if !errors.Is(err, srpm.ErrNoSpec) || !strings.Contains(err.Error(), "hello.spec") {
			t.Errorf("err %v, want ErrNoSpec naming hello.spec", err)
		}
	})
	t.Run("failing action", func(t *testing.T) {
		r := newRepo(t, "greeter")
		s := r.config().Packages["greeter"].Settings
		s.Actions[packitcfg.ActionCreateArchive] = []packitcfg.Command{{"bash", "-c", "echo making; echo 'tar: src: Cannot open' >&2; exit 3"}}
		_, err := newBuilder(&syncBuffer{}).Build(context.Background(), srpm.Request{WorkTree: r.dir, Settings: s, OutDir: t.TempDir()})
		var ce *srpm.CommandError
		if !errors.As(err, &ce) || ce.ExitCode != 3 {
			t.Fatalf("err %v, want a CommandError with exit status 3", err)
		}
		for _, want := range []string{`action "create-archive"`, "exited with status 3", "tar: src: Cannot open", "making"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
	})
	t.Run("archive outside the repository", func(t *testing.T) {
		r := newRepo(t, "greeter")
		s := r.config().Packages["greeter"].Settings
		s.Actions[packitcfg.ActionCreateArchive] = []packitcfg.Command{{"echo", "/etc/passwd"}}
		_, err := newBuilder(&syncBuffer{}).Build(context.Background(), srpm.Request{WorkTree: r.dir, Settings: s, OutDir: t.TempDir()})
		if !errors.Is(err, srpm.ErrOutsideRepo) {
			t.Errorf("err %v, want ErrOutsideRepo", err)
		}
	})
	t.Run("version that cannot be determined", func(t *testing.T) {
		r := newRepo(t, "hello")
		r.git("tag", "release-candidate")
		_, _, err := build(t, r, "hello")
		if !errors.Is(err, srpm.ErrVersion) || !strings.Contains(err.Error(), `"release-candidate" does not match upstream_tag_template "v{version}"`) {
			t.Errorf("err %v, want ErrVersion naming the tag and template", err)
		}
	})
	t.Run("empty get-current-version output", func(t *testing.T) {
		r := newRepo(t, "greeter")
		s := r.config().Packages["greeter"].Settings
		s.Actions[packitcfg.ActionGetCurrentVersion] = []packitcfg.Command{{"true"}}
		_, err := newBuilder(&syncBuffer{}).Build(context.Background(), srpm.Request{WorkTree: r.dir, Settings: s, OutDir: t.TempDir()})
		if !errors.Is(err, srpm.ErrVersion) {
			t.Errorf("err %v, want ErrVersion", err)
		}
	})
}

func TestNoTagsFallsBackToTheSpecVersion(t *testing.T) {
	r := newRepo(t, "hello")
	res, log, err := build(t, r, "hello")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if res.Version != "1.0.0" || !regexp.MustCompile(`^1\.[0-9]{20}\.main$`).MatchString(res.Release) {
		t.Errorf("SRPM %s-%s, want 1.0.0-1.<timestamp>.main", res.Version, res.Release)
	}
	if spec := readFile(t, res.SpecFile); !strings.Contains(spec, "- Development snapshot ("+r.git("rev-parse", "HEAD")+")\n") {
		t.Errorf("no development snapshot entry:\n%s", spec)
	}
}

// TestSpecHeaderFromMacrosIsAskedOfRpmspec covers both ways the SRPM step
// reads the spec's Name, Version and Release: a spec that defines them
// through macros is asked of rpmspec (and its expansion decides the version
// and the release's head), a plain one is read from its text.
func TestSpecHeaderFromMacrosIsAskedOfRpmspec(t *testing.T) {
	r := newRepo(t, "hello")
	spec := readFile(t, filepath.Join(r.dir, "hello.spec"))
	spec = strings.Replace(spec, "Version:        1.0.0", "Version:        %{upstream_version}", 1)
	spec = strings.Replace(spec, "Release:        1%{?dist}", "Release:        %{baserelease}%{?dist}", 1)
	writeFile(t, filepath.Join(r.dir, "hello.spec"), "%global upstream_version 4.5.6\n%global baserelease 7\n"+spec)
	r.commit("Version from macros")
	res, log, err := build(t, r, "hello")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if res.Version != "4.5.6" || !strings.HasPrefix(res.Release, "7."+snapshotStamp+".main") {
		t.Errorf("SRPM %s-%s, want 4.5.6-7.%s.main", res.Version, res.Release, snapshotStamp)
	}
	if !strings.Contains(log, "reading the spec file: $ rpmspec -q --srpm") {
		t.Errorf("rpmspec was not asked for a spec with macros:\n%s", log)
	}

	plain := newRepo(t, "hello")
	_, log, err = build(t, plain, "hello")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if !strings.Contains(log, "reading the spec file: Name hello, Version 1.0.0, Release 1 are plain text") ||
		strings.Contains(log, "reading the spec file: $ rpmspec") {
		t.Errorf("a plain spec was not read from its text:\n%s", log)
	}
}

// TestDistOfTheBuildEnvironmentFollowsARelease checks the SRPM against a
// plain spec's release when the build environment's rpm defines a dist
// tag, as a Fedora root does: the SRPM's release is the spec's plus the
// dist, and that passes the check.
func TestDistOfTheBuildEnvironmentFollowsARelease(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".rpmmacros"), "%dist .fc99\n")
	t.Setenv("HOME", home)
	r := newRepo(t, "hello")
	r.git("tag", "v1.2.0")
	res, log, err := build(t, r, "hello")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if want := "1." + snapshotStamp + ".main.0.g" + r.git("rev-parse", "--short", "HEAD") + ".fc99"; res.Release != want {
		t.Errorf("release %q, want %q", res.Release, want)
	}

	// A dist in the middle of a release the edits keep (update_release:
	// false) lands in the middle of the SRPM's release too.
	r = newRepo(t, "hello")
	spec := readFile(t, filepath.Join(r.dir, "hello.spec"))
	writeFile(t, filepath.Join(r.dir, "hello.spec"), strings.Replace(spec, "Release:        1%{?dist}", "Release:        0.4%{?dist}.1", 1))
	r.commit("A minor bump")
	s := r.config().Packages["hello"].Settings
	s.UpdateRelease = false
	kept, err := newBuilder(&syncBuffer{}).Build(context.Background(), srpm.Request{WorkTree: r.dir, Settings: s, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if kept.Release != "0.4.fc99.1" {
		t.Errorf("release %q, want 0.4.fc99.1", kept.Release)
	}
}

// TestSymlinksInTheTreeDoNotReachHostFiles covers files upbuild writes in
// the work tree while it runs as root: a symlink committed where the archive
// goes, or one an action puts where the spec was, must not make upbuild
// write (or read) the host file it points at. The archive replaces the
// link; a spec that is a link out of the tree fails the build.
func TestSymlinksInTheTreeDoNotReachHostFiles(t *testing.T) {
	const hostText = "Name: host\nVersion: 1\nRelease: 1\nSource0: host.tar.gz\n%description\nd\n%prep\n%setup -q\n%changelog\n"
	hostFile := func(t *testing.T) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "host.spec")
		writeFile(t, path, hostText)
		return path
	}
	t.Run("committed symlink where the archive goes", func(t *testing.T) {
		host := hostFile(t)
		r := newRepo(t, "hello")
		if err := os.Symlink(host, filepath.Join(r.dir, "hello-1.2.0.tar.gz")); err != nil {
			t.Fatal(err)
		}
		r.commit("A link")
		r.git("tag", "v1.2.0")
		res, log, err := build(t, r, "hello")
		if err != nil {
			t.Fatalf("build: %v\n%s", err, log)
		}
		if got := readFile(t, host); got != hostText {
			t.Errorf("the host file changed through the committed symlink:\n%s", got)
		}
		// The archive replaced the link, as a file of the tree's own.
		if info, err := os.Lstat(res.Archive); err != nil || !info.Mode().IsRegular() {
			t.Errorf("the archive %s: %v, %v; want a regular file in place of the link", res.Archive, info, err)
		}
	})
	t.Run("hard link where the archive is copied to", func(t *testing.T) {
		// The work tree's object files are hard links to the repository
		// cache's; the job can move one to the name upbuild copies the
		// action's archive to. Root must not write into it.
		cached := hostFile(t)
		r := newRepo(t, "hello")
		r.git("tag", "v1.2.0")
		s := r.config().Packages["hello"].Settings
		s.Actions = map[packitcfg.ActionName][]packitcfg.Command{
			packitcfg.ActionCreateArchive: {{"sh", "-c", "ln " + cached + " hello-1.2.0.tar.gz && mkdir -p sub && " +
				"git archive --format=tar.gz --prefix=hello-1.2.0/ -o sub/hello-1.2.0.tar.gz HEAD && echo sub/hello-1.2.0.tar.gz"}},
		}
		if _, err := newBuilder(&syncBuffer{}).Build(context.Background(), srpm.Request{WorkTree: r.dir, Settings: s, OutDir: t.TempDir()}); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, cached); got != hostText {
			t.Errorf("the linked file changed when the archive was copied over its link:\n%q", got)
		}
	})
	t.Run("action swaps the spec for a symlink", func(t *testing.T) {
		host := hostFile(t)
		r := newRepo(t, "hello")
		r.git("tag", "v1.2.0")
		s := r.config().Packages["hello"].Settings
		s.Actions = map[packitcfg.ActionName][]packitcfg.Command{
			packitcfg.ActionPostUpstreamClone: {{"ln", "-sf", host, "hello.spec"}},
		}
		_, err := newBuilder(&syncBuffer{}).Build(context.Background(), srpm.Request{WorkTree: r.dir, Settings: s, OutDir: t.TempDir()})
		if err == nil {
			t.Error("the build succeeded with the spec pointing at a host file")
		}
		if got := readFile(t, host); got != hostText {
			t.Errorf("the host file changed through the spec symlink:\n%s", got)
		}
	})
}

// TestHostileRepositoryContentDoesNotReachTheHost covers what a repository
// can do to upbuild's own commands before anything of it runs in the
// sandbox: git on the host must not take a directory of the checkout for
// a repository (with its config), a package name must not lead the archive
// out of its directory, and a tag must not become an option of git.
func TestHostileRepositoryContentDoesNotReachTheHost(t *testing.T) {
	t.Run("bare repository at the package path", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "ran")
		r := newRepo(t, "hello")
		for _, d := range []string{"evil/objects/info", "evil/refs/tags", "evil/refs/heads"} {
			if err := os.MkdirAll(filepath.Join(r.dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		writeFile(t, filepath.Join(r.dir, "evil/HEAD"), "ref: refs/heads/main\n")
		writeFile(t, filepath.Join(r.dir, "evil/objects/info/keep"), "x\n")
		writeFile(t, filepath.Join(r.dir, "evil/refs/heads/keep"), "x\n")
		writeFile(t, filepath.Join(r.dir, "evil/refs/tags/v1"), strings.Repeat("1", 40)+"\n")
		writeFile(t, filepath.Join(r.dir, "evil/config"), "[core]\n\trepositoryformatversion = 1\n\tbare = true\n"+
			"[extensions]\n\tpartialClone = origin\n[remote \"origin\"]\n\turl = \"ext::sh -c touch% "+marker+"\"\n"+
			"\tpromisor = true\n[protocol \"ext\"]\n\tallow = always\n")
		writeFile(t, filepath.Join(r.dir, "evil/hello.spec"), readFile(t, filepath.Join(r.dir, "hello.spec")))
		r.commit("A repository in the repository")
		// Positive control: plain git in that directory obeys its config.
		control := exec.Command("git", "tag", "--list", "--sort=-creatordate")
		control.Dir = filepath.Join(r.dir, "evil")
		_ = control.Run()
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("positive control: git in evil/ did not run the ext:: command: %v", err)
		}
		if err := os.Remove(marker); err != nil {
			t.Fatal(err)
		}
		s := r.config().Packages["hello"].Settings
		s.Paths = []string{"evil"}
		_, _ = newBuilder(&syncBuffer{}).Build(context.Background(), srpm.Request{WorkTree: r.dir, Settings: s, OutDir: t.TempDir()})
		if _, err := os.Stat(marker); err == nil {
			t.Error("upbuild's git ran the command named by a config committed in the repository")
		}
	})
	t.Run("package name with a path", func(t *testing.T) {
		target := t.TempDir()
		r := newRepo(t, "hello")
		r.git("tag", "v1.2.0")
		s := r.config().Packages["hello"].Settings
		s.UpstreamPackageName = "../../../../../../../.." + target + "/planted"
		_, err := newBuilder(&syncBuffer{}).Build(context.Background(), srpm.Request{WorkTree: r.dir, Settings: s, OutDir: t.TempDir()})
		if !errors.Is(err, srpm.ErrArchive) || !strings.Contains(err.Error(), "must be a plain file name") {
			t.Errorf("build error %v, want the archive name refused", err)
		}
		if left, _ := filepath.Glob(filepath.Join(target, "*")); len(left) > 0 {
			t.Errorf("files written outside the work tree: %v", left)
		}
	})
	t.Run("tag named like an option", func(t *testing.T) {
		victim := filepath.Join(t.TempDir(), "victim.conf")
		writeFile(t, victim, "precious\n")
		r := newRepo(t, "hello")
		if err := os.Symlink(victim, filepath.Join(r.dir, "lnk..HEAD")); err != nil {
			t.Fatal(err)
		}
		r.commit("A link")
		r.git("update-ref", "refs/tags/--output=/proc/self/cwd/lnk", "HEAD")
		big := filepath.Join(t.TempDir(), "msg")
		writeFile(t, big, strings.Repeat("A", 1100000)+"\n") // past what one git log is read whole
		r.git("commit", "-q", "--allow-empty", "-F", big)
		r.commit("x; echo root ran this; #")
		s := r.config().Packages["hello"].Settings
		s.UpstreamTagTemplate = "{version}"
		_, _ = newBuilder(&syncBuffer{}).Build(context.Background(), srpm.Request{WorkTree: r.dir, Settings: s, OutDir: t.TempDir()})
		if got := readFile(t, victim); got != "precious\n" {
			t.Errorf("the file behind the link was written: %d bytes", len(got))
		}
	})
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
