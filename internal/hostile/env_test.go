package hostile_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

const (
	adminToken   = "admin-secret-for-hostile-tests"
	maxBodyBytes = 1 << 20
	otherInst    = "https://other-gitlab.example.com"
)

const packitYAML = `specfile_path: pkg.spec
upstream_package_name: pkg
downstream_package_name: pkg
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
`

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

// env is the GitLab simulator and a real upbuild server listening on
// loopback through server.Serve, so the http.Server's own limits (header
// timeout, header size) are the ones under test.
type env struct {
	t       *testing.T
	ctx     context.Context
	sim     *gitlabsim.Simulator
	seed    gitlabsim.Seeded
	url     string // upbuild's base URL
	addr    string // upbuild's host:port
	store   *store.Store
	tokens  *hooktoken.Manager
	inst    string // the simulator's normalised instance URL
	logs    *syncBuffer
	project gitlabsim.Project
	token   string // the hooked project's webhook token
	// mrBody and pushBody are deliveries the simulator really sent for
	// the project, the starting point of most hostile bodies.
	mrBody, pushBody []byte
	jobID            int64 // a job of the project's merge request run
}

func newEnv(t *testing.T, dbURL string) *env {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, sim: sim, seed: seed, addr: ln.Addr().String(), logs: &syncBuffer{}}
	e.url = "http://" + e.addr
	vars := map[string]string{"BOT_TOKEN": seed.Bot.Token, "UPBUILD_ADMIN_TOKEN": adminToken}
	getenv := func(k string) string { return vars[k] }
	cfg, err := config.Load("", getenv)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg.DataDir, cfg.KeyFile, cfg.DatabaseURL = dataDir, filepath.Join(dataDir, "service.keys"), dbURL
	cfg.PublicURL = e.url
	cfg.Instances = []config.Instance{{URL: simHTTP.URL, BotTokenEnv: "BOT_TOKEN"}}
	cfg.TokenCacheTTL = 0
	cfg.MaxBodyBytes = maxBodyBytes
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(ctx, cfg, log, getenv)
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("upbuild stopped with: %v", err)
		}
	})
	e.store = srv.Store()
	ring, _, err := token.LoadOrCreateKeyring(cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if e.inst, err = token.NormalizeInstanceURL(simHTTP.URL); err != nil {
		t.Fatal(err)
	}
	e.tokens = &hooktoken.Manager{Store: e.store, Keyring: ring, PublicURL: e.url, Instances: []string{e.inst}}
	e.prepare()
	return e
}

// prepare hooks a project up, opens a merge request the way a user does,
// keeps the deliveries GitLab sent and waits until planning settled.
func (e *env) prepare() {
	e.t.Helper()
	e.project, e.token = e.hookedProject("pkg", map[string]string{".packit.yaml": packitYAML, "pkg.spec": "Name: pkg\nVersion: 1.0\n"})
	mr := e.openMR(e.project, "feature")
	for _, d := range e.sim.Deliveries() {
		switch {
		case d.ProjectID != e.project.ID || d.StatusCode != http.StatusAccepted:
		case d.Event == "Merge Request Hook":
			e.mrBody = d.Body
		case d.Event == "Push Hook":
			e.pushBody = d.Body
		}
	}
	if e.mrBody == nil || e.pushBody == nil {
		e.t.Fatalf("the simulator's deliveries were not accepted: %+v\n%s", e.sim.Deliveries(), e.logs.String())
	}
	eventually(e.t, e, "the merge request's statuses are final", func() bool {
		sts := e.sim.Statuses(e.project.ID, mr.HeadSHA)
		for _, st := range sts {
			if st.Status == "pending" || st.Status == "running" {
				return false
			}
		}
		return len(sts) == 1
	})
	runs, err := e.store.Runs(e.ctx, store.RunFilter{ProjectID: e.project.ID})
	if err != nil || len(runs) != 1 {
		e.t.Fatalf("runs %+v, %v", runs, err)
	}
	jobs, err := e.store.RunJobs(e.ctx, runs[0].ID)
	if err != nil || len(jobs) == 0 {
		e.t.Fatalf("jobs %+v, %v", jobs, err)
	}
	e.jobID = jobs[0].ID
}

