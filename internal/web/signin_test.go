package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/access/accesstest"
	"upbuild.dev/upbuild/internal/forge"
	gitlabforge "upbuild.dev/upbuild/internal/forge/gitlab"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
	"upbuild.dev/upbuild/internal/web"
)

// signInWorld is the dashboard with GitLab sign-in against a simulator
// that has a private project with a Reporter and a Guest.
type signInWorld struct {
	url, gitlab string
	sim         *gitlabsim.Simulator
	runID       int64
	jobID       int64
	host, path  string
}

func newSignInWorld(t *testing.T, dbURL string) signInWorld {
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
	sim := gitlabsim.New(gitlabsim.Options{Dir: t.TempDir(), DisableRateLimits: true})
	gl := httptest.NewServer(sim)
	t.Cleanup(gl.Close)
	sim.SetBaseURL(gl.URL)
	bot, err := sim.AddUser(gitlabsim.UserSpec{Username: "upbuild-bot", Bot: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.AddGroup(gitlabsim.GroupSpec{Path: "team"}); err != nil {
		t.Fatal(err)
	}
	proj, err := sim.AddProject(ctx, gitlabsim.ProjectSpec{Namespace: "team", Path: "secret", Visibility: gitlabsim.Private})
	if err != nil {
		t.Fatal(err)
	}
	for name, level := range map[string]gitlabsim.AccessLevel{"rita": gitlabsim.Reporter, "gina": gitlabsim.Guest} {
		u, err := sim.AddUser(gitlabsim.UserSpec{Username: name})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.AddProjectMember(proj.ID, u.ID, level); err != nil {
			t.Fatal(err)
		}
	}
	if err := sim.AddProjectMember(proj.ID, bot.ID, gitlabsim.Reporter); err != nil {
		t.Fatal(err)
	}
	bf, err := gitlabforge.New(gitlabforge.Options{BaseURL: gl.URL, Token: bot.Token, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(up.Close)
	id, secret := sim.AddOAuthApp(up.URL+"/signin/callback", "read_user")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	guard, err := access.New(access.Options{Store: st, Forges: map[string]forge.Forge{gl.URL: bf},
		Apps: map[string]access.OAuthApp{gl.URL: {ClientID: id, ClientSecret: secret}}, PublicURL: up.URL, AdminToken: adminToken, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	guard.Register(mux)
	(&web.Pages{Store: st, PublicURL: up.URL, Access: guard, Logger: log}).Register(mux)
	handler = mux
	res, err := st.ApplyPlan(ctx, store.Plan{
		Run: &store.Run{Instance: gl.URL, ProjectID: proj.ID, ProjectPath: proj.PathWithNamespace, Trigger: "commit",
			RunKey: "secret-main", SHA: "0123456789abcdef0123", Ref: "main", SourceProjectID: proj.ID,
			SourceProjectPath: proj.PathWithNamespace, Title: "secret-title", State: store.RunRunning, Visibility: "private"},
		Jobs: []store.Job{{JobType: "copr_build", Target: "fedora-rawhide-x86_64", StatusName: "rpm-build:fedora-rawhide-x86_64", State: store.JobQueued}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(gl.URL)
	if err != nil {
		t.Fatal(err)
	}
	return signInWorld{url: up.URL, gitlab: gl.URL, sim: sim, runID: res.RunID, jobID: res.JobIDs[0], host: u.Host, path: proj.PathWithNamespace}
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
		ctx := context.Background()

		anonymous, err := accesstest.NewBrowser()
		if err != nil {
			t.Fatal(err)
		}
		_, home := browse(t, anonymous, w.url+"/")
		if !strings.Contains(home, ">Sign in with "+w.host+"</a>") {
			t.Fatalf("home page for an anonymous visitor has no sign-in link:\n%s", home)
		}
		_, missing := browse(t, anonymous, w.url+"/runs/999999")
		for _, path := range w.pages() {
			if code, body := browse(t, anonymous, w.url+path); code != http.StatusNotFound || body != strings.Replace(missing, "This run", firstWord(body), 1) {
				t.Errorf("GET %s anonymously = %d %q, want the 404 of a run that does not exist", path, code, body)
			}
		}

		guest, _ := accesstest.NewBrowser()
		if err := accesstest.SignIn(ctx, guest, w.url, w.gitlab, "gina"); err != nil {
			t.Fatal(err)
		}
		for _, path := range w.pages() {
			if code, body := browse(t, guest, w.url+path); code != http.StatusNotFound || strings.Contains(body, "secret-title") {
				t.Errorf("GET %s as a Guest = %d %q, want 404", path, code, body)
			}
		}

		reporter, _ := accesstest.NewBrowser()
		if err := accesstest.SignIn(ctx, reporter, w.url, w.gitlab, "rita"); err != nil {
			t.Fatal(err)
		}
		for _, path := range w.pages() {
			code, body := browse(t, reporter, w.url+path)
			if code != http.StatusOK || !strings.Contains(body, w.path) {
				t.Errorf("GET %s as a Reporter = %d, want the page:\n%s", path, code, body)
			}
			if !strings.Contains(body, "signed in as @rita") || !signOutForm.MatchString(body) {
				t.Errorf("GET %s as a Reporter: the layout lacks the signed-in line and sign-out form:\n%s", path, body)
			}
		}

		// Signing out with the page's CSRF token ends the session.
		_, body := browse(t, reporter, w.url+"/")
		csrf := signOutForm.FindStringSubmatch(body)[1]
		resp, err := reporter.PostForm(w.url+"/signout", url.Values{"csrf": {csrf}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if code, _ := browse(t, reporter, w.url+w.pages()[0]); code != http.StatusNotFound {
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
		reporter, _ := accesstest.NewBrowser()
		if err := accesstest.SignIn(context.Background(), reporter, w.url, w.gitlab, "rita"); err != nil {
			t.Fatal(err)
		}
		w.sim.InjectFault(gitlabsim.Fault{PathPrefix: "/api/v4/projects/", Kind: gitlabsim.FaultError, Status: http.StatusBadGateway})
		code, body := browse(t, reporter, w.url+w.pages()[0])
		if code != http.StatusServiceUnavailable || !strings.Contains(body, access.ErrUnavailable.Error()) || strings.Contains(body, "secret-title") {
			t.Fatalf("run page while GitLab fails = %d %q, want 503 with the reason", code, body)
		}
	})
}
