// Package stacktest starts the whole of upbuild in-process for a test: the
// GitLab simulator (seeded with gitlabsim.Seed) and the real upbuild server,
// both on 127.0.0.1, with the simulator's webhooks pointing at upbuild.
// Tests drive the simulator like a GitLab user would and read what upbuild
// did from the simulator's records, upbuild's pages or its store.
//
//	testdb.Each(t, func(t *testing.T, dbURL string) {
//		st := stacktest.Start(t, dbURL, stacktest.Options{})
//		p := st.Project("pkg", files)
//		mr := st.OpenMR(p, "alice", "feature", "Add a feature")
//		st.WaitFinal(p.ID, mr.HeadSHA, 2)
//	})
package stacktest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/access/accesstest"
	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// WaitTimeout is how long Eventually and the helpers built on it wait.
const WaitTimeout = 30 * time.Second

// The variables the configuration reads the bot token, the OAuth
// application's secret and the admin token from.
const (
	botTokenEnv    = "BOT_TOKEN"
	oauthSecretEnv = "OAUTH_CLIENT_SECRET"
	adminTokenEnv  = "ADMIN_TOKEN"
)

// Options adjust the stack before it starts.
type Options struct {
	// Simulator configures the GitLab simulator; its Dir is always a
	// fresh temporary directory.
	Simulator gitlabsim.Options
	// AdminToken, when set, is the operator's admin token upbuild accepts.
	AdminToken string
	// Serve runs upbuild through server.Serve on a loopback listener of
	// its own, so that the http.Server's limits (header timeout, header
	// size) apply as in production. Such a stack cannot Restart nor
	// Intercept: there is no handler in between to swap.
	Serve bool
	// Configure has the last word on upbuild's configuration, after the
	// stack filled in the data directory, database, public URL and the
	// simulator instance.
	Configure func(*config.Config)
	// Env holds extra environment variables upbuild reads (the bot token,
	// OAuth secret and admin token are set already).
	Env map[string]string
}

// Stack is a running simulator and upbuild server, stopped when the test
// ends.
type Stack struct {
	t *testing.T
	// Sim is the GitLab simulator; SimURL is its base URL.
	Sim    *gitlabsim.Simulator
	SimURL string
	// Seed is what gitlabsim.Seed created: group demo, maintainer alice,
	// the bot, and the project demo/hello (not hooked up). An OAuth2
	// application for upbuild's sign-in is registered too.
	Seed gitlabsim.Seeded
	// URL is upbuild's base URL (its public URL).
	URL string
	// Config is the configuration upbuild runs with.
	Config config.Config
	// Server is the running upbuild server; Restart replaces it.
	Server *server.Server
	// Instance is the simulator's URL as upbuild's rows store it.
	Instance string

	ctx      context.Context
	logs     *syncBuffer
	log      *slog.Logger
	getenv   func(string) string
	serve    net.Listener // Options.Serve's listener, until upbuild first starts
	handler  atomic.Pointer[http.Handler]
	wrappers []func(http.Handler) http.Handler
	stop     func() // stops the running upbuild; nil while stopped
}

// answerStopped has upbuild's listener answer 503, as between Stop and
// Restart.
func (s *Stack) answerStopped() {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upbuild has stopped", http.StatusServiceUnavailable)
	})
	s.handler.Store(&h)
}

