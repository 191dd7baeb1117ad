package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// uidPool hands out job UIDs. A UID in use is also locked on disk (flock on
// a file per UID), so that several upbuild processes on one host (a serve
// and a worker, or parallel test binaries) never hand out the same UID:
// each kills every process of a UID when its job ends, and would otherwise
// kill the other's job.
//
// The lock file also says whether the UID's last job is known to have left
// no process behind: "clean" is written once that was confirmed, and the
// file is emptied while a job runs. A UID whose file does not say "clean"
// (first use on this host, or a crash mid-job) has its processes killed
// before it is used again; a clean one needs no look through /proc. Clean
// UIDs are handed out again first, so a few UIDs (and their lock files)
// serve most jobs; the others go to the back of the queue, giving their
// leftovers time to die.
type uidPool struct {
	lockDir string
	tokens  chan struct{} // one per free UID
	mu      sync.Mutex
	clean   []int // free UIDs known clean, the last released on top
	queue   []int // the other free UIDs, least recently used first
	held    map[int]*os.File
}

// cleanMark is the lock file's content after a job confirmed to have left
// no process behind.
const cleanMark = "clean\n"

func newUIDPool(base, count int) *uidPool {
	p := &uidPool{lockDir: filepath.Join(os.TempDir(), "upbuild-uid-locks"), tokens: make(chan struct{}, count), held: map[int]*os.File{}}
	for uid := base; uid < base+count; uid++ {
		p.queue = append(p.queue, uid)
		p.tokens <- struct{}{}
	}
	return p
}

// acquire returns a free UID, locked, and whether its last job is known to
// have left no process behind.
func (p *uidPool) acquire(ctx context.Context) (uid int, clean bool, err error) {
	if err := os.MkdirAll(p.lockDir, 0o700); err != nil {
		return 0, false, fmt.Errorf("UID lock directory: %w", err)
	}
	for tries := 0; ; tries++ {
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		select {
		case <-p.tokens:
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
		p.mu.Lock()
		if n := len(p.clean); n > 0 {
			uid, p.clean = p.clean[n-1], p.clean[:n-1]
		} else {
			uid, p.queue = p.queue[0], p.queue[1:]
		}
		p.mu.Unlock()
		f, err := os.OpenFile(filepath.Join(p.lockDir, strconv.Itoa(uid)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			p.giveBack(uid, false)
			return 0, false, fmt.Errorf("UID lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			// Another process on this host has it: try the next one.
			f.Close()
			p.giveBack(uid, false)
			if tries > cap(p.tokens) {
				return 0, false, fmt.Errorf("every job UID is in use by some process on this host")
			}
			continue
		}
		mark := make([]byte, len(cleanMark))
		n, _ := f.ReadAt(mark, 0) // a short or failed read is "not clean"
		clean = string(mark[:n]) == cleanMark
		// From now until release confirms otherwise, the UID may have
		// processes: a crash leaves the file saying so.
		if err := f.Truncate(0); err != nil {
			f.Close()
			p.giveBack(uid, false)
			return 0, false, fmt.Errorf("UID lock: %w", err)
		}
		p.mu.Lock()
		p.held[uid] = f
		p.mu.Unlock()
		return uid, clean, nil
	}
}

// release unlocks uid; clean says every process of its job is known to be
// gone.
func (p *uidPool) release(uid int, clean bool) {
	p.mu.Lock()
	f := p.held[uid]
	delete(p.held, uid)
	p.mu.Unlock()
	if f != nil {
		if clean {
			if _, err := f.WriteAt([]byte(cleanMark), 0); err != nil {
				clean = false // the next job looks through /proc; no harm done
			}
		}
		f.Close() // closing the descriptor drops the flock
	}
	p.giveBack(uid, clean)
}

func (p *uidPool) giveBack(uid int, clean bool) {
	p.mu.Lock()
	if clean {
		p.clean = append(p.clean, uid)
	} else {
		p.queue = append(p.queue, uid)
	}
	p.mu.Unlock()
	p.tokens <- struct{}{}
}

// processesOf lists the host PIDs whose real, effective or saved UID is uid.
func processesOf(uid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	want := strconv.Itoa(uid)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue // exited meanwhile
		}
		if statusHasUID(status, want) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// statusHasUID reports whether a /proc/PID/status describes a live process
// with uid as its real, effective or saved UID. Zombies are dead already;
// their reaping is up to their parent (often the host's init).
func statusHasUID(status []byte, uid string) bool {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		if state, ok := strings.CutPrefix(line, "State:"); ok {
			if s := strings.TrimSpace(state); strings.HasPrefix(s, "Z") || strings.HasPrefix(s, "X") {
				return false
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, "Uid:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		return slices.Contains(fields[:min(3, len(fields))], uid)
	}
	return false
}

// killUID kills every process owned by uid and returns once none is left.
// Each process is signalled through a pidfd after its owner is checked, so a
// recycled PID is never hit.
func killUID(ctx context.Context, uid int) error {
	for attempt := 0; ; attempt++ {
		pids, err := processesOf(uid)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			killIfOwned(pid, uid)
		}
		if attempt > 0 {
			// Killed processes linger until reaped by their parent.
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return fmt.Errorf("killing processes of sandbox UID %d: %w", uid, ctx.Err())
			}
		}
	}
}

func killIfOwned(pid, uid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil || !statusHasUID(status, strconv.Itoa(uid)) {
		return
	}
	// ESRCH and zombies are fine: the process is dead either way.
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
}

// giveTree makes dir and what it holds owned by uid, without following
// symlinks. Regular files with several hard links are skipped: a link may
// point into the repository cache (git clone --local), which must stay
// upbuild's.
func giveTree(dir string, uid int) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("preparing work directory: %w", err)
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("preparing work directory: %w", err)
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("preparing work directory: no owner information for %s", path)
		}
		if !d.IsDir() && st.Nlink > 1 {
			return nil
		}
		if int(st.Uid) == uid && int(st.Gid) == uid {
			return nil
		}
		if err := os.Lchown(path, uid, uid); err != nil {
			return fmt.Errorf("preparing work directory: %w", err)
		}
		return nil
	})
}

