package srpm_test

import (
	"context"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/srpm"
)

func TestHostRunnerStreamsWholeLinesAndReportsExitStatus(t *testing.T) {
	log := &syncBuffer{}
	out, err := srpm.HostRunner{}.Run(context.Background(), srpm.Command{
		Args: []string{"bash", "-c", `printf 'one\ntw'; printf 'o\n'; echo oops >&2; printf 'no newline'; echo "$GREETING"; exit 4`},
		Dir:  t.TempDir(),
		Env:  map[string]string{"GREETING": "hi"},
		Log:  log,
	})
	if err != nil {
		t.Fatalf("a non-zero exit is not a Run error: %v", err)
	}
	if out.ExitCode != 4 || out.Stdout != "one\ntwo\nno newlinehi\n" || out.Stderr != "oops\n" {
		t.Errorf("output %+v", out)
	}
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	for _, want := range []string{"one", "two", "oops", "no newlinehi"} {
		if !contains(lines, want) {
			t.Errorf("log lines %q lack %q", lines, want)
		}
	}
}

func TestHostRunnerDoesNotPassItsEnvironmentOn(t *testing.T) {
	t.Setenv("UPBUILD_TEST_SECRET", "s3cret")
	out, err := srpm.HostRunner{}.Run(context.Background(), srpm.Command{Args: []string{"env"}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.Stdout, "s3cret") || !strings.Contains(out.Stdout, "PATH=") {
		t.Errorf("environment:\n%s", out.Stdout)
	}
}

func TestHostRunnerMissingProgramIsAnError(t *testing.T) {
	_, err := srpm.HostRunner{}.Run(context.Background(), srpm.Command{Args: []string{"upbuild-no-such-program"}, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "upbuild-no-such-program") {
		t.Errorf("err %v, want one naming the program", err)
	}
}
