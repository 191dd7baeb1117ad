package sandbox_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/sandbox"
)

func TestCheck(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	rep, err := h.sb.Check(context.Background())
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !strings.HasPrefix(rep.BwrapVersion, "bubblewrap ") {
		t.Errorf("BwrapVersion %q", rep.BwrapVersion)
	}
	if rep.Mechanism != sandbox.MechanismCgroupV2 && rep.Mechanism != sandbox.MechanismRlimits {
		t.Errorf("Mechanism %q", rep.Mechanism)
	}
	if !strings.HasPrefix(rep.MechanismNote, rep.Mechanism) {
		t.Errorf("MechanismNote %q does not explain %q", rep.MechanismNote, rep.Mechanism)
	}
}

func TestNewRejectsACgroupParentThatIsNotCgroupV2(t *testing.T) {
	_, err := sandbox.New(sandbox.Config{CgroupParent: t.TempDir()})
	if !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "not a cgroup v2 directory") {
		t.Fatalf("want ErrUnavailable for a plain directory, got %v", err)
	}
}

func TestExitCodeAndLineStreaming(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	var mu sync.Mutex
	var writes []string
	res, err := h.sb.Run(context.Background(), sandbox.Cmd{
		Args:    []string{"sh", "-c", "echo one; echo two >&2; printf 'three'; exit 7"},
		WorkDir: h.workDir(t),
		Output: writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			writes = append(writes, string(p))
			return len(p), nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 7 || res.Killed || res.TimedOut {
		t.Fatalf("result %+v, want exit 7", res)
	}
	want := []string{"one\n", "two\n", "three"}
	if strings.Join(writes, "|") != strings.Join(want, "|") {
		t.Fatalf("writes %q, want one per line %q", writes, want)
	}
}

// A command that exits leaving processes behind (daemons, a forgotten
// `&`) ends with all of them gone, also when its UID serves the next run.
func TestProcessesLeftBehindEndWithTheRun(t *testing.T) {
	h := newHarness(t, sandbox.Config{UIDBase: 232100, UIDCount: 1})
	for i := range 3 {
		res, out := h.run(t, context.Background(), sandbox.Cmd{
			Args:    []string{"sh", "-c", "trap '' HUP TERM; (trap '' HUP TERM; sleep 300) & sleep 300 & echo left"},
			WorkDir: h.workDir(t),
		})
		if res.ExitCode != 0 || res.Killed || out != "left\n" {
			t.Fatalf("run %d: %+v, output %q", i, res, out)
		}
		assertNoProcesses(t, res.UID)
	}
}

func TestReadOnlyBindsAndDir(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	rpms := filepath.Join(h.base, "rpms")
	writeFile(t, filepath.Join(rpms, "hello-1.0-1.noarch.rpm"), "not really an rpm")
	c := sandbox.Cmd{
		Args:          []string{"sh", "-c", "pwd; ls /rpms; if touch /rpms/new 2>/dev/null; then echo writable; fi"},
		WorkDir:       h.workDir(t),
		Dir:           "src",
		ReadOnlyBinds: []sandbox.Bind{{Source: rpms, Dest: "/rpms"}},
	}
	if err := os.Mkdir(filepath.Join(c.WorkDir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, out := h.run(t, context.Background(), c)
	if res.ExitCode != 0 || out != "/work/src\nhello-1.0-1.noarch.rpm\n" {
		t.Fatalf("exit %d, output:\n%s", res.ExitCode, out)
	}
}

func TestRunRejectsBadCommands(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	private := filepath.Join(h.base, "private", "job") // the job UID cannot reach it
	if err := os.MkdirAll(private, 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cmd  sandbox.Cmd
		want string
	}{
		{"no command", sandbox.Cmd{WorkDir: h.workDir(t)}, "no command"},
		{"relative work dir", sandbox.Cmd{Args: []string{"true"}, WorkDir: "job"}, "not an absolute path"},
		{"unreachable work dir", sandbox.Cmd{Args: []string{"true"}, WorkDir: private}, "not searchable by other users"},
		{"dir escapes", sandbox.Cmd{Args: []string{"true"}, WorkDir: h.workDir(t), Dir: "../x"}, "not inside the work directory"},
		{"bind over /usr", sandbox.Cmd{Args: []string{"true"}, WorkDir: h.workDir(t),
			ReadOnlyBinds: []sandbox.Bind{{Source: h.probeDir, Dest: "/usr/bin"}}}, "reserved"},
		{"bad env name", sandbox.Cmd{Args: []string{"true"}, WorkDir: h.workDir(t),
			Env: map[string]string{"A=B": "c"}}, "environment variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.sb.Run(context.Background(), tt.cmd)
			if !errors.Is(err, sandbox.ErrInvalidCmd) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want ErrInvalidCmd mentioning %q, got %v", tt.want, err)
			}
		})
	}
}

func TestSetupFailureIsAnError(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	tests := []struct {
		name string
		cmd  sandbox.Cmd
		want string
	}{
		{"missing command", sandbox.Cmd{Args: []string{"no-such-command"}}, "bwrap: execvp no-such-command: No such file or directory"},
		{"missing dir", sandbox.Cmd{Args: []string{"true"}, Dir: "src"}, "bwrap: Can't chdir to /work/src: No such file or directory"},
		{"no room for bwrap", sandbox.Cmd{Args: []string{"true"}, Limits: sandbox.Limits{Processes: 1}}, "Resource temporarily unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cmd.WorkDir = h.workDir(t)
			var out lockedBuffer
			tt.cmd.Output = &out
			_, err := h.sb.Run(context.Background(), tt.cmd)
			if !errors.Is(err, sandbox.ErrSetup) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want ErrSetup with %q, got %v", tt.want, err)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Fatalf("the job's output lacks bwrap's message:\n%s", out.String())
			}
		})
	}
}

