package sandbox

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// The identity of the job inside the sandbox. Host files outside the work
// directory appear owned by the overflow UID 65534.
const (
	insideUID  = 1000
	insideName = "upbuild"
	hostname   = "upbuild-sandbox"
)

// etcAlways are the /etc entries every job gets from the system root: what
// the dynamic linker, alternatives-managed tools, rpm and crypto libraries
// read. Nothing here holds a secret.
func etcAlways() []string {
	return []string{
		"alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
		"os-release", "nsswitch.conf", "protocols", "services", "rpm", "crypto-policies",
	}
}

// etcNetwork are added when the job has the network: certificates and
// resolver settings. resolv.conf is copied, not bound, because it is often a
// symlink into /run.
func etcNetwork() []string {
	return []string{"ssl", "ca-certificates", "ca-certificates.conf", "pki", "gai.conf", "host.conf"}
}

// dataFile is a file whose content the sandbox is given through a pipe.
type dataFile struct {
	dest    string
	content []byte
}

func (s *Sandbox) dataFiles(c Cmd) ([]dataFile, error) {
	files := []dataFile{
		{"/etc/passwd", fmt.Appendf(nil,
			"root:x:0:0:root:/root:/usr/sbin/nologin\n%s:x:%d:%d:%s:%s:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
			insideName, insideUID, insideUID, insideName, WorkDirInside)},
		{"/etc/group", fmt.Appendf(nil, "root:x:0:\n%s:x:%d:\nnogroup:x:65534:\n", insideName, insideUID)},
		{"/etc/hosts", fmt.Appendf(nil, "127.0.0.1 localhost %s\n::1 localhost\n", hostname)},
	}
	if c.Network {
		resolv, err := os.ReadFile(filepath.Join(s.systemRoot, "etc/resolv.conf"))
		if err == nil {
			files = append(files, dataFile{"/etc/resolv.conf", resolv})
		} else if !os.IsNotExist(err) {
			return nil, fmt.Errorf("%w: reading resolv.conf: %w", ErrUnavailable, err)
		}
	}
	return files, nil
}

// prlimitArgs are the rlimits set on bwrap and inherited by everything in the
// sandbox. RLIMIT_NPROC counts per host UID, which is the job's own. They
// are set by prlimit, which then becomes bwrap, rather than by upbuild on
// the running bwrap: prlimit(2) on another user's process needs
// CAP_SYS_RESOURCE, which root in a container may lack, while a process may
// always lower its own limits. The exec costs about half a millisecond.
func (s *Sandbox) prlimitArgs(l Limits) []string {
	args := []string{
		s.prlimit,
		"--cpu=" + strconv.FormatInt(int64(math.Ceil(l.CPU.Seconds())), 10),
		"--nproc=" + strconv.Itoa(l.Processes),
		"--fsize=" + strconv.FormatInt(l.FileSizeBytes, 10),
		"--core=0",
	}
	if s.cgroup == nil {
		// Under cgroup v2, memory.max bounds the job as a whole instead.
		args = append(args, "--as="+strconv.FormatInt(l.MemoryBytes, 10))
	}
	return append(args, "--")
}

// bwrapArgs builds the sandbox from the allow-list. statusFD is where bwrap
// reports the child's start and exit; dataFDs[i] carries data[i].
func (s *Sandbox) bwrapArgs(c Cmd, l Limits, statusFD int, data []dataFile, dataFDs []int) []string {
	args := []string{
		s.bwrap,
		"--unshare-all", "--unshare-user", "--disable-userns",
	}
	if c.Network {
		args = append(args, "--share-net")
	}
	args = append(args,
		"--die-with-parent", "--new-session", "--clearenv",
		"--uid", strconv.Itoa(insideUID), "--gid", strconv.Itoa(insideUID),
		"--hostname", hostname,
		"--json-status-fd", strconv.Itoa(statusFD),
		"--ro-bind", filepath.Join(s.systemRoot, "usr"), "/usr",
	)
	for _, top := range []string{"bin", "lib", "lib64", "sbin"} {
		args = append(args, s.mirror(top)...)
	}
	args = append(args, "--dir", "/etc")
	etc := etcAlways()
	if c.Network {
		etc = append(etc, etcNetwork()...)
	}
	for _, name := range etc {
		args = append(args, s.mirror(filepath.Join("etc", name))...)
	}
	for i, f := range data {
		args = append(args, "--perms", "0644", "--ro-bind-data", strconv.Itoa(dataFDs[i]), f.dest)
	}
	tmpSize := strconv.FormatInt(l.TmpBytes, 10)
	args = append(args,
		"--dev", "/dev",
		"--size", tmpSize, "--tmpfs", "/dev/shm",
		"--proc", "/proc",
		"--size", tmpSize, "--tmpfs", "/tmp",
		"--dir", "/var", "--symlink", "../tmp", "/var/tmp",
		"--bind", c.WorkDir, WorkDirInside,
	)
	for _, b := range c.ReadOnlyBinds {
		args = append(args, "--ro-bind", b.Source, b.Dest)
	}
	args = append(args,
		// The assembled root and /dev are tmpfs the job could otherwise fill.
		"--remount-ro", "/dev", "--remount-ro", "/",
		"--chdir", filepath.Join(WorkDirInside, c.Dir),
	)
	env := map[string]string{
		"PATH":   "/usr/local/bin:/usr/bin:/usr/sbin",
		"HOME":   WorkDirInside,
		"LANG":   "C.UTF-8",
		"TMPDIR": "/tmp",
	}
	maps.Copy(env, c.Env)
	for _, name := range slices.Sorted(maps.Keys(env)) {
		args = append(args, "--setenv", name, env[name])
	}
	args = append(args, "--")
	return append(args, c.Args...)
}

// mirror shows rel (relative to the system root) at the same place inside:
// a symlink is recreated as a symlink, so it can only point at what the
// sandbox shows, and anything else is bound read-only. Missing entries are
// left out.
func (s *Sandbox) mirror(rel string) []string {
	src := filepath.Join(s.systemRoot, rel)
	dest := "/" + rel
	info, err := os.Lstat(src)
	if err != nil {
		return nil
	}
	if info.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return nil
		}
		return []string{"--symlink", target, dest}
	}
	return []string{"--ro-bind-try", src, dest}
}
