package benchkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// readyWithin bounds the wait for a started service to answer /readyz.
const readyWithin = 30 * time.Second

// ServiceConfig says how to run upbuild for a benchmark.
type ServiceConfig struct {
	// Instance is the URL of the one GitLab instance upbuild serves.
	Instance string
	// BotToken is upbuild's API token on Instance. Without one, deliveries
	// are accepted, stored and planned without asking GitLab, and no job
	// runs.
	BotToken string
	// RequestsPerMinute, when positive, replaces upbuild's API budget on
	// Instance, as an operator of an instance with higher limits would.
	RequestsPerMinute int
	DataDir           string
	DatabaseURL       string
	// WorkDir, when set, replaces the directory for jobs' working trees
	// (config work_dir), e.g. to keep them with the run's other files.
	WorkDir string
	// LogPath receives upbuild's JSON log lines at LogLevel and above.
	LogPath  string
	LogLevel slog.Level
	// Env holds further settings by variable name, e.g. UPBUILD_WORKERS.
	Env map[string]string
}

// Service is the real upbuild service (internal/server), served from this
// process on its own 127.0.0.1 listener and configured as `upbuild serve`
// would be, from environment variables that exist only for this run.
type Service struct {
	// URL is the service's base URL, e.g. http://127.0.0.1:41234.
	URL        string
	adminToken string
	store      *store.Store
	tokens     *hooktoken.Manager
	logFile    *os.File
	cancel     context.CancelFunc
	failed     chan error
	stopped    chan error
}

// StartService starts upbuild and returns once it answers /readyz.
func StartService(ctx context.Context, sc ServiceConfig) (*Service, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upbuild: listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	adminToken := "bench-admin-" + randomHex(24)
	env := map[string]string{
		"UPBUILD_LISTEN":                ln.Addr().String(),
		"UPBUILD_PUBLIC_URL":            base,
		"UPBUILD_DATA_DIR":              sc.DataDir,
		"UPBUILD_DATABASE_URL":          sc.DatabaseURL,
		"UPBUILD_INSTANCES":             sc.Instance,
		config.Defaults().AdminTokenEnv: adminToken,
	}
	if sc.BotToken != "" {
		env[config.BotTokenEnvName(sc.Instance)] = sc.BotToken
	}
	for k, v := range sc.Env {
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load("", getenv)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("upbuild: %w", err), ln.Close())
	}
	if sc.RequestsPerMinute > 0 {
		cfg.Instances[0].RequestsPerMinute = sc.RequestsPerMinute
	}
	if sc.WorkDir != "" {
		cfg.WorkDir = sc.WorkDir
	}
	logFile, err := os.Create(sc.LogPath)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("upbuild log: %w", err), ln.Close())
	}
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: sc.LogLevel}))
	srv, err := server.New(ctx, cfg, log, getenv)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("upbuild: %w", err), ln.Close(), logFile.Close())
	}
	tokens, err := tokenManager(srv, cfg)
	if err != nil {
		return nil, errors.Join(err, srv.Close(), ln.Close(), logFile.Close())
	}

	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Service{URL: base, adminToken: adminToken, store: srv.Store(), tokens: tokens, logFile: logFile, cancel: cancel,
		failed: make(chan error, 1), stopped: make(chan error, 1)}
	go func() {
		err := srv.Serve(serveCtx, ln)
		if serveCtx.Err() == nil {
			// Stopping by itself is news for whoever is waiting.
			s.failed <- fmt.Errorf("upbuild: %w", errors.Join(err, errors.New("stopped unasked")))
		}
		s.stopped <- err
	}()
	if err := s.waitReady(ctx); err != nil {
		_, serr := s.Stop(ctx)
		return nil, errors.Join(err, serr)
	}
	return s, nil
}

// tokenManager issues webhook tokens the way `upbuild token issue` does.
func tokenManager(srv *server.Server, cfg config.Config) (*hooktoken.Manager, error) {
	ring, _, err := token.LoadOrCreateKeyring(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("upbuild keys: %w", err)
	}
	var instances []string
	for _, raw := range server.InstanceURLs(cfg) {
		inst, err := token.NormalizeInstanceURL(raw)
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", raw, err)
		}
		instances = append(instances, inst)
	}
	return &hooktoken.Manager{Store: srv.Store(), Keyring: ring, PublicURL: cfg.PublicURL, Instances: instances}, nil
}

func (s *Service) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyWithin)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("upbuild readiness: %w", err)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			if cerr := resp.Body.Close(); cerr == nil && resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("upbuild did not become ready within %s: %w", readyWithin, ctx.Err())
		case err := <-s.failed:
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// AdminToken is the admin API token this run made up for upbuild.
func (s *Service) AdminToken() string { return s.adminToken }

// Store is the service's own store, for reading its records (runs, jobs,
// artifacts) from the benchmark while it runs.
func (s *Service) Store() *store.Store { return s.store }

// Failed receives an error when upbuild stops without being asked to.
func (s *Service) Failed() <-chan error { return s.failed }

// TokenRequest asks for a webhook token.
type TokenRequest struct {
	// URL is the project's or group's web URL on the instance.
	URL string
	// Group makes the token cover every project below the group at URL.
	Group bool
	// Signing asks for a signing token as well, for signed deliveries.
	Signing bool
	// IssuedBy is recorded as who issued the token.
	IssuedBy string
}

// IssueWebhookToken issues a webhook token as a maintainer connecting a
// project or group would; the answer holds the webhook URL and secrets.
func (s *Service) IssueWebhookToken(ctx context.Context, req TokenRequest) (hooktoken.Issued, error) {
	scope, err := s.tokens.Scope(req.URL, req.Group)
	if err != nil {
		return hooktoken.Issued{}, fmt.Errorf("token for %s: %w", req.URL, err)
	}
	issued, err := s.tokens.Issue(ctx, scope, req.Signing, req.IssuedBy)
	if err != nil {
		return hooktoken.Issued{}, fmt.Errorf("token for %s: %w", req.URL, err)
	}
	return issued, nil
}

// Stop shuts upbuild down gracefully, waits for it (or for ctx) and
// returns the lines it logged.
func (s *Service) Stop(ctx context.Context) (logged []string, err error) {
	s.cancel()
	select {
	case err = <-s.stopped:
	case <-ctx.Done():
		err = fmt.Errorf("waiting for it to stop: %w", ctx.Err())
	}
	if cerr := s.logFile.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	data, rerr := os.ReadFile(s.logFile.Name())
	if rerr != nil {
		err = errors.Join(err, fmt.Errorf("its log: %w", rerr))
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line != "" {
			logged = append(logged, line)
		}
	}
	if err != nil {
		return logged, fmt.Errorf("upbuild: %w", err)
	}
	return logged, nil
}