// Start runs the simulator and upbuild on dbURL (see testdb) for t.
func Start(t *testing.T, dbURL string, opts Options) *Stack {
	t.Helper()
	// The stack outlives t.Context, which ends before cleanups run, so
	// upbuild gets to shut down gracefully.
	ctx := context.WithoutCancel(t.Context())
	simOpts := opts.Simulator
	simOpts.Dir = t.TempDir()
	sim := gitlabsim.New(simOpts)
	simHTTP := httptest.NewServer(sim)
	t.Cleanup(simHTTP.Close)
	sim.SetBaseURL(simHTTP.URL)
	seed, err := gitlabsim.Seed(ctx, sim)
	if err != nil {
		t.Fatalf("seed the simulator: %v", err)
	}
	logs := &syncBuffer{}
	s := &Stack{t: t, Sim: sim, SimURL: simHTTP.URL, Seed: seed, ctx: ctx, logs: logs,
		log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}

	// upbuild's listener exists before upbuild does, so that its URL can
	// be the configured public URL.
	if opts.Serve {
		if s.serve, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatalf("listen for upbuild: %v", err)
		}
		s.URL = "http://" + s.serve.Addr().String()
	} else {
		s.answerStopped()
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			(*s.handler.Load()).ServeHTTP(w, r)
		}))
		t.Cleanup(up.Close)
		s.URL = up.URL
	}

	// Sign-in works as on a real instance: an OAuth application
	// registered on the simulator with upbuild's callback as redirect URI.
	clientID, clientSecret := sim.AddOAuthApp(s.URL+"/signin/callback", "read_user")
	env := map[string]string{botTokenEnv: seed.Bot.Token, oauthSecretEnv: clientSecret}
	if opts.AdminToken != "" {
		env[adminTokenEnv] = opts.AdminToken
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	s.getenv = func(k string) string { return env[k] }
	cfg, err := config.Load("", s.getenv)
	if err != nil {
		t.Fatalf("default configuration: %v", err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg.DataDir, cfg.KeyFile, cfg.DatabaseURL = dataDir, filepath.Join(dataDir, "service.keys"), dbURL
	cfg.PublicURL = s.URL
	cfg.Instances = []config.Instance{{URL: simHTTP.URL, BotTokenEnv: botTokenEnv,
		OAuthClientID: clientID, OAuthClientSecretEnv: oauthSecretEnv}}
	cfg.TokenCacheTTL = 0
	if opts.AdminToken != "" {
		cfg.AdminTokenEnv = adminTokenEnv
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	s.Config = cfg
	if s.Instance, err = token.NormalizeInstanceURL(simHTTP.URL); err != nil {
		t.Fatalf("simulator URL: %v", err)
	}

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("upbuild log tail:\n%s", tail(s.logs.String(), 4000))
		}
	})
	t.Cleanup(s.Stop)
	s.run()
	return s
}

// run starts upbuild on the stack's configuration.
func (s *Stack) run() {
	s.t.Helper()
	srv, err := server.New(s.ctx, s.Config, s.log, s.getenv)
	if err != nil {
		s.t.Fatalf("start upbuild: %v", err)
	}
	s.Server = srv
	if s.serve != nil {
		ln := s.serve
		s.serve = nil
		serveCtx, cancel := context.WithCancel(s.ctx)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(serveCtx, ln) }()
		s.stop = func() {
			cancel()
			if err := <-served; err != nil {
				s.t.Errorf("upbuild stopped with: %v", err)
			}
		}
		return
	}
	stopBackground, err := srv.RunBackground(s.ctx)
	if err != nil {
		if cerr := srv.Close(); cerr != nil {
			s.t.Errorf("close upbuild: %v", cerr)
		}
		s.t.Fatalf("start upbuild's background work: %v", err)
	}
	s.serveHandler()
	s.stop = func() {
		s.answerStopped()
		stopBackground()
		if err := srv.Close(); err != nil {
			s.t.Errorf("close upbuild: %v", err)
		}
	}
}

// serveHandler has the listener serve the running upbuild, behind the
// interceptors.
func (s *Stack) serveHandler() {
	h := s.Server.Handler()
	for _, wrap := range s.wrappers {
		h = wrap(h)
	}
	s.handler.Store(&h)
}

// Stop shuts upbuild down gracefully, as an operator's SIGTERM does: its
// listener answers 503 until Restart. The simulator keeps running. Stop
// is called when the test ends; calling it before is fine.
func (s *Stack) Stop() {
	if s.stop == nil {
		return
	}
	stop := s.stop
	s.stop = nil
	stop()
}

// Restart stops upbuild if it runs and starts it again on the same
// configuration, data directory and database, behind the same URL: what
// was on its way (deliveries, queued jobs) must survive it.
func (s *Stack) Restart() {
	s.t.Helper()
	if s.handler.Load() == nil {
		s.t.Fatal("stacktest: a stack started with Options.Serve cannot restart")
	}
	s.Stop()
	s.run()
}

// Intercept puts wrap in front of upbuild's handler, for this run and
// every restart, e.g. to record what upbuild answers.
func (s *Stack) Intercept(wrap func(http.Handler) http.Handler) {
	s.t.Helper()
	if s.handler.Load() == nil {
		s.t.Fatal("stacktest: a stack started with Options.Serve cannot intercept")
	}
	s.wrappers = append(s.wrappers, wrap)
	if s.stop != nil {
		s.serveHandler()
	}
}

// Logger writes to the stack's log, for parts of upbuild a test runs
// itself (a separate worker).
func (s *Stack) Logger() *slog.Logger { return s.log }

// Context is the stack's context, for calls a test makes itself.
func (s *Stack) Context() context.Context { return s.ctx }

