package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/testdb"
)

const buildConfig = `specfile_path: pkg.spec
upstream_package_name: pkg
downstream_package_name: pkg
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
  - job: tests
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
`

var jobURLRe = regexp.MustCompile(`/jobs/(\d+)$`)

// status is one commit status as GitLab shows it, with the upbuild job it
// links to.
type status struct {
	state string
	job   string
}

// connectedMR creates a project connected through the tokens page, opens a
// merge request on it and waits until each of its jobs has a status.
func (s *stack) connectedMR(vis gitlabsim.Visibility) (gitlabsim.Project, gitlabsim.MergeRequest) {
	s.t.Helper()
	p := s.project("pkg", vis, map[string]string{".packit.yaml": buildConfig, "pkg.spec": "Name: pkg\n"})
	if err := s.Sim.AddProjectMember(p.ID, s.Seed.Bot.ID, gitlabsim.Maintainer); err != nil {
		s.t.Fatal(err)
	}
	if resp := s.issue(p, "connect"); !strings.Contains(resp.body, "upbuild created the webhook") {
		s.t.Fatalf("connect: %s", resp.body)
	}
	mr := s.OpenMR(p, s.Seed.Maintainer.Username, "feature", "Change")
	s.waitStatuses(p, mr.HeadSHA, "two statuses", func(got map[string]status) bool { return len(got) == 2 })
	return p, mr
}

// statuses are a commit's latest statuses on the simulator, by name.
func (s *stack) statuses(p gitlabsim.Project, sha string) map[string]status {
	out := map[string]status{}
	for _, st := range s.Sim.Statuses(p.ID, sha) {
		job := ""
		if m := jobURLRe.FindStringSubmatch(st.TargetURL); m != nil {
			job = m[1]
		}
		out[st.Name] = status{state: st.Status, job: job}
	}
	return out
}

func (s *stack) waitStatuses(p gitlabsim.Project, sha, what string, cond func(map[string]status) bool) map[string]status {
	s.t.Helper()
	var got map[string]status
	s.Eventually(what, func() (bool, string) {
		got = s.statuses(p, sha)
		return cond(got), fmt.Sprint(got)
	})
	return got
}

const (
	buildStatus = "rpm-build:fedora-rawhide-x86_64"
	testsStatus = "testing-farm:fedora-rawhide-x86_64"
)

func TestCancelAQueuedJobAndRerunIt(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0) // no workers: jobs stay queued
		p, mr := s.connectedMR(gitlabsim.Public)
		first := s.waitStatuses(p, mr.HeadSHA, "pending statuses", func(got map[string]status) bool {
			return got[buildStatus].state == "pending" && got[testsStatus].state == "pending"
		})
		build := first[buildStatus].job
		// The buttons are there for who may use them, and only then.
		if page := s.do(http.MethodGet, "/jobs/"+build, nil, true); !strings.Contains(page.body, `action="/jobs/`+build+`/cancel"`) ||
			strings.Contains(page.body, `/rerun"`) {
			t.Fatalf("the operator's page of a queued job should offer Cancel only:\n%s", page.body)
		}
		if page := s.do(http.MethodGet, "/jobs/"+build, nil, false); strings.Contains(page.body, `/cancel"`) || strings.Contains(page.body, `/rerun"`) {
			t.Fatalf("an anonymous visitor is offered job buttons:\n%s", page.body)
		}

		if resp := s.do(http.MethodPost, "/jobs/"+build+"/cancel", url.Values{}, false); resp.status != http.StatusForbidden ||
			!strings.Contains(resp.body, "CSRF") {
			t.Fatalf("cancel without a CSRF token or admin token: %d %s", resp.status, resp.body)
		}
		if resp := s.do(http.MethodPost, "/jobs/"+build+"/rerun", url.Values{}, true); resp.status != http.StatusConflict {
			t.Fatalf("re-run of a queued job: %d %s", resp.status, resp.body)
		}
		resp := s.do(http.MethodPost, "/jobs/"+build+"/cancel", url.Values{}, true)
		if resp.status != http.StatusSeeOther || resp.location != "/jobs/"+build {
			t.Fatalf("cancel: %d to %q: %s", resp.status, resp.location, resp.body)
		}
		s.waitStatuses(p, mr.HeadSHA, "the canceled status on GitLab", func(got map[string]status) bool {
			return got[buildStatus] == status{"canceled", build} && got[testsStatus].state == "pending"
		})
		if page := s.do(http.MethodGet, "/jobs/"+build, nil, false); !strings.Contains(page.body, "Canceled by operator") {
			t.Fatalf("the job page does not say who canceled it:\n%s", page.body)
		}
		if resp := s.do(http.MethodPost, "/jobs/"+build+"/cancel", url.Values{}, true); resp.status != http.StatusConflict {
			t.Fatalf("canceling an ended job again: %d %s", resp.status, resp.body)
		}
		if page := s.do(http.MethodGet, "/jobs/"+build, nil, true); !strings.Contains(page.body, `action="/jobs/`+build+`/rerun"`) ||
			strings.Contains(page.body, `/cancel"`) {
			t.Fatalf("the operator's page of a canceled job should offer Re-run only:\n%s", page.body)
		}

		resp = s.do(http.MethodPost, "/jobs/"+build+"/rerun", url.Values{}, true)
		m := regexp.MustCompile(`^/jobs/(\d+)$`).FindStringSubmatch(resp.location)
		if resp.status != http.StatusSeeOther || m == nil || m[1] == build {
			t.Fatalf("re-run: %d to %q: %s", resp.status, resp.location, resp.body)
		}
		rerun := m[1]
		s.waitStatuses(p, mr.HeadSHA, "the re-run's pending status on GitLab", func(got map[string]status) bool {
			return got[buildStatus] == status{"pending", rerun}
		})
		if page := s.do(http.MethodGet, "/jobs/"+build, nil, false); !strings.Contains(page.body, "canceled") {
			t.Fatalf("the old job no longer shows canceled:\n%s", page.body)
		}

		audit := s.do(http.MethodGet, s.auditPath(p), nil, true)
		for _, want := range []string{"job.cancel", "job.rerun", "canceled job #" + build, "<td>operator</td>"} {
			if !strings.Contains(audit.body, want) {
				t.Errorf("the audit log lacks %q:\n%s", want, audit.body)
			}
		}
	})
}

