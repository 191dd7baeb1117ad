package soaktest

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checks are the final checks the soak prints, one line each.
var checks = []string{"settled", "deliveries", "runs", "jobs-final", "statuses-match", "no-backwards", "goroutines", "fds", "memory"}

func build(t *testing.T, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

func TestSmokeSoakOnSQLite(t *testing.T) {
	upbuild := build(t, "upbuild.dev/upbuild/cmd/upbuild", "upbuild")
	soak := build(t, "upbuild.dev/upbuild/bench/soak", "soak")
	// The smoke mode stops by itself after about a minute; the bound
	// only guards against a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, soak, "-smoke", "-upbuild", upbuild, "-work-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("soak output:\n%s", out)
	if err != nil {
		t.Fatalf("soak failed: %v", err)
	}
	lines := strings.Split(string(out), "\n")
	for _, name := range checks {
		prefix := "check " + name + ": "
		found := false
		for _, line := range lines {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				found = true
				if !strings.HasPrefix(rest, "ok ") {
					t.Errorf("%s", line)
				}
			}
		}
		if !found {
			t.Errorf("the soak printed no %q check", name)
		}
	}
}
