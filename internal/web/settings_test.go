package web_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/access/accesstest"
	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
	"upbuild.dev/upbuild/internal/token"
)

const settingsAdminToken = "settings-page-admin-token"

const settingsPackit = `specfile_path: pkg.spec
jobs:
  - job: copr_build
    trigger: commit
    targets: [fedora-rawhide-x86_64]
  - job: tests
    trigger: commit
    identifier: smoke
`

// settingsStack is the simulator and a real upbuild server with GitLab
// sign-in configured, as an operator runs it (no workers: jobs stay queued).
type settingsStack struct {
	t        *testing.T
	ctx      context.Context
	sim      *gitlabsim.Simulator
	seed     gitlabsim.Seeded
	srv      *server.Server
	cfg      config.Config
	url      string
	simURL   string
	host     string
	instance string
}

func startSettingsStack(t *testing.T, dbURL string) *settingsStack {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	sim := gitlabsim.New(gitlabsim.Options{Dir: t.TempDir()})
	simHTTP := httptest.NewServer(sim)
	t.Cleanup(simHTTP.Close)
	sim.SetBaseURL(simHTTP.URL)
	seed, err := gitlabsim.Seed(ctx, sim)
	if err != nil {
		t.Fatal(err)
	}
	var handler atomic.Pointer[http.Handler]
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "upbuild is not running", http.StatusServiceUnavailable)
	}))
	t.Cleanup(up.Close)
	clientID, secret := sim.AddOAuthApp(up.URL+"/signin/callback", "read_user")
	env := map[string]string{"BOT_TOKEN": seed.Bot.Token, "ADMIN_TOKEN": settingsAdminToken, "OAUTH_SECRET": secret}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load("", getenv)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg.DataDir, cfg.KeyFile, cfg.DatabaseURL, cfg.PublicURL = dataDir, filepath.Join(dataDir, "service.keys"), dbURL, up.URL
	cfg.Instances = []config.Instance{{URL: simHTTP.URL, BotTokenEnv: "BOT_TOKEN", OAuthClientID: clientID, OAuthClientSecretEnv: "OAUTH_SECRET"}}
	cfg.TokenCacheTTL, cfg.Workers, cfg.AdminTokenEnv = 0, 0, "ADMIN_TOKEN"
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), getenv)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := srv.RunBackground(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		handler.Store(nil)
		stop()
		if err := srv.Close(); err != nil {
			t.Errorf("close upbuild: %v", err)
		}
	})
	h := srv.Handler()
	handler.Store(&h)
	u, err := url.Parse(simHTTP.URL)
	if err != nil {
		t.Fatal(err)
	}
	instance, err := token.NormalizeInstanceURL(simHTTP.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &settingsStack{t: t, ctx: ctx, sim: sim, seed: seed, srv: srv, cfg: cfg, url: up.URL, simURL: simHTTP.URL,
		host: u.Host, instance: instance}
}

// project creates a project in the demo group, hooks it up and waits for
// the run of a first push to main, so upbuild knows the project and has
// read its default branch's config.
func (s *settingsStack) project(name string, vis gitlabsim.Visibility) gitlabsim.Project {
	s.t.Helper()
	p, err := s.sim.AddProject(s.ctx, gitlabsim.ProjectSpec{Namespace: "demo", Path: name, Visibility: vis, DefaultBranch: "main",
		Files: map[string]string{".packit.yaml": settingsPackit, "pkg.spec": "Name: pkg\nVersion: 1.0\n"}})
	if err != nil {
		s.t.Fatal(err)
	}
	ring, _, err := token.LoadOrCreateKeyring(s.cfg.KeyFile)
	if err != nil {
		s.t.Fatal(err)
	}
	m := &hooktoken.Manager{Store: s.srv.Store(), Keyring: ring, PublicURL: s.url, Instances: []string{s.instance}}
	issued, err := m.Issue(s.ctx, token.Scope{Kind: token.ScopeProject, Instance: s.instance, Path: p.PathWithNamespace}, false, "test")
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.sim.AddHook(p.ID, gitlabsim.HookSpec{URL: issued.WebhookURL, Token: issued.Token, MergeRequestsEvents: true}); err != nil {
		s.t.Fatal(err)
	}
	s.waitRun(p, s.push(p, "first"))
	return p
}