// checkReachable verifies that every ancestor of path can be searched by a
// user who owns none of them: bwrap resolves bind sources as the job UID.
func checkReachable(path string) error {
	for dir := filepath.Dir(filepath.Clean(path)); ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by other users, so the sandbox cannot reach %s (needs o+x, e.g. mode 0711)", dir, path)
		}
		if dir == "/" {
			return nil
		}
	}
}

func validateCmd(c Cmd) error {
	if len(c.Args) == 0 || c.Args[0] == "" {
		return fmt.Errorf("%w: no command", ErrInvalidCmd)
	}
	if !filepath.IsAbs(c.WorkDir) {
		return fmt.Errorf("%w: work directory %q is not an absolute path", ErrInvalidCmd, c.WorkDir)
	}
	info, err := os.Lstat(c.WorkDir)
	if err != nil {
		return fmt.Errorf("%w: work directory: %w", ErrInvalidCmd, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("%w: work directory %s is not a directory (symlinks are refused)", ErrInvalidCmd, c.WorkDir)
	}
	if filepath.Clean(c.WorkDir) == "/" {
		return fmt.Errorf("%w: work directory cannot be /", ErrInvalidCmd)
	}
	if err := checkReachable(c.WorkDir); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCmd, err)
	}
	if c.Dir != "" && !filepath.IsLocal(c.Dir) {
		return fmt.Errorf("%w: directory %q is not inside the work directory", ErrInvalidCmd, c.Dir)
	}
	for name := range c.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return fmt.Errorf("%w: bad environment variable name %q", ErrInvalidCmd, name)
		}
	}
	for _, b := range c.ReadOnlyBinds {
		if err := validateBind(b); err != nil {
			return err
		}
	}
	return nil
}

func validateBind(b Bind) error {
	if !filepath.IsAbs(b.Source) || !filepath.IsAbs(b.Dest) || filepath.Clean(b.Dest) != b.Dest {
		return fmt.Errorf("%w: bind %s -> %s: both paths must be absolute and clean", ErrInvalidCmd, b.Source, b.Dest)
	}
	// The sandbox builds these itself; a bind may not cover them.
	for _, r := range []string{"/usr", "/etc", "/proc", "/dev", "/tmp", "/bin", "/lib", "/lib64", "/sbin", WorkDirInside} {
		if b.Dest == "/" || b.Dest == r || strings.HasPrefix(b.Dest, r+"/") {
			return fmt.Errorf("%w: bind destination %s is reserved", ErrInvalidCmd, b.Dest)
		}
	}
	if _, err := os.Stat(b.Source); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: bind source %s does not exist", ErrInvalidCmd, b.Source)
		}
		return fmt.Errorf("%w: bind source: %w", ErrInvalidCmd, err)
	}
	if err := checkReachable(b.Source); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCmd, err)
	}
	return nil
}