// Logs is everything upbuild has logged so far (JSON lines).
func (s *Stack) Logs() string { return s.logs.String() }

// Tokens is the webhook token manager, as `upbuild token` uses it.
func (s *Stack) Tokens() *hooktoken.Manager {
	s.t.Helper()
	ring, _, err := token.LoadOrCreateKeyring(s.Config.KeyFile)
	if err != nil {
		s.t.Fatalf("service keys: %v", err)
	}
	return &hooktoken.Manager{Store: s.Server.Store(), Keyring: ring, PublicURL: s.Config.PublicURL, Instances: []string{s.Instance}}
}

// Hook connects a simulator project to upbuild with a freshly issued
// webhook token, for pushes, tags, merge requests, comments and releases,
// and returns what was issued.
func (s *Stack) Hook(projectID int64) hooktoken.Issued {
	s.t.Helper()
	return s.HookEvents(projectID, gitlabsim.HookSpec{TagPushEvents: true, MergeRequestsEvents: true, NoteEvents: true, ReleasesEvents: true})
}

// HookEvents is Hook for the events events asks for (pushes always come);
// its URL and token are upbuild's.
func (s *Stack) HookEvents(projectID int64, events gitlabsim.HookSpec) hooktoken.Issued {
	s.t.Helper()
	p, err := s.Sim.Project(projectID)
	if err != nil {
		s.t.Fatalf("project %d: %v", projectID, err)
	}
	issued, err := s.Tokens().Issue(s.ctx, token.Scope{Kind: token.ScopeProject, Instance: s.Instance, Path: p.PathWithNamespace}, false, "stacktest")
	if err != nil {
		s.t.Fatalf("issue a webhook token: %v", err)
	}
	events.URL, events.Token = issued.WebhookURL, issued.Token
	if _, err := s.Sim.AddHook(projectID, events); err != nil {
		s.t.Fatalf("add the webhook: %v", err)
	}
	return issued
}

// Project creates a public project demo/<path> on main with files, and
// hooks it up to upbuild.
func (s *Stack) Project(path string, files map[string]string) gitlabsim.Project {
	s.t.Helper()
	return s.ProjectWith(gitlabsim.ProjectSpec{Namespace: "demo", Path: path, Visibility: gitlabsim.Public,
		DefaultBranch: "main", Files: files})
}

// ProjectWith creates a project from spec and hooks it up to upbuild.
func (s *Stack) ProjectWith(spec gitlabsim.ProjectSpec) gitlabsim.Project {
	s.t.Helper()
	p, err := s.Sim.AddProject(s.ctx, spec)
	if err != nil {
		s.t.Fatalf("create project %s: %v", spec.Path, err)
	}
	s.Hook(p.ID)
	return p
}

// User adds a user with an access level on the demo group (0: no
// membership).
func (s *Stack) User(name string, level gitlabsim.AccessLevel) gitlabsim.User {
	s.t.Helper()
	u, err := s.Sim.AddUser(gitlabsim.UserSpec{Username: name})
	if err != nil {
		s.t.Fatalf("add user %s: %v", name, err)
	}
	if level > 0 {
		if err := s.Sim.AddGroupMember(s.Seed.Group.ID, u.ID, level); err != nil {
			s.t.Fatalf("make %s a member of demo: %v", name, err)
		}
	}
	return u
}

// Push pushes one commit with changes to branch as author and returns the
// new head.
func (s *Stack) Push(p gitlabsim.Project, branch, author, message string, changes ...gitlabsim.FileChange) string {
	s.t.Helper()
	sha, err := s.Sim.PushCommits(s.ctx, p.ID, branch, author, gitlabsim.CommitSpec{Message: message, Changes: changes})
	if err != nil {
		s.t.Fatalf("push to %s: %v", branch, err)
	}
	return sha
}

// OpenMR pushes a commit to branch as author and opens a merge request
// from it into main, titled title.
func (s *Stack) OpenMR(p gitlabsim.Project, author, branch, title string) gitlabsim.MergeRequest {
	s.t.Helper()
	s.Push(p, branch, author, "change on "+branch, gitlabsim.FileChange{Path: "README", Content: "change on " + branch + "\n"})
	mr, err := s.Sim.OpenMergeRequest(s.ctx, gitlabsim.MergeRequestSpec{ProjectID: p.ID, SourceBranch: branch,
		TargetBranch: "main", Title: title, Author: author})
	if err != nil {
		s.t.Fatalf("open a merge request from %s: %v", branch, err)
	}
	return mr
}

