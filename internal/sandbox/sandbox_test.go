package sandbox_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/sandbox"
)

// These tests need root and bwrap, as the sandbox does in production.

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) == "1" {
		os.Exit(runProbe(os.Args[1:]))
	}
	os.Exit(m.Run())
}

const probeInside = "/probe/probe"

// harness runs probes outside the sandbox (as root, with the test's
// environment) and inside it.
type harness struct {
	sb       *sandbox.Sandbox
	probeDir string // host directory holding the probe binary
	base     string // a reachable scratch directory on the host
}

func newHarness(t *testing.T, cfg sandbox.Config) *harness {
	t.Helper()
	if cfg.UIDCount == 0 {
		cfg.UIDBase, cfg.UIDCount = 231000, 8
	}
	sb, err := sandbox.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := &harness{sb: sb, base: reachableDir(t)}
	h.probeDir = filepath.Join(h.base, "probe")
	if err := os.Mkdir(h.probeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, self, filepath.Join(h.probeDir, "probe"), 0o755)
	return h
}

// reachableDir is a fresh directory whose ancestors other users may search,
// as the sandbox requires of work directories and bind sources. It is
// world-writable so that only the sandbox, not file permissions, keeps jobs
// out of what the tests put there.
func reachableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func canary(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "glpat-canary-" + hex.EncodeToString(b)
}

// outside runs the probe on the host, as root with the test's environment,
// and requires it to succeed: the positive control for an escape probe.
func (h *harness) outside(t *testing.T, args ...string) {
	t.Helper()
	h.outsideArgs(t, append([]string{filepath.Join(h.probeDir, "probe")}, args...)...)
}

// outsideArgs runs any command on the host and requires it to succeed.
func (h *harness) outsideArgs(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), probeEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("positive control: %v failed outside the sandbox: %v\n%s", args, err, out)
	}
}

// workDir is a fresh work directory next to the test's other host paths.
func (h *harness) workDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(h.base, "job-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// probeCmd is a Cmd that runs the probe inside the sandbox.
func (h *harness) probeCmd(t *testing.T, args ...string) sandbox.Cmd {
	t.Helper()
	return sandbox.Cmd{
		Args:          append([]string{probeInside}, args...),
		WorkDir:       h.workDir(t),
		Env:           map[string]string{probeEnv: "1"},
		ReadOnlyBinds: []sandbox.Bind{{Source: h.probeDir, Dest: "/probe"}},
		Limits:        sandbox.Limits{Wall: time.Minute},
	}
}

// run runs c and returns its result and combined output.
func (h *harness) run(t *testing.T, ctx context.Context, c sandbox.Cmd) (sandbox.Result, string) {
	t.Helper()
	var out lockedBuffer
	c.Output = &out
	res, err := h.sb.Run(ctx, c)
	if err != nil {
		t.Fatalf("Run %v: %v\noutput:\n%s", c.Args, err, out.String())
	}
	return res, out.String()
}

// inside runs the probe in the sandbox and requires it to fail on its own
// (exit 1), not by being killed.
func (h *harness) inside(t *testing.T, c sandbox.Cmd) string {
	t.Helper()
	res, out := h.run(t, context.Background(), c)
	if res.ExitCode != 1 || res.Killed {
		t.Fatalf("probe %v inside the sandbox: exit %d, killed %v, want a failed probe (exit 1)\noutput:\n%s",
			c.Args[1:], res.ExitCode, res.Killed, out)
	}
	if !strings.Contains(out, "probe failed") {
		t.Fatalf("probe %v inside the sandbox did not report a failure:\n%s", c.Args[1:], out)
	}
	assertNoProcesses(t, res.UID)
	return out
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// assertNoProcesses fails if any live host process still runs as uid.
func assertNoProcesses(t *testing.T, uid int) {
	t.Helper()
	statuses, err := filepath.Glob("/proc/[0-9]*/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range statuses {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // exited
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "State:\tZ") {
				break // a zombie is dead, waiting for its parent to reap it
			}
			if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
				if fields := strings.Fields(rest); len(fields) > 0 && fields[0] == strconv.Itoa(uid) {
					t.Errorf("process %s still runs as sandbox UID %d after the run", filepath.Dir(path), uid)
				}
			}
		}
	}
}

