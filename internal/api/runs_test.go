package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/api"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

func TestRunsArePagedWithANextLink(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st, base := setup(t, dbURL)
		for i := range 5 {
			plan(t, st, runSpec{projectID: 7, visibility: "public", trigger: "commit", ref: "main", key: fmt.Sprint("push-", i)})
		}
		var seen []int64
		next := "/api/v1/runs?limit=2&ref=main"
		for pages := 0; next != ""; pages++ {
			if pages > 3 {
				t.Fatalf("more pages than runs: next %s", next)
			}
			var page api.RunPage
			if code := getJSON(t, base+next, "", &page); code != http.StatusOK {
				t.Fatalf("GET %s: %d", next, code)
			}
			for _, r := range page.Runs {
				seen = append(seen, r.ID)
			}
			next = page.Next
		}
		if len(seen) != 5 {
			t.Fatalf("saw runs %v, want all 5 once", seen)
		}
		for i := 1; i < len(seen); i++ {
			if seen[i] >= seen[i-1] {
				t.Fatalf("runs %v are not newest first", seen)
			}
		}
	})
}

func TestRunFiltersAndPrivacy(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st, base := setup(t, dbURL)
		mrRun, mrJob := plan(t, st, runSpec{projectID: 7, visibility: "public", trigger: "pull_request", ref: "topic", mr: 4, key: "mr"})
		plan(t, st, runSpec{projectID: 7, visibility: "public", trigger: "release", ref: "v1", key: "release"})
		privRun, privJob := plan(t, st, runSpec{projectID: 8, visibility: "private", trigger: "commit", ref: "main", key: "private"})
		if _, err := st.SetJobState(context.Background(), mrJob, store.JobRunning, "building"); err != nil {
			t.Fatal(err)
		}

		for query, want := range map[string][]string{
			"/api/v1/runs":                           {"title of release", "title of mr"},
			"/api/v1/runs?mr=4":                      {"title of mr"},
			"/api/v1/runs?trigger=release":           {"title of release"},
			"/api/v1/runs?ref=topic":                 {"title of mr"},
			"/api/v1/projects/7/runs?trigger=commit": {},
			"/api/v1/projects/8/runs":                {},
		} {
			var page api.RunPage
			if code := getJSON(t, base+query, "", &page); code != http.StatusOK {
				t.Fatalf("GET %s: %d", query, code)
			}
			var got []string
			for _, r := range page.Runs {
				got = append(got, r.Title)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("GET %s: %q, want %q", query, got, want)
			}
		}
		var page api.RunPage
		if getJSON(t, base+"/api/v1/projects/8/runs", adminToken, &page); len(page.Runs) != 1 || page.Runs[0].ID != privRun {
			t.Errorf("the admin sees %+v of the private project", page.Runs)
		}

		var run api.RunDetailJSON
		if code := getJSON(t, fmt.Sprintf("%s/api/v1/runs/%d", base, mrRun), "", &run); code != http.StatusOK ||
			run.MRIID != 4 || len(run.Jobs) != 1 || run.Jobs[0].State != store.JobRunning || run.JobStates[store.JobRunning] != 1 {
			t.Fatalf("run: %d %+v", code, run)
		}
		var job api.JobJSON
		if code := getJSON(t, fmt.Sprintf("%s/api/v1/jobs/%d", base, mrJob), "", &job); code != http.StatusOK ||
			job.Description != "building" || job.LogURL != fmt.Sprintf("/api/v1/jobs/%d/log", mrJob) {
			t.Fatalf("job: %d %+v", code, job)
		}
		for _, path := range []string{fmt.Sprintf("/api/v1/runs/%d", privRun), fmt.Sprintf("/api/v1/jobs/%d", privJob),
			"/api/v1/runs/999999", "/api/v1/jobs/nope"} {
			var e struct{ Error string }
			if code := getJSON(t, base+path, "", &e); code != http.StatusNotFound || e.Error == "" {
				t.Errorf("GET %s without the admin token: %d %q", path, code, e.Error)
			}
		}
		if code := getJSON(t, fmt.Sprintf("%s/api/v1/jobs/%d", base, privJob), adminToken, &job); code != http.StatusOK || job.ID != privJob {
			t.Errorf("the admin cannot read the private job: %d", code)
		}
		var e struct{ Error string }
		if code := getJSON(t, base+"/api/v1/runs?trigger=nightly", "", &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "trigger") {
			t.Errorf("a bad trigger: %d %q", code, e.Error)
		}
	})
}
