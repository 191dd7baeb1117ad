package gitlabsim_test

import (
	"net/http"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

func TestFaultInjection(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	sha := w.head(t, w.project.ID, "main")
	statusPath := "/api/v4/projects/1/statuses/"

	w.sim.InjectFault(gitlabsim.Fault{Method: http.MethodPost, PathPrefix: statusPath, Kind: gitlabsim.FaultError, Status: http.StatusServiceUnavailable, Times: 1})
	_, err := setStatus(c, w.project.ID, sha, "pending", "build")
	if code, _ := apiStatus(t, err); code != http.StatusServiceUnavailable {
		t.Errorf("injected 503: got %d", code)
	}
	if _, err := setStatus(c, w.project.ID, sha, "pending", "build"); err != nil {
		t.Errorf("fault with Times=1 still active: %v", err)
	}

	w.sim.InjectFault(gitlabsim.Fault{Kind: gitlabsim.FaultRateLimit, RetryAfter: 7 * time.Second, For: time.Minute})
	_, resp, err := c.Projects.GetProject(w.project.ID, nil)
	if code, _ := apiStatus(t, err); code != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("injected 429: %d, Retry-After %q", code, resp.Header.Get("Retry-After"))
	}
	w.clock.Advance(time.Minute)
	if _, _, err := c.Projects.GetProject(w.project.ID, nil); err != nil {
		t.Errorf("fault outlived its For: %v", err)
	}

	w.sim.InjectFault(gitlabsim.Fault{Kind: gitlabsim.FaultDown, PathPrefix: "/api/v4/user"})
	if _, _, err := c.Users.CurrentUser(); err == nil {
		t.Error("request to a down server succeeded")
	}
	if _, _, err := c.Projects.GetProject(w.project.ID, nil); err != nil {
		t.Errorf("other paths are up: %v", err)
	}
	w.sim.ClearFaults()
	if _, _, err := c.Users.CurrentUser(); err != nil {
		t.Errorf("after ClearFaults: %v", err)
	}
}

func TestRetryingClientRidesOutTransientFaults(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c, err := gitlab.NewClient(w.bot.Token, gitlab.WithBaseURL(w.url+"/api/v4"), gitlab.WithCustomRetryWaitMinMax(time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	w.sim.InjectFault(gitlabsim.Fault{Kind: gitlabsim.FaultError, Status: http.StatusBadGateway, Times: 2})
	if p, _, err := c.Projects.GetProject("GNOME/gtk", nil); err != nil || p.ID != w.project.ID {
		t.Errorf("after two 502s the retrying client got %v, %v", p, err)
	}
}

func TestSlowFaultDelaysButAnswers(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	w.sim.InjectFault(gitlabsim.Fault{Kind: gitlabsim.FaultDelay, Delay: 50 * time.Millisecond, Times: 1})
	if p, _, err := w.client(t, w.bot.Token).Projects.GetProject(w.project.ID, nil); err != nil || p.ID != w.project.ID {
		t.Errorf("delayed request: %v, %v", p, err)
	}
}
