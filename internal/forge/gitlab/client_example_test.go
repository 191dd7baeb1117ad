package gitlab_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/forge/gitlab"
	"upbuild.dev/upbuild/internal/gitlabsim"
)

// A reporter sets the statuses of one run in one pipeline and handles the
// error classes. Here GitLab is the simulator's seeded demo/hello project.
func ExampleClient_SetCommitStatus() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "gitlabsim-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sim := gitlabsim.New(gitlabsim.Options{Dir: dir})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sim.SetBaseURL(srv.URL)
	seeded, err := gitlabsim.Seed(ctx, sim)
	if err != nil {
		log.Fatal(err)
	}
	sha, err := sim.BranchHead(ctx, seeded.Project.ID, "main")
	if err != nil {
		log.Fatal(err)
	}

	var f forge.Forge
	f, err = gitlab.New(gitlab.Options{BaseURL: srv.URL, Token: seeded.Bot.Token})
	if err != nil {
		log.Fatal(err)
	}
	update := forge.StatusUpdate{State: forge.StatusRunning, Name: "upbuild/rpm-build:fedora-rawhide", Ref: "main"}
	pipeline, err := f.SetCommitStatus(ctx, seeded.Project.ID, sha, update)
	var limited *forge.RateLimitedError
	switch {
	case errors.As(err, &limited):
		fmt.Println("try again in", limited.RetryAfter)
	case errors.Is(err, forge.ErrTransient):
		fmt.Println("try again later")
	case err != nil:
		fmt.Println("give up:", errors.Is(err, forge.ErrPermanent))
	}
	update.State, update.Name, update.PipelineID = forge.StatusPending, "upbuild/tests", pipeline
	again, err := f.SetCommitStatus(ctx, seeded.Project.ID, sha, update)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same pipeline:", again == pipeline, "pipelines:", len(sim.Pipelines(seeded.Project.ID)))
	// Output: same pipeline: true pipelines: 1
}
