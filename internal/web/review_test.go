package web_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// Tests from the security review of the dashboard's write paths. Each one
// reproduces what an attacker (or an unlucky member) could do through the
// server's own routes.

const reviewAdmin = "review-admin-token"

// reviewStack is upbuild and the simulator with no workers, so jobs stay
// queued, and the admin token.
func reviewStack(t *testing.T, dbURL string) *stacktest.Stack {
	t.Helper()
	return stacktest.Start(t, dbURL, stacktest.Options{AdminToken: reviewAdmin,
		Configure: func(cfg *config.Config) { cfg.Workers = 0 }})
}

// reviewDo sends a request without following redirects; admin adds the
// admin token, client nil means a browser without cookies.
func reviewDo(t *testing.T, st *stacktest.Stack, c *http.Client, admin bool, method, path string, form url.Values) (int, string, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(st.Context(), method, st.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if admin {
		req.Header.Set("Authorization", "Bearer "+reviewAdmin)
	}
	browser := http.Client{}
	if c != nil {
		browser = *c
	}
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// A project was public, then went private and moved (its newest run says
// so). Re-running a job of one of its old, public runs must not publish
// the project again, nor move it back to its old path.
func TestRerunOfAnOldRunKeepsTheProjectsCurrentVisibilityAndPath(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := reviewStack(t, dbURL)
		db := st.Server.Store()
		u, err := url.Parse(st.Instance)
		if err != nil {
			t.Fatal(err)
		}
		host := u.Host
		old := store.Run{Instance: st.Instance, ProjectID: 9001, ProjectPath: "demo/was-public", SourceProjectID: 9001, Trigger: "commit",
			RunKey: "review|old", SHA: strings.Repeat("a", 40), Ref: "main", Actor: "alice", State: store.RunFinished,
			Visibility: "public"}
		oldRun, err := db.ApplyPlan(st.Context(), store.Plan{Run: &old, Jobs: []store.Job{{JobType: "copr_build",
			Target: "fedora-rawhide-x86_64", StatusName: "rpm-build:fedora-rawhide-x86_64", State: store.JobFailed}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := old
		now.RunKey, now.SHA, now.ProjectPath, now.Visibility = "review|now", strings.Repeat("b", 40), "demo/now-private", "private"
		if _, err := db.ApplyPlan(st.Context(), store.Plan{Run: &now}, nil); err != nil {
			t.Fatal(err)
		}
		project := "/p/" + host + "/demo/now-private"
		if status, _, _ := reviewDo(t, st, nil, false, http.MethodGet, project, nil); status != http.StatusNotFound {
			t.Fatalf("before the re-run, a passer-by opens the private project's page: %d", status)
		}

		status, body, to := reviewDo(t, st, nil, true, http.MethodPost, "/jobs/"+strconv.FormatInt(oldRun.JobIDs[0], 10)+"/rerun", url.Values{})
		if status != http.StatusSeeOther || !strings.HasPrefix(to, "/jobs/") {
			t.Fatalf("re-run: %d %q %s", status, to, body)
		}
		for _, path := range []string{project, to} {
			if status, _, _ := reviewDo(t, st, nil, false, http.MethodGet, path, nil); status != http.StatusNotFound {
				t.Errorf("after the re-run, a passer-by opens %s of the private project: %d, want 404", path, status)
			}
		}
		if status, body, _ := reviewDo(t, st, nil, true, http.MethodGet, project, nil); status != http.StatusOK ||
			!strings.Contains(body, "<h1>demo/now-private</h1>") {
			t.Errorf("after the re-run, the project page does not head itself with its current path (status %d):\n%s", status, body)
		}
	})
}

// The settings form is capped (the fallback config is its bulk), for
// signed-in members as for the operator: the CSRF check must not read the
// body first with Go's 10 MB default.
func TestSettingsFormOverTheCapIsRefusedUnread(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := reviewStack(t, dbURL)
		p := st.Seed.Project
		if _, err := st.Server.Store().ApplyPlan(st.Context(), store.Plan{Run: &store.Run{Instance: st.Instance, ProjectID: p.ID,
			ProjectPath: p.PathWithNamespace, SourceProjectID: p.ID, Trigger: "commit", RunKey: "review|settings",
			SHA: strings.Repeat("c", 40), Ref: "main", State: store.RunFinished, Visibility: "public"}}, nil); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(st.Instance)
		if err != nil {
			t.Fatal(err)
		}
		page := "/settings/" + u.Host + "/" + p.PathWithNamespace
		alice := st.SignIn(st.Seed.Maintainer.Username)
		status, body, _ := reviewDo(t, st, alice, false, http.MethodGet, page, nil)
		csrf := csrfRe.FindStringSubmatch(body)
		if status != http.StatusOK || csrf == nil || !strings.Contains(body, `name="version" value="0"`) {
			t.Fatalf("the maintainer's settings page: %d\n%s", status, body)
		}
		huge := url.Values{"csrf": {html.UnescapeString(csrf[1])}, "version": {"0"},
			"fallback_config": {strings.Repeat("# padding\n", 200_000)}}
		status, body, _ = reviewDo(t, st, alice, false, http.MethodPost, page, huge)
		if status != http.StatusBadRequest || !strings.Contains(body, "larger than") {
			t.Fatalf("a 2 MB settings form: %d %.200s, want 400 saying it is too large", status, body)
		}
	})
}

// A project token keeps authenticating the project it was first used by,
// by ID, after that project moves. When another project later takes the old
// path, its tokens page must neither list nor revoke the first project's
// token.
func TestTokensPageRevokesOnlyTheProjectsOwnTokens(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := reviewStack(t, dbURL)
		db := st.Server.Store()
		taker := st.Seed.Project // now at the path the moved project had
		const moved = 777001     // the first project, whose members alice is not one of
		if _, err := db.ApplyPlan(st.Context(), store.Plan{Run: &store.Run{Instance: st.Instance, ProjectID: taker.ID,
			ProjectPath: taker.PathWithNamespace, SourceProjectID: taker.ID, Trigger: "commit", RunKey: "review|taker",
			SHA: strings.Repeat("d", 40), Ref: "main", State: store.RunFinished, Visibility: "public"}}, nil); err != nil {
			t.Fatal(err)
		}
		theirs, err := db.CreateToken(st.Context(), store.TokenRecord{Instance: st.Instance, ScopeKind: "project",
			ScopePath: taker.PathWithNamespace, KeyID: "k1", CreatedAt: time.Now(), CreatedBy: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		committer := db.NewCommitter(1)
		defer committer.Close()
		key := store.DedupKey(st.Instance, moved, taker.PathWithNamespace, "Push Hook", "review")
		if _, err := committer.Save(st.Context(), store.Delivery{Instance: st.Instance, ProjectID: moved,
			ProjectPath: taker.PathWithNamespace, EventHeader: "Push Hook", EventKind: "push", DedupKey: key,
			Headers: map[string]string{}, Body: []byte(`{}`), Outcome: store.OutcomeIgnored, TokenID: theirs,
			ReceivedAt: time.Now(), BindProject: true}); err != nil {
			t.Fatal(err)
		}

		u, err := url.Parse(st.Instance)
		if err != nil {
			t.Fatal(err)
		}
		page := "/tokens/" + u.Host + "/" + taker.PathWithNamespace
		alice := st.SignIn(st.Seed.Maintainer.Username)
		status, body, _ := reviewDo(t, st, alice, false, http.MethodGet, page, nil)
		csrf := csrfRe.FindStringSubmatch(body)
		if status != http.StatusOK || csrf == nil {
			t.Fatalf("the taker's tokens page: %d\n%s", status, body)
		}
		id := strconv.FormatInt(theirs, 10)
		if strings.Contains(body, "#"+id+"<") || strings.Contains(body, "bob") {
			t.Errorf("the taker's tokens page lists the moved project's token:\n%s", body)
		}
		status, body, _ = reviewDo(t, st, alice, false, http.MethodPost, page,
			url.Values{"csrf": {html.UnescapeString(csrf[1])}, "action": {"revoke"}, "token": {id}})
		if status != http.StatusNotFound {
			t.Errorf("revoking the moved project's token from the taker's page: %d %s, want 404", status, body)
		}
		if rec, err := db.Token(st.Context(), theirs); err != nil || rec.RevokedAt != nil {
			t.Errorf("the moved project's token after the taker's request: %+v %v", rec, err)
		}
	})
}
