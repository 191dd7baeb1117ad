package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/server"
)

// database is where upbuild keeps its state for one engine's run.
type database struct {
	url    string
	engine string
	where  string
	drop   func() error
}

// prepareDatabase picks SQLite in dataDir, or creates a fresh database on
// the PostgreSQL server that serverURL names (dropped by drop).
func prepareDatabase(ctx context.Context, engine, serverURL, dataDir string) (database, error) {
	if engine == "sqlite" {
		return database{url: filepath.Join(dataDir, "upbuild.db"), engine: engine,
			where: "a file in a temporary data dir", drop: func() error { return nil }}, nil
	}
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return database{}, fmt.Errorf("-postgres: want a postgres:// URL, got %s", redactURL(serverURL))
	}
	name := "bench_dashboard_" + randomHex(6)
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return database{}, fmt.Errorf("connect to PostgreSQL at %s: %w", u.Host, err)
	}
	defer func() { _ = admin.Close(context.WithoutCancel(ctx)) }()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return database{}, fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	drop := func() error {
		dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		conn, err := pgx.Connect(dropCtx, serverURL)
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		defer func() { _ = conn.Close(dropCtx) }()
		if _, err := conn.Exec(dropCtx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return database{url: u.String(), engine: engine,
		where: fmt.Sprintf("fresh database %s on %s, dropped after", name, u.Host), drop: drop}, nil
}

// redactURL hides the password of a database URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// upbuild is the service under test, served from this process on its own
// loopback listener, configured as `upbuild serve` would be.
type upbuild struct {
	srv        *server.Server
	cfg        config.Config
	ln         net.Listener
	base       string
	adminToken string
	logFile    *os.File
	cancel     context.CancelFunc
	stopped    chan error
}

// startUpbuild configures upbuild from environment variables that exist
// only for this run and starts serving. The instance has no bot token:
// deliveries are accepted and stored, and the planner marks them planned
// without asking GitLab, so intake's whole write path runs but no job
// does. No job workers run in-process either.
func startUpbuild(ctx context.Context, instance, dataDir, dbURL, logPath string) (*upbuild, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upbuild: listen: %w", err)
	}
	adminToken := "bench-admin-" + randomHex(24)
	env := map[string]string{
		"UPBUILD_LISTEN":                ln.Addr().String(),
		"UPBUILD_PUBLIC_URL":            "http://" + ln.Addr().String(),
		"UPBUILD_DATA_DIR":              dataDir,
		"UPBUILD_DATABASE_URL":          dbURL,
		"UPBUILD_INSTANCES":             instance,
		"UPBUILD_WORKERS":               "0",
		config.Defaults().AdminTokenEnv: adminToken,
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load("", getenv)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("upbuild: %w", err), ln.Close())
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("upbuild log: %w", err), ln.Close())
	}
	// Errors only: the planner warns about every delivery it cannot plan
	// without a bot token, which is this benchmark's design, not news.
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := server.New(ctx, cfg, log, getenv)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("upbuild: %w", err), ln.Close(), logFile.Close())
	}
	u := &upbuild{srv: srv, cfg: cfg, ln: ln, base: "http://" + ln.Addr().String(), adminToken: adminToken, logFile: logFile}
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	u.cancel = cancel
	u.stopped = make(chan error, 1)
	go func() { u.stopped <- srv.Serve(serveCtx, ln) }()
	return u, nil
}

// stop shuts upbuild down gracefully and waits for it.
func (u *upbuild) stop() error {
	u.cancel()
	err := <-u.stopped
	if cerr := u.logFile.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("upbuild: %w", err)
	}
	return nil
}

// errorLines returns upbuild's error log lines (after stop).
func (u *upbuild) errorLines() []string {
	data, err := os.ReadFile(u.logFile.Name())
	if err != nil {
		return []string{"(upbuild's log could not be read: " + err.Error() + ")"}
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// loadAverage is the machine's one-minute load average, printed because
// other work on a shared machine skews latencies.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if fields := strings.Fields(string(b)); len(fields) > 0 {
		return fields[0]
	}
	return "?"
}