func TestRerunJobRuns(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 1)
		p, mr := s.connectedMR(gitlabsim.Private)
		final := func(got map[string]status) bool {
			for _, st := range got {
				if st.state == "pending" || st.state == "running" {
					return false
				}
			}
			return len(got) == 2
		}
		first := s.waitStatuses(p, mr.HeadSHA, "final statuses", final)
		tests := first[testsStatus].job

		resp := s.do(http.MethodPost, "/jobs/"+tests+"/rerun", url.Values{}, true)
		m := regexp.MustCompile(`^/jobs/(\d+)$`).FindStringSubmatch(resp.location)
		if resp.status != http.StatusSeeOther || m == nil {
			t.Fatalf("re-run: %d to %q: %s", resp.status, resp.location, resp.body)
		}
		rerun := m[1]
		again := s.waitStatuses(p, mr.HeadSHA, "the re-run to end", func(got map[string]status) bool {
			return final(got) && got[testsStatus].job == rerun
		})
		if again[testsStatus].state != first[testsStatus].state || again[buildStatus] != first[buildStatus] {
			t.Fatalf("statuses after the re-run %v, before %v", again, first)
		}
		var moves []string
		for _, tr := range s.Sim.StatusTransitions() {
			if tr.ProjectID == p.ID && tr.Name == testsStatus {
				moves = append(moves, tr.From+">"+tr.To)
			}
		}
		// The re-run moved the status back to pending, then to its end.
		if len(moves) < 3 || !strings.HasSuffix(moves[len(moves)-2], ">pending") {
			t.Fatalf("status moves of the re-run job: %v", moves)
		}
		page := s.do(http.MethodGet, "/jobs/"+rerun, nil, true)
		if page.status != http.StatusOK || !strings.Contains(page.body, `class="state `+first[testsStatus].state) {
			t.Fatalf("the re-run job's page: %d\n%s", page.status, page.body)
		}
		runLink := regexp.MustCompile(`href="/runs/(\d+)"`).FindStringSubmatch(page.body)
		if runLink == nil {
			t.Fatalf("the re-run job's page links no run:\n%s", page.body)
		}
		run := s.do(http.MethodGet, "/runs/"+runLink[1], nil, true)
		if !regexp.MustCompile(`Re-run of run #\d+, asked for by operator\.`).MatchString(run.body) {
			t.Fatalf("the new run does not say what it re-runs:\n%s", run.body)
		}
	})
}

// apiJob is the part of a JobJSON the tests read.
type apiJob struct {
	ID    int64  `json:"id"`
	State string `json:"state"`
}

// apiAnswer is any answer of the job actions API: an error, a job, or a re-run.
type apiAnswer struct {
	Error string `json:"error"`
	apiJob
	RunID int64    `json:"run_id"`
	Jobs  []apiJob `json:"jobs"`
}

func TestJobActionsAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		p, mr := s.connectedMR(gitlabsim.Private)
		tests := s.statuses(p, mr.HeadSHA)[testsStatus].job
		var body apiAnswer
		call := func(action string, operator bool, want int) {
			t.Helper()
			resp := s.do(http.MethodPost, "/api/v1/jobs/"+tests+"/"+action, url.Values{}, operator)
			body = apiAnswer{}
			if err := json.Unmarshal([]byte(resp.body), &body); err != nil || resp.status != want {
				t.Fatalf("%s: %d %s (%v), want %d", action, resp.status, resp.body, err, want)
			}
		}
		call("cancel", false, http.StatusForbidden)
		if !strings.Contains(body.Error, "CSRF") {
			t.Fatalf("cancel without a token says %q", body.Error)
		}
		call("rerun", true, http.StatusConflict)
		call("cancel", true, http.StatusOK)
		if body.State != "canceled" || fmt.Sprint(body.ID) != tests {
			t.Fatalf("cancel answered job %d in state %q", body.ID, body.State)
		}
		call("cancel", true, http.StatusConflict)
		call("rerun", true, http.StatusCreated)
		if body.RunID == 0 || len(body.Jobs) != 1 || body.Jobs[0].State != "queued" {
			t.Fatalf("re-run answered %+v", body)
		}
		rerun := fmt.Sprint(body.Jobs[0].ID)
		s.waitStatuses(p, mr.HeadSHA, "the re-run's pending status", func(got map[string]status) bool {
			return got[testsStatus] == status{"pending", rerun}
		})
	})
}