func TestEscapeWriteOutsideWorkDir(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	hostDir := reachableDir(t) // exists, world-writable
	usrFile := filepath.Join("/usr", "upbuild-sandbox-probe-"+canary(t))
	t.Cleanup(func() { _ = os.Remove(usrFile) })

	for _, target := range []string{filepath.Join(hostDir, "escaped"), usrFile} {
		t.Run(target, func(t *testing.T) {
			h.outside(t, "write", target)
			if err := os.Remove(target); err != nil {
				t.Fatal(err)
			}
			h.inside(t, h.probeCmd(t, "write", target))
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s exists on the host after the sandboxed write (stat: %v)", target, err)
			}
		})
	}

	t.Run("the work directory is writable", func(t *testing.T) {
		c := h.probeCmd(t, "write", "/work/out/result.txt")
		if err := os.Mkdir(filepath.Join(c.WorkDir, "out"), 0o755); err != nil {
			t.Fatal(err)
		}
		res, out := h.run(t, context.Background(), c)
		if res.ExitCode != 0 {
			t.Fatalf("writing in the work directory failed: exit %d\n%s", res.ExitCode, out)
		}
		info, err := os.Stat(filepath.Join(c.WorkDir, "out", "result.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if uid := info.Sys().(*syscall.Stat_t).Uid; int(uid) != res.UID || res.UID < 231000 || res.UID >= 231008 {
			t.Fatalf("file owned by UID %d, want the job UID %d from the configured range", uid, res.UID)
		}
	})
}

