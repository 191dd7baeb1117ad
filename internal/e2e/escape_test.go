package e2e

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/testdb"
)

// TestRepositoryCodeCannotActOnTheHostThroughTheWorkTree covers what
// upbuild does on the host after the repository's own code ran in the
// sandbox: that code can rewrite the work tree, including .git, so
// nothing upbuild runs or writes on the host afterwards may take orders
// from it. A post-upstream-clone action (running in the sandbox) points the
// repository's promisor remote at an ext:: command that writes a file on
// the host, allows that transport, deletes the object files so that any
// later git command must fetch lazily, and swaps the spec for a symlink to
// a host file shaped like a spec. Positive controls first: git on the host
// does run that command in such a tree, and the host file is writable.
func TestRepositoryCodeCannotActOnTheHostThroughTheWorkTree(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		hostDir := t.TempDir()
		marker := filepath.Join(hostDir, "git-ran-repository-command")
		hostSpec := filepath.Join(hostDir, "host.spec")
		const hostSpecText = "Name: host\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nSource0: host.tar.gz\n\n%description\nd\n\n%prep\n%setup -q\n\n%changelog\n"
		if err := os.WriteFile(hostSpec, []byte(hostSpecText), 0o644); err != nil {
			t.Fatal(err)
		}
		hostileTree(t, marker, hostSpec)

		files := helloFiles(helloSpec)
		files[".packit.yaml"] = strings.Replace(files[".packit.yaml"], "jobs:\n", "actions:\n  post-upstream-clone:\n    - sh -c '"+
			hostileCommands(marker, hostSpec)+"'\njobs:\n", 1)
		host := hostTarget()
		sts := e.helloMR(t, "escaper", files, "failed", "failed")
		if log := e.jobLog(t, sts["rpm-build:"+host]); !strings.Contains(log, "post-upstream-clone") {
			t.Errorf("the action did not run:\n%s", tail(log, 3000))
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("git on the host ran the repository's ext:: command: %s exists", marker)
		}
		if got, err := os.ReadFile(hostSpec); err != nil || string(got) != hostSpecText {
			t.Errorf("the host file behind the spec symlink changed (%v):\n%s", err, got)
		}
	})
}

// hostileCommands is the shell the action runs in the work tree.
func hostileCommands(marker, hostSpec string) string {
	return "git config protocol.ext.allow always && " +
		"git config remote.origin.url \"ext::sh -c touch% " + marker + "\" && " +
		"rm -rf .git/objects/pack/* .git/objects/??/ && " +
		"ln -sf " + hostSpec + " hello.spec"
}

// hostileTree checks the positive controls on the host: in a repository
// treated as hostileCommands treats the work tree, git runs the ext::
// command, and the host spec is writable.
func hostileTree(t *testing.T, marker, hostSpec string) {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := osexec.CommandContext(t.Context(), args[0], args[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("git", "init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("git", "add", "a.txt")
	run("git", "-c", "user.name=a", "-c", "user.email=a@example.org", "commit", "-qm", "a")
	run("git", "config", "core.repositoryformatversion", "1")
	run("git", "config", "extensions.partialClone", "origin")
	run("git", "config", "remote.origin.promisor", "true")
	run("sh", "-c", hostileCommands(marker, hostSpec))
	archive := osexec.CommandContext(t.Context(), "git", "archive", "--format=tar", "HEAD")
	archive.Dir = dir
	_ = archive.Run() // fails: the objects are gone
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("positive control: git on the host did not run the ext:: command (%v)", err)
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if f, err := os.OpenFile(hostSpec, os.O_WRONLY, 0); err != nil {
		t.Fatalf("positive control: the host spec is not writable: %v", err)
	} else {
		f.Close()
	}
}

// TestBuildCannotPassAHostFileOffAsAnRPM covers the artifacts: the spec's
// %install runs in the sandbox with the job's output directory writable and
// leaves, beside the real RPM, a symlink named like an RPM that points at a
// host file only root may read. upbuild keeps the real RPM and never the
// host file's content.
func TestBuildCannotPassAHostFileOffAsAnRPM(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		secret := filepath.Join(t.TempDir(), "host-secret")
		canary := "host-only-" + filepath.Base(t.TempDir())
		if err := os.WriteFile(secret, []byte(canary+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(secret); err != nil || !strings.Contains(string(got), canary) {
			t.Fatalf("positive control: the host file is not readable here: %v", err)
		}
		spec := strings.Replace(helloSpec, "%install\n",
			"%install\nmkdir -p %{_rpmdir}/noarch && ln -sf "+secret+" %{_rpmdir}/noarch/zz-host-secret.noarch.rpm\n", 1)
		host := hostTarget()
		sts := e.helloMR(t, "leaker", helloFiles(spec), "success", "success")
		for _, name := range []string{"rpm-build:" + host, "testing-farm:" + host} {
			arts := e.artifacts(t, sts[name])
			var rpms []string
			for _, a := range arts {
				if strings.Contains(a.Name, "host-secret") || strings.Contains(e.fetchText(t, a.URL), canary) {
					t.Errorf("%s kept %s, the host file's content", name, a.Name)
				}
				if strings.HasSuffix(a.Name, ".noarch.rpm") {
					rpms = append(rpms, a.Name)
				}
			}
			if len(rpms) != 1 || !strings.HasPrefix(rpms[0], "hello-1.0-") {
				t.Errorf("%s kept the RPMs %v, want the one hello RPM", name, rpms)
			}
		}
	})
}

// fetchText downloads a path on upbuild.
func (e *env) fetchText(t *testing.T, path string) string {
	t.Helper()
	_, body := e.get(t, e.URL+path)
	return body
}

// TestJobCannotRewriteTheRepositoryCache covers the work tree's object
// files, which are hard links to the repository cache's: read-only to the
// job, but not to root. A create-archive action moves one (a pack index)
// to the name upbuild copies the action's archive to, and prints another
// path. upbuild must put the archive there without writing into the linked
// file: the cache's pack indexes stay pack indexes.
func TestJobCannotRewriteTheRepositoryCache(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		files := helloFiles(helloSpec)
		files[".packit.yaml"] = strings.Replace(files[".packit.yaml"], "jobs:\n", "actions:\n  create-archive:\n    - sh -c '"+
			"mkdir -p sub && git archive --format=tar.gz --prefix=hello-1.0/ -o sub/hello-1.0.tar.gz HEAD && "+
			"mv $(ls .git/objects/pack/pack-*.idx | head -n 1) hello-1.0.tar.gz && echo sub/hello-1.0.tar.gz'\njobs:\n", 1)
		host := hostTarget()
		sts := e.helloMR(t, "poisoner", files, "success", "success")
		if log := e.jobLog(t, sts["rpm-build:"+host]); !strings.Contains(log, "copying") {
			t.Errorf("the archive was not copied over the moved link:\n%s", tail(log, 3000))
		}
		indexes, err := filepath.Glob(filepath.Join(e.Config.DataDir, "repo-cache", "repos", "*", "objects", "pack", "*.idx"))
		if err != nil || len(indexes) == 0 {
			t.Fatalf("the cache's pack indexes: %v, %v", indexes, err)
		}
		for _, idx := range indexes {
			data, err := os.ReadFile(idx)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(data), "\xfftOc") {
				t.Errorf("the cache's %s is no longer a pack index (it starts %q)", filepath.Base(idx), data[:min(len(data), 8)])
			}
		}
	})
}

