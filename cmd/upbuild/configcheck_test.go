package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runUpbuild runs the CLI in-process with an environment of its own.
func runUpbuild(t *testing.T, ctx context.Context, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand(func(k string) string { return env[k] }, &out, &errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// normalizedLines splits output into lines with runs of spaces collapsed,
// so that assertions do not depend on column alignment.
func normalizedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}

// wantLinesInOrder fails unless every wanted line appears, in this order.
func wantLinesInOrder(t *testing.T, output string, want ...string) {
	t.Helper()
	got := normalizedLines(output)
	at := 0
	for _, w := range want {
		i := slices.Index(got[at:], w)
		if i < 0 {
			t.Fatalf("output lacks line %q (after line %d); output:\n%s", w, at, output)
		}
		at += i + 1
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const validPackit = `upstream_package_name: hello
downstream_package_name: hello
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-rawhide-x86_64, fedora-rawhide-aarch64]
  - job: tests
    trigger: pull_request
    identifier: smoke
    targets: [fedora-rawhide-x86_64]
  - job: copr_build
    trigger: commit
    branch: main
    targets: [fedora-rawhide-x86_64]
  - job: propose_downstream
    trigger: release
    dist_git_branches: [rawhide]
`

func TestConfigCheckPrintsJobsPerTrigger(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hello")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// No specfile_path: the service derives it from the repository's files.
	writeFiles(t, dir, map[string]string{".packit.yaml": validPackit, "hello.spec": "Name: hello\n"})
	file := filepath.Join(dir, ".packit.yaml")
	out, _, err := runUpbuild(t, context.Background(), nil, "config", "check", file)
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	wantLinesInOrder(t, out,
		file+" is valid: 4 jobs",
		"pull_request:",
		"copr_build package=hello targets: fedora-rawhide-aarch64, fedora-rawhide-x86_64",
		"statuses: rpm-build:fedora-rawhide-aarch64, rpm-build:fedora-rawhide-x86_64",
		"tests package=hello identifier=smoke targets: fedora-rawhide-x86_64",
		"statuses: testing-farm:fedora-rawhide-x86_64:smoke",
		"commit (branch main):",
		"copr_build package=hello targets: fedora-rawhide-x86_64",
		"statuses: rpm-build:main:fedora-rawhide-x86_64",
		"release:",
		"propose_downstream package=hello (not supported by this service)",
	)
	if strings.Contains(out, "warning") {
		t.Errorf("unexpected warning:\n%s", out)
	}
}

func TestConfigCheckResolvesAliasesWithTheOperatorsTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hello")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{
		".packit.yaml":  "specfile_path: x.spec\njobs:\n  - job: copr_build\n    trigger: pull_request\n    targets: [fedora-all]\n",
		"aliases.yaml":  "fedora-all: [fedora-98, fedora-99]\n",
		"upbuild.yaml":  "target_aliases_file: " + filepath.Join(dir, "aliases.yaml") + "\n",
		"hello.spec":    "Name: hello\n",
		"unrelated.txt": "",
	})
	out, _, err := runUpbuild(t, context.Background(), nil,
		"--config", filepath.Join(dir, "upbuild.yaml"), "config", "check", filepath.Join(dir, ".packit.yaml"))
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	wantLinesInOrder(t, out, "pull_request:",
		"copr_build package=hello targets: fedora-98-x86_64, fedora-99-x86_64")
}

func TestConfigCheckCorpus(t *testing.T) {
	corpus := filepath.Join("..", "..", "internal", "packitcfg", "testdata", "corpus")
	t.Run("valid", func(t *testing.T) {
		file := filepath.Join(corpus, "packit__ogr.packit.yaml")
		out, _, err := runUpbuild(t, context.Background(), nil, "config", "check", file)
		if err != nil {
			t.Fatalf("config check: %v\n%s", err, out)
		}
		wantLinesInOrder(t, out,
			file+" is valid: 9 jobs",
			"pull_request:",
			"copr_build package=python-ogr",
			"tests package=python-ogr",
			"upstream_koji_build package=python-ogr",
			"commit (branch main):",
			"copr_build package=python-ogr",
			"commit (branch stable):",
			"copr_build package=python-ogr",
			"commit (default branch):",
			"koji_build package=python-ogr (not supported by this service)",
			"release:",
			"propose_downstream package=python-ogr (not supported by this service)",
		)
		// A commit job's status names carry the branch, as packit-service's do.
		if !strings.Contains(out, "rpm-build:stable:fedora-") {
			t.Errorf("no status name for the stable branch:\n%s", out)
		}
	})
	t.Run("removed key", func(t *testing.T) {
		file := filepath.Join(corpus, "packit__hello-world.packit.yaml")
		out, _, err := runUpbuild(t, context.Background(), nil, "config", "check", file)
		if err == nil || err.Error() != file+" is not valid: 1 error" {
			t.Fatalf("err = %v, want the count of errors\n%s", err, out)
		}
		lines := normalizedLines(out)
		if len(lines) != 1 || !strings.HasPrefix(lines[0], file+`:3:1: key "synced_files"`) {
			t.Fatalf("want one line naming synced_files at 3:1, got:\n%s", out)
		}
	})
}

func TestConfigCheckReportsPositions(t *testing.T) {
	cases := []struct {
		name, content string
		want          []string // line prefixes, after the file name
	}{
		{"removed key", "specfile_path: a.spec\nsynced_files: [a.spec]\njobs:\n  - job: build\n    trigger: pull_request\n",
			[]string{`:2:1: key "synced_files"`, `:4:10: job type "build"`}},
		// yaml.v3 gives syntax errors a line but no column.
		{"YAML syntax", "specfile_path: a.spec\ndownstream_package_name: hello\nupstream_package_name: a: b\n",
			[]string{":3: invalid YAML: mapping values are not allowed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), ".packit.yaml")
			writeFiles(t, filepath.Dir(file), map[string]string{".packit.yaml": tc.content})
			out, _, err := runUpbuild(t, context.Background(), nil, "config", "check", file)
			if err == nil || !strings.Contains(err.Error(), "is not valid") {
				t.Fatalf("err = %v, want a failure\n%s", err, out)
			}
			lines := normalizedLines(out)
			if len(lines) != len(tc.want) {
				t.Fatalf("want %d error lines, got:\n%s", len(tc.want), out)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], file+w) {
					t.Errorf("line %d = %q, want prefix %q", i+1, lines[i], file+w)
				}
			}
		})
	}
}

func TestConfigCheckSearchesTheCurrentDirectory(t *testing.T) {
	dir := t.TempDir()
	minimal := "specfile_path: x.spec\njobs:\n  - job: copr_build\n    trigger: pull_request\n    targets: [fedora-rawhide-x86_64]\n"
	writeFiles(t, dir, map[string]string{".packit.yaml": minimal, "packit.yaml": "this is not the file used: ["})
	t.Chdir(dir)
	out, _, err := runUpbuild(t, context.Background(), nil, "config", "check")
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	wantLinesInOrder(t, out,
		"warning: several Packit config files exist (.packit.yaml, packit.yaml); using .packit.yaml, while Packit would pick one at random",
		".packit.yaml is valid: 1 job",
	)

	empty := t.TempDir()
	t.Chdir(empty)
	_, _, err = runUpbuild(t, context.Background(), nil, "config", "check")
	if err == nil || !strings.Contains(err.Error(), "no Packit config in .") {
		t.Fatalf("err = %v, want no Packit config", err)
	}
}
