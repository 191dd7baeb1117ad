package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Report is what Check found.
type Report struct {
	BwrapVersion string
	// Mechanism is MechanismCgroupV2 or MechanismRlimits; MechanismNote says
	// where the cgroup is, or why cgroup v2 is not used.
	Mechanism     string
	MechanismNote string
}

// checkScript runs inside the sandbox. Every line it prints is checked.
const checkScript = `readlink /proc/self/ns/net
readlink /proc/self/ns/pid
id -u
for p in /root /home /run /var/run /var/lib; do if test -e "$p"; then echo "visible $p"; fi; done
tail -n +3 /proc/net/dev | cut -d: -f1
echo probe > /work/check && echo wrote
`

// Check runs a trivial command in the sandbox and verifies that it is
// isolated: its own network and PID namespaces with only loopback, the job
// identity, no /root, /home, /run or /var/lib, and a writable work directory
// owned by the job UID on the host. Callers must refuse untrusted jobs when
// it fails; the error wraps ErrUnavailable.
func (s *Sandbox) Check(ctx context.Context) (Report, error) {
	rep := Report{Mechanism: s.Mechanism(), MechanismNote: s.mechanismNote}
	version, err := exec.CommandContext(ctx, s.bwrap, "--version").Output()
	if err != nil {
		return rep, fmt.Errorf("%w: running bwrap --version: %w", ErrUnavailable, err)
	}
	rep.BwrapVersion = strings.TrimSpace(string(version))

	work, err := os.MkdirTemp("", "upbuild-sandbox-check-")
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer os.RemoveAll(work)
	var out bytes.Buffer
	res, err := s.Run(ctx, Cmd{
		Args:    []string{"sh", "-c", checkScript},
		WorkDir: work,
		Limits:  Limits{Wall: 30 * time.Second, Processes: 64},
		Output:  &out,
	})
	if err != nil {
		return rep, fmt.Errorf("%w: trial run: %w", ErrUnavailable, err)
	}
	if res.ExitCode != 0 {
		return rep, fmt.Errorf("%w: trial run exited with %d: %s", ErrUnavailable, res.ExitCode, out.String())
	}
	if err := verifyCheckOutput(out.String()); err != nil {
		return rep, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	info, err := os.Stat(filepath.Join(work, "check"))
	if err != nil {
		return rep, fmt.Errorf("%w: the trial run's file is missing on the host: %w", ErrUnavailable, err)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != res.UID {
		return rep, fmt.Errorf("%w: the trial run's file is not owned by the job UID %d", ErrUnavailable, res.UID)
	}
	return rep, nil
}

func verifyCheckOutput(out string) error {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 5 || lines[len(lines)-1] != "wrote" {
		return fmt.Errorf("unexpected trial output %q", out)
	}
	for i, ns := range []string{"net", "pid"} {
		host, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			return err
		}
		if lines[i] == host || !strings.HasPrefix(lines[i], ns+":") {
			return fmt.Errorf("the sandbox shares the host's %s namespace (%q)", ns, lines[i])
		}
	}
	if lines[2] != strconv.Itoa(insideUID) {
		return fmt.Errorf("the sandbox runs as UID %q, want %d", lines[2], insideUID)
	}
	for _, line := range lines[3 : len(lines)-1] {
		if path, ok := strings.CutPrefix(line, "visible "); ok {
			return fmt.Errorf("%s is visible inside the sandbox", path)
		}
		if iface := strings.TrimSpace(line); iface != "lo" {
			return fmt.Errorf("network interface %q exists inside the sandbox", iface)
		}
	}
	return nil
}
