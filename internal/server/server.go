// Package server wires upbuild's parts into one HTTP service. It owns no
// logic of its own: intake, api and store do the work.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/api"
	"upbuild.dev/upbuild/internal/blob"
	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/exec"
	"upbuild.dev/upbuild/internal/forge"
	gitlabforge "upbuild.dev/upbuild/internal/forge/gitlab"
	"upbuild.dev/upbuild/internal/gitfetch"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/intake"
	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/plan"
	"upbuild.dev/upbuild/internal/queue"
	"upbuild.dev/upbuild/internal/report"
	"upbuild.dev/upbuild/internal/sandbox"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
	"upbuild.dev/upbuild/internal/web"
)

// Server is a running upbuild service.
type Server struct {
	cfg       config.Config
	log       *slog.Logger
	store     *store.Store
	committer *store.Committer
	intake    *intake.Handler
	http      *http.Server
	registry  *prometheus.Registry
	queue     *queue.Queue
	planner   *plan.Planner
	reporter  *report.Reporter
	executor  *Execution
}

// PrepareDataDir creates the data directory with mode 0700, or tightens it.
func PrepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}

// OpenStore opens and migrates the configured database.
func OpenStore(ctx context.Context, cfg config.Config) (*store.Store, error) {
	if !store.IsPostgresURL(cfg.DatabaseURL) {
		if err := PrepareDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	s, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// LoadKeyring loads the service keys, generating the first one on first start.
func LoadKeyring(cfg config.Config, log *slog.Logger) (*token.Keyring, error) {
	if err := PrepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	ring, created, err := token.LoadOrCreateKeyring(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("generated a new service signing key", "file", cfg.KeyFile)
	}
	return ring, nil
}

// InstanceURLs returns the configured instances' base URLs.
func InstanceURLs(cfg config.Config) []string {
	out := make([]string, len(cfg.Instances))
	for i, in := range cfg.Instances {
		out[i] = in.URL
	}
	return out
}

// NormalizedInstanceURLs returns the configured instances' base URLs in the
// form tokens and stored rows use.
func NormalizedInstanceURLs(cfg config.Config) ([]string, error) {
	out := make([]string, 0, len(cfg.Instances))
	for _, u := range InstanceURLs(cfg) {
		n, err := token.NormalizeInstanceURL(u)
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", u, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// New builds the service from its configuration.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, getenv func(string) string) (*Server, error) {
	adminToken, err := cfg.AdminToken(getenv)
	if err != nil {
		return nil, err
	}
	ring, err := LoadKeyring(cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := intake.NewMetrics(reg)
	if err != nil {
		st.Close()
		return nil, err
	}
	forges, err := Forges(cfg, log, getenv)
	if err != nil {
		st.Close()
		return nil, err
	}
	aliases, err := Aliases(cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, store: st, registry: reg}
	s.reporter, err = report.New(report.Options{Store: st, Forges: forges, PublicURL: cfg.PublicURL, Logger: log})
	if err != nil {
		st.Close()
		return nil, err
	}
	ex, err := NewExecutor(ctx, cfg, st, log, getenv, s.reporter.Wake)
	if err != nil {
		st.Close()
		return nil, err
	}
	s.executor = ex
	s.queue, err = queue.Open(ctx, st, cfg.DatabaseURL, queue.Options{Handler: ex.Handle, RunWorkers: cfg.Workers > 0,
		Workers: cfg.Workers, Logger: log})
	if err != nil {
		st.Close()
		return nil, err
	}
	cancelJob := func(ctx context.Context, jobID int64) error {
		if err := s.queue.Cancel(ctx, jobID); err != nil && !errors.Is(err, queue.ErrNotFound) {
			return err
		}
		return nil
	}
	s.planner, err = plan.New(plan.Options{Store: st, Forges: forges, Enqueue: s.queue.Enqueue, Cancel: cancelJob, Changed: s.reporter.Wake,
		PublicURL: cfg.PublicURL, Logger: log, Policy: plan.Policy{AllowedNamespaces: cfg.AllowedNamespaces,
			ApprovalPolicy: cfg.ApprovalPolicy, CommandPrefixes: cfg.CommandPrefixes, Aliases: aliases}})
	if err != nil {
		st.Close()
		return nil, err
	}
	s.committer = st.NewCommitter(256)
	s.intake, err = intake.New(intake.Options{
		Store: st, Committer: s.committer, Keyring: ring, Instances: InstanceURLs(cfg),
		MaxBodyBytes: cfg.MaxBodyBytes, TokenCacheTTL: cfg.TokenCacheTTL, SignatureTolerance: cfg.SignatureTolerance,
		Logger: log, Metrics: metrics, Accepted: s.planner.Wake,
		AllowedNamespaces: cfg.AllowedNamespaces, PublicURL: cfg.PublicURL, Changed: s.reporter.Wake,
	})
	if err != nil {
		s.committer.Close()
		st.Close()
		return nil, err
	}
	in := s.intake
	mux := http.NewServeMux()
	mux.Handle("POST /api/webhooks/gitlab", in)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	apps, err := OAuthApps(cfg, getenv)
	if err != nil {
		s.committer.Close()
		st.Close()
		return nil, err
	}
	guard, err := access.New(access.Options{Store: st, Forges: forges, Apps: apps, PublicURL: cfg.PublicURL, AdminToken: adminToken,
		LevelTTL: cfg.AccessLevelTTL, SessionTTL: cfg.SessionTTL, Logger: log})
	if err != nil {
		s.committer.Close()
		st.Close()
		return nil, err
	}
	instances, err := NormalizedInstanceURLs(cfg)
	if err != nil {
		s.committer.Close()
		st.Close()
		return nil, err
	}
	guard.Register(mux)
	(&api.API{Store: st, AdminToken: adminToken, Access: guard, Logger: log,
		Jobs: &api.JobActions{Store: st, Access: guard, PublicURL: cfg.PublicURL, Enqueue: s.queue.Enqueue, Cancel: cancelJob,
			Changed: s.reporter.Wake, Logger: log}}).Register(mux)
	pages := &web.Pages{Store: st, Logs: ex.Logs, Artifacts: ex.Artifacts, PublicURL: cfg.PublicURL, AdminToken: adminToken, Access: guard,
		ApprovalPolicy: cfg.ApprovalPolicy, Aliases: aliases, Logger: log}
	pages.Register(mux)
	(&web.SelfService{Pages: pages, Tokens: &hooktoken.Manager{Store: st, Keyring: ring, PublicURL: cfg.PublicURL, Instances: instances},
		Forges: forges, Enqueue: s.queue.Enqueue, Cancel: cancelJob, Changed: s.reporter.Wake}).Register(mux)
	(&joblog.Handlers{Store: st, Logs: ex.Logs, Artifacts: ex.Artifacts, AdminToken: adminToken, Access: guard, Logger: log}).Register(mux)
	s.http = &http.Server{
		// Pages ask who is signed in several times a request: the session
		// is read from the database once.
		Handler: guard.Remember(mux),
		// Slow clients cannot hold connections: GitLab sends a whole
		// delivery well within these, and waits at most 10 s for us.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Store is the server's store, for the CLI and tests.
func (s *Server) Store() *store.Store { return s.store }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.store.Durability(ctx); err != nil {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

// Forges builds one forge client per configured instance that has a bot
// token, keyed by the instance's normalised URL (as rows store it).
func Forges(cfg config.Config, log *slog.Logger, getenv func(string) string) (map[string]forge.Forge, error) {
	out := map[string]forge.Forge{}
	for _, in := range cfg.Instances {
		tok, err := in.BotToken(getenv)
		if err != nil {
			return nil, err
		}
		key, err := token.NormalizeInstanceURL(in.URL)
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", in.URL, err)
		}
		if tok == "" {
			log.Warn("no bot token for instance: deliveries are accepted but nothing runs or reports", "instance", key)
			continue
		}
		c, err := gitlabforge.New(gitlabforge.Options{BaseURL: in.URL, Token: tok, Logger: log, RequestsPerMinute: in.RequestsPerMinute})
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", in.URL, err)
		}
		out[key] = c
	}
	return out, nil
}

// OAuthApps are the configured instances' OAuth2 applications for
// dashboard sign-in, keyed by normalised instance URL.
func OAuthApps(cfg config.Config, getenv func(string) string) (map[string]access.OAuthApp, error) {
	out := map[string]access.OAuthApp{}
	for _, in := range cfg.Instances {
		id, secret, ok, err := in.OAuthApp(getenv)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		key, err := token.NormalizeInstanceURL(in.URL)
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", in.URL, err)
		}
		out[key] = access.OAuthApp{ClientID: id, ClientSecret: secret}
	}
	return out, nil
}

// Aliases loads the target alias table.
func Aliases(cfg config.Config) (packitcfg.AliasTable, error) {
	if cfg.TargetAliasesFile == "" {
		return packitcfg.DefaultAliasTable(), nil
	}
	data, err := os.ReadFile(cfg.TargetAliasesFile)
	if err != nil {
		return nil, fmt.Errorf("target aliases: %w", err)
	}
	t, err := packitcfg.ParseAliasTable(data)
	if err != nil {
		return nil, fmt.Errorf("target aliases %s: %w", cfg.TargetAliasesFile, err)
	}
	return t, nil
}

// startBackground runs the planner, the reporter, the queue's workers and
// the intake's counters until the returned stop function is called.
func (s *Server) startBackground(ctx context.Context) (stop func(), err error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := s.queue.Start(runCtx); err != nil {
		cancel()
		return nil, err
	}
	// Jobs queued in the store but never handed to the queue (a crash, or
	// a database restart, between planning and enqueueing) are enqueued
	// again now and every half minute; enqueueing is idempotent.
	s.requeue(runCtx)
	done := make(chan struct{}, 5)
	go func() {
		defer func() { done <- struct{}{} }()
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				s.requeue(runCtx)
			}
		}
	}()
	go func() { s.intake.Run(runCtx); done <- struct{}{} }()
	go func() { _ = s.planner.Run(runCtx); done <- struct{}{} }()
	go func() { _ = s.reporter.Run(runCtx); done <- struct{}{} }()
	go func() { s.executor.prune(runCtx, s.cfg.ArtifactRetention, s.log); done <- struct{}{} }()
	return func() {
		// Workers stop taking jobs; jobs in flight get 20 s, then are handed back.
		stopCtx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		if err := s.queue.Stop(stopCtx); err != nil {
			s.log.Warn("stop queue", "err", err)
		}
		cancel()
		for range 5 {
			<-done
		}
	}, nil
}

// requeue hands the queue every job the store has as queued.
func (s *Server) requeue(ctx context.Context) {
	ids, err := s.store.QueuedJobIDs(ctx)
	if err != nil {
		s.log.Warn("recover queued jobs", "err", err)
		return
	}
	if len(ids) == 0 {
		return
	}
	if err := s.queue.Enqueue(ctx, ids...); err != nil {
		s.log.Warn("recover queued jobs", "err", err)
	}
}

// Serve listens on the configured address until ctx ends, then shuts down
// gracefully: in-flight deliveries are answered and committed first.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stopBackground, err := s.startBackground(ctx)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	s.log.Info("upbuild is serving", "addr", ln.Addr().String(), "public_url", s.cfg.PublicURL,
		"database", string(s.store.Dialect())+" "+s.store.Location(), "instances", InstanceURLs(s.cfg))
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if serr := s.http.Shutdown(shutdownCtx); serr != nil {
		err = errors.Join(err, serr)
	}
	s.committer.Close()
	stopBackground()
	if cerr := s.store.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Handler is the server's HTTP handler, for tests that drive it through
// httptest instead of a listener.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// RunBackground starts the background work (planner, reporter, workers,
// counters) for tests that use Handler, and returns its stop function.
// Serve does this itself.
func (s *Server) RunBackground(ctx context.Context) (stop func(), err error) {
	return s.startBackground(ctx)
}

// Close releases the committer and the database, for tests that use Handler
// (after the stop function of RunBackground, if it ran).
func (s *Server) Close() error {
	s.committer.Close()
	return s.store.Close()
}

// Reporter is the server's reporter, for tests that wait for feedback.
func (s *Server) Reporter() *report.Reporter { return s.reporter }

// Planner is the server's planner, for tests.
func (s *Server) Planner() *plan.Planner { return s.planner }

// Execution is what a process needs to run jobs: the executor, and the
// logs and artifacts it writes (which the HTTP handlers read).
type Execution struct {
	*exec.Executor
	Logs      *joblog.Logs
	Artifacts *joblog.Artifacts
}

// NewExecutor builds the job executor from the configuration: the sandbox
// (checked now; if it does not work, untrusted jobs are refused with that
// reason, never run without it), the repository cache, job logs and the
// artifact store (files on SQLite, the database on PostgreSQL so that every
// machine reaches them).
func NewExecutor(ctx context.Context, cfg config.Config, st *store.Store, log *slog.Logger, getenv func(string) string, changed func()) (*Execution, error) {
	var sbErr error
	sb, err := sandbox.New(sandbox.Config{})
	if err == nil {
		var rep sandbox.Report
		if rep, sbErr = sb.Check(ctx); sbErr == nil {
			log.Info("sandbox ready", "bwrap", rep.BwrapVersion, "limits", rep.Mechanism, "note", rep.MechanismNote)
		}
	} else {
		sbErr = err
	}
	if sbErr != nil {
		log.Error("the sandbox does not work here: jobs that run repository code will be refused", "err", sbErr)
	}
	fetcher, err := gitfetch.New(gitfetch.Options{CacheDir: filepath.Join(cfg.DataDir, "repo-cache"), MaxCacheBytes: cfg.RepoCacheBytes, Logger: log})
	if err != nil {
		return nil, err
	}
	var blobs blob.Store = blob.FS{Root: filepath.Join(cfg.DataDir, "artifacts")}
	if st.Dialect() == store.Postgres {
		blobs = &blob.DB{Store: st}
	} else if err := os.MkdirAll(filepath.Join(cfg.DataDir, "artifacts"), 0o700); err != nil {
		return nil, fmt.Errorf("artifacts dir: %w", err)
	}
	tokens := map[string]string{}
	for _, in := range cfg.Instances {
		tok, err := in.BotToken(getenv)
		if err != nil {
			return nil, err
		}
		key, err := token.NormalizeInstanceURL(in.URL)
		if err != nil {
			return nil, err
		}
		tokens[key] = tok
	}
	var envs []exec.BuildEnv
	for _, e := range cfg.BuildEnvironments {
		envs = append(envs, exec.BuildEnv{Pattern: e.Targets, RootFS: e.RootFS, Arch: e.Arch})
	}
	out := &Execution{Logs: joblog.NewLogs(st, joblog.Options{}), Artifacts: joblog.NewArtifacts(st, blobs)}
	out.Executor, err = exec.New(exec.Options{Store: st, Sandbox: sb, SandboxErr: sbErr, Fetcher: fetcher, BotTokens: tokens,
		Logs: out.Logs, Artifacts: out.Artifacts, WorkRoot: cfg.WorkDir, Envs: envs, Changed: changed, Logger: log,
		Caps: store.Caps{PerProject: cfg.ConcurrencyPerProject, PerNamespace: cfg.ConcurrencyPerNamespace}, ActionNetwork: cfg.ActionNetwork})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// prune deletes old artifacts and logs every hour until ctx ends.
func (e *Execution) prune(ctx context.Context, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := e.Artifacts.Prune(ctx, retention); err != nil {
			log.Warn("prune artifacts", "err", err)
		} else if n > 0 {
			log.Info("pruned artifacts", "count", n)
		}
		if _, err := e.Logs.Prune(ctx, retention); err != nil {
			log.Warn("prune logs", "err", err)
		}
	}
}

// RunWorker runs job workers only, until ctx ends: the `upbuild worker`
// process on extra machines. Outcomes go to the store, where the serving
// node's reporter finds them.
func RunWorker(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ex, err := NewExecutor(ctx, cfg, st, log, os.Getenv, nil)
	if err != nil {
		return err
	}
	q, err := queue.Open(ctx, st, cfg.DatabaseURL, queue.Options{Handler: ex.Handle, RunWorkers: true,
		Workers: max(cfg.Workers, 1), Logger: log})
	if err != nil {
		return err
	}
	if err := q.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	log.Info("upbuild worker is running", "database", string(st.Dialect())+" "+st.Location())
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return q.Stop(stopCtx)
}
