package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// A project ID that upbuild knows on two instances, private on one: the
// "several instances" answer must not tell a caller who may not see the
// private one that it exists, nor where.
func TestAnAmbiguousProjectIDDoesNotRevealPrivateProjects(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		const admin = "review-admin-token"
		st := stacktest.Start(t, dbURL, stacktest.Options{AdminToken: admin})
		db := st.Server.Store()
		runs := []struct {
			instance   string
			id         int64
			visibility string
		}{
			{"https://secret.example", 5150, "private"},
			{"https://open.example", 5150, "public"},
			{"https://secret.example", 5151, "private"},
			{"https://other-secret.example", 5151, "private"},
		}
		for _, r := range runs {
			if _, err := db.ApplyPlan(st.Context(), store.Plan{Run: &store.Run{Instance: r.instance, ProjectID: r.id,
				ProjectPath: "pkg/on-" + strings.TrimPrefix(r.instance, "https://"), Trigger: "commit",
				RunKey: fmt.Sprintf("review|%s|%d", r.instance, r.id), SHA: "abc", Ref: "main", SourceProjectID: r.id,
				State: store.RunRunning, Visibility: r.visibility}}, nil); err != nil {
				t.Fatal(err)
			}
		}
		get := func(path string, withAdmin bool) (int, string) {
			t.Helper()
			req, err := http.NewRequestWithContext(st.Context(), http.MethodGet, st.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if withAdmin {
				req.Header.Set("Authorization", "Bearer "+admin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error string `json:"error"`
				Path  string `json:"path"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode, body.Error + body.Path
		}
		for _, c := range []struct {
			path   string
			admin  bool
			status int
			says   string
		}{
			// A passer-by sees only the public one, so the ID is not ambiguous to them.
			{"/api/v1/projects/5150", false, http.StatusOK, "pkg/on-open.example"},
			{"/api/v1/projects/5151", false, http.StatusNotFound, "does not exist"},
			{"/api/v1/projects/5151/settings", false, http.StatusNotFound, "does not exist"},
			{"/api/v1/projects/5151/audit", false, http.StatusNotFound, "does not exist"},
			// The operator sees both, and is asked which.
			{"/api/v1/projects/5150", true, http.StatusBadRequest, "https://open.example, https://secret.example"},
			{"/api/v1/projects/5151", true, http.StatusBadRequest, "https://other-secret.example, https://secret.example"},
		} {
			status, says := get(c.path, c.admin)
			if status != c.status || !strings.Contains(says, c.says) {
				t.Errorf("GET %s (admin %v) = %d %q, want %d with %q", c.path, c.admin, status, says, c.status, c.says)
			}
			if !c.admin && strings.Contains(says, "secret") {
				t.Errorf("GET %s names a private project's instance to a passer-by: %q", c.path, says)
			}
		}
	})
}
