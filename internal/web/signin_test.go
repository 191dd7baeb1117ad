package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/access/accesstest"
	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// signInWorld is upbuild with GitLab sign-in against a simulator that has
// a private project with a Reporter and a Guest, and a run of it.
type signInWorld struct {
	*stacktest.Stack
	runID, jobID int64
	host, path   string
}

func newSignInWorld(t *testing.T, dbURL string) signInWorld {
	t.Helper()
	// No workers: the run's job stays as planted.
	st := stacktest.Start(t, dbURL, stacktest.Options{Simulator: gitlabsim.Options{DisableRateLimits: true},
		Configure: func(cfg *config.Config) { cfg.Workers = 0 }})
	proj, err := st.Sim.AddProject(st.Context(), gitlabsim.ProjectSpec{Namespace: "demo", Path: "secret", Visibility: gitlabsim.Private})
	if err != nil {
		t.Fatal(err)
	}
	st.User("rita", gitlabsim.Reporter)
	st.User("gina", gitlabsim.Guest)
	res, err := st.Server.Store().ApplyPlan(st.Context(), store.Plan{
		Run: &store.Run{Instance: st.Instance, ProjectID: proj.ID, ProjectPath: proj.PathWithNamespace, Trigger: "commit",
			RunKey: "secret-main", SHA: "0123456789abcdef0123", Ref: "main", SourceProjectID: proj.ID,
			SourceProjectPath: proj.PathWithNamespace, Title: "secret-title", State: store.RunRunning, Visibility: "private"},
		Jobs: []store.Job{{JobType: "copr_build", Target: "fedora-rawhide-x86_64", StatusName: "rpm-build:fedora-rawhide-x86_64", State: store.JobQueued}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(st.SimURL)
	if err != nil {
		t.Fatal(err)
	}
	return signInWorld{Stack: st, runID: res.RunID, jobID: res.JobIDs[0], host: u.Host, path: proj.PathWithNamespace}
}

func (w signInWorld) pages() []string {
	return []string{fmt.Sprintf("/runs/%d", w.runID), fmt.Sprintf("/jobs/%d", w.jobID), "/p/" + w.host + "/" + w.path}
}

func browse(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

var signOutForm = regexp.MustCompile(`<form class="signout" method="post" action="/signout"><input type="hidden" name="csrf" value="([A-Za-z0-9_-]{43})">`)

func TestPrivateProjectPagesNeedReporterSignIn(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newSignInWorld(t, dbURL)

		anonymous, err := accesstest.NewBrowser()
		if err != nil {
			t.Fatal(err)
		}
		_, home := browse(t, anonymous, w.URL+"/")
		if !strings.Contains(home, ">Sign in with "+w.host+"</a>") {
			t.Fatalf("home page for an anonymous visitor has no sign-in link:\n%s", home)
		}
		_, missing := browse(t, anonymous, w.URL+"/runs/999999")
		for _, path := range w.pages() {
			if code, body := browse(t, anonymous, w.URL+path); code != http.StatusNotFound || body != strings.Replace(missing, "This run", firstWord(body), 1) {
				t.Errorf("GET %s anonymously = %d %q, want the 404 of a run that does not exist", path, code, body)
			}
		}

		guest := w.SignIn("gina")
		for _, path := range w.pages() {
			if code, body := browse(t, guest, w.URL+path); code != http.StatusNotFound || strings.Contains(body, "secret-title") {
				t.Errorf("GET %s as a Guest = %d %q, want 404", path, code, body)
			}
		}

		reporter := w.SignIn("rita")
		for _, path := range w.pages() {
			code, body := browse(t, reporter, w.URL+path)
			if code != http.StatusOK || !strings.Contains(body, w.path) {
				t.Errorf("GET %s as a Reporter = %d, want the page:\n%s", path, code, body)
			}
			if !strings.Contains(body, "signed in as @rita") || !signOutForm.MatchString(body) {
				t.Errorf("GET %s as a Reporter: the layout lacks the signed-in line and sign-out form:\n%s", path, body)
			}
		}

		// Signing out with the page's CSRF token ends the session.
		_, body := browse(t, reporter, w.URL+"/")
		csrf := signOutForm.FindStringSubmatch(body)[1]
		resp, err := reporter.PostForm(w.URL+"/signout", url.Values{"csrf": {csrf}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if code, _ := browse(t, reporter, w.URL+w.pages()[0]); code != http.StatusNotFound {
			t.Errorf("run page after sign-out = %d, want 404", code)
		}
	})
}

// firstWord is "This run", "This job" or "This project": the subject of a
// 404 sentence.
func firstWord(body string) string {
	for _, s := range []string{"This run", "This job", "This project"} {
		if strings.HasPrefix(body, s) {
			return s
		}
	}
	return body
}

func TestAccessCheckFailureIsA503(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newSignInWorld(t, dbURL)
		reporter := w.SignIn("rita")
		w.Sim.InjectFault(gitlabsim.Fault{PathPrefix: "/api/v4/projects/", Kind: gitlabsim.FaultError, Status: http.StatusBadGateway})
		code, body := browse(t, reporter, w.URL+w.pages()[0])
		if code != http.StatusServiceUnavailable || !strings.Contains(body, access.ErrUnavailable.Error()) || strings.Contains(body, "secret-title") {
			t.Fatalf("run page while GitLab fails = %d %q, want 503 with the reason", code, body)
		}
	})
}
