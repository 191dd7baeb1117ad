package gitlabsim_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

// apiStatus returns the HTTP status and raw body of a failed client call.
func apiStatus(t *testing.T, err error) (int, string) {
	t.Helper()
	var er *gitlab.ErrorResponse
	if errors.As(err, &er) {
		return er.StatusCode, string(er.Body)
	}
	if errors.Is(err, gitlab.ErrNotFound) {
		return http.StatusNotFound, ""
	}
	t.Fatalf("expected an API error, got %v", err)
	return 0, ""
}

func TestProjectByIDAndPath(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	for _, id := range []any{w.project.ID, "GNOME/gtk"} {
		p, _, err := c.Projects.GetProject(id, nil)
		if err != nil {
			t.Fatalf("GetProject(%v): %v", id, err)
		}
		if p.ID != w.project.ID || p.PathWithNamespace != "GNOME/gtk" || p.DefaultBranch != "main" ||
			p.Visibility != gitlab.PublicVisibility || p.HTTPURLToRepo != w.url+"/GNOME/gtk.git" ||
			p.WebURL != w.url+"/GNOME/gtk" || p.Namespace == nil || p.Namespace.FullPath != "GNOME" || p.Namespace.Kind != "group" {
			t.Errorf("GetProject(%v) = %+v", id, p)
		}
	}
}

func TestPrivateProjectIsNotFoundForOutsiders(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	ctx := context.Background()
	secret := must[gitlabsim.Project](t)(w.sim.AddProject(ctx, gitlabsim.ProjectSpec{Namespace: "GNOME", Path: "secret", Visibility: gitlabsim.Private}))

	_, _, err := w.client(t, w.outsider.Token).Projects.GetProject("GNOME/secret", nil)
	if code, _ := apiStatus(t, err); code != http.StatusNotFound {
		t.Errorf("outsider got %d, want 404", code)
	}
	if _, _, err := w.client(t, w.bot.Token).Projects.GetProject(secret.ID, nil); err != nil {
		t.Errorf("group member cannot see private project: %v", err)
	}
	_, _, err = w.client(t, "glpat-wrong").Projects.GetProject(w.project.ID, nil)
	if code, _ := apiStatus(t, err); code != http.StatusUnauthorized {
		t.Errorf("bad token got %d, want 401", code)
	}

	resp, err := http.Get(w.url + "/api/v4/projects/GNOME%2Fsecret")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := make([]byte, 200)
	n, _ := resp.Body.Read(body)
	if resp.StatusCode != http.StatusNotFound || string(body[:n]) != `{"message":"404 Project Not Found"}` {
		t.Errorf("anonymous: %d %s", resp.StatusCode, body[:n])
	}
}

func TestForkShowsParent(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	fork, err := w.sim.ForkProject(context.Background(), w.project.ID, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := w.client(t, w.outsider.Token).Projects.GetProject("mallory/gtk", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != fork.ID || p.ForkedFromProject == nil || p.ForkedFromProject.ID != w.project.ID ||
		p.ForkedFromProject.PathWithNamespace != "GNOME/gtk" || p.Namespace.Kind != "user" {
		t.Errorf("fork = %+v (parent %+v)", p, p.ForkedFromProject)
	}
	if got, want := w.head(t, fork.ID, "main"), w.head(t, w.project.ID, "main"); got != want {
		t.Errorf("fork main = %s, parent main = %s", got, want)
	}
}

func TestFilesRawAndTree(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	head := w.head(t, w.project.ID, "main")

	f, _, err := c.RepositoryFiles.GetFile(w.project.ID, "docs/README.md", &gitlab.GetFileOptions{Ref: gitlab.Ptr("main")})
	if err != nil {
		t.Fatal(err)
	}
	content, _ := base64.StdEncoding.DecodeString(f.Content)
	if string(content) != "# docs\n" || f.FileName != "README.md" || f.FilePath != "docs/README.md" ||
		f.Encoding != "base64" || f.CommitID != head || f.LastCommitID != head || f.Size != 7 {
		t.Errorf("GetFile = %+v", f)
	}
	raw, _, err := c.RepositoryFiles.GetRawFile("GNOME/gtk", ".packit.yaml", &gitlab.GetRawFileOptions{Ref: gitlab.Ptr(head)})
	if err != nil || string(raw) != "specfile_path: gtk.spec\n" {
		t.Errorf("GetRawFile = %q, %v", raw, err)
	}
	_, _, err = c.RepositoryFiles.GetFile(w.project.ID, "missing.txt", &gitlab.GetFileOptions{Ref: gitlab.Ptr("main")})
	if code, _ := apiStatus(t, err); code != http.StatusNotFound {
		t.Errorf("missing file: %d", code)
	}

	tree, resp, err := c.Repositories.ListTree(w.project.ID, &gitlab.ListTreeOptions{
		Ref: gitlab.Ptr("main"), ListOptions: gitlab.ListOptions{PerPage: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tree) != 2 || tree[0].Type != "tree" || tree[0].Path != "docs" || resp.TotalItems != 3 || resp.NextPage != 2 || resp.TotalPages != 2 {
		t.Errorf("tree page 1 = %v, total %d next %d", tree, resp.TotalItems, resp.NextPage)
	}
	all, _, err := c.Repositories.ListTree(w.project.ID, &gitlab.ListTreeOptions{Recursive: gitlab.Ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, n := range all {
		paths = append(paths, n.Path)
	}
	if strings.Join(paths, ",") != ".packit.yaml,docs,docs/README.md,gtk.spec" {
		t.Errorf("recursive tree = %v", paths)
	}
	sub, _, err := c.Repositories.ListTree(w.project.ID, &gitlab.ListTreeOptions{Path: gitlab.Ptr("docs")})
	if err != nil || len(sub) != 1 || sub[0].Path != "docs/README.md" || sub[0].Name != "README.md" {
		t.Errorf("docs tree = %v, %v", sub, err)
	}
}

func TestFilesOfPrivateProjectNeedReporter(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	ctx := context.Background()
	p := must[gitlabsim.Project](t)(w.sim.AddProject(ctx, gitlabsim.ProjectSpec{
		Namespace: "GNOME", Path: "private", Visibility: gitlabsim.Private, Files: map[string]string{"a": "b"},
	}))
	guest := must[gitlabsim.User](t)(w.sim.AddUser(gitlabsim.UserSpec{Username: "gus"}))
	if err := w.sim.AddProjectMember(p.ID, guest.ID, gitlabsim.Guest); err != nil {
		t.Fatal(err)
	}
	_, _, err := w.client(t, guest.Token).RepositoryFiles.GetRawFile(p.ID, "a", nil)
	if code, _ := apiStatus(t, err); code != http.StatusForbidden {
		t.Errorf("guest reading code: %d, want 403", code)
	}
	if raw, _, err := w.client(t, w.bot.Token).RepositoryFiles.GetRawFile(p.ID, "a", nil); err != nil || string(raw) != "b" {
		t.Errorf("developer reading code: %q %v", raw, err)
	}
}
