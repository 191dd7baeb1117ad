package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// WorkDirInside is where the job's work directory appears inside the sandbox.
const WorkDirInside = "/work"

// Sentinel errors. Errors returned by this package wrap one of these where it
// applies, so callers can tell a broken sandbox from a bad request.
var (
	// ErrUnavailable means the sandbox cannot run commands on this machine
	// (bwrap or prlimit missing, user namespaces refused, Check failed).
	ErrUnavailable = errors.New("sandbox unavailable")
	// ErrInvalidCmd means the Cmd was rejected before anything ran.
	ErrInvalidCmd = errors.New("invalid sandbox command")
	// ErrSetup means bwrap failed to build the sandbox; the command never ran.
	ErrSetup = errors.New("sandbox setup failed")
)

// Config configures a Sandbox. Zero fields take the documented defaults.
type Config struct {
	// BwrapPath and PrlimitPath are the host binaries; default: looked up in PATH.
	BwrapPath   string
	PrlimitPath string
	// UIDBase and UIDCount give the range of unprivileged host UIDs, one per
	// concurrent job; default 200000 and 65536. The same number is used as
	// the group ID. The range must not hold real users.
	UIDBase  int
	UIDCount int
	// RootFS is an optional operator-supplied root filesystem (for example a
	// Fedora tree with rpm-build) whose /usr and /etc pieces replace the
	// host's. Empty means the host's own system directories.
	RootFS string
	// CgroupParent is a cgroup v2 directory delegated to upbuild with the
	// memory and pids controllers enabled in its cgroup.subtree_control. Empty
	// means detect: upbuild's own cgroup is used when it qualifies, otherwise
	// limits are rlimits only.
	CgroupParent string
	// DefaultLimits fill the zero fields of each Cmd's Limits; zero fields
	// here take DefaultLimits() values.
	DefaultLimits Limits
	// DiskPollInterval is how often the work directory size is measured
	// while a job runs; default 2s.
	DiskPollInterval time.Duration
}

// Limits bound one run. In a Cmd, zero fields mean the sandbox's defaults.
type Limits struct {
	Wall time.Duration // wall-clock time; on expiry the tree is killed and Result.TimedOut set
	CPU  time.Duration // CPU time per process (RLIMIT_CPU)
	// MemoryBytes is the address-space limit per process (RLIMIT_AS), or the
	// memory.max of the job's cgroup when cgroup v2 is in force.
	MemoryBytes int64
	// Processes is the number of processes and threads the job UID may have
	// at once (RLIMIT_NPROC; bwrap's own two processes count), or pids.max.
	Processes     int
	FileSizeBytes int64 // largest file the job may write (RLIMIT_FSIZE)
	// WorkDirBytes bounds the work directory's disk usage, measured every
	// DiskPollInterval; the tree is killed when it is exceeded.
	WorkDirBytes int64
	// TmpBytes is the size of each tmpfs (/tmp and /dev/shm).
	TmpBytes int64
	// OutputBytes caps the combined output delivered to Cmd.Output; beyond
	// it a marker line is written and the tree is killed.
	OutputBytes int64
}

// DefaultLimits are the package defaults for fields left zero everywhere.
func DefaultLimits() Limits {
	return Limits{
		Wall:          time.Hour,
		CPU:           time.Hour,
		MemoryBytes:   4 << 30,
		Processes:     512,
		FileSizeBytes: 4 << 30,
		WorkDirBytes:  8 << 30,
		TmpBytes:      512 << 20,
		OutputBytes:   16 << 20,
	}
}

// withDefaults fills l's zero fields from d.
func (l Limits) withDefaults(d Limits) Limits {
	if l.Wall <= 0 {
		l.Wall = d.Wall
	}
	if l.CPU <= 0 {
		l.CPU = d.CPU
	}
	if l.MemoryBytes <= 0 {
		l.MemoryBytes = d.MemoryBytes
	}
	if l.Processes <= 0 {
		l.Processes = d.Processes
	}
	if l.FileSizeBytes <= 0 {
		l.FileSizeBytes = d.FileSizeBytes
	}
	if l.WorkDirBytes <= 0 {
		l.WorkDirBytes = d.WorkDirBytes
	}
	if l.TmpBytes <= 0 {
		l.TmpBytes = d.TmpBytes
	}
	if l.OutputBytes <= 0 {
		l.OutputBytes = d.OutputBytes
	}
	return l
}

// Bind shows a host path read-only inside the sandbox.
type Bind struct {
	Source string // absolute host path; every ancestor must be searchable by others (o+x)
	Dest   string // absolute path inside
}

// Cmd is one command to run in the sandbox.
type Cmd struct {
	Args []string // Args[0] is looked up in PATH inside the sandbox
	// WorkDir is the host directory bound writable at /work. It must exist,
	// be a real directory, and every ancestor must be searchable by others
	// (o+x): bwrap opens it as the job UID. Run hands the tree to the job
	// UID (files with several hard links are left alone).
	WorkDir string
	// Dir is the working directory, relative to WorkDir; empty means /work.
	Dir string
	// Env holds the variables to set besides PATH, HOME, LANG and TMPDIR
	// (which it may override). Nothing else from upbuild's environment leaks.
	Env           map[string]string
	ReadOnlyBinds []Bind
	Network       bool // share the host's network namespace (includes host loopback)
	Limits        Limits
	// Output receives stdout and stderr combined, one Write per line as the
	// command produces it (lines longer than 64 KiB are split). Nil discards.
	Output io.Writer
}