func (s *settingsStack) push(p gitlabsim.Project, content string) string {
	s.t.Helper()
	sha, err := s.sim.PushCommits(s.ctx, p.ID, "main", s.seed.Maintainer.Username, gitlabsim.CommitSpec{Message: content,
		Changes: []gitlabsim.FileChange{{Path: "README", Content: content + "\n"}}})
	if err != nil {
		s.t.Fatal(err)
	}
	return sha
}

// waitRun returns the status names of the run at sha, once planned.
func (s *settingsStack) waitRun(p gitlabsim.Project, sha string) []string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		runs, err := s.srv.Store().ListRuns(s.ctx, store.RunQuery{Instance: s.instance, ProjectID: p.ID, SHA: sha})
		if err != nil {
			s.t.Fatal(err)
		}
		if len(runs) > 0 {
			jobs, err := s.srv.Store().RunJobs(s.ctx, runs[0].ID)
			if err != nil {
				s.t.Fatal(err)
			}
			var names []string
			for _, j := range jobs {
				names = append(names, j.StatusName)
			}
			slices.Sort(names)
			return names
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("no run of %s", sha)
	return nil
}

func (s *settingsStack) settingsPath(p gitlabsim.Project) string {
	return "/settings/" + s.host + "/" + p.PathWithNamespace
}

// viewer is someone using the page: anonymous, signed in, or the operator.
type viewer struct {
	s        *settingsStack
	client   *http.Client
	operator bool
}

func (s *settingsStack) anonymous() viewer { return viewer{s: s, client: &http.Client{}} }
func (s *settingsStack) operator() viewer {
	return viewer{s: s, client: &http.Client{}, operator: true}
}

// member signs a new demo-group member with level in (0: no membership;
// alice is the seed's Maintainer).
func (s *settingsStack) member(name string, level gitlabsim.AccessLevel) viewer {
	s.t.Helper()
	if name != s.seed.Maintainer.Username {
		u, err := s.sim.AddUser(gitlabsim.UserSpec{Username: name})
		if err != nil {
			s.t.Fatal(err)
		}
		if level > 0 {
			if err := s.sim.AddGroupMember(s.seed.Group.ID, u.ID, level); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	browser, err := accesstest.NewBrowser()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := accesstest.SignIn(s.ctx, browser, s.url, s.simURL, name); err != nil {
		s.t.Fatal(err)
	}
	// The page answers a POST with a redirect; the test looks at it.
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return viewer{s: s, client: browser}
}

type page struct {
	status   int
	location string
	body     string
}

func (v viewer) do(method, path string, form url.Values) page {
	v.s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(v.s.ctx, method, v.s.url+path, body)
	if err != nil {
		v.s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if v.operator {
		req.Header.Set("Authorization", "Bearer "+settingsAdminToken)
	}
	client := *v.client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		v.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.s.t.Fatal(err)
	}
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b)}
}

var settingsCSRF = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
var settingsVersion = regexp.MustCompile(`name="version" value="([0-9]+)"`)

// submit fills the page's form as a browser would: the hidden fields and
// the job rows as rendered, with fields overriding what the form holds.
func (v viewer) submit(path string, fields url.Values) page {
	v.s.t.Helper()
	got := v.do(http.MethodGet, path, nil)
	if got.status != http.StatusOK {
		v.s.t.Fatalf("GET %s: %d %s", path, got.status, got.body)
	}
	form := url.Values{}
	if m := settingsCSRF.FindStringSubmatch(got.body); m != nil {
		form.Set("csrf", html.UnescapeString(m[1]))
	}
	if m := settingsVersion.FindStringSubmatch(got.body); m != nil {
		form.Set("version", m[1])
	}
	rows := strings.Count(got.body, `name="job_type"`)
	for range rows {
		for _, f := range []string{"job_type", "job_identifier", "job_state", "job_triggers", "job_branch"} {
			form.Add(f, "")
		}
	}
	for k, vs := range fields {
		form[k] = vs
	}
	return v.do(http.MethodPost, path, form)
}

