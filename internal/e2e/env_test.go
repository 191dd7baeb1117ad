package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// syncBuffer is a log sink shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a simulator and an upbuild server wired together like a real setup.
type env struct {
	t       *testing.T
	ctx     context.Context
	sim     *gitlabsim.Simulator
	seed    gitlabsim.Seeded
	dbURL   string
	dataDir string
	cfg     config.Config
	envVars map[string]string
	up      *httptest.Server
	handler atomic.Pointer[http.Handler] // what up serves: upbuild, or "restarting"
	srv     *server.Server
	stopBg  func()
	logs    *syncBuffer
	stopped bool
}

type envOptions struct {
	approvalPolicy string
	allowed        []string
	simOptions     gitlabsim.Options
}

func newEnv(t *testing.T, dbURL string, opts envOptions) *env {
	t.Helper()
	return newEnvWith(t, dbURL, opts, nil)
}

// newEnvWith is newEnv with a last word on the configuration.
func newEnvWith(t *testing.T, dbURL string, opts envOptions, configure func(*env)) *env {
	t.Helper()
	ctx := context.Background()
	simOpts := opts.simOptions
	simOpts.Dir = t.TempDir()
	sim := gitlabsim.New(simOpts)
	simHTTP := httptest.NewServer(sim)
	t.Cleanup(simHTTP.Close)
	sim.SetBaseURL(simHTTP.URL)
	seed, err := gitlabsim.Seed(ctx, sim)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, sim: sim, seed: seed, dbURL: dbURL, dataDir: filepath.Join(t.TempDir(), "data"),
		envVars: map[string]string{"BOT_TOKEN": seed.Bot.Token}}
	// The upbuild listener exists first, so its URL can be the public URL.
	e.up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := e.handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "upbuild is not running", http.StatusServiceUnavailable)
	}))
	t.Cleanup(e.up.Close)
	cfg, err := config.Load("", func(k string) string { return e.envVars[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.KeyFile, cfg.DatabaseURL = e.dataDir, filepath.Join(e.dataDir, "service.keys"), dbURL
	cfg.PublicURL = e.up.URL
	cfg.Instances = []config.Instance{{URL: simHTTP.URL, BotTokenEnv: "BOT_TOKEN"}}
	cfg.TokenCacheTTL = 0
	if opts.approvalPolicy != "" {
		cfg.ApprovalPolicy = opts.approvalPolicy
	}
	cfg.AllowedNamespaces = opts.allowed
	e.cfg = cfg
	if configure != nil {
		configure(e)
	}
	e.start()
	t.Cleanup(e.stop)
	return e
}

// start runs upbuild (again) on the env's data and database.
func (e *env) start() {
	e.t.Helper()
	e.logs = &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(e.ctx, e.cfg, log, func(k string) string { return e.envVars[k] })
	if err != nil {
		e.t.Fatal(err)
	}
	stop, err := srv.RunBackground(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv, e.stopBg, e.stopped = srv, stop, false
	h := srv.Handler()
	e.handler.Store(&h)
}

// stop shuts upbuild down gracefully.
func (e *env) stop() {
	if e.stopped {
		return
	}
	e.stopped = true
	e.handler.Store(nil)
	e.stopBg()
	if err := e.srv.Close(); err != nil {
		e.t.Errorf("close upbuild: %v", err)
	}
}

// hook connects a simulator project to upbuild with a fresh token.
func (e *env) hook(projectID int64) {
	e.t.Helper()
	p, err := e.sim.Project(projectID)
	if err != nil {
		e.t.Fatal(err)
	}
	ring, _, err := token.LoadOrCreateKeyring(e.cfg.KeyFile)
	if err != nil {
		e.t.Fatal(err)
	}
	inst, err := token.NormalizeInstanceURL(e.cfg.Instances[0].URL)
	if err != nil {
		e.t.Fatal(err)
	}
	m := &hooktoken.Manager{Store: e.srv.Store(), Keyring: ring, PublicURL: e.cfg.PublicURL, Instances: []string{inst}}
	issued, err := m.Issue(e.ctx, token.Scope{Kind: token.ScopeProject, Instance: inst, Path: p.PathWithNamespace}, false, "e2e")
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.sim.AddHook(projectID, gitlabsim.HookSpec{URL: issued.WebhookURL, Token: issued.Token,
		TagPushEvents: true, MergeRequestsEvents: true, NoteEvents: true, ReleasesEvents: true}); err != nil {
		e.t.Fatal(err)
	}
}

// project creates a project in group demo with the given files and hooks it up.
func (e *env) project(path string, files map[string]string) gitlabsim.Project {
	e.t.Helper()
	p, err := e.sim.AddProject(e.ctx, gitlabsim.ProjectSpec{Namespace: "demo", Path: path, Visibility: gitlabsim.Public,
		DefaultBranch: "main", Files: files})
	if err != nil {
		e.t.Fatal(err)
	}
	e.hook(p.ID)
	return p
}

// user adds a user with an access level on the demo group (0: none).
func (e *env) user(name string, level gitlabsim.AccessLevel) gitlabsim.User {
	e.t.Helper()
	u, err := e.sim.AddUser(gitlabsim.UserSpec{Username: name})
	if err != nil {
		e.t.Fatal(err)
	}
	if level > 0 {
		if err := e.sim.AddGroupMember(e.seed.Group.ID, u.ID, level); err != nil {
			e.t.Fatal(err)
		}
	}
	return u
}

// eventually polls cond until it holds, failing with what it last saw.
func (e *env) eventually(what string, cond func() (bool, string)) {
	e.t.Helper()
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
	e.t.Fatalf("timed out waiting for %s; last saw: %s\nupbuild log tail:\n%s", what, last, tail(e.logs.String(), 3000))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// statuses returns name → state of a commit's statuses on the simulator.
func (e *env) statuses(projectID int64, sha string) map[string]string {
	out := map[string]string{}
	for _, st := range e.sim.Statuses(projectID, sha) {
		out[st.Name] = st.Status
	}
	return out
}

// runs lists upbuild's runs of a project.
func (e *env) runs(projectID int64) []store.Run {
	e.t.Helper()
	runs, err := e.srv.Store().Runs(e.ctx, store.RunFilter{ProjectID: projectID})
	if err != nil {
		e.t.Fatal(err)
	}
	return runs
}

// notesBy returns the bodies of an MR's notes written by a user.
func (e *env) notesBy(projectID, iid, userID int64) []string {
	var out []string
	for _, n := range e.sim.Notes(projectID, iid) {
		if n.AuthorID == userID && !n.System {
			out = append(out, n.Body)
		}
	}
	return out
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
