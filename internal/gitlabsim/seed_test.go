package gitlabsim_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

func TestSeedGivesTheBotAReportableProject(t *testing.T) {
	sim := gitlabsim.New(gitlabsim.Options{Dir: t.TempDir()})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	seed, err := gitlabsim.Seed(context.Background(), sim)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gitlab.NewClient(seed.Bot.Token, gitlab.WithBaseURL(srv.URL+"/api/v4"), gitlab.WithoutRetries())
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := c.RepositoryFiles.GetRawFile(seed.Project.PathWithNamespace, ".packit.yaml", &gitlab.GetRawFileOptions{Ref: gitlab.Ptr("main")})
	if err != nil || !strings.Contains(string(cfg), "specfile_path: hello.spec") {
		t.Errorf(".packit.yaml = %q, %v", cfg, err)
	}
	m, _, err := c.ProjectMembers.GetInheritedProjectMember(seed.Project.ID, seed.Bot.ID)
	if err != nil || m.AccessLevel != gitlab.DeveloperPermissions {
		t.Errorf("bot membership = %+v, %v", m, err)
	}
}
