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

// TestWritesNeverChangeAFileThatIsAlreadyThere covers a hard link the job
// moved to a name upbuild writes: the file it links to (the repository
// cache's, read-only to the job, writable to root) keeps its content.
func TestWritesNeverChangeAFileThatIsAlreadyThere(t *testing.T) {
	d, _ := setup(t)
	cached := filepath.Join(t.TempDir(), "pack-1.idx")
	if err := os.WriteFile(cached, []byte("cached index\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	for _, write := range []struct {
		name string
		do   func(dest string) error
	}{
		{"WriteFile", func(dest string) error { return d.WriteFile(dest, []byte("rewritten\n"), 0o644) }},
		{"CopyFile", func(dest string) error { return d.CopyFile("src/sub/file", dest) }},
		{"Create", func(dest string) error {
			f, err := d.Create(dest, 0o644)
			if err != nil {
				return err
			}
			if _, err := f.WriteString("rewritten\n"); err != nil {
				return err
			}
			return f.Commit()
		}},
	} {
		t.Run(write.name, func(t *testing.T) {
			dest := filepath.Join("src", write.name+".tar.gz")
			if err := os.Link(cached, filepath.Join(d.Path(), dest)); err != nil {
				t.Fatal(err)
			}
			if err := write.do(dest); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(cached); err != nil || string(got) != "cached index\n" {
				t.Errorf("the linked file holds %q (%v) after %s over its link", got, err, write.name)
			}
			if got, err := d.ReadFile(dest, 1<<20); err != nil || string(got) == "cached index\n" {
				t.Errorf("%s holds %q (%v), want the new content", dest, got, err)
			}
		})
	}
	aborted, err := d.Create("src/sub/file", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aborted.WriteString("half"); err != nil {
		t.Fatal(err)
	}
	if err := aborted.Abort(); err != nil {
		t.Fatal(err)
	}
	if got, err := d.ReadFile("src/sub/file", 1<<20); err != nil || string(got) != "job file\n" {
		t.Errorf("an aborted write changed the file: %q (%v)", got, err)
	}
	if left, _ := filepath.Glob(filepath.Join(d.Path(), "src", "sub", ".upbuild-new-*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestWritesStayInside(t *testing.T) {
	d, host := setup(t)
	// A host path is refused; a symlink out of the directory is replaced by
	// the new file, never written through.
	if err := d.WriteFile(host, []byte("overwritten\n"), 0o644); !errors.Is(err, jobfs.ErrOutside) {
		t.Errorf("WriteFile(%s) = %v, want ErrOutside", host, err)
	}
	if err := d.CopyFile("src/sub/file", host); !errors.Is(err, jobfs.ErrOutside) {
		t.Errorf("CopyFile(…, %s) = %v, want ErrOutside", host, err)
	}
	for _, name := range []string{"src/absolute", "src/relative"} {
		if err := d.WriteFile(name, []byte("overwritten\n"), 0o644); err != nil {
			t.Errorf("WriteFile(%s): %v", name, err)
		}
		if info, err := os.Lstat(filepath.Join(d.Path(), name)); err != nil || !info.Mode().IsRegular() {
			t.Errorf("%s after WriteFile: %v, %v; want a regular file in place of the link", name, info, err)
		}
	}
	if got, err := os.ReadFile(host); err != nil || string(got) != "host secret\n" {
		t.Fatalf("the host file is %q (%v) after writes through the job directory", got, err)
	}
	// A pipe in the way is replaced, not opened (which would wait for a reader).
	if err := d.WriteFile("src/pipe", []byte("x"), 0o644); err != nil {
		t.Errorf("WriteFile over a pipe: %v", err)
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

func TestRegularListsOnlyPlainFilesInside(t *testing.T) {
	d, _ := setup(t)
	if err := os.Symlink(filepath.Dir(d.Path()), filepath.Join(d.Path(), "src", "up")); err != nil {
		t.Fatal(err)
	}
	got, err := d.Regular("src")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(d.Path(), "src", "sub", "file")}
	if len(got) != 1 || got[0] != want[0] {
		t.Errorf("Regular(src) = %v, want %v (no symlink, pipe or file outside)", got, want)
	}
	if got, err := d.Regular("src/up"); err == nil && len(got) > 0 {
		t.Errorf("Regular through a symlink out of the directory listed %v", got)
	}
}
