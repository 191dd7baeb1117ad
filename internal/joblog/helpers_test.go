package joblog_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/blob"
	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/store"
)

const adminToken = "s3cret-admin-token"

func openStore(t *testing.T, dbURL string) *store.Store {
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
	return st
}

// newJob plans a run with one queued job in a project of the given
// visibility and returns the job's ID.
func newJob(t *testing.T, st *store.Store, visibility string) int64 {
	t.Helper()
	key := visibility + "-" + rand.Text() // one run per job
	res, err := st.ApplyPlan(context.Background(), store.Plan{
		Run: &store.Run{Instance: "https://gl", ProjectID: 7, ProjectPath: "g/p", Trigger: "pull_request", RunKey: key,
			SHA: "abc", Ref: "feature", MRIID: 3, SourceProjectID: 7, SourceProjectPath: "g/p", State: store.RunRunning,
			Visibility: visibility},
		Jobs: []store.Job{{JobType: "copr_build", Target: "fedora-rawhide-x86_64", StatusName: "rpm-build", State: store.JobQueued}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.JobIDs[0]
}

func setState(t *testing.T, st *store.Store, jobID int64, state string) {
	t.Helper()
	if _, err := st.SetJobState(context.Background(), jobID, state, state); err != nil {
		t.Fatal(err)
	}
}

// server serves the handlers over HTTP on 127.0.0.1.
func server(t *testing.T, st *store.Store, logs *joblog.Logs, blobs blob.Store) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	h := &joblog.Handlers{Store: st, Logs: logs, Artifacts: joblog.NewArtifacts(st, blobs), AdminToken: adminToken,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PollInterval: 20 * time.Millisecond}
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches a URL, with the admin token when token is set.
func get(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
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
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}
