package web_test

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/stacktest"
)

// stack is the GitLab simulator and a real upbuild server (stacktest), with
// the operator's admin token and GitLab sign-in, as an operator runs it.
type stack struct {
	*stacktest.Stack
	t    *testing.T
	host string // the simulator's host, as dashboard URLs name it
}

// newStack starts the simulator and upbuild; workers 0 leaves jobs queued.
func newStack(t *testing.T, dbURL string, workers int) *stack {
	t.Helper()
	st := stacktest.Start(t, dbURL, stacktest.Options{AdminToken: adminToken,
		Configure: func(cfg *config.Config) { cfg.Workers = workers }})
	u, err := url.Parse(st.SimURL)
	if err != nil {
		t.Fatal(err)
	}
	return &stack{Stack: st, t: t, host: u.Host}
}

// project creates a project in the seed's group (where the bot is a
// Developer), with no webhook yet.
func (s *stack) project(path string, vis gitlabsim.Visibility, files map[string]string) gitlabsim.Project {
	s.t.Helper()
	p, err := s.Sim.AddProject(s.Context(), gitlabsim.ProjectSpec{Namespace: "demo", Path: path, Visibility: vis,
		DefaultBranch: "main", Files: files})
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

func (s *stack) tokensPath(p gitlabsim.Project) string {
	return "/tokens/" + s.host + "/" + p.PathWithNamespace
}

func (s *stack) auditPath(p gitlabsim.Project) string {
	return "/audit/" + s.host + "/" + p.PathWithNamespace
}

func (s *stack) settingsPath(p gitlabsim.Project) string {
	return "/settings/" + s.host + "/" + p.PathWithNamespace
}

// response is what a browser got.
type response struct {
	status   int
	body     string
	location string
}

// client is someone using upbuild's pages: anonymous, the operator (with
// the admin token), or a member signed in through GitLab.
type client struct {
	s        *stack
	name     string
	browser  *http.Client
	operator bool
}

func (s *stack) anonymous() client {
	return client{s: s, name: "anonymous", browser: &http.Client{}}
}

func (s *stack) operator() client {
	return client{s: s, name: "operator", browser: &http.Client{}, operator: true}
}

// signIn signs a user in to upbuild through GitLab in a browser of their
// own; a new user gets level on the seed's group (0: no membership), alice
// is the seed's Maintainer.
func (s *stack) signIn(name string, level gitlabsim.AccessLevel) client {
	s.t.Helper()
	if name != s.Seed.Maintainer.Username {
		s.User(name, level)
	}
	return client{s: s, name: name, browser: s.SignIn(name)}
}

// do sends a request as the operator or anonymously; form, when not nil,
// is POSTed.
func (s *stack) do(method, path string, form url.Values, operator bool) response {
	s.t.Helper()
	if operator {
		return s.operator().do(method, path, form)
	}
	return s.anonymous().do(method, path, form)
}

// do sends a request; form, when not nil, is POSTed. Redirects are not
// followed, so tests see the 303.
func (c client) do(method, path string, form url.Values) response {
	c.s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(c.s.Context(), method, c.s.URL+path, body)
	if err != nil {
		c.s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.operator {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	noFollow := *c.browser
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Do(req)
	if err != nil {
		c.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.s.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
}

func (c client) get(path string) response {
	c.s.t.Helper()
	return c.do(http.MethodGet, path, nil)
}

var (
	csrfRe    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	versionRe = regexp.MustCompile(`name="version" value="([0-9]+)"`)
)

// post sends a form with the CSRF token of page (a page the client may
// open), as the browser would from a form on it; page "" sends none.
func (c client) post(path string, form url.Values, page string) response {
	c.s.t.Helper()
	if page != "" {
		got := csrfRe.FindStringSubmatch(c.get(page).body)
		if got == nil {
			c.s.t.Fatalf("%s sees no CSRF token on %s", c.name, page)
		}
		form.Set("csrf", html.UnescapeString(got[1]))
	}
	return c.do(http.MethodPost, path, form)
}

// submit fills the settings form at path as a browser would: the hidden
// fields and the job rows as rendered, with fields overriding what the
// form holds.
func (c client) submit(path string, fields url.Values) response {
	c.s.t.Helper()
	got := c.get(path)
	if got.status != http.StatusOK {
		c.s.t.Fatalf("GET %s: %d %s", path, got.status, got.body)
	}
	form := url.Values{}
	if m := csrfRe.FindStringSubmatch(got.body); m != nil {
		form.Set("csrf", html.UnescapeString(m[1]))
	}
	if m := versionRe.FindStringSubmatch(got.body); m != nil {
		form.Set("version", m[1])
	}
	rows := strings.Count(got.body, `name="job_type"`)
	for range rows {
		for _, f := range []string{"job_type", "job_identifier", "job_state", "job_triggers", "job_branch"} {
			form.Add(f, "")
		}
	}
	for k, vs := range fields {
		form[k] = vs
	}
	return c.do(http.MethodPost, path, form)
}

// push commits to a branch and returns the delivery statuses of the
// project's webhooks for that push, once every hook answered.
func (s *stack) push(p gitlabsim.Project, branch string) []int {
	s.t.Helper()
	before := len(s.Sim.Deliveries())
	s.Push(p, branch, s.Seed.Maintainer.Username, "change",
		gitlabsim.FileChange{Path: "README", Content: "change " + time.Now().String() + "\n"})
	var codes []int
	s.Eventually("the push's deliveries", func() (bool, string) {
		codes = nil
		answered := true
		for _, d := range s.Sim.Deliveries()[before:] {
			if d.ProjectID == p.ID && d.Event == "Push Hook" {
				codes = append(codes, d.StatusCode)
				// The simulator lists a delivery as soon as it sends it.
				answered = answered && (d.StatusCode != 0 || d.Err != "" || d.Skipped)
			}
		}
		return answered && len(codes) == len(s.Sim.Hooks(p.ID)), fmt.Sprint(codes)
	})
	return codes
}

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
