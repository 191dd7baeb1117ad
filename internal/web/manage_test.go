package web_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/access/accesstest"
	"upbuild.dev/upbuild/internal/api"
	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/queue"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/testdb"
	"upbuild.dev/upbuild/internal/token"
	"upbuild.dev/upbuild/internal/web"
)

const operatorToken = "operator-admin-token-for-self-service"

// stack is the GitLab simulator and a real upbuild server, with the
// self-service routes mounted in front of the server's own handler as the
// server wiring mounts them.
type stack struct {
	t      *testing.T
	ctx    context.Context
	sim    *gitlabsim.Simulator
	seed   gitlabsim.Seeded
	srv    *server.Server
	url    string
	simURL string
	host   string // the simulator's host, as dashboard URLs name it
}

// newStack starts the simulator and upbuild; workers 0 leaves jobs queued.
func newStack(t *testing.T, dbURL string, workers int) *stack {
	t.Helper()
	ctx := context.Background()
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
	env := map[string]string{"BOT_TOKEN": seed.Bot.Token, "ADMIN_TOKEN": operatorToken}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load("", getenv)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg.DataDir, cfg.KeyFile, cfg.DatabaseURL, cfg.PublicURL = dataDir, filepath.Join(dataDir, "service.keys"), dbURL, up.URL
	cfg.Instances = []config.Instance{{URL: simHTTP.URL, BotTokenEnv: "BOT_TOKEN"}}
	cfg.TokenCacheTTL, cfg.Workers, cfg.AdminTokenEnv = 0, workers, "ADMIN_TOKEN"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(ctx, cfg, log, getenv)
	if err != nil {
		t.Fatal(err)
	}
	stopBg, err := srv.RunBackground(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		handler.Store(nil)
		stopBg()
		if err := srv.Close(); err != nil {
			t.Errorf("close upbuild: %v", err)
		}
	})
	// An insert-only queue on the same database, as a second web node has.
	q, err := queue.Open(ctx, srv.Store(), dbURL, queue.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := q.Stop(context.Background()); err != nil {
			t.Errorf("stop the insert-only queue: %v", err)
		}
	})
	forges, err := server.Forges(cfg, log, getenv)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := server.LoadKeyring(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	instance, err := token.NormalizeInstanceURL(simHTTP.URL)
	if err != nil {
		t.Fatal(err)
	}
	clientID, secret := sim.AddOAuthApp(up.URL+"/signin/callback", "read_user")
	guard, err := access.New(access.Options{Store: srv.Store(), Forges: forges, PublicURL: up.URL, AdminToken: operatorToken, Logger: log,
		Apps: map[string]access.OAuthApp{instance: {ClientID: clientID, ClientSecret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	pages := &web.Pages{Store: srv.Store(), PublicURL: up.URL, AdminToken: operatorToken, Access: guard, Logger: log}
	mux := http.NewServeMux()
	guard.Register(mux)
	cancel := func(ctx context.Context, jobID int64) error {
		if err := q.Cancel(ctx, jobID); err != nil && !errors.Is(err, queue.ErrNotFound) {
			return err
		}
		return nil
	}
	jobs := &api.JobActions{Store: srv.Store(), Access: guard, PublicURL: up.URL, Enqueue: q.Enqueue, Cancel: cancel,
		Changed: srv.Reporter().Wake, Logger: log}
	mux.HandleFunc("POST /api/v1/jobs/{id}/rerun", jobs.HandleRerun)
	mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", jobs.HandleCancel)
	(&web.SelfService{
		Pages:   pages,
		Tokens:  &hooktoken.Manager{Store: srv.Store(), Keyring: ring, PublicURL: up.URL, Instances: []string{instance}},
		Forges:  forges,
		Enqueue: q.Enqueue,
		Cancel:  cancel,
		Changed: srv.Reporter().Wake,
	}).Register(mux)
	mux.Handle("/", srv.Handler())
	var h http.Handler = mux
	handler.Store(&h)
	u, err := url.Parse(simHTTP.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &stack{t: t, ctx: ctx, sim: sim, seed: seed, srv: srv, url: up.URL, simURL: simHTTP.URL, host: u.Host}
}

// project creates a project in the seed's group (where the bot is a
// Developer), with no webhook yet.
func (s *stack) project(path string, vis gitlabsim.Visibility, files map[string]string) gitlabsim.Project {
	s.t.Helper()
	p, err := s.sim.AddProject(s.ctx, gitlabsim.ProjectSpec{Namespace: "demo", Path: path, Visibility: vis,
		DefaultBranch: "main", Files: files})
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

// response is what a browser got.
type response struct {
	status   int
	body     string
	location string
}

// do sends a request; operator adds the admin token; form, when not nil,
// is POSTed. Redirects are not followed, so tests see the 303.
func (s *stack) do(method, path string, form url.Values, operator bool) response {
	s.t.Helper()
	return s.send(&http.Client{}, method, path, form, operator)
}

// send is do with a client of the test's (a signed-in browser).
func (s *stack) send(client *http.Client, method, path string, form url.Values, operator bool) response {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(s.ctx, method, s.url+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if operator {
		req.Header.Set("Authorization", "Bearer "+operatorToken)
	}
	noFollow := *client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
}

func (s *stack) tokensPath(p gitlabsim.Project) string {
	return "/tokens/" + s.host + "/" + p.PathWithNamespace
}

// eventually polls cond for up to 30 s.
func (s *stack) eventually(what string, cond func() (bool, string)) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		time.Sleep(25 * time.Millisecond)
	}
	s.t.Fatalf("timed out waiting for %s; last saw: %s", what, last)
}

// push commits to a branch and returns the delivery statuses of the
// project's webhooks for that push, once every hook answered.
func (s *stack) push(p gitlabsim.Project, branch string) []int {
	s.t.Helper()
	before := len(s.sim.Deliveries())
	if _, err := s.sim.PushCommits(s.ctx, p.ID, branch, s.seed.Maintainer.Username, gitlabsim.CommitSpec{Message: "change",
		Changes: []gitlabsim.FileChange{{Path: "README", Content: "change " + time.Now().String() + "\n"}}}); err != nil {
		s.t.Fatal(err)
	}
	var codes []int
	s.eventually("the push's deliveries", func() (bool, string) {
		codes = nil
		answered := true
		for _, d := range s.sim.Deliveries()[before:] {
			if d.ProjectID == p.ID && d.Event == "Push Hook" {
				codes = append(codes, d.StatusCode)
				// The simulator lists a delivery as soon as it sends it.
				answered = answered && (d.StatusCode != 0 || d.Err != "" || d.Skipped)
			}
		}
		return answered && len(codes) == len(s.sim.Hooks(p.ID)), fmt.Sprint(codes)
	})
	return codes
}

var (
	tokenRe   = regexp.MustCompile(`<code id="token">([^<]+)</code>`)
	signingRe = regexp.MustCompile(`<code id="signing-token">([^<]+)</code>`)
	revokeRe  = regexp.MustCompile(`name="token" value="(\d+)"`)
)

// issue asks for a token on the tokens page as the operator and returns
// the page.
func (s *stack) issue(p gitlabsim.Project, opts ...string) response {
	s.t.Helper()
	form := url.Values{"action": {"issue"}}
	for _, o := range opts {
		form.Set(o, "on")
	}
	resp := s.do(http.MethodPost, s.tokensPath(p), form, true)
	if resp.status != http.StatusOK {
		s.t.Fatalf("issue: %d %s", resp.status, resp.body)
	}
	return resp
}

func TestIssuedTokenIsShownOnceAndAuthenticatesUntilRevoked(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		p := s.project("fresh", gitlabsim.Private, map[string]string{"README": "hi\n"})

		page := s.do(http.MethodGet, s.tokensPath(p), nil, true)
		if page.status != http.StatusOK || !strings.Contains(page.body, "No token was issued for this project yet.") {
			t.Fatalf("tokens page of a project upbuild never ran anything for: %d %s", page.status, page.body)
		}
		resp := s.issue(p, "signing")
		m := tokenRe.FindStringSubmatch(resp.body)
		sm := signingRe.FindStringSubmatch(resp.body)
		if m == nil || sm == nil {
			t.Fatalf("the issue page shows no token and signing token:\n%s", resp.body)
		}
		tok, signing := html.UnescapeString(m[1]), html.UnescapeString(sm[1])
		for _, want := range []string{s.url + "/api/webhooks/gitlab", "Push events", "Tag push events", "Comments",
			"Merge request events", "Releases events", "only time upbuild shows this token", p.PathWithNamespace + "/-/hooks"} {
			if !strings.Contains(resp.body, want) {
				t.Errorf("the issue page lacks %q", want)
			}
		}
		again := s.do(http.MethodGet, s.tokensPath(p), nil, true)
		if strings.Contains(again.body, tok) || strings.Contains(again.body, signing) {
			t.Fatal("the tokens page shows the token a second time")
		}
		ids := revokeRe.FindAllStringSubmatch(again.body, -1)
		if len(ids) != 1 {
			t.Fatalf("want one revocable token listed, got %v in\n%s", ids, again.body)
		}

		// Pasted into GitLab by hand, the token authenticates deliveries.
		if _, err := s.sim.AddHook(p.ID, gitlabsim.HookSpec{URL: s.url + "/api/webhooks/gitlab", Token: tok, SigningToken: signing,
			MergeRequestsEvents: true}); err != nil {
			t.Fatal(err)
		}
		if codes := s.push(p, "main"); fmt.Sprint(codes) != "[202]" {
			t.Fatalf("delivery with the issued token answered %v, want [202]", codes)
		}

		revoked := s.do(http.MethodPost, s.tokensPath(p), url.Values{"action": {"revoke"}, "token": {ids[0][1]}}, true)
		if revoked.status != http.StatusSeeOther || revoked.location != s.tokensPath(p) {
			t.Fatalf("revoke: %d to %q", revoked.status, revoked.location)
		}
		if page := s.do(http.MethodGet, s.tokensPath(p), nil, true); !strings.Contains(page.body, "revoked") ||
			len(revokeRe.FindAllString(page.body, -1)) != 0 {
			t.Fatalf("the revoked token is not shown as revoked:\n%s", page.body)
		}
		if codes := s.push(p, "main"); fmt.Sprint(codes) != "[401]" {
			t.Fatalf("delivery with the revoked token answered %v, want [401]", codes)
		}

		audit := s.do(http.MethodGet, "/audit/"+s.host+"/"+p.PathWithNamespace, nil, true)
		if audit.status != http.StatusOK {
			t.Fatalf("audit page: %d %s", audit.status, audit.body)
		}
		revokeAt, issueAt := strings.Index(audit.body, "token.revoke"), strings.Index(audit.body, "token.issue")
		if revokeAt < 0 || issueAt < 0 || revokeAt > issueAt || !strings.Contains(audit.body, "<td>operator</td>") ||
			!strings.Contains(audit.body, "with a signing token") {
			t.Fatalf("the audit log does not list the revoke above the issue, by the operator:\n%s", audit.body)
		}
		if strings.Contains(audit.body, tok) {
			t.Fatal("the audit log shows the token")
		}
	})
}

func TestConnectProjectCreatesTheWebhook(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		p := s.project("connected", gitlabsim.Public, map[string]string{"README": "hi\n"})

		// The seed's bot is a Developer: GitLab refuses, and the page says why
		// while still showing the token for adding the webhook by hand.
		refused := s.issue(p, "connect")
		if !strings.Contains(refused.body, "only a Maintainer of the project may add webhooks") || tokenRe.FindString(refused.body) == "" {
			t.Fatalf("a refused connect does not explain itself:\n%s", refused.body)
		}
		if hooks := s.sim.Hooks(p.ID); len(hooks) != 0 {
			t.Fatalf("hooks after a refused connect: %+v", hooks)
		}

		if err := s.sim.AddProjectMember(p.ID, s.seed.Bot.ID, gitlabsim.Maintainer); err != nil {
			t.Fatal(err)
		}
		resp := s.issue(p, "connect")
		if !strings.Contains(resp.body, "upbuild created the webhook on GitLab") {
			t.Fatalf("connect did not report the webhook:\n%s", resp.body)
		}
		hooks := s.sim.Hooks(p.ID)
		if len(hooks) != 1 {
			t.Fatalf("want one hook, got %+v", hooks)
		}
		h := hooks[0].HookSpec
		want := gitlabsim.HookSpec{URL: s.url + "/api/webhooks/gitlab", Token: html.UnescapeString(tokenRe.FindStringSubmatch(resp.body)[1]),
			TagPushEvents: true, MergeRequestsEvents: true, NoteEvents: true, ReleasesEvents: true}
		if h != want {
			t.Fatalf("hook %+v\nwant %+v", h, want)
		}
		if codes := s.push(p, "main"); fmt.Sprint(codes) != "[202]" {
			t.Fatalf("delivery through the created hook answered %v, want [202]", codes)
		}
		audit := s.do(http.MethodGet, "/audit/"+s.host+"/"+p.PathWithNamespace, nil, true)
		if strings.Count(audit.body, "token.issue") != 2 || strings.Count(audit.body, "project.connect") != 1 {
			t.Fatalf("audit log after two issues and one connect:\n%s", audit.body)
		}
	})
}

func TestManagePagesAreForProjectMembers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		private := s.project("secret", gitlabsim.Private, nil)
		public := s.project("open", gitlabsim.Public, nil)
		for _, c := range []struct {
			name, method, path string
			form               url.Values
			status             int
			says               string
		}{
			{"private tokens page", http.MethodGet, s.tokensPath(private), nil, http.StatusNotFound, "does not exist"},
			{"private audit log", http.MethodGet, "/audit/" + s.host + "/" + private.PathWithNamespace, nil, http.StatusNotFound, "does not exist"},
			{"public tokens page", http.MethodGet, s.tokensPath(public), nil, http.StatusForbidden, "Maintainer role"},
			{"public audit log", http.MethodGet, "/audit/" + s.host + "/" + public.PathWithNamespace, nil, http.StatusForbidden, "Reporter role"},
			{"issue without CSRF", http.MethodPost, s.tokensPath(public), url.Values{"action": {"issue"}}, http.StatusForbidden, "CSRF"},
			{"no such project", http.MethodGet, "/tokens/" + s.host + "/demo/nothing-here", nil, http.StatusNotFound, "does not exist"},
		} {
			resp := s.do(c.method, c.path, c.form, false)
			if resp.status != c.status || !strings.Contains(resp.body, c.says) {
				t.Errorf("%s: %d %q, want %d saying %q", c.name, resp.status, resp.body, c.status, c.says)
			}
		}
		recs, err := s.srv.Store().Tokens(s.ctx)
		if err != nil || len(recs) != 0 {
			t.Fatalf("tokens after refused requests: %v %v", recs, err)
		}
		if resp := s.do(http.MethodPost, s.tokensPath(public), url.Values{"action": {"revoke"}, "token": {"1"}}, true); resp.status != http.StatusNotFound {
			t.Fatalf("revoking a token the project does not have: %d %s", resp.status, resp.body)
		}
	})
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// member is a simulator user with a role on the seed's group, signed in to
// upbuild through GitLab in a browser of their own.
type member struct {
	s       *stack
	name    string
	browser *http.Client
}