// TestEscapeWriteThroughAHardLink covers the work tree's object files,
// which are hard links to the repository cache's: the job can read them,
// and neither write them nor make them writable, so a job cannot change
// what later jobs of the project check out.
func TestEscapeWriteThroughAHardLink(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	cached := filepath.Join(h.base, "cache", "repos", "project.git", "objects", "pack", "pack-1.pack")
	writeFile(t, cached, "PACK cached objects\n")
	if err := os.Chmod(cached, 0o444); err != nil {
		t.Fatal(err)
	}
	c := h.probeCmd(t, "change", sandbox.WorkDirInside+"/.git/objects/pack/pack-1.pack")
	linked := filepath.Join(c.WorkDir, ".git", "objects", "pack", "pack-1.pack")
	if err := os.MkdirAll(filepath.Dir(linked), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(cached, linked); err != nil {
		t.Fatal(err)
	}
	h.outside(t, "change", linked) // upbuild's own user can
	writeFile(t, cached, "PACK cached objects\n")
	if err := os.Chmod(cached, 0o444); err != nil {
		t.Fatal(err)
	}

	h.inside(t, c)
	if got := readFile(t, cached); got != "PACK cached objects\n" {
		t.Fatalf("the cached file changed through its link in the work tree: %q", got)
	}
	info, err := os.Stat(cached)
	if err != nil {
		t.Fatal(err)
	}
	if owner := info.Sys().(*syscall.Stat_t).Uid; owner != uint32(os.Getuid()) || info.Mode().Perm() != 0o444 {
		t.Fatalf("the cached file is owned by UID %d with mode %v after the run, want upbuild's %d and 0444", owner, info.Mode().Perm(), os.Getuid())
	}
	readable := h.probeCmd(t, "read", sandbox.WorkDirInside+"/.git/objects/pack/pack-1.pack", "PACK cached")
	linked = filepath.Join(readable.WorkDir, ".git", "objects", "pack", "pack-1.pack")
	if err := os.MkdirAll(filepath.Dir(linked), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(cached, linked); err != nil {
		t.Fatal(err)
	}
	if res, out := h.run(t, context.Background(), readable); res.ExitCode != 0 {
		t.Fatalf("the job cannot read its own object files: exit %d\n%s", res.ExitCode, out)
	}
}

func TestEscapeReadHostSecrets(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	secret := canary(t)
	// upbuild's layout: a data directory and a repository cache next to the
	// jobs' work directories, all readable by anyone on the host.
	dataFile := filepath.Join(h.base, "data", "upbuild.db")
	cacheConfig := filepath.Join(h.base, "cache", "group", "project.git", "config")
	repoConfig := filepath.Join(h.base, "checkout", ".git", "config")
	otherJob := filepath.Join(h.workDir(t), "secret.txt")
	rootFile := filepath.Join("/root", "upbuild-sandbox-canary-"+secret)
	homeFile := filepath.Join("/home", "upbuild-sandbox-canary-"+secret, "token")
	writeFile(t, dataFile, "token="+secret)
	writeFile(t, cacheConfig, "[remote \"origin\"]\n\turl = https://oauth2:"+secret+"@gitlab.example/group/project.git\n")
	writeFile(t, repoConfig, "[http]\n\textraHeader = PRIVATE-TOKEN: "+secret+"\n")
	writeFile(t, otherJob, secret)
	writeFile(t, rootFile, secret)
	writeFile(t, homeFile, secret)
	t.Cleanup(func() {
		_ = os.Remove(rootFile)
		_ = os.RemoveAll(filepath.Dir(homeFile))
	})

	for _, path := range []string{dataFile, cacheConfig, repoConfig, otherJob, rootFile, homeFile} {
		t.Run(path, func(t *testing.T) {
			h.outside(t, "read", path, secret)
			h.inside(t, h.probeCmd(t, "read", path, secret))
		})
	}
}

func TestEscapeTokenFromEnvironment(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	secret := canary(t)
	t.Setenv("UPBUILD_GITLAB_TOKEN", secret)
	h.outside(t, "env", "UPBUILD_GITLAB_TOKEN", secret)
	h.inside(t, h.probeCmd(t, "env", "UPBUILD_GITLAB_TOKEN", secret))
}

func TestOnlyChosenEnvironmentInside(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	t.Setenv("UPBUILD_GITLAB_TOKEN", canary(t))
	c := h.probeCmd(t, "environ")
	c.Env["PACKIT_CONFIG"] = "/work/.packit.yaml"
	c.Env["LANG"] = "en_US.UTF-8"
	res, out := h.run(t, context.Background(), c)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d\n%s", res.ExitCode, out)
	}
	want := strings.Join([]string{
		"HOME=/work",
		"LANG=en_US.UTF-8",
		"PACKIT_CONFIG=/work/.packit.yaml",
		"PATH=/usr/local/bin:/usr/bin:/usr/sbin",
		"PWD=/work", // set by bwrap --chdir
		"TMPDIR=/tmp",
		probeEnv + "=1",
		"probe succeeded",
	}, "\n") + "\n"
	if out != want {
		t.Fatalf("environment inside:\n%s\nwant:\n%s", out, want)
	}
}

// listen accepts connections on a loopback port until the test ends.
func listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	return ln.Addr().String()
}

func TestEscapeLoopbackConnection(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	addr := listen(t)
	h.outside(t, "connect", addr)
	out := h.inside(t, h.probeCmd(t, "connect", addr))
	if !strings.Contains(out, "connection refused") {
		t.Fatalf("want the connection refused by the sandbox's own empty loopback, got:\n%s", out)
	}
}

// With the network on, the command shares the host's network namespace,
// host loopback included; operators who enable it accept that.
func TestNetworkOnSharesHostLoopback(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	addr := listen(t)
	c := h.probeCmd(t, "connect", addr)
	c.Network = true
	res, out := h.run(t, context.Background(), c)
	if res.ExitCode != 0 {
		t.Fatalf("with Network on, connecting to %s failed: exit %d\n%s", addr, res.ExitCode, out)
	}
}

func TestForkBombIsBounded(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	t.Run("holding 100 processes", func(t *testing.T) {
		h.outside(t, "spawn", "100")
		c := h.probeCmd(t, "spawn", "100")
		c.Limits.Processes = 40
		out := h.inside(t, c)
		if !strings.Contains(out, "resource temporarily unavailable") {
			t.Fatalf("want fork to fail with EAGAIN, got:\n%s", out)
		}
	})
	t.Run("unbounded shell fork bomb", func(t *testing.T) {
		c := h.probeCmd(t)
		c.Args = []string{"sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 600"}
		c.Limits = sandbox.Limits{Processes: 40, Wall: 3 * time.Second}
		res, out := h.run(t, context.Background(), c)
		if !res.TimedOut || !res.Killed {
			t.Fatalf("want the bomb killed at the time limit, got %+v\n%s", res, out)
		}
		assertNoProcesses(t, res.UID)
		if err := exec.Command("true").Run(); err != nil {
			t.Fatalf("the host cannot start a process after the fork bomb: %v", err)
		}
	})
}

