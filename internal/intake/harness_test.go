package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// fixtures are GitLab's real webhook payloads, as shipped by the client module.
const fixtures = "../forge/gitlab/testdata/webhooks"

const adminToken = "admin-secret-for-tests"

type harness struct {
	t       testing.TB
	url     string
	srv     *server.Server
	store   *store.Store
	tokens  *hooktoken.Manager
	cfg     config.Config
	cancel  context.CancelFunc
	http    *httptest.Server
	logs    *bytes.Buffer
	stopped bool

	stopBackground func()
}

// newHarness runs a real server on dbURL with the given instances.
func newHarness(t *testing.T, dbURL string, instances ...string) *harness {
	t.Helper()
	return newHarnessDir(t, filepath.Join(t.TempDir(), "data"), dbURL, instances...)
}

// newHarnessTB is newHarness for benchmarks.
func newHarnessTB(t testing.TB, dbURL string, instances ...string) *harness {
	t.Helper()
	return newHarnessDir(t, filepath.Join(t.TempDir(), "data"), dbURL, instances...)
}

// newHarnessDir runs a real server with its data (and key file) in dataDir.
func newHarnessDir(t testing.TB, dataDir, dbURL string, instances ...string) *harness {
	t.Helper()
	env := map[string]string{"UPBUILD_ADMIN_TOKEN": adminToken}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dataDir
	cfg.KeyFile = filepath.Join(cfg.DataDir, "service.keys")
	cfg.DatabaseURL = dbURL
	cfg.TokenCacheTTL = 0 // every delivery sees revocations at once
	if _, ok := t.(*testing.B); ok {
		cfg.TokenCacheTTL = 2 * time.Second // as in production, for profiles that mean something
	}
	cfg.MaxBodyBytes = 1 << 20
	cfg.Instances = nil
	for _, in := range instances {
		cfg.Instances = append(cfg.Instances, config.Instance{URL: in})
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log, func(k string) string { return env[k] })
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stopBackground, err := srv.RunBackground(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ring, _, err := token.LoadOrCreateKeyring(cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var norm []string
	for _, in := range instances {
		n, err := token.NormalizeInstanceURL(in)
		if err != nil {
			t.Fatal(err)
		}
		norm = append(norm, n)
	}
	h := &harness{t: t, srv: srv, store: srv.Store(), cfg: cfg, cancel: cancel, logs: logs, stopBackground: stopBackground,
		tokens: &hooktoken.Manager{Store: srv.Store(), Keyring: ring, PublicURL: cfg.PublicURL, Instances: norm}}
	h.http = httptest.NewServer(srv.Handler())
	h.url = h.http.URL
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	h.http.Close()
	h.stopBackground()
	h.cancel()
	if err := h.srv.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
		h.t.Errorf("close server: %v", err)
	}
}

// issue issues a token for a project or group URL.
func (h *harness) issue(rawURL string, group, signing bool) hooktoken.Issued {
	h.t.Helper()
	scope, err := h.tokens.Scope(rawURL, group)
	if err != nil {
		h.t.Fatal(err)
	}
	out, err := h.tokens.Issue(context.Background(), scope, signing, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

type answer struct {
	Code int
	Body map[string]any
	Raw  string
}

// deliver posts a delivery the way GitLab does.
func (h *harness) deliver(event string, body []byte, headers map[string]string) answer {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+"/api/webhooks/gitlab", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitLab/18.6.0")
	if event != "" {
		req.Header.Set("X-Gitlab-Event", event)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Code: resp.StatusCode, Raw: string(raw)}
	_ = json.Unmarshal(raw, &a.Body)
	return a
}

func (h *harness) get(path, bearer string) answer {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Code: resp.StatusCode, Raw: string(raw)}
	_ = json.Unmarshal(raw, &a.Body)
	return a
}

func (h *harness) count() int64 {
	h.t.Helper()
	n, err := h.store.CountDeliveries(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit decodes a fixture, lets fn change it and encodes it again.
func edit(t *testing.T, body []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