func (s *stack) signIn(name string, level gitlabsim.AccessLevel) member {
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
	return member{s: s, name: name, browser: browser}
}

func (m member) get(path string) response {
	m.s.t.Helper()
	return m.s.send(m.browser, http.MethodGet, path, nil, false)
}

// post sends a form with the CSRF token of page (a page the member may
// open), as the browser would from a form on it; page "" sends none.
func (m member) post(path string, form url.Values, page string) response {
	m.s.t.Helper()
	if page != "" {
		got := csrfRe.FindStringSubmatch(m.get(page).body)
		if got == nil {
			m.s.t.Fatalf("%s sees no CSRF token on %s", m.name, page)
		}
		form.Set("csrf", html.UnescapeString(got[1]))
	}
	return m.s.send(m.browser, http.MethodPost, path, form, false)
}

func TestSignedInRolesDecide(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		p, mr := s.connectedMR(gitlabsim.Private)
		jobs := s.statuses(p, mr.HeadSHA)
		build, tests := jobs[buildStatus].job, jobs[testsStatus].job
		auditPath := "/audit/" + s.host + "/" + p.PathWithNamespace

		outsider := s.signIn("outsider", 0)
		if resp := outsider.get(auditPath); resp.status != http.StatusNotFound {
			t.Fatalf("a non-member opens a private project's audit log: %d", resp.status)
		}
		reporter := s.signIn("rita", gitlabsim.Reporter)
		developer := s.signIn("dave", gitlabsim.Developer)
		maintainer := s.signIn(s.seed.Maintainer.Username, gitlabsim.Maintainer)

		for _, c := range []struct {
			who    member
			path   string
			form   url.Values
			csrf   bool
			status int
			says   string
		}{
			{reporter, "/jobs/" + build + "/cancel", url.Values{}, true, http.StatusForbidden, "Developer role"},
			{reporter, "/jobs/" + build + "/rerun", url.Values{}, true, http.StatusForbidden, "Developer role"},
			{developer, s.tokensPath(p), url.Values{"action": {"issue"}}, true, http.StatusForbidden, "Maintainer role"},
			{developer, "/jobs/" + build + "/cancel", url.Values{}, false, http.StatusForbidden, "CSRF"},
			{developer, "/jobs/" + build + "/cancel", url.Values{}, true, http.StatusSeeOther, ""},
			{developer, "/jobs/" + build + "/rerun", url.Values{}, true, http.StatusSeeOther, ""},
			{maintainer, s.tokensPath(p), url.Values{"action": {"issue"}}, false, http.StatusForbidden, "CSRF"},
			{maintainer, s.tokensPath(p), url.Values{"action": {"issue"}}, true, http.StatusOK, "only time upbuild shows this token"},
			{maintainer, "/jobs/" + tests + "/cancel", url.Values{}, true, http.StatusSeeOther, ""},
		} {
			page := ""
			if c.csrf {
				page = auditPath
			}
			resp := c.who.post(c.path, c.form, page)
			if resp.status != c.status || !strings.Contains(resp.body, c.says) {
				t.Errorf("%s POST %s: %d %q, want %d saying %q", c.who.name, c.path, resp.status, resp.body, c.status, c.says)
			}
		}
		if resp := developer.get(s.tokensPath(p)); resp.status != http.StatusForbidden {
			t.Errorf("a Developer opens the tokens page: %d", resp.status)
		}
		audit := reporter.get(auditPath)
		for _, want := range []string{"<td>dave</td><td><code>job.cancel</code>", "<td>dave</td><td><code>job.rerun</code>",
			"<td>alice</td><td><code>token.issue</code>", "<td>alice</td><td><code>job.cancel</code>"} {
			if !strings.Contains(audit.body, want) {
				t.Errorf("the audit log lacks %q:\n%s", want, audit.body)
			}
		}
		if strings.Contains(audit.body, "<td>rita</td>") {
			t.Error("the audit log records a refused action")
		}
	})
}