func TestSettingsPageOfAPublicProject(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := startSettingsStack(t, dbURL)
		p := s.project("open", gitlabsim.Public)
		path := s.settingsPath(p)

		// Settings are for members, even of a public project: a passer-by
		// and a Guest are told why they cannot open them.
		if got := s.anonymous().do(http.MethodGet, path, nil); got.status != http.StatusForbidden ||
			!strings.Contains(got.body, "Reporter role") || !strings.Contains(got.body, "Sign in with GitLab first") {
			t.Fatalf("anonymous GET: %d %s", got.status, got.body)
		}
		guest := s.member("gina", gitlabsim.Guest)
		if got := guest.do(http.MethodGet, path, nil); got.status != http.StatusForbidden || !strings.Contains(got.body, "Reporter role") ||
			strings.Contains(got.body, "Sign in") {
			t.Fatalf("guest GET: %d %s", got.status, got.body)
		}
		// A Reporter sees the settings and the effective config, read-only.
		got := s.member("rita", gitlabsim.Reporter).do(http.MethodGet, path, nil)
		if got.status != http.StatusOK {
			t.Fatalf("reporter GET: %d %s", got.status, got.body)
		}
		for _, want := range []string{`id="read-only"`, "<fieldset disabled>", "rpm-build:main:fedora-rawhide-x86_64",
			"testing-farm:main:fedora-rawhide-x86_64:smoke", ".packit.yaml at main",
			// No project choice: the operator's default policy is what applies.
			"Fork approval in force: forks"} {
			if !strings.Contains(got.body, want) {
				t.Errorf("the Reporter's page lacks %q:\n%s", want, got.body)
			}
		}
		if strings.Contains(got.body, `name="save"`) {
			t.Error("a read-only page offers a Save button")
		}
		// A POST without the form's CSRF token is refused, even from a Maintainer's session.
		if got := s.anonymous().do(http.MethodPost, path, url.Values{"targets": {"epel-9"}, "version": {"0"}}); got.status != http.StatusForbidden {
			t.Fatalf("anonymous POST: %d %s", got.status, got.body)
		}
		alice := s.member("alice", gitlabsim.Maintainer)
		if got := alice.do(http.MethodPost, path, url.Values{"targets": {"epel-9"}, "version": {"0"}}); got.status != http.StatusForbidden ||
			!strings.Contains(got.body, "CSRF") {
			t.Fatalf("CSRF-less POST from a Maintainer: %d %s", got.status, got.body)
		}
		if got := s.member("dora", gitlabsim.Developer).submit(path, url.Values{"targets": {"epel-9"}, "save": {"1"}}); got.status != http.StatusForbidden ||
			!strings.Contains(got.body, "Maintainer role") {
			t.Fatalf("developer save: %d %s", got.status, got.body)
		}
		if row, found, err := s.srv.Store().ProjectSettings(s.ctx, s.instance, p.ID); err != nil || found {
			t.Fatalf("refused POSTs saved something: %+v %v", row, err)
		}
	})
}

func TestMaintainerChangesTargetsAndTheNextRunUsesThem(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := startSettingsStack(t, dbURL)
		p := s.project("closed", gitlabsim.Private)
		path := s.settingsPath(p)

		if got := s.anonymous().do(http.MethodGet, path, nil); got.status != http.StatusNotFound {
			t.Fatalf("anonymous GET of a private project: %d", got.status)
		}
		if got := s.member("gina", gitlabsim.Guest).do(http.MethodGet, path, nil); got.status != http.StatusNotFound {
			t.Fatalf("guest GET of a private project: %d", got.status)
		}
		dev := s.member("dev", gitlabsim.Developer)
		if got := dev.do(http.MethodGet, path, nil); got.status != http.StatusOK || !strings.Contains(got.body, `id="read-only"`) {
			t.Fatalf("developer GET: %d", got.status)
		}
		if got := dev.submit(path, url.Values{"targets": {"epel-9"}}); got.status != http.StatusForbidden {
			t.Fatalf("developer save: %d %s", got.status, got.body)
		}

		alice := s.member("alice", gitlabsim.Maintainer)
		// Preview first: the merged result shows, nothing is saved.
		got := alice.submit(path, url.Values{"targets": {"epel-9, fedora-latest-aarch64"}, "preview": {"1"}})
		if got.status != http.StatusOK || !strings.Contains(got.body, "of this form (not saved)") ||
			!strings.Contains(got.body, "rpm-build:main:epel-9-x86_64") || !strings.Contains(got.body, "rpm-build:main:fedora-45-aarch64") {
			t.Fatalf("preview: %d %s", got.status, got.body)
		}
		if _, found, err := s.srv.Store().ProjectSettings(s.ctx, s.instance, p.ID); err != nil || found {
			t.Fatalf("the preview saved: %v %v", found, err)
		}
		// Save: a redirect to the page, which says so.
		got = alice.submit(path, url.Values{"targets": {"epel-9, fedora-latest-aarch64"}, "save": {"1"}})
		if got.status != http.StatusSeeOther || got.location != path+"?saved=1" {
			t.Fatalf("save: %d %q %s", got.status, got.location, got.body)
		}
		got = alice.do(http.MethodGet, got.location, nil)
		if !strings.Contains(got.body, `id="saved"`) || !strings.Contains(got.body, `value="epel-9 fedora-latest-aarch64"`) ||
			!strings.Contains(got.body, "saved by alice") {
			t.Fatalf("page after saving: %s", got.body)
		}
		// The next run uses the new targets.
		names := s.waitRun(p, s.push(p, "second"))
		want := []string{"rpm-build:main:epel-9-x86_64", "rpm-build:main:fedora-45-aarch64",
			"testing-farm:main:epel-9-x86_64:smoke", "testing-farm:main:fedora-45-aarch64:smoke"}
		if !slices.Equal(names, want) {
			t.Fatalf("next run: %v, want %v", names, want)
		}
		// The audit log says who changed what.
		log, err := s.srv.Store().AuditLog(s.ctx, s.instance, p.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 1 || log[0].Actor != "alice" || log[0].Action != "settings.change" ||
			log[0].Detail != "targets: (from the config) → epel-9, fedora-latest-aarch64" {
			t.Fatalf("audit log %+v", log)
		}
	})
}