// Result is what happened to a run.
type Result struct {
	// ExitCode is the command's exit status; -1 when the sandbox was killed
	// before the command finished.
	ExitCode        int
	TimedOut        bool // the wall limit or the context deadline was reached
	OutputTruncated bool // Limits.OutputBytes was reached
	DiskExceeded    bool // Limits.WorkDirBytes was exceeded
	Killed          bool // the tree was killed for any of the reasons above or cancellation
	Duration        time.Duration
	UID             int // the host UID the job ran as
}

// Sandbox runs commands in bubblewrap. It is safe for concurrent use; each
// concurrent Run gets its own UID.
type Sandbox struct {
	bwrap         string
	prlimit       string
	systemRoot    string
	defaults      Limits
	diskPoll      time.Duration
	uids          *uidPool
	cgroup        *cgroupParent // nil when limits are rlimits only
	mechanismNote string
}

// New validates cfg and prepares a Sandbox. It does not run anything; call
// Check for that.
func New(cfg Config) (*Sandbox, error) {
	bwrap, err := findBinary(cfg.BwrapPath, "bwrap")
	if err != nil {
		return nil, err
	}
	prlimit, err := findBinary(cfg.PrlimitPath, "prlimit")
	if err != nil {
		return nil, err
	}
	if cfg.UIDBase == 0 {
		cfg.UIDBase = 200000
	}
	if cfg.UIDCount == 0 {
		cfg.UIDCount = 65536
	}
	if cfg.UIDBase < 1000 || cfg.UIDCount < 1 || cfg.UIDBase+cfg.UIDCount > 1<<31-2 {
		return nil, fmt.Errorf("%w: UID range %d+%d: must start at 1000 or above and fit in 31 bits", ErrUnavailable, cfg.UIDBase, cfg.UIDCount)
	}
	systemRoot := "/"
	if cfg.RootFS != "" {
		if !filepath.IsAbs(cfg.RootFS) {
			return nil, fmt.Errorf("%w: root filesystem %q is not an absolute path", ErrUnavailable, cfg.RootFS)
		}
		if fi, err := os.Stat(filepath.Join(cfg.RootFS, "usr")); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("%w: root filesystem %s has no usr directory", ErrUnavailable, cfg.RootFS)
		}
		if err := checkReachable(cfg.RootFS); err != nil {
			return nil, fmt.Errorf("%w: root filesystem: %w", ErrUnavailable, err)
		}
		systemRoot = filepath.Clean(cfg.RootFS)
	}
	defaults := cfg.DefaultLimits.withDefaults(DefaultLimits())
	poll := cfg.DiskPollInterval
	if poll <= 0 {
		poll = 2 * time.Second
	}
	cg, note, err := detectCgroup(cfg.CgroupParent)
	if err != nil {
		return nil, err
	}
	return &Sandbox{
		bwrap:         bwrap,
		prlimit:       prlimit,
		systemRoot:    systemRoot,
		defaults:      defaults,
		diskPoll:      poll,
		uids:          newUIDPool(cfg.UIDBase, cfg.UIDCount),
		cgroup:        cg,
		mechanismNote: note,
	}, nil
}

func findBinary(configured, name string) (string, error) {
	if configured != "" {
		if !filepath.IsAbs(configured) {
			return "", fmt.Errorf("%w: %s path %q is not absolute", ErrUnavailable, name, configured)
		}
		return configured, nil
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return filepath.Abs(path)
}

// Mechanism says how memory and process limits are enforced.
func (s *Sandbox) Mechanism() string {
	if s.cgroup != nil {
		return MechanismCgroupV2
	}
	return MechanismRlimits
}

// The limit mechanisms Check reports.
const (
	MechanismCgroupV2 = "cgroup v2"
	MechanismRlimits  = "rlimits"
)

// Run runs c in the sandbox and waits for it and everything it started to be
// gone. A command that fails or hits a limit is not an error: see Result.
// Errors mean the command could not be run as asked (ErrInvalidCmd;
// ErrSetup, also when the command does not exist or Dir is missing inside;
// ErrUnavailable) or the context was cancelled (the tree is
// killed, Result.Killed is set and the error wraps context.Canceled).
func (s *Sandbox) Run(ctx context.Context, c Cmd) (Result, error) {
	if err := validateCmd(c); err != nil {
		return Result{ExitCode: -1}, err
	}
	uid, clean, err := s.uids.acquire(ctx)
	if err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("waiting for a free sandbox UID: %w", err)
	}
	gone := false // every process of the UID is known to be gone
	defer func() { s.uids.release(uid, gone) }()
	if !clean {
		// A previous upbuild process may have crashed with this UID in use.
		if err := killUID(ctx, uid); err != nil {
			return Result{ExitCode: -1, UID: uid}, err
		}
	}
	if err := giveTree(c.WorkDir, uid); err != nil {
		return Result{ExitCode: -1, UID: uid}, err
	}
	r, gone, err := s.run(ctx, c, uid)
	r.UID = uid
	return r, err
}
