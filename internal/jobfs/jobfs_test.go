package jobfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"upbuild.dev/upbuild/internal/jobfs"
)

// setup makes a job directory and, beside it, a host file that must stay
// out of reach, then plants in the directory what a hostile repository
// would: symlinks out of it (absolute and relative), a symlink within it, a
// named pipe and a directory.
func setup(t *testing.T) (*jobfs.Dir, string) {
	t.Helper()
	base := t.TempDir()
	host := filepath.Join(base, "host-secret")
	if err := os.WriteFile(host, []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	job := filepath.Join(base, "job")
	if err := os.MkdirAll(filepath.Join(job, "src", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"src/absolute": host,
		"src/relative": "../../host-secret",
		"src/inside":   "sub/file",
	} {
		if err := os.Symlink(target, filepath.Join(job, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(job, "src", "sub", "file"), []byte("job file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(job, "src", "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := jobfs.Open(job)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, host
}

func TestReadsStayInsideAndOnRegularFiles(t *testing.T) {
	d, host := setup(t)
	// The positive control: the host file really is readable by this process.
	if _, err := os.ReadFile(host); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"src/absolute", "src/relative", host, filepath.Join(d.Path(), "..", "host-secret")} {
		if data, err := d.ReadFile(name, 1<<20); err == nil {
			t.Errorf("ReadFile(%s) read %q from outside the job directory", name, data)
		}
	}
	for _, name := range []string{"src/pipe", "src/sub", filepath.Join(d.Path(), "src", "pipe")} {
		if _, err := d.ReadFile(name, 1<<20); !errors.Is(err, jobfs.ErrNotRegular) {
			t.Errorf("ReadFile(%s) = %v, want ErrNotRegular (and no wait on the pipe)", name, err)
		}
	}
	for _, name := range []string{"src/inside", filepath.Join(d.Path(), "src", "sub", "file")} {
		if data, err := d.ReadFile(name, 1<<20); err != nil || string(data) != "job file\n" {
			t.Errorf("ReadFile(%s) = %q, %v; want the job's own file", name, data, err)
		}
	}
	if _, err := d.ReadFile("src/sub/file", 3); !errors.Is(err, jobfs.ErrTooLarge) {
		t.Errorf("ReadFile over the limit = %v, want ErrTooLarge", err)
	}
}

func TestWritesStayInsideAndOnRegularFiles(t *testing.T) {
	d, host := setup(t)
	for _, name := range []string{"src/absolute", "src/relative", host} {
		if err := d.WriteFile(name, []byte("overwritten\n"), 0o644); err == nil {
			t.Errorf("WriteFile(%s) succeeded", name)
		}
		if err := d.CopyFile("src/sub/file", name); err == nil {
			t.Errorf("CopyFile(…, %s) succeeded", name)
		}
	}
	if got, err := os.ReadFile(host); err != nil || string(got) != "host secret\n" {
		t.Fatalf("the host file is %q (%v) after writes through the job directory", got, err)
	}
	if err := d.WriteFile("src/pipe", []byte("x"), 0o644); !errors.Is(err, jobfs.ErrNotRegular) {
		t.Errorf("WriteFile(pipe) = %v, want ErrNotRegular (and no wait on the pipe)", err)
	}
	if err := d.WriteFile("src/new/deeper.txt", []byte("x"), 0o644); err == nil {
		t.Error("WriteFile made a missing directory")
	}
	if err := d.MkdirAll("src/new", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile(filepath.Join(d.Path(), "src/new/deeper.txt"), []byte("made\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.CopyFile("src/new/deeper.txt", "src/new/copy.txt"); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(d.Path(), "src/new/copy.txt")); err != nil || string(got) != "made\n" {
		t.Errorf("the copy holds %q (%v)", got, err)
	}
	if err := d.Remove("src/absolute"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(host); err != nil {
		t.Errorf("removing a symlink removed its target: %v", err)
	}
}