func TestSettingsFormErrorsAndStaleForms(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := startSettingsStack(t, dbURL)
		p := s.project("pkg", gitlabsim.Public)
		path := s.settingsPath(p)
		op := s.operator()

		// Every problem at once, with the fallback config's line, and the
		// attacker-controlled input shown as text.
		got := op.submit(path, url.Values{"targets": {"fedora-al <script>alert(1)</script>"}, "status_name_template": {"ci/{job}"},
			"fallback_config": {"specfile_path: a.spec\r\nsynced_files: [a]\r\n"}, "save": {"1"}})
		if got.status != http.StatusUnprocessableEntity {
			t.Fatalf("invalid form: %d %s", got.status, got.body)
		}
		for _, want := range []string{"Nothing was saved", `&#34;fedora-al&#34; is neither a chroot`, "unknown placeholder {job}",
			"fallback_config line 2, column 1", "&lt;script&gt;alert(1)&lt;/script&gt;"} {
			if !strings.Contains(got.body, want) {
				t.Errorf("error page lacks %q", want)
			}
		}
		if strings.Contains(got.body, "<script>alert(1)") {
			t.Error("the page echoes a script tag")
		}

		// The operator saves (version 0 → 1); a form rendered before that
		// is stale and says by whom, keeping what was typed.
		stale := op.do(http.MethodGet, path, nil)
		if got := op.submit(path, url.Values{"approval_policy": {"all"}}); got.status != http.StatusSeeOther {
			t.Fatalf("operator save: %d %s", got.status, got.body)
		}
		form := url.Values{"version": {settingsVersion.FindStringSubmatch(stale.body)[1]}, "targets": {"epel-9"},
			"job_type": {"tests"}, "job_identifier": {"smoke"}, "job_state": {"off"}, "job_triggers": {""}, "job_branch": {""}}
		got = op.do(http.MethodPost, path, form)
		if got.status != http.StatusConflict || !strings.Contains(got.body, "changed by operator meanwhile") ||
			!strings.Contains(got.body, `value="epel-9"`) || !strings.Contains(got.body, "approval policy: all → the operator&#39;s") {
			t.Fatalf("stale save: %d %s", got.status, got.body)
		}
		// Saving the same form again (now from the current version) works.
		form.Set("version", settingsVersion.FindStringSubmatch(got.body)[1])
		if got := op.do(http.MethodPost, path, form); got.status != http.StatusSeeOther {
			t.Fatalf("second save: %d %s", got.status, got.body)
		}
		row, _, err := s.srv.Store().ProjectSettings(s.ctx, s.instance, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if row.Version != 2 || !strings.Contains(string(row.Data), `"disabled":true`) || strings.Contains(string(row.Data), "approval") {
			t.Fatalf("saved %d %s", row.Version, row.Data)
		}
		page := op.do(http.MethodGet, path, nil)
		if strings.Contains(page.body, "testing-farm:") || !strings.Contains(page.body, "tests smoke is switched off") {
			t.Fatalf("preview after switching tests off:\n%s", page.body)
		}
	})
}
