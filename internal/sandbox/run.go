package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Why a run was stopped early.
type stopReason int

const (
	stopOutput stopReason = iota + 1
	stopDisk
)

// drainGrace is how long the output and status pipes may stay open after
// every process of the job is dead. Nothing should hold them then; the
// grace only guards against hanging forever.
const drainGrace = 5 * time.Second

// bwrapStatus is what bwrap wrote to its --json-status-fd.
type bwrapStatus struct {
	childPID int // the sandbox's PID 1 as the host sees it; 0 if not reported
	exitCode int
	exited   bool // the command ran and exited
}

// run runs c as uid. gone reports whether every process of the run is
// known to be gone when it returns.
func (s *Sandbox) run(ctx context.Context, c Cmd, uid int) (res Result, gone bool, err error) {
	limits := c.Limits.withDefaults(s.defaults)
	res = Result{ExitCode: -1}
	output := c.Output
	if output == nil {
		output = io.Discard
	}
	// Cleanup must happen even when ctx is what ended the run.
	cleanupCtx, cancelCleanup := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancelCleanup()

	data, err := s.dataFiles(c)
	if err != nil {
		return res, false, err
	}
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			_ = f.Close() // already closed where it mattered
		}
	}()
	pipe := func() (*os.File, *os.File, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		opened = append(opened, r, w)
		return r, w, nil
	}
	outR, outW, err := pipe()
	if err != nil {
		return res, false, err
	}
	statusR, statusW, err := pipe()
	if err != nil {
		return res, false, err
	}
	extra := []*os.File{statusW}
	var dataFDs []int
	for _, d := range data {
		r, err := dataPipe(d.content)
		if err != nil {
			return res, false, err
		}
		opened = append(opened, r)
		dataFDs = append(dataFDs, 3+len(extra))
		extra = append(extra, r)
	}

	args := append(s.prlimitArgs(limits), s.bwrapArgs(c, limits, 3, data, dataFDs)...)
	cmd := &exec.Cmd{
		Path:       s.prlimit,
		Args:       args,
		Env:        []string{}, // bwrap --clearenv as well; nothing of upbuild's leaks
		Dir:        "/",
		Stdout:     outW,
		Stderr:     outW,
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}},
			Setpgid:    true,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	var cg *jobCgroup
	if s.cgroup != nil {
		cg, err = s.cgroup.newJob(cleanupCtx, uid, limits)
		if err != nil {
			return res, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		defer func() { _ = cg.remove(cleanupCtx) }() // a leftover cgroup is removed on the UID's next use
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(cg.fd.Fd())
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, false, fmt.Errorf("%w: starting bwrap: %w", ErrUnavailable, err)
	}
	// The child has its copies; ours would keep the pipes from reaching EOF.
	for _, f := range extra {
		_ = f.Close()
	}
	_ = outW.Close()

	stop := make(chan stopReason, 2)
	signalStop := func(r stopReason) {
		select {
		case stop <- r:
		default:
		}
	}
	outputDone := make(chan outputResult, 1)
	go func() {
		outputDone <- pumpOutput(outR, output, limits.OutputBytes, func() { signalStop(stopOutput) })
	}()
	statusDone := make(chan bwrapStatus, 1)
	go func() { statusDone <- readStatus(statusR) }()
	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()
	diskCtx, stopDiskWatch := context.WithCancel(ctx)
	defer stopDiskWatch()
	go watchDisk(diskCtx, c.WorkDir, limits.WorkDirBytes, s.diskPoll, func() { signalStop(stopDisk) })

	wall := time.NewTimer(limits.Wall)
	defer wall.Stop()
	var cancelled, exited bool
	var waitErr error
	for !exited && !res.Killed {
		select {
		case waitErr = <-waitDone:
			exited = true
		case <-wall.C:
			res.TimedOut, res.Killed = true, true
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				res.TimedOut = true
			} else {
				cancelled = true
			}
			res.Killed = true
		case reason := <-stop:
			res.DiskExceeded = reason == stopDisk
			res.Killed = true
		}
	}
	if res.Killed {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // ESRCH: already gone
		waitErr = <-waitDone
	}
	res.Duration = time.Since(start)
	stopDiskWatch()
	if cg != nil {
		cg.kill()
	}
	status := awaitDrain(statusDone, statusR)
	// Everything the command started lives in the sandbox's PID namespace,
	// which the kernel empties before its PID 1 counts as exited. When a
	// run ended on its own, waiting for that PID 1 is enough; otherwise, or
	// when it does not exit in time, every process of the job UID is killed.
	if res.Killed && status.childPID > 0 {
		killIfOwned(status.childPID, uid) // PID 1 takes the namespace with it
	}
	gone = !res.Killed && status.childPID > 0 && exitedWithin(status.childPID, uid, drainGrace)
	if !gone {
		if err := killUID(cleanupCtx, uid); err != nil {
			return res, false, err
		}
		gone = true
	}

	out := awaitDrain(outputDone, outR)
	if out.truncated {
		res.OutputTruncated = true
		res.Killed = true
	}
	switch {
	case res.Killed:
		res.ExitCode = -1
	case status.exited:
		res.ExitCode = status.exitCode
	default:
		var exitErr *exec.ExitError
		if waitErr != nil && !errors.As(waitErr, &exitErr) {
			return res, gone, fmt.Errorf("%w: waiting for bwrap: %w", ErrUnavailable, waitErr)
		}
	}

	switch {
	case out.truncated:
	case res.TimedOut:
		writeMarker(output, &out, fmt.Sprintf("[killed: time limit of %s reached]", limits.Wall))
	case res.DiskExceeded:
		writeMarker(output, &out, fmt.Sprintf("[killed: work directory exceeded %d bytes]", limits.WorkDirBytes))
	case cancelled:
		writeMarker(output, &out, "[killed: cancelled]")
	}
	// bwrap reports the exit code only of a command it managed to start; a
	// failed bind, chdir or exec ends it before that.
	if !status.exited && !res.Killed {
		return res, gone, fmt.Errorf("%w: %s", ErrSetup, bytes.TrimSpace(out.tail))
	}
	if cancelled {
		return res, gone, fmt.Errorf("sandbox run: %w", ctx.Err())
	}
	if out.writeErr != nil {
		return res, gone, fmt.Errorf("writing sandbox output: %w", out.writeErr)
	}
	return res, gone, nil
}

