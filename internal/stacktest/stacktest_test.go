package stacktest_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/testdb"
)

const packitYAML = `specfile_path: pkg.spec
upstream_package_name: pkg
downstream_package_name: pkg
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
`

func TestAMergeRequestOnTheSimulatorBecomesARunOnUpbuild(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		p := st.Project("pkg", map[string]string{".packit.yaml": packitYAML, "pkg.spec": "Name: pkg\nVersion: 1.0\n"})
		mr := st.OpenMR(p, "alice", "feature", "Teach pkg a trick")

		final := st.WaitFinal(p.ID, mr.HeadSHA, 1)
		build, ok := final["rpm-build:fedora-rawhide-x86_64"]
		if !ok || build.Status != "skipped" {
			t.Fatalf("statuses on the MR head: %+v", final)
		}
		run := st.WaitRun(p.ID, mr.HeadSHA)
		if run.MRIID != mr.IID || run.Title != "Teach pkg a trick" {
			t.Errorf("run of the MR: MR !%d titled %q, want !%d %q", run.MRIID, run.Title, mr.IID, "Teach pkg a trick")
		}
		if runs := st.Runs(p.ID); len(runs) != 1 || runs[0].ID != run.ID {
			t.Errorf("project runs: %+v", runs)
		}
		jobs := st.Jobs(run.ID)
		if len(jobs) != 1 || jobs[0].StatusName != "rpm-build:fedora-rawhide-x86_64" || jobs[0].State != "skipped" {
			t.Fatalf("jobs of the run: %+v", jobs)
		}
		if build.TargetURL != st.JobPage(jobs[0].ID) {
			t.Errorf("the status links to %q, want the job page %q", build.TargetURL, st.JobPage(jobs[0].ID))
		}

		for _, page := range []string{st.URL + "/", st.ProjectPage(p), st.RunPage(run.ID), st.JobPage(jobs[0].ID)} {
			body := get(t, page)
			if !strings.Contains(body, "Teach pkg a trick") {
				t.Errorf("%s does not show the MR title:\n%s", page, body)
			}
		}
	})
}

// get GETs url and returns the page, failing unless it is a 200.
func get(t *testing.T, url string) string {
	t.Helper()
	code, body := fetch(t, url, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", url, code, body)
	}
	return body
}

// fetch GETs url, with the admin token when token is set, and returns the
// status code and body.
func fetch(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestSignInThroughTheSimulatorGivesASession(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		client := st.SignIn("alice")
		resp, err := client.Get(st.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "signed in as @alice") {
			t.Fatalf("home page after sign-in: %s\n%s", resp.Status, body)
		}
	})
}

func TestRestartKeepsTheURLAndWhatWasOnItsWay(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		var seen atomic.Int64
		st.Intercept(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen.Add(1)
				next.ServeHTTP(w, r)
			})
		})
		p := st.Project("pkg", map[string]string{".packit.yaml": packitYAML, "pkg.spec": "Name: pkg\nVersion: 1.0\n"})
		mr := st.OpenMR(p, "alice", "feature", "Survive a restart")
		if err := st.Sim.WaitDeliveries(st.Context()); err != nil {
			t.Fatal(err)
		}
		if seen.Load() == 0 {
			t.Fatal("the interceptor saw none of the simulator's deliveries")
		}

		st.Stop()
		if got, _ := fetch(t, st.URL+"/healthz", ""); got != http.StatusServiceUnavailable {
			t.Fatalf("GET /healthz while stopped: %d, want 503", got)
		}
		st.Restart()
		before := seen.Load()
		if got, _ := fetch(t, st.URL+"/healthz", ""); got != http.StatusOK {
			t.Fatalf("GET /healthz after the restart: %d, want 200", got)
		}
		if seen.Load() == before {
			t.Error("the interceptor is gone after the restart")
		}
		final := st.WaitFinal(p.ID, mr.HeadSHA, 1)
		if final["rpm-build:fedora-rawhide-x86_64"].Status != "skipped" {
			t.Fatalf("statuses after the restart: %+v", final)
		}
		if runs := st.Runs(p.ID); len(runs) != 1 {
			t.Fatalf("%d runs after the restart, want 1", len(runs))
		}
	})
}

func TestServeAppliesTheServersLimitsAndTheAdminToken(t *testing.T) {
	const admin = "stacktest-admin-token"
	st := stacktest.Start(t, testdb.SQLite(t), stacktest.Options{Serve: true, AdminToken: admin})
	if got, _ := fetch(t, st.URL+"/api/v1/deliveries", admin); got != http.StatusOK {
		t.Errorf("deliveries with the admin token: %d, want 200", got)
	}
	if got, _ := fetch(t, st.URL+"/api/v1/deliveries", "not-"+admin); got == http.StatusOK {
		t.Errorf("deliveries with a wrong admin token: %d", got)
	}
	req, err := http.NewRequestWithContext(st.Context(), http.MethodGet, st.URL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Padding", strings.Repeat("x", 128<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 128 KiB header: %s, want 431 from the http.Server's limit", resp.Status)
	}
}
