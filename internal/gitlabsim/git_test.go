package gitlabsim_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

// git runs the real git CLI with no user or system configuration.
func git(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestCloneOverHTTP(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	ctx := context.Background()
	private := must[gitlabsim.Project](t)(w.sim.AddProject(ctx, gitlabsim.ProjectSpec{
		Namespace: "GNOME", Path: "secret", Visibility: gitlabsim.Private, Files: map[string]string{"key.txt": "hidden\n"},
	}))
	dir := t.TempDir()

	if out, err := git(t, dir, "clone", "--quiet", w.project.HTTPURLToRepo, "public"); err != nil {
		t.Fatalf("anonymous clone of public project: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "public", "gtk.spec")); err != nil || string(b) != "Name: gtk\n" {
		t.Errorf("cloned gtk.spec = %q, %v", b, err)
	}

	if out, err := git(t, dir, "clone", "--quiet", private.HTTPURLToRepo, "anon"); err == nil {
		t.Errorf("anonymous clone of a private project worked: %s", out)
	}
	withToken := func(token string) string {
		u, _ := url.Parse(private.HTTPURLToRepo)
		u.User = url.UserPassword("oauth2", token)
		return u.String()
	}
	if out, err := git(t, dir, "clone", "--quiet", withToken(w.outsider.Token), "outsider"); err == nil {
		t.Errorf("outsider cloned a private project: %s", out)
	}
	if out, err := git(t, dir, "clone", "--quiet", withToken(w.bot.Token), "private"); err != nil {
		t.Fatalf("clone with a member's token: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "private", "key.txt")); err != nil || string(b) != "hidden\n" {
		t.Errorf("cloned key.txt = %q, %v", b, err)
	}
	if out, err := git(t, filepath.Join(dir, "public"), "push", "origin", "HEAD:refs/heads/x"); err == nil {
		t.Errorf("push over HTTP was accepted: %s", out)
	}
}

func TestMergeRequestRefsFollowForkCommits(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	ctx := context.Background()
	fork := must[gitlabsim.Project](t)(w.sim.ForkProject(ctx, w.project.ID, "mallory"))
	first := must[string](t)(w.sim.PushCommits(ctx, fork.ID, "fix", "mallory", gitlabsim.CommitSpec{
		Message: "Fix build", Changes: []gitlabsim.FileChange{{Path: "gtk.spec", Content: "Name: gtk\nRelease: 2\n"}},
	}))
	mr := must[gitlabsim.MergeRequest](t)(w.sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{
		ProjectID: w.project.ID, SourceProjectID: fork.ID, SourceBranch: "fix", Author: "mallory",
	}))
	if mr.HeadSHA != first || mr.Title != "Fix build" || mr.TargetBranch != "main" {
		t.Errorf("merge request = %+v", mr)
	}
	dir := t.TempDir()
	if out, err := git(t, dir, "clone", "--quiet", w.project.HTTPURLToRepo, "gtk"); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	repo := filepath.Join(dir, "gtk")
	fetchHead := func() string {
		t.Helper()
		if out, err := git(t, repo, "fetch", "--quiet", "origin", "refs/merge-requests/1/head"); err != nil {
			t.Fatalf("fetch MR ref: %v\n%s", err, out)
		}
		out, err := git(t, repo, "rev-parse", "FETCH_HEAD")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := fetchHead(); got != first {
		t.Errorf("refs/merge-requests/1/head = %s, want %s", got, first)
	}
	second := must[string](t)(w.sim.PushCommits(ctx, fork.ID, "fix", "mallory", gitlabsim.CommitSpec{
		Message: "Fix more", Changes: []gitlabsim.FileChange{{Path: "gtk.spec", Content: "Name: gtk\nRelease: 3\n"}},
	}))
	if got := fetchHead(); got != second {
		t.Errorf("after a push refs/merge-requests/1/head = %s, want %s", got, second)
	}
	if got := must[gitlabsim.MergeRequest](t)(w.sim.MergeRequest(w.project.ID, mr.IID)); got.HeadSHA != second {
		t.Errorf("merge request head = %s, want %s", got.HeadSHA, second)
	}
}