func TestResourceLimits(t *testing.T) {
	h := newHarness(t, sandbox.Config{DiskPollInterval: 50 * time.Millisecond})

	t.Run("memory", func(t *testing.T) {
		// Python rather than the Go probe: the Go runtime does not even
		// start with an address-space limit this low.
		alloc := []string{"python3", "-c", "b = bytearray(1 << 30); print(len(b))"}
		h.outsideArgs(t, alloc...)
		c := h.probeCmd(t)
		c.Args = alloc
		c.Limits.MemoryBytes = 512 << 20
		res, out := h.run(t, context.Background(), c)
		if res.ExitCode == 0 || !strings.Contains(out, "MemoryError") {
			t.Fatalf("want the 1 GiB allocation to fail under 512 MiB, exit %d:\n%.2000s", res.ExitCode, out)
		}
	})
	t.Run("file size", func(t *testing.T) {
		c := h.probeCmd(t)
		c.Args = []string{"sh", "-c", "head -c 2097152 /dev/zero > /work/big; echo exit $?; ls -l /work/big"}
		c.Limits.FileSizeBytes = 1 << 20
		res, out := h.run(t, context.Background(), c)
		if res.ExitCode != 0 || !strings.Contains(out, "exit 153") || !strings.Contains(out, " 1048576 ") {
			t.Fatalf("want the write stopped at 1 MiB by SIGXFSZ, exit %d:\n%s", res.ExitCode, out)
		}
	})
	t.Run("tmp size", func(t *testing.T) {
		c := h.probeCmd(t)
		c.Args = []string{"sh", "-c", "head -c 2097152 /dev/zero > /tmp/big"}
		c.Limits.TmpBytes = 1 << 20
		res, out := h.run(t, context.Background(), c)
		if res.ExitCode == 0 || !strings.Contains(out, "No space left on device") {
			t.Fatalf("want /tmp full at 1 MiB, exit %d:\n%s", res.ExitCode, out)
		}
	})
	t.Run("work directory size", func(t *testing.T) {
		c := h.probeCmd(t)
		c.Args = []string{"sh", "-c", "for i in 1 2 3 4 5 6 7 8; do head -c 1048576 /dev/urandom > /work/f$i; done; sleep 600"}
		c.Limits.WorkDirBytes = 4 << 20
		res, out := h.run(t, context.Background(), c)
		if !res.DiskExceeded || !res.Killed || res.TimedOut {
			t.Fatalf("want killed for disk use, got %+v\n%s", res, out)
		}
		if !strings.HasSuffix(out, "[killed: work directory exceeded 4194304 bytes]\n") {
			t.Fatalf("output:\n%s", out)
		}
		assertNoProcesses(t, res.UID)
	})
	t.Run("work directory size below PATH_MAX", func(t *testing.T) {
		// The data sits under directories nested deeper than a path can
		// name, where a walk by path cannot see it.
		c := h.probeCmd(t)
		// 25 directories of 200-character names nest past PATH_MAX; the
		// 128 MiB below them are over the limit.
		c.Args = []string{"bash", "-c", "n=$(printf '%0200d' 0); for i in $(seq 25); do mkdir $n && cd $n || exit 3; done; " +
			"head -c 134217728 /dev/zero > big; sleep 600"}
		c.Limits.WorkDirBytes = 64 << 20
		c.Limits.Wall = 30 * time.Second
		res, out := h.run(t, context.Background(), c)
		if !res.DiskExceeded || res.TimedOut || !strings.Contains(out, "[killed: work directory exceeded") {
			t.Fatalf("want killed for disk use, got %+v\n%s", res, out)
		}
	})
}