// exitedWithin waits up to grace for pid, the sandbox's PID 1, to exit.
// No process with that PID, or one that is not a live process of uid
// (a zombie, or the PID taken again after PID 1 was reaped), means it has
// exited.
func exitedWithin(pid, uid int, grace time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	// Read after the pidfd is open: from then on the PID cannot be reused.
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil || !statusHasUID(status, strconv.Itoa(uid)) {
		return errors.Is(err, fs.ErrNotExist) || err == nil
	}
	deadline := time.Now().Add(grace)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		switch {
		case err == nil && n > 0:
			return true
		case err != nil && !errors.Is(err, unix.EINTR):
			return false
		}
	}
}

// awaitDrain waits for a pipe reader to finish, closing the pipe if it is
// still held open after the grace period.
func awaitDrain[T any](done <-chan T, pipe *os.File) T {
	select {
	case v := <-done:
		return v
	case <-time.After(drainGrace):
		_ = pipe.Close() // unblocks the reader
		return <-done
	}
}

// dataPipe returns the read end of a pipe already holding content. The
// content must fit in the pipe buffer.
func dataPipe(content []byte) (*os.File, error) {
	if len(content) > 32<<10 {
		return nil, fmt.Errorf("%w: generated file of %d bytes is too large", ErrUnavailable, len(content))
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	_, err = w.Write(content)
	if closeErr := w.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return r, nil
}

// readStatus reads bwrap's JSON status documents until the pipe closes.
func readStatus(r io.Reader) bwrapStatus {
	var st bwrapStatus
	dec := json.NewDecoder(r)
	for {
		var doc struct {
			ChildPID *int `json:"child-pid"`
			ExitCode *int `json:"exit-code"`
		}
		if err := dec.Decode(&doc); err != nil {
			return st
		}
		if doc.ChildPID != nil {
			st.childPID = *doc.ChildPID
		}
		if doc.ExitCode != nil {
			st.exited = true
			st.exitCode = *doc.ExitCode
		}
	}
}

// watchDisk calls exceeded once the work directory uses more than limit
// bytes of disk.
func watchDisk(ctx context.Context, dir string, limit int64, every time.Duration, exceeded func()) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if used, measured := diskUsage(dir); !measured || used > limit {
			exceeded()
			return
		}
	}
}

// diskUsage sums the allocated size of everything under dir. Entries that
// vanish while it walks are skipped; symlinks are not followed. measured is
// false when part of the tree could not be looked at: a job that nests
// directories past PATH_MAX hides what is below from a walk by path, and a
// tree that cannot be measured counts as over any limit.
func diskUsage(dir string) (total int64, measured bool) {
	measured = true
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				measured = false
				return fs.SkipAll
			}
			return nil // vanished: keep counting the rest
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			measured = false
			return fs.SkipAll
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	return total, measured
}