// SignIn signs a simulator user in to upbuild through the simulator's
// OAuth2 sign-in form and consent page, as a browser would, and returns an
// HTTP client whose cookie jar holds the session.
func (s *Stack) SignIn(username string) *http.Client {
	s.t.Helper()
	client, err := accesstest.NewBrowser()
	if err != nil {
		s.t.Fatalf("sign in %s: %v", username, err)
	}
	if err := accesstest.SignIn(s.ctx, client, s.URL, s.SimURL, username); err != nil {
		s.t.Fatalf("sign in %s: %v", username, err)
	}
	return client
}

// Eventually polls cond until it holds or WaitTimeout passes, then fails
// the test with what cond last saw and the tail of upbuild's log.
func (s *Stack) Eventually(what string, cond func() (ok bool, seen string)) {
	s.t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	last := ""
	for {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting for %s; last saw: %s", WaitTimeout, what, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Statuses returns the latest commit status of each name on a commit, as
// the simulator holds them.
func (s *Stack) Statuses(projectID int64, sha string) map[string]gitlabsim.CommitStatus {
	out := map[string]gitlabsim.CommitStatus{}
	for _, st := range s.Sim.Statuses(projectID, sha) {
		out[st.Name] = st
	}
	return out
}

// WaitFinal waits until a commit has want statuses, none pending or
// running, and returns them by name.
func (s *Stack) WaitFinal(projectID int64, sha string, want int) map[string]gitlabsim.CommitStatus {
	s.t.Helper()
	var got map[string]gitlabsim.CommitStatus
	s.Eventually(fmt.Sprintf("%d final statuses on %.8s", want, sha), func() (bool, string) {
		got = s.Statuses(projectID, sha)
		if len(got) != want {
			return false, describeStatuses(got)
		}
		for _, st := range got {
			if st.Status == "pending" || st.Status == "running" {
				return false, describeStatuses(got)
			}
		}
		return true, ""
	})
	return got
}

func describeStatuses(m map[string]gitlabsim.CommitStatus) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + m[n].Status
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Runs lists upbuild's runs of a project, newest first.
func (s *Stack) Runs(projectID int64) []store.Run {
	s.t.Helper()
	runs, err := s.Server.Store().Runs(s.ctx, store.RunFilter{Instance: s.Instance, ProjectID: projectID})
	if err != nil {
		s.t.Fatalf("list runs: %v", err)
	}
	return runs
}

// WaitRun waits for upbuild's run of a commit and returns it.
func (s *Stack) WaitRun(projectID int64, sha string) store.Run {
	s.t.Helper()
	var run store.Run
	s.Eventually(fmt.Sprintf("a run of %.8s", sha), func() (bool, string) {
		runs, err := s.Server.Store().Runs(s.ctx, store.RunFilter{Instance: s.Instance, ProjectID: projectID, SHA: sha})
		if err != nil {
			return false, err.Error()
		}
		if len(runs) == 0 {
			return false, "no run"
		}
		run = runs[0]
		return true, ""
	})
	return run
}

// Jobs lists a run's jobs.
func (s *Stack) Jobs(runID int64) []store.Job {
	s.t.Helper()
	jobs, err := s.Server.Store().RunJobs(s.ctx, runID)
	if err != nil {
		s.t.Fatalf("jobs of run %d: %v", runID, err)
	}
	return jobs
}

// ProjectPage is the URL of a project's page on upbuild.
func (s *Stack) ProjectPage(p gitlabsim.Project) string {
	return s.URL + "/p/" + url.PathEscape(s.instanceHost()) + "/" + p.PathWithNamespace
}

// SettingsPage is the URL of a project's settings page on upbuild.
func (s *Stack) SettingsPage(p gitlabsim.Project) string {
	return s.URL + "/settings/" + url.PathEscape(s.instanceHost()) + "/" + p.PathWithNamespace
}

// RunPage is the URL of a run's page on upbuild.
func (s *Stack) RunPage(runID int64) string { return fmt.Sprintf("%s/runs/%d", s.URL, runID) }

// JobPage is the URL of a job's page on upbuild.
func (s *Stack) JobPage(jobID int64) string { return fmt.Sprintf("%s/jobs/%d", s.URL, jobID) }

func (s *Stack) instanceHost() string {
	u, err := url.Parse(s.Instance)
	if err != nil || u.Host == "" {
		return s.Instance
	}
	return u.Host
}

// syncBuffer is a log sink shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