func TestEndlessOutputIsTruncated(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	const limit = 64 << 10

	// Positive control: yes really produces more than the limit.
	yes := exec.Command("yes")
	stdout, err := yes.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := yes.Start(); err != nil {
		t.Fatal(err)
	}
	n, err := io.CopyN(io.Discard, stdout, 2*limit)
	_ = yes.Process.Kill()
	_ = yes.Wait()
	if err != nil || n != 2*limit {
		t.Fatalf("positive control: yes produced %d bytes (%v)", n, err)
	}

	c := h.probeCmd(t)
	c.Args = []string{"yes"}
	c.Limits.OutputBytes = limit
	res, out := h.run(t, context.Background(), c)
	if !res.OutputTruncated || !res.Killed || res.ExitCode != -1 {
		t.Fatalf("want truncated and killed, got %+v", res)
	}
	marker := sandbox.TruncationMarker(limit) + "\n"
	if marker != "[output truncated after 65536 bytes]\n" {
		t.Fatalf("marker %q", marker)
	}
	body, ok := strings.CutSuffix(out, marker)
	if !ok {
		t.Fatalf("output does not end with the marker: ...%q", out[max(0, len(out)-80):])
	}
	if len(body) != limit || strings.Trim(body, "y\n") != "" {
		t.Fatalf("want exactly %d bytes of yes before the marker, got %d", limit, len(body))
	}
	assertNoProcesses(t, res.UID)
}

func TestTimeoutKillsTheWholeTree(t *testing.T) {
	h := newHarness(t, sandbox.Config{})

	// Positive control: killing only the probe leaves its detached child alive.
	probe := exec.Command(filepath.Join(h.probeDir, "probe"), "detach")
	probe.Env = []string{probeEnv + "=1", "PATH=/usr/bin"}
	stdout, err := probe.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	childPID, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "child ")))
	if err != nil {
		t.Fatalf("probe said %q", line)
	}
	_ = probe.Process.Kill()
	_ = probe.Wait()
	if err := syscall.Kill(childPID, 0); err != nil {
		t.Fatalf("positive control: the detached child did not outlive its parent: %v", err)
	}
	if err := syscall.Kill(childPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	t.Run("wall limit", func(t *testing.T) {
		c := h.probeCmd(t, "detach")
		c.Limits.Wall = 2 * time.Second
		res, out := h.run(t, context.Background(), c)
		if !res.TimedOut || !res.Killed || res.ExitCode != -1 {
			t.Fatalf("want timed out and killed, got %+v\n%s", res, out)
		}
		if !strings.HasPrefix(out, "child ") || !strings.HasSuffix(out, "[killed: time limit of 2s reached]\n") {
			t.Fatalf("output:\n%s", out)
		}
		assertNoProcesses(t, res.UID)
	})
	t.Run("context deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, out := h.run(t, ctx, h.probeCmd(t, "detach"))
		if !res.TimedOut || !res.Killed {
			t.Fatalf("want timed out and killed, got %+v\n%s", res, out)
		}
		assertNoProcesses(t, res.UID)
	})
	t.Run("cancellation", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c := h.probeCmd(t, "detach")
		var out lockedBuffer
		// Cancel once the child has been started.
		c.Output = writerFunc(func(p []byte) (int, error) {
			if strings.HasPrefix(string(p), "child ") {
				cancel()
			}
			return out.Write(p)
		})
		res, err := h.sb.Run(ctx, c)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
		if !res.Killed || res.TimedOut {
			t.Fatalf("want killed, not timed out: %+v", res)
		}
		if !strings.HasSuffix(out.String(), "[killed: cancelled]\n") {
			t.Fatalf("output:\n%s", out.String())
		}
		assertNoProcesses(t, res.UID)
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
