package web_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// A Developer approves a held merge request's jobs from the run page, as
// "/packit approve" does; a Reporter cannot.
func TestADeveloperApprovesHeldJobsOnTheRunPage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{AdminToken: adminToken, Configure: func(cfg *config.Config) {
			cfg.Workers = 0 // approved jobs stay queued, where the test can see them
			cfg.ApprovalPolicy = "all"
		}})
		u, err := url.Parse(st.SimURL)
		if err != nil {
			t.Fatal(err)
		}
		s := &stack{Stack: st, t: t, host: u.Host}
		p := s.project("gated", gitlabsim.Public, map[string]string{".packit.yaml": buildConfig, "pkg.spec": "Name: pkg\n"})
		if err := s.Sim.AddProjectMember(p.ID, s.Seed.Bot.ID, gitlabsim.Maintainer); err != nil {
			t.Fatal(err)
		}
		s.issue(p, "connect")
		s.User("rory", gitlabsim.Reporter)
		mr := s.OpenMR(p, "rory", "feature", "A Reporter's change")
		s.waitStatuses(p, mr.HeadSHA, "held jobs shown as pending", func(got map[string]status) bool {
			return got[buildStatus].state == "pending" && got[testsStatus].state == "pending"
		})
		run := s.WaitRun(p.ID, mr.HeadSHA)
		runPage := "/runs/" + strconv.FormatInt(run.ID, 10)
		for _, j := range s.Jobs(run.ID) {
			if j.State != store.JobHeld {
				t.Fatalf("before approval, job %s is %s, want held", j.StatusName, j.State)
			}
		}

		reporter := s.signIn("rita", gitlabsim.Reporter)
		if page := reporter.get(runPage); page.status != http.StatusOK || strings.Contains(page.body, "/approve") {
			t.Fatalf("a Reporter's run page offers approval (%d):\n%s", page.status, page.body)
		}
		if resp := reporter.post(runPage+"/approve", url.Values{}, "/"); resp.status != http.StatusForbidden ||
			!strings.Contains(resp.body, "Developer role") {
			t.Fatalf("a Reporter approves: %d %s", resp.status, resp.body)
		}
		if resp := s.do(http.MethodPost, runPage+"/approve", url.Values{}, false); resp.status != http.StatusForbidden ||
			!strings.Contains(resp.body, "CSRF") {
			t.Fatalf("approval without a CSRF token: %d %s", resp.status, resp.body)
		}

		dev := s.signIn("dev", gitlabsim.Developer)
		if page := dev.get(runPage); !strings.Contains(page.body, `action="`+runPage+`/approve"`) {
			t.Fatalf("a Developer's run page offers no approval:\n%s", page.body)
		}
		if resp := dev.post(runPage+"/approve", url.Values{}, runPage); resp.status != http.StatusSeeOther || resp.location != runPage {
			t.Fatalf("a Developer approves: %d to %q %s", resp.status, resp.location, resp.body)
		}
		for _, j := range s.Jobs(run.ID) {
			if j.State != store.JobQueued || !strings.Contains(j.Description, "approved by @dev") {
				t.Fatalf("after approval, job %s is %s %q, want queued and approved by @dev", j.StatusName, j.State, j.Description)
			}
		}
		if page := dev.get(runPage); strings.Contains(page.body, "/approve") {
			t.Errorf("the run page still offers approval after it")
		}
		if resp := dev.post(runPage+"/approve", url.Values{}, "/"); resp.status != http.StatusConflict {
			t.Fatalf("approving again: %d %s", resp.status, resp.body)
		}
		// The same through the API: nothing left to approve for this commit;
		// a new commit is held again, and the admin token approves it.
		if resp := s.do(http.MethodPost, "/api/v1"+runPage+"/approve", url.Values{}, true); resp.status != http.StatusConflict {
			t.Fatalf("API approval of an approved commit: %d %s", resp.status, resp.body)
		}
		head := s.Push(p, "feature", "rory", "more", gitlabsim.FileChange{Path: "README", Content: "more\n"})
		s.waitStatuses(p, head, "the new commit held", func(got map[string]status) bool {
			return got[buildStatus].state == "pending" && got[testsStatus].state == "pending"
		})
		next := s.WaitRun(p.ID, head)
		nextPath := "/api/v1/runs/" + strconv.FormatInt(next.ID, 10) + "/approve"
		if resp := reporter.post(nextPath, url.Values{}, "/"); resp.status != http.StatusForbidden || !strings.Contains(resp.body, "Developer role") {
			t.Fatalf("a Reporter approves through the API: %d %s", resp.status, resp.body)
		}
		resp := s.do(http.MethodPost, nextPath, url.Values{}, true)
		if resp.status != http.StatusOK || strings.Count(resp.body, `"state":"queued"`) != 2 {
			t.Fatalf("API approval by the operator: %d %s", resp.status, resp.body)
		}
		audit, err := s.Server.Store().AuditLog(s.Context(), run.Instance, p.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(audit) < 2 || audit[0].Action != "run.approve" || audit[0].Actor != "operator" || !strings.Contains(audit[0].Detail, head[:12]) ||
			audit[1].Action != "run.approve" || audit[1].Actor != "dev" || !strings.Contains(audit[1].Detail, mr.HeadSHA[:12]) {
			t.Fatalf("audit log after the approvals: %+v", audit)
		}
	})
}
