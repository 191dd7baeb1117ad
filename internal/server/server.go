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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"upbuild.dev/upbuild/internal/api"
	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/intake"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
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
	committer := st.NewCommitter(256)
	in, err := intake.New(intake.Options{
		Store: st, Committer: committer, Keyring: ring, Instances: InstanceURLs(cfg),
		MaxBodyBytes: cfg.MaxBodyBytes, TokenCacheTTL: cfg.TokenCacheTTL, SignatureTolerance: cfg.SignatureTolerance,
		Logger: log, Metrics: metrics,
	})
	if err != nil {
		committer.Close()
		st.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, store: st, committer: committer, intake: in, registry: reg}
	mux := http.NewServeMux()
	mux.Handle("POST /api/webhooks/gitlab", in)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	(&api.API{Store: st, AdminToken: adminToken, Logger: log}).Register(mux)
	s.http = &http.Server{
		Handler: mux,
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

// Serve listens on the configured address until ctx ends, then shuts down
// gracefully: in-flight deliveries are answered and committed first.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); s.intake.Run(runCtx) }()
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	s.log.Info("upbuild is serving", "addr", ln.Addr().String(), "public_url", s.cfg.PublicURL,
		"database", string(s.store.Dialect())+" "+s.store.Location(), "instances", InstanceURLs(s.cfg))
	var err error
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
	stopRun()
	<-done
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

// RunBackground starts the intake's background flushing until ctx ends,
// for tests that use Handler. Serve does this itself.
func (s *Server) RunBackground(ctx context.Context) { s.intake.Run(ctx) }

// Close releases the committer and the database, for tests that use Handler.
func (s *Server) Close() error {
	s.committer.Close()
	return s.store.Close()
}
