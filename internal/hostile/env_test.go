package hostile_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/stacktest"
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

// env is the GitLab simulator and a real upbuild server listening on
// loopback through server.Serve (stacktest's Options.Serve), so the
// http.Server's own limits (header timeout, header size) are the ones
// under test.
type env struct {
	*stacktest.Stack
	t       *testing.T
	addr    string // upbuild's host:port
	project gitlabsim.Project
	token   string // the hooked project's webhook token
	// mrBody and pushBody are deliveries the simulator really sent for
	// the project, the starting point of most hostile bodies.
	mrBody, pushBody []byte
	jobID            int64 // a job of the project's merge request run
}

func newEnv(t *testing.T, dbURL string) *env {
	t.Helper()
	st := stacktest.Start(t, dbURL, stacktest.Options{Serve: true, AdminToken: adminToken,
		Configure: func(cfg *config.Config) { cfg.MaxBodyBytes = maxBodyBytes }})
	e := &env{Stack: st, t: t, addr: strings.TrimPrefix(st.URL, "http://")}
	e.prepare()
	return e
}

// prepare hooks a project up, opens a merge request the way a user does,
// keeps the deliveries GitLab sent and waits until planning settled.
func (e *env) prepare() {
	e.t.Helper()
	e.project, e.token = e.hookedProject("pkg", map[string]string{".packit.yaml": packitYAML, "pkg.spec": "Name: pkg\nVersion: 1.0\n"})
	mr := e.openMR(e.project, "feature")
	for _, d := range e.Sim.Deliveries() {
		switch {
		case d.ProjectID != e.project.ID || d.StatusCode != http.StatusAccepted:
		case d.Event == "Merge Request Hook":
			e.mrBody = d.Body
		case d.Event == "Push Hook":
			e.pushBody = d.Body
		}
	}
	if e.mrBody == nil || e.pushBody == nil {
		e.t.Fatalf("the simulator's deliveries were not accepted: %+v\n%s", e.Sim.Deliveries(), e.Logs())
	}
	eventually(e.t, e, "the merge request's statuses are final", func() bool {
		sts := e.Sim.Statuses(e.project.ID, mr.HeadSHA)
		for _, st := range sts {
			if st.Status == "pending" || st.Status == "running" {
				return false
			}
		}
		return len(sts) == 1
	})
	runs, err := e.Server.Store().Runs(e.Context(), store.RunFilter{ProjectID: e.project.ID})
	if err != nil || len(runs) != 1 {
		e.t.Fatalf("runs %+v, %v", runs, err)
	}
	jobs, err := e.Server.Store().RunJobs(e.Context(), runs[0].ID)
	if err != nil || len(jobs) == 0 {
		e.t.Fatalf("jobs %+v, %v", jobs, err)
	}
	e.jobID = jobs[0].ID
}

// hookedProject creates a public project in group demo and adds a webhook
// with a fresh token, as `upbuild token issue` and the GitLab UI do.
func (e *env) hookedProject(path string, files map[string]string) (gitlabsim.Project, string) {
	e.t.Helper()
	p, err := e.Sim.AddProject(e.Context(), gitlabsim.ProjectSpec{Namespace: "demo", Path: path, Visibility: gitlabsim.Public,
		DefaultBranch: "main", Files: files})
	if err != nil {
		e.t.Fatal(err)
	}
	return p, e.HookEvents(p.ID, gitlabsim.HookSpec{MergeRequestsEvents: true}).Token
}

func (e *env) issue(scope token.Scope) hooktoken.Issued {
	e.t.Helper()
	issued, err := e.Tokens().Issue(e.Context(), scope, false, "hostile test")
	if err != nil {
		e.t.Fatal(err)
	}
	return issued
}

// openMR pushes a branch and opens a merge request from it, and waits
// until GitLab delivered its hooks.
func (e *env) openMR(p gitlabsim.Project, branch string) gitlabsim.MergeRequest {
	e.t.Helper()
	mr := e.OpenMR(p, e.Seed.Maintainer.Username, branch, "Change "+branch)
	if err := e.Sim.WaitDeliveries(e.Context()); err != nil {
		e.t.Fatal(err)
	}
	return mr
}

func eventually(t *testing.T, e *env, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s\nupbuild log:\n%s", what, tail(e.Logs(), 3000))
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
	if c.deliveries, err = e.Server.Store().CountDeliveries(e.Context()); err != nil {
		e.t.Fatal(err)
	}
	runs, err := e.Server.Store().Runs(e.Context(), store.RunFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	c.runs = int64(len(runs))
	for _, r := range runs {
		jobs, err := e.Server.Store().RunJobs(e.Context(), r.ID)
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
	ctx, cancel := context.WithTimeout(e.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.URL+path, bytes.NewReader(body))
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
	h.Set("X-Gitlab-Instance", e.Instance)
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
