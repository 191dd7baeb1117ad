package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/access/accesstest"
	"upbuild.dev/upbuild/internal/exec"
	"upbuild.dev/upbuild/internal/packitcfg"
)

// seedStatusNames are the statuses the demo's sample project gets on a
// merge request: its .packit.yaml builds copr_build for fedora-all and for
// this machine (host-<arch>).
func seedStatusNames(t *testing.T) []string {
	t.Helper()
	names := []string{"rpm-build:host-" + exec.HostArch()}
	for _, base := range packitcfg.DefaultAliasTable()["fedora-all"] {
		names = append(names, "rpm-build:"+base+"-x86_64")
	}
	if len(names) == 0 {
		t.Fatal("the alias table has no fedora-all")
	}
	return names
}

// statusLine matches a narrated status: "[  0.12s] status NAME STATE DESCRIPTION".
var statusLine = regexp.MustCompile(`^\[ *[0-9.]+s\] status (\S+) (\S+) ?(.*)$`)

func TestDemoShowsTheMergeRequestsStatusesUntilFinal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, errOut, err := runUpbuild(t, ctx, nil, "demo", "--timeout", "60s")
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	wantLinesInOrder(t, out, "upbuild demo: a GitLab simulator and upbuild, wired together on this machine.")
	for _, want := range []string{"/api/v1/deliveries", "Authorization: Bearer demo-admin-", "/api/v4/projects/1/merge_requests/1",
		`alice pushed branch demo-change`, `opened merge request !1 "Say hello louder"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Each status shows up pending first, then in a final state with a
	// description, and the summary agrees with the last line shown.
	names := seedStatusNames(t)
	last := map[string]string{}
	seen := map[string][]string{}
	for _, l := range normalizedLines(out) {
		m := statusLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		seen[m[1]] = append(seen[m[1]], m[2])
		last[m[1]] = m[2]
		if m[2] != "pending" && m[3] == "" {
			t.Errorf("final status line without a description: %q", l)
		}
	}
	if len(seen) != len(names) {
		t.Errorf("statuses shown: %v, want %v", seen, names)
	}
	for _, name := range names {
		states := seen[name]
		if len(states) < 2 || states[0] != "pending" {
			t.Errorf("status %s went %v, want pending first, then a final state", name, states)
			continue
		}
		switch last[name] {
		case "success", "failed", "canceled", "skipped":
		default:
			t.Errorf("status %s ended %q, not a final state", name, last[name])
		}
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name) + ` +` + last[name] + ` +http://127\.0\.0\.1:\d+/jobs/\d+$`).MatchString(out) {
			t.Errorf("summary lacks %s %s with its job page", name, last[name])
		}
	}
	summary := regexp.MustCompile(`(?m)^  (\d+) commit statuses, all final \(.*\); \d+ comments by the bot; webhooks: (\d+) sent, (\d+) accepted by upbuild$`)
	m := summary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in:\n%s", out)
	}
	if m[1] != strconv.Itoa(len(names)) || m[2] != m[3] {
		t.Errorf("summary %q: want %d statuses and every webhook accepted", m[0], len(names))
	}
}

// syncBuffer is written by the demo while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDemoKeepRunsUntilInterruptedAndCleansUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	root := newRootCommand(func(string) string { return "" }, &out, &errOut)
	root.SetArgs([]string{"demo", "--keep", "--timeout", "60s"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	deadline := time.After(90 * time.Second)
	for !strings.Contains(out.String(), "press Ctrl-C to stop") {
		select {
		case err := <-done:
			t.Fatalf("demo ended before Ctrl-C: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("demo never reached --keep:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	dataDir := regexp.MustCompile(`\(SQLite in (\S+)\)`).FindStringSubmatch(out.String())
	if dataDir == nil {
		t.Fatalf("no data directory shown:\n%s", out.String())
	}
	if _, err := os.Stat(dataDir[1]); err != nil {
		t.Fatalf("data directory while running: %v", err)
	}
	// The dashboard's sign-in works against the simulator, as the header says.
	sim := regexp.MustCompile(`(?m)^GitLab simulator\s+(http\S+)`).FindStringSubmatch(out.String())
	signIn := regexp.MustCompile(`sign in\s+(\S+)/ .* as @(\S+)`).FindStringSubmatch(out.String())
	if sim == nil || signIn == nil {
		t.Fatalf("the header does not say where and as whom to sign in:\n%s", out.String())
	}
	browser, err := accesstest.NewBrowser()
	if err != nil {
		t.Fatal(err)
	}
	if err := accesstest.SignIn(ctx, browser, signIn[1], sim[1], signIn[2]); err != nil {
		t.Fatalf("sign in to the demo as @%s: %v", signIn[2], err)
	}
	resp, err := browser.Get(signIn[1] + "/")
	if err != nil {
		t.Fatal(err)
	}
	home, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.Contains(string(home), "signed in as") || !strings.Contains(string(home), "@"+signIn[2]) {
		t.Fatalf("home page after signing in (%v):\n%s", err, home)
	}
	cancel() // what Ctrl-C does through main's signal context
	if err := <-done; err != nil {
		t.Fatalf("demo after Ctrl-C: %v\n%s", err, errOut.String())
	}
	if !strings.HasSuffix(out.String(), "Stopping.\n") {
		t.Errorf("output does not end by saying it stops:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Dir(dataDir[1])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary directory %s left behind: %v", filepath.Dir(dataDir[1]), err)
	}
}

func TestDemoSaysItNeedsGit(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // a PATH without git
	out, _, err := runUpbuild(t, context.Background(), nil, "demo")
	if err == nil || !strings.Contains(err.Error(), "needs git") || !strings.Contains(err.Error(), "apt-get install git") {
		t.Fatalf("err = %v, want a hint to install git", err)
	}
	if out != "" {
		t.Errorf("the demo printed before failing:\n%s", out)
	}
}