// hookedProject creates a public project in group demo and adds a webhook
// with a fresh token, as `upbuild token issue` and the GitLab UI do.
func (e *env) hookedProject(path string, files map[string]string) (gitlabsim.Project, string) {
	e.t.Helper()
	p, err := e.sim.AddProject(e.ctx, gitlabsim.ProjectSpec{Namespace: "demo", Path: path, Visibility: gitlabsim.Public,
		DefaultBranch: "main", Files: files})
	if err != nil {
		e.t.Fatal(err)
	}
	issued := e.issue(token.Scope{Kind: token.ScopeProject, Instance: e.inst, Path: p.PathWithNamespace})
	if _, err := e.sim.AddHook(p.ID, gitlabsim.HookSpec{URL: issued.WebhookURL, Token: issued.Token,
		MergeRequestsEvents: true}); err != nil {
		e.t.Fatal(err)
	}
	return p, issued.Token
}

func (e *env) issue(scope token.Scope) hooktoken.Issued {
	e.t.Helper()
	issued, err := e.tokens.Issue(e.ctx, scope, false, "hostile test")
	if err != nil {
		e.t.Fatal(err)
	}
	return issued
}

// openMR pushes a branch and opens a merge request from it, and waits
// until GitLab delivered its hooks.
func (e *env) openMR(p gitlabsim.Project, branch string) gitlabsim.MergeRequest {
	e.t.Helper()
	if _, err := e.sim.PushCommits(e.ctx, p.ID, branch, e.seed.Maintainer.Username, gitlabsim.CommitSpec{Message: "change",
		Changes: []gitlabsim.FileChange{{Path: "README", Content: "change on " + branch + "\n"}}}); err != nil {
		e.t.Fatal(err)
	}
	mr, err := e.sim.OpenMergeRequest(e.ctx, gitlabsim.MergeRequestSpec{ProjectID: p.ID, SourceBranch: branch,
		TargetBranch: "main", Title: "Change " + branch, Author: e.seed.Maintainer.Username})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.sim.WaitDeliveries(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return mr
}

func eventually(t *testing.T, e *env, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s\nupbuild log:\n%s", what, tail(e.logs.String(), 3000))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// counts is what the store holds that hostile input must not add to.
type counts struct{ deliveries, runs, jobs int64 }

func (e *env) counts() counts {
	e.t.Helper()
	var c counts
	var err error
	if c.deliveries, err = e.store.CountDeliveries(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	runs, err := e.store.Runs(e.ctx, store.RunFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	c.runs = int64(len(runs))
	for _, r := range runs {
		jobs, err := e.store.RunJobs(e.ctx, r.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		c.jobs += int64(len(jobs))
	}
	return c
}

// answer is what a client saw. Closed is set when the server hung up
// without answering.
type answer struct {
	code   int
	body   string
	closed bool
	// accepted counts deliveries accepted, when one input sends many.
	accepted int64
}

// request sends one request through Go's client.
func (e *env) request(method, path string, body []byte, header http.Header) answer {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return answer{code: resp.StatusCode, body: string(raw)}
}

// deliveryHeader is what GitLab sends with a delivery of the project.
func (e *env) deliveryHeader(event string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitLab/18.6.0")
	h.Set("X-Gitlab-Event", event)
	h.Set("X-Gitlab-Token", e.token)
	h.Set("X-Gitlab-Instance", e.inst)
	return h
}

// deliver posts a delivery with GitLab's headers; change edits them first.
func (e *env) deliver(event string, body []byte, change func(http.Header)) answer {
	e.t.Helper()
	h := e.deliveryHeader(event)
	if change != nil {
		change(h)
	}
	return e.request(http.MethodPost, "/api/webhooks/gitlab", body, h)
}

// raw writes request bytes on a TCP connection, as a client that ignores
// the HTTP rules would, and reads the answer.
func (e *env) raw(request string) answer {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		e.t.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return answer{closed: true}
	}
	if err != nil {
		e.t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read answer: %v", err)
	}
	return answer{code: resp.StatusCode, body: string(b)}
}

// rawDelivery is a delivery of the project as request bytes; extra is
// spliced into the header block verbatim.
func (e *env) rawDelivery(event, extra string, body []byte) string {
	var b strings.Builder
	b.WriteString("POST /api/webhooks/gitlab HTTP/1.1\r\nHost: " + e.addr + "\r\nContent-Type: application/json\r\n")
	b.WriteString("X-Gitlab-Token: " + e.token + "\r\n")
	if event != "" {
		b.WriteString("X-Gitlab-Event: " + event + "\r\n")
	}
	b.WriteString(extra)
	b.WriteString("Connection: close\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteString("\r\n\r\n")
	b.Write(body)
	return b.String()
}
