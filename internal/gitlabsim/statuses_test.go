package gitlabsim_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

func setStatus(c *gitlab.Client, pid any, sha, state, name string, extra ...func(*gitlab.SetCommitStatusOptions)) (*gitlab.CommitStatus, error) {
	opt := &gitlab.SetCommitStatusOptions{State: gitlab.BuildStateValue(state), Name: gitlab.Ptr(name), Ref: gitlab.Ptr("main")}
	for _, f := range extra {
		f(opt)
	}
	st, _, err := c.Commits.SetCommitStatus(pid, sha, opt)
	return st, err
}

func TestStatusTransitions(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	sha := w.head(t, w.project.ID, "main")

	steps := []struct {
		state   string
		wantErr string // the 400 message, or "" for success
	}{
		{"pending", ""},
		{"pending", `{"message":"Cannot transition status via :enqueue from :pending"}`},
		{"running", ""},
		{"running", `{"message":"Cannot transition status via :run from :running"}`},
		{"pending", `{"message":"Cannot transition status via :enqueue from :running"}`},
		{"skipped", `{"message":"Cannot transition status via :skip from :running"}`},
		{"success", ""},
		// A finished status is never moved: GitLab creates a new job.
		{"success", ""},
		{"running", ""},
		{"failed", ""},
	}
	var ids []int64
	for i, step := range steps {
		st, err := setStatus(c, w.project.ID, sha, step.state, "rpm-build:fedora-rawhide")
		if step.wantErr == "" {
			if err != nil {
				t.Fatalf("step %d (%s): %v", i, step.state, err)
			}
			if st.Status != step.state || st.Name != "rpm-build:fedora-rawhide" || st.Ref != "main" || st.SHA != sha || st.Author.Username != "upbuild-bot" {
				t.Errorf("step %d: status = %+v", i, st)
			}
			ids = append(ids, st.ID)
			continue
		}
		code, msg := apiStatus(t, err)
		if code != http.StatusBadRequest || msg != step.wantErr {
			t.Errorf("step %d (%s): got %d %q, want 400 %q", i, step.state, code, msg, step.wantErr)
		}
	}
	// pending→running→success is one job; then success, and running→failed, are new jobs.
	if ids[0] != ids[1] || ids[1] != ids[2] || ids[2] == ids[3] || ids[3] == ids[4] || ids[4] != ids[5] {
		t.Errorf("job ids = %v", ids)
	}

	latest, _, err := c.Commits.GetCommitStatuses(w.project.ID, sha, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 1 || latest[0].Status != "failed" || latest[0].ID != ids[4] {
		t.Errorf("latest statuses = %+v", latest)
	}
	all, _, err := c.Commits.GetCommitStatuses(w.project.ID, sha, &gitlab.GetCommitStatusesOptions{All: gitlab.Ptr(true)})
	if err != nil || len(all) != 3 {
		t.Errorf("all statuses = %d, %v", len(all), err)
	}

	var path []string
	for _, tr := range w.sim.StatusTransitions() {
		path = append(path, tr.From+">"+tr.To)
		if tr.ProjectID != w.project.ID || tr.SHA != sha || tr.PipelineID != latest[0].PipelineID || tr.At.IsZero() {
			t.Errorf("transition = %+v", tr)
		}
	}
	want := "created>pending,pending>running,running>success,created>success,created>pending,pending>running,running>failed"
	if strings.Join(path, ",") != want {
		t.Errorf("transitions = %s\nwant          %s", strings.Join(path, ","), want)
	}
}

func TestStatusesShareOneExternalPipeline(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	sha := w.head(t, w.project.ID, "main")

	first, err := setStatus(c, w.project.ID, sha, "pending", "a")
	if err != nil {
		t.Fatal(err)
	}
	second, err := setStatus(c, w.project.ID, sha, "pending", "b")
	if err != nil {
		t.Fatal(err)
	}
	third, err := setStatus(c, w.project.ID, sha, "running", "c", func(o *gitlab.SetCommitStatusOptions) { o.PipelineID = gitlab.Ptr(first.PipelineID) })
	if err != nil {
		t.Fatal(err)
	}
	if first.PipelineID == 0 || second.PipelineID != first.PipelineID || third.PipelineID != first.PipelineID {
		t.Errorf("pipelines %d %d %d, want one", first.PipelineID, second.PipelineID, third.PipelineID)
	}
	pipelines := w.sim.Pipelines(w.project.ID)
	if len(pipelines) != 1 || pipelines[0].Source != "external" || pipelines[0].SHA != sha || pipelines[0].Ref != "main" {
		t.Errorf("pipelines = %+v", pipelines)
	}
	pl, _, err := c.Pipelines.GetPipeline(w.project.ID, first.PipelineID)
	if err != nil || pl.Status != "running" || pl.Source != "external" {
		t.Errorf("pipeline = %+v, %v", pl, err)
	}
	// Another ref is another pipeline.
	other, err := setStatus(c, w.project.ID, sha, "pending", "a", func(o *gitlab.SetCommitStatusOptions) { o.Ref = gitlab.Ptr("v1") })
	if err != nil {
		t.Fatal(err)
	}
	if other.PipelineID == first.PipelineID {
		t.Errorf("status on ref v1 reused the pipeline of main")
	}
	// Without ref, a status joins the newest pipeline of the SHA whatever its
	// ref, and gets the first branch holding the commit as its own ref.
	noRef, err := setStatus(c, w.project.ID, sha, "pending", "d", func(o *gitlab.SetCommitStatusOptions) { o.Ref = nil })
	if err != nil {
		t.Fatal(err)
	}
	if noRef.PipelineID != other.PipelineID || noRef.Ref != "main" {
		t.Errorf("status without ref: pipeline %d ref %s, want pipeline %d ref main", noRef.PipelineID, noRef.Ref, other.PipelineID)
	}
	if got := len(w.sim.Statuses(w.project.ID, sha)); got != 5 {
		t.Errorf("Statuses() has %d, want 5", got)
	}
}

func TestStatusErrors(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	ctx := context.Background()
	sha := w.head(t, w.project.ID, "main")
	fork := must[gitlabsim.Project](t)(w.sim.ForkProject(ctx, w.project.ID, "mallory"))
	forkSHA := must[string](t)(w.sim.PushCommits(ctx, fork.ID, "feature", "mallory", gitlabsim.CommitSpec{
		Message: "Fork work", Changes: []gitlabsim.FileChange{{Path: "x", Content: "y"}},
	}))
	long := strings.Repeat("x", 256)

	cases := []struct {
		name   string
		token  string
		pid    any
		sha    string
		opt    func(*gitlab.SetCommitStatusOptions)
		code   int
		substr string
	}{
		{"commit only in the fork", w.bot.Token, w.project.ID, forkSHA, nil, 404, ""},
		{"reporter", w.reporter.Token, w.project.ID, sha, nil, 403, `{"message":"403 Forbidden"}`},
		{"no access on fork", w.bot.Token, fork.ID, forkSHA, nil, 403, `{"message":"403 Forbidden"}`},
		{"long target_url", w.bot.Token, w.project.ID, sha, func(o *gitlab.SetCommitStatusOptions) { o.TargetURL = gitlab.Ptr(long) }, 400, "target_url"},
		{"long description", w.bot.Token, w.project.ID, sha, func(o *gitlab.SetCommitStatusOptions) { o.Description = gitlab.Ptr(long) }, 400, "description"},
		{"long name", w.bot.Token, w.project.ID, sha, func(o *gitlab.SetCommitStatusOptions) { o.Name = gitlab.Ptr(long) }, 400, "name"},
		{"bad state", w.bot.Token, w.project.ID, sha, func(o *gitlab.SetCommitStatusOptions) { o.State = "error" }, 400, "state does not have a valid value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := w.client(t, tc.token)
			var extra []func(*gitlab.SetCommitStatusOptions)
			if tc.opt != nil {
				extra = append(extra, tc.opt)
			}
			_, err := setStatus(c, tc.pid, tc.sha, "pending", "build", extra...)
			code, msg := apiStatus(t, err)
			if code != tc.code || !strings.Contains(msg, tc.substr) {
				t.Errorf("got %d %q, want %d containing %q", code, msg, tc.code, tc.substr)
			}
		})
	}

	// Granting Developer on the fork lets the bot report there.
	if err := w.sim.AddProjectMember(fork.ID, w.bot.ID, gitlabsim.Developer); err != nil {
		t.Fatal(err)
	}
	st, err := setStatus(w.client(t, w.bot.Token), fork.ID, forkSHA, "pending", "build", func(o *gitlab.SetCommitStatusOptions) { o.Ref = nil })
	if err != nil || st.Ref != "feature" {
		t.Errorf("status on fork without ref = %+v, %v (want ref picked as the branch holding the commit)", st, err)
	}
}

func TestStatusNotFoundBody(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	req, _ := http.NewRequest(http.MethodPost, w.url+"/api/v4/projects/"+"GNOME%2Fgtk"+"/statuses/"+strings.Repeat("a", 40)+"?state=pending", nil)
	req.Header.Set("PRIVATE-TOKEN", w.bot.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 100)
	n, _ := resp.Body.Read(buf)
	if resp.StatusCode != 404 || string(buf[:n]) != `{"message":"404 Commit Not Found"}` {
		t.Errorf("got %d %s", resp.StatusCode, buf[:n])
	}
}
