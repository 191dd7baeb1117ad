package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"upbuild.dev/upbuild/internal/api"
	"upbuild.dev/upbuild/internal/blob"
	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/web"
)

const adminToken = "s3cret-admin-token"

// routes registers what the service registers under one mux: the API, the
// pages and the job log handlers.
func routes(st *store.Store, blobDir string) *http.ServeMux {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	logs, arts := joblog.NewLogs(st, joblog.Options{}), joblog.NewArtifacts(st, blob.FS{Root: blobDir})
	mux := http.NewServeMux()
	// The job actions' routes only; these tests never call them (the web
	// package's tests run them against a whole service).
	(&api.API{Store: st, AdminToken: adminToken, Logger: logger, Jobs: &api.JobActions{Store: st, Logger: logger}}).Register(mux)
	(&web.Pages{Store: st, Logs: logs, Artifacts: arts, AdminToken: adminToken, Logger: logger}).Register(mux)
	(&joblog.Handlers{Store: st, Logs: logs, Artifacts: arts, AdminToken: adminToken, Logger: logger}).Register(mux)
	return mux
}

func setup(t *testing.T, dbURL string) (*store.Store, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(routes(st, t.TempDir()))
	t.Cleanup(srv.Close)
	return st, srv.URL
}

type runSpec struct {
	projectID  int64
	visibility string
	trigger    string
	ref        string
	mr         int64
	key        string
}

// plan creates a run with one queued job and returns the run and job IDs.
func plan(t *testing.T, st *store.Store, r runSpec) (int64, int64) {
	t.Helper()
	res, err := st.ApplyPlan(context.Background(), store.Plan{
		Run: &store.Run{Instance: "https://gitlab.example", ProjectID: r.projectID, ProjectPath: fmt.Sprint("g/p", r.projectID),
			Trigger: r.trigger, RunKey: r.key, SHA: "abc123", Ref: r.ref, MRIID: r.mr, SourceProjectID: r.projectID,
			SourceProjectPath: fmt.Sprint("g/p", r.projectID), Title: "title of " + r.key, State: store.RunRunning, Visibility: r.visibility},
		Jobs: []store.Job{{JobType: "copr_build", Target: "fedora-rawhide-x86_64", StatusName: "rpm-build", State: store.JobQueued}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.RunID, res.JobIDs[0]
}

// getJSON fetches a URL (with the admin token when token is set) and
// decodes the body into out, returning the status code.
func getJSON(t *testing.T, url, token string, out any) int {
	t.Helper()
	return fetchJSON(t, http.DefaultClient, url, token, out)
}

// fetchJSON GETs url with client (and the admin token when token is set)
// and decodes the JSON answer into out, returning the status code.
func fetchJSON(t *testing.T, client *http.Client, url, token string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}
