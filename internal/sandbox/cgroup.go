package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupParent is a cgroup v2 directory under which each job gets its own
// cgroup with memory.max and pids.max.
type cgroupParent struct {
	dir string
}

// detectCgroup decides how limits are enforced. A configured parent must be
// usable; otherwise upbuild's own cgroup is tried and, when it does not
// qualify, rlimits are used and the note says why.
func detectCgroup(configured string) (*cgroupParent, string, error) {
	if configured != "" {
		if err := usableCgroupParent(configured); err != nil {
			return nil, "", fmt.Errorf("%w: cgroup parent %s: %w", ErrUnavailable, configured, err)
		}
		return &cgroupParent{dir: configured}, "cgroup v2 at " + configured + " (configured)", nil
	}
	dir, err := ownCgroupV2Dir()
	if err != nil {
		return nil, "rlimits: " + err.Error(), nil
	}
	if err := usableCgroupParent(dir); err != nil {
		return nil, "rlimits: upbuild's cgroup v2 " + dir + " is not delegated: " + err.Error(), nil
	}
	return &cgroupParent{dir: dir}, "cgroup v2 at " + dir + " (detected)", nil
}

func usableCgroupParent(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return errors.New("not a cgroup v2 directory")
	}
	controllers, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	enabled := strings.Fields(string(controllers))
	for _, want := range []string{"memory", "pids"} {
		if !slices.Contains(enabled, want) {
			return fmt.Errorf("the %s controller is not enabled in cgroup.subtree_control", want)
		}
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	return nil
}

// ownCgroupV2Dir finds this process's cgroup in the cgroup v2 hierarchy.
func ownCgroupV2Dir() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var own string
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			own = rest
		}
	}
	if own == "" {
		return "", errors.New("no cgroup v2 membership in /proc/self/cgroup")
	}
	mountinfo, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer mountinfo.Close()
	sc := bufio.NewScanner(mountinfo)
	for sc.Scan() {
		before, after, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(before)
		if !ok || len(fields) < 5 || !strings.HasPrefix(after, "cgroup2 ") {
			continue
		}
		return filepath.Join(fields[4], own), nil
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no cgroup v2 file system is mounted")
}

// jobCgroup is one job's cgroup. fd is passed to clone so the sandbox starts
// inside it.
type jobCgroup struct {
	dir string
	fd  *os.File
}

func (p *cgroupParent) newJob(ctx context.Context, uid int, l Limits) (*jobCgroup, error) {
	dir := filepath.Join(p.dir, "upbuild-sandbox-"+strconv.Itoa(uid))
	if _, err := os.Stat(dir); err == nil {
		// Left behind by a crashed upbuild.
		stale := &jobCgroup{dir: dir}
		stale.kill()
		if err := stale.remove(ctx); err != nil {
			return nil, err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating job cgroup: %w", err)
	}
	j := &jobCgroup{dir: dir}
	settings := []struct{ file, value string }{
		{"memory.max", strconv.FormatInt(l.MemoryBytes, 10)},
		{"memory.swap.max", "0"},
		{"pids.max", strconv.Itoa(l.Processes)},
	}
	for _, s := range settings {
		err := os.WriteFile(filepath.Join(dir, s.file), []byte(s.value), 0)
		if err != nil && !(s.file == "memory.swap.max" && errors.Is(err, fs.ErrNotExist)) {
			_ = j.remove(ctx)
			return nil, fmt.Errorf("setting %s of job cgroup: %w", s.file, err)
		}
	}
	fd, err := os.Open(dir)
	if err != nil {
		_ = j.remove(ctx)
		return nil, fmt.Errorf("opening job cgroup: %w", err)
	}
	j.fd = fd
	return j, nil
}

// kill kills everything in the cgroup; cgroup.kill needs Linux 5.14, older
// kernels get each listed process killed.
func (j *jobCgroup) kill() {
	if err := os.WriteFile(filepath.Join(j.dir, "cgroup.kill"), []byte("1"), 0); err == nil {
		return
	}
	procs, err := os.ReadFile(filepath.Join(j.dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for field := range strings.FieldsSeq(string(procs)) {
		if pid, err := strconv.Atoi(field); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL) // ESRCH: already gone
		}
	}
}

// remove deletes the cgroup once its killed processes are gone.
func (j *jobCgroup) remove(ctx context.Context) error {
	if j.fd != nil {
		_ = j.fd.Close() // a directory opened read-only: nothing to flush
	}
	for {
		err := os.Remove(j.dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("removing job cgroup: %w", err)
		}
		j.kill()
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("removing job cgroup: %w", ctx.Err())
		}
	}
}