func TestConcurrentRunsGetDistinctUIDs(t *testing.T) {
	h := newHarness(t, sandbox.Config{UIDBase: 232000, UIDCount: 2})
	ready := make(chan struct{}, 2)
	hold := filepath.Join(h.base, "hold", "hold")
	writeFile(t, hold, "")
	var wg sync.WaitGroup
	uids := make([]int, 2)
	for i := range uids {
		wg.Go(func() {
			c := h.probeCmd(t)
			c.Args = []string{"sh", "-c", "echo started; while test -e /hold/hold; do sleep 0.05; done"}
			c.ReadOnlyBinds = append(c.ReadOnlyBinds, sandbox.Bind{Source: filepath.Dir(hold), Dest: "/hold"})
			c.Output = writerFunc(func(p []byte) (int, error) {
				ready <- struct{}{}
				return len(p), nil
			})
			res, err := h.sb.Run(context.Background(), c)
			if err != nil || res.ExitCode != 0 {
				t.Errorf("run %d: %+v %v", i, res, err)
			}
			uids[i] = res.UID
		})
	}
	<-ready
	<-ready
	// Both pool UIDs are in use now: a third run waits until its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.sb.Run(ctx, h.probeCmd(t, "environ")); !errors.Is(err, context.Canceled) {
		t.Errorf("third run with both UIDs busy: want context.Canceled, got %v", err)
	}
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if uids[0] == uids[1] || min(uids[0], uids[1]) != 232000 || max(uids[0], uids[1]) != 232001 {
		t.Fatalf("concurrent runs used UIDs %v, want 232000 and 232001", uids)
	}
}

func TestRootFSReplacesSystemDirectories(t *testing.T) {
	root := reachableDir(t)
	// A stand-in for an operator's Fedora tree: the host's /usr, its own /etc.
	if err := os.Symlink("/usr", filepath.Join(root, "usr")); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"bin", "lib", "lib64"} {
		if err := os.Symlink("usr/"+dir, filepath.Join(root, dir)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "etc", "os-release"), "ID=fedora\nVERSION_ID=42\n")
	writeFile(t, filepath.Join(root, "etc", "rpm", "macros.dist"), "%dist .fc42\n")
	h := newHarness(t, sandbox.Config{RootFS: root})
	res, out := h.run(t, context.Background(), sandbox.Cmd{
		Args:    []string{"sh", "-c", "cat /etc/os-release /etc/rpm/macros.dist; ls /etc"},
		WorkDir: h.workDir(t),
	})
	want := "ID=fedora\nVERSION_ID=42\n%dist .fc42\ngroup\nhosts\nos-release\npasswd\nrpm\n"
	if res.ExitCode != 0 || out != want {
		t.Fatalf("exit %d, output:\n%s\nwant:\n%s", res.ExitCode, out, want)
	}
}
