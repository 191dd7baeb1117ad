package gitfetch_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"upbuild.dev/upbuild/internal/gitfetch"
	"upbuild.dev/upbuild/internal/gitlabsim"
)

// traffic counts what the simulator's git endpoint served.
type traffic struct {
	mu          sync.Mutex
	uploadPacks int   // POST .../git-upload-pack requests
	packBytes   int64 // bytes of their responses
}

func (tr *traffic) snapshot() (int, int64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.uploadPacks, tr.packBytes
}

// countingWriter counts the body bytes a handler writes.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// world is a simulated GitLab with a bot user and a private project with
// some history and tags, served over loopback HTTP.
type world struct {
	sim     *gitlabsim.Simulator
	traffic *traffic
	bot     gitlabsim.User
	project gitlabsim.Project
	tagged  string // the commit tagged v1.0
}

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	sim := gitlabsim.New(gitlabsim.Options{Dir: t.TempDir()})
	tr := &traffic{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			sim.ServeHTTP(w, r)
			return
		}
		cw := &countingWriter{ResponseWriter: w}
		sim.ServeHTTP(cw, r)
		tr.mu.Lock()
		tr.uploadPacks++
		tr.packBytes += cw.n
		tr.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	w := &world{sim: sim, traffic: tr}
	group := must[gitlabsim.Group](t)(sim.AddGroup(gitlabsim.GroupSpec{Path: "GNOME", Name: "GNOME"}))
	w.bot = must[gitlabsim.User](t)(sim.AddUser(gitlabsim.UserSpec{Username: "upbuild-bot", Name: "upbuild", Bot: true}))
	must[gitlabsim.User](t)(sim.AddUser(gitlabsim.UserSpec{Username: "alice", Name: "Alice"}))
	must[gitlabsim.User](t)(sim.AddUser(gitlabsim.UserSpec{Username: "mallory", Name: "Mallory"}))
	if err := sim.AddGroupMember(group.ID, w.bot.ID, gitlabsim.Developer); err != nil {
		t.Fatal(err)
	}
	w.project = w.addProject(t, "secret")
	for i, content := range []string{"Version: 0.9\n", "Version: 1.0\n"} {
		must[string](t)(sim.CommitFiles(ctx, w.project.ID, "main", "Release step "+string(rune('a'+i)),
			[]gitlabsim.FileChange{{Path: "secret.spec", Content: "Name: secret\n" + content}}, "alice"))
	}
	w.tagged = must[string](t)(sim.CreateTag(ctx, w.project.ID, "alice", "v1.0", "main", "Version 1.0"))
	must[string](t)(sim.CommitFiles(ctx, w.project.ID, "main", "Add docs",
		[]gitlabsim.FileChange{{Path: "docs/README.md", Content: "# docs\n"}}, "alice"))
	return w
}

// addProject adds a private project in the GNOME group, readable by the bot.
func (w *world) addProject(t testing.TB, path string) gitlabsim.Project {
	t.Helper()
	p := must[gitlabsim.Project](t)(w.sim.AddProject(context.Background(), gitlabsim.ProjectSpec{
		Namespace: "GNOME", Path: path, Visibility: gitlabsim.Private, DefaultBranch: "main",
		Files: map[string]string{"secret.spec": "Name: secret\n", "key.txt": "hidden\n"},
	}))
	allowPartialClone(t, p)
	return p
}

// allowPartialClone lets the project's git server honour --filter, as
// GitLab does; the simulator's repositories do not by default.
func allowPartialClone(t testing.TB, p gitlabsim.Project) {
	t.Helper()
	git(t, p.RepoDir, "config", "uploadpack.allowFilter", "true")
}

func (w *world) head(t testing.TB, projectID int64, branch string) string {
	t.Helper()
	return must[string](t)(w.sim.BranchHead(context.Background(), projectID, branch))
}

// request is a checkout of the project's main branch head into a new dir.
func (w *world) request(t testing.TB, log *bytes.Buffer) gitfetch.Request {
	t.Helper()
	req := gitfetch.Request{
		RepoURL: w.project.HTTPURLToRepo, ProjectID: w.project.ID, Token: w.bot.Token,
		SHA: w.head(t, w.project.ID, "main"), Ref: "main",
		Dest: filepath.Join(t.TempDir(), "src"),
	}
	if log != nil {
		req.Log = log
	}
	return req
}

// patchMR pushes a commit adding fix.patch to branch feature and opens a
// merge request of it onto main; it returns the commit and the request.
func (w *world) patchMR(t testing.TB) (string, gitlabsim.MergeRequest) {
	t.Helper()
	ctx := context.Background()
	source := must[string](t)(w.sim.PushCommits(ctx, w.project.ID, "feature", "alice", gitlabsim.CommitSpec{
		Message: "Add a patch", Changes: []gitlabsim.FileChange{{Path: "fix.patch", Content: "patch\n"}},
	}))
	mr := must[gitlabsim.MergeRequest](t)(w.sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{
		ProjectID: w.project.ID, SourceBranch: "feature", TargetBranch: "main", Author: "alice",
	}))
	return source, mr
}

func newFetcher(t testing.TB, opts gitfetch.Options) *gitfetch.Fetcher {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	return must[*gitfetch.Fetcher](t)(gitfetch.New(opts))
}

// must turns (value, error) into value, failing the test on error.
func must[T any](t testing.TB) func(T, error) T {
	t.Helper()
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// git runs the real git CLI in dir with no user or system configuration and
// no network: whatever it needs must be in the repository.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := gitErr(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func gitErr(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-c", "protocol.allow=never"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// secretForms are the ways a token could be written down.
func secretForms(token string) []string {
	return []string{
		token,
		base64.StdEncoding.EncodeToString([]byte("oauth2:" + token)),
		base64.StdEncoding.EncodeToString([]byte(token)),
	}
}

// assertNoSecretInTree fails if any file under dir holds the token in any form.
func assertNoSecretInTree(t testing.TB, dir, token string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secretForms(token) {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains the token", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func assertNoSecret(t testing.TB, what, text, token string) {
	t.Helper()
	for _, s := range secretForms(token) {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the token: %s", what, text)
		}
	}
}