// TestRepositoryFilesCannotSteerUpbuildsGit covers repository content
// alone, before anything of the repository runs: a directory at the
// package path that looks like a bare repository (its config names an
// ext:: command as a promisor remote), and a package name that is a path
// out of the work tree. Neither may make root on the host run or write
// anything: the first project builds as if the decoy were plain files, the
// second fails with the reason in its log.
func TestRepositoryFilesCannotSteerUpbuildsGit(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		hostDir := t.TempDir()
		marker := filepath.Join(hostDir, "bare-repository-ran")
		files := helloFiles(helloSpec)
		files[".packit.yaml"] = strings.Replace(files[".packit.yaml"], "specfile_path: hello.spec\n", "specfile_path: hello.spec\npaths: [evil]\n", 1)
		files["evil/hello.spec"] = helloSpec
		files["evil/hello.sh"] = files["hello.sh"]
		files["evil/HEAD"] = "ref: refs/heads/main\n"
		files["evil/objects/info/keep"] = "x\n"
		files["evil/refs/heads/keep"] = "x\n"
		files["evil/refs/tags/v1"] = strings.Repeat("1", 40) + "\n"
		files["evil/config"] = "[core]\n\trepositoryformatversion = 1\n\tbare = true\n[extensions]\n\tpartialClone = origin\n" +
			"[remote \"origin\"]\n\turl = \"ext::sh -c touch% " + marker + "\"\n\tpromisor = true\n[protocol \"ext\"]\n\tallow = always\n"
		host := hostTarget()
		e.helloMR(t, "barerepo", files, "success", "success")
		if _, err := os.Stat(marker); err == nil {
			t.Error("root on the host ran the command a committed config named")
		}

		files = helloFiles(helloSpec)
		files[".packit.yaml"] = strings.Replace(files[".packit.yaml"], "upstream_package_name: hello\n",
			"upstream_package_name: ../../../../../../../../../.."+hostDir+"/planted\n", 1)
		sts := e.helloMR(t, "traverser", files, "failed", "failed")
		if log := e.jobLog(t, sts["rpm-build:"+host]); !strings.Contains(log, "must be a plain file name") {
			t.Errorf("the build log does not say why the archive was refused:\n%s", tail(log, 2000))
		}
		if left, _ := filepath.Glob(filepath.Join(hostDir, "planted*")); len(left) > 0 {
			t.Errorf("root wrote %v outside the work tree", left)
		}
	})
}

// helloMR makes a project of files (the hello package's, or a variant of
// them) tagged v1.0, opens a merge request and requires the hello config's
// statuses to end as given: the build and the tests on this machine, and
// the Fedora target skipped.
func (e *env) helloMR(t *testing.T, name string, files map[string]string, build, tests string) map[string]gitlabsim.CommitStatus {
	t.Helper()
	p := e.Project(name, files)
	if _, err := e.Sim.CreateTag(e.Context(), p.ID, "alice", "v1.0", "main", "release 1.0"); err != nil {
		t.Fatal(err)
	}
	mr := e.openMR(p, "alice", "feature")
	host := hostTarget()
	return e.requireFinal(t, p.ID, mr.HeadSHA, map[string]string{"rpm-build:" + host: build,
		"rpm-build:fedora-rawhide-x86_64": "skipped", "testing-farm:" + host: tests})
}
