package access_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/forge"
	gitlabforge "upbuild.dev/upbuild/internal/forge/gitlab"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/store"
)

// clock is a time tests move by hand, shared by the simulators and the Guard.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// instance is a GitLab simulator served over HTTP that counts the
// access-level questions it gets.
type instance struct {
	sim          *gitlabsim.Simulator
	url          string
	levelQueries atomic.Int64
	project      gitlabsim.Project // private, in group "team"
	public       gitlabsim.Project
	users        map[string]gitlabsim.User
	bot          gitlabsim.User
}

// roles are the simulator users made on every instance, with their role on
// the private project; they are created in this order so that the same
// username has the same user ID on every instance.
var roles = []struct {
	name  string
	level gitlabsim.AccessLevel
}{
	{"gina", gitlabsim.Guest}, {"rita", gitlabsim.Reporter}, {"dev", gitlabsim.Developer},
	{"mona", gitlabsim.Maintainer}, {"olga", gitlabsim.NoAccess},
}

func newInstance(t *testing.T, clk *clock) *instance {
	t.Helper()
	ctx := context.Background()
	sim := gitlabsim.New(gitlabsim.Options{Dir: t.TempDir(), Clock: clk, DisableRateLimits: true})
	in := &instance{sim: sim, users: map[string]gitlabsim.User{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/members/all/") {
			in.levelQueries.Add(1)
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	in.url = srv.URL
	var err error
	if in.bot, err = sim.AddUser(gitlabsim.UserSpec{Username: "upbuild-bot", Bot: true}); err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		u, err := sim.AddUser(gitlabsim.UserSpec{Username: r.name})
		if err != nil {
			t.Fatal(err)
		}
		in.users[r.name] = u
	}
	group, err := sim.AddGroup(gitlabsim.GroupSpec{Path: "team"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.AddGroupMember(group.ID, in.bot.ID, gitlabsim.Reporter); err != nil {
		t.Fatal(err)
	}
	if in.project, err = sim.AddProject(ctx, gitlabsim.ProjectSpec{Namespace: "team", Path: "secret", Visibility: gitlabsim.Private}); err != nil {
		t.Fatal(err)
	}
	if in.public, err = sim.AddProject(ctx, gitlabsim.ProjectSpec{Namespace: "team", Path: "open", Visibility: gitlabsim.Public}); err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if r.level == gitlabsim.NoAccess {
			continue
		}
		if err := sim.AddProjectMember(in.project.ID, in.users[r.name].ID, r.level); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

func (in *instance) forge(t *testing.T) forge.Forge {
	t.Helper()
	f, err := gitlabforge.New(gitlabforge.Options{BaseURL: in.url, Token: in.bot.Token, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// service is upbuild's sign-in on a test server, with one page that answers
// access questions: GET /check?instance=&project=&public=&action=.
type service struct {
	url     string
	guard   *access.Guard
	store   *store.Store
	clock   *clock
	a, b    *instance
	logs    *bytes.Buffer
	cookies chan *http.Cookie // every upbuild_session cookie set
}

var actions = map[string]access.Action{"see": access.SeePrivate, "trigger": access.Trigger, "administer": access.Administer}

func newService(t *testing.T, dbURL string, levelTTL time.Duration) *service {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	svc := &service{store: st, clock: clk, logs: &bytes.Buffer{}, cookies: make(chan *http.Cookie, 64)}
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	svc.url = srv.URL
	svc.a, svc.b = newInstance(t, clk), newInstance(t, clk)
	apps := map[string]access.OAuthApp{}
	for _, in := range []*instance{svc.a, svc.b} {
		id, secret := in.sim.AddOAuthApp(srv.URL+"/signin/callback", "read_user")
		apps[in.url] = access.OAuthApp{ClientID: id, ClientSecret: secret}
	}
	svc.guard, err = access.New(access.Options{
		Store: st, Forges: map[string]forge.Forge{svc.a.url: svc.a.forge(t), svc.b.url: svc.b.forge(t)},
		Apps: apps, PublicURL: srv.URL, AdminToken: "admin-secret", LevelTTL: levelTTL, SessionTTL: 24 * time.Hour,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: svc.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.guard.Register(mux)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if v, ok := svc.guard.Viewer(r); ok {
			fmt.Fprintf(w, "signed in as @%s at %s; csrf=%s", v.Actor(), v.Instance, svc.guard.CSRFToken(r))
			return
		}
		fmt.Fprint(w, "anonymous")
	})
	mux.HandleFunc("GET /elsewhere", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "elsewhere") })
	// /twice asks who is signed in, drops every session from the
	// database, and asks again: with Guard.Remember the request still
	// knows its session.
	mux.HandleFunc("GET /twice", func(w http.ResponseWriter, r *http.Request) {
		first, _ := svc.guard.Viewer(r)
		if _, err := st.WriteDB().ExecContext(r.Context(), "DELETE FROM web_sessions"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		second, _ := svc.guard.Viewer(r)
		fmt.Fprintf(w, "@%s then @%s", first.Username, second.Username)
	})
	mux.HandleFunc("GET /check", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		id, _ := strconv.ParseInt(q.Get("project"), 10, 64)
		ok, err := svc.guard.Allowed(r.Context(), r, access.Project{Instance: q.Get("instance"), ID: id, Public: q.Get("public") == "1"}, actions[q.Get("action")])
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, ok)
	})
	remembering := svc.guard.Remember(mux)
	handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remembering.ServeHTTP(w, r)
		for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
			if c.Name == access.SessionCookie {
				svc.cookies <- c
			}
		}
	})
	return svc
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// newBrowser is a client with cookies that does not follow redirects.
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	status   int
	body     string
	location string
}

func send(t *testing.T, c *http.Client, method, u string, form url.Values, header http.Header) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
}

func get(t *testing.T, c *http.Client, u string) answer {
	return send(t, c, http.MethodGet, u, nil, nil)
}

// startSignIn follows upbuild's /signin to the simulator, signs username in
// there and authorizes, and returns the callback URL the browser would go
// to next, without going there.
func startSignIn(t *testing.T, c *http.Client, svc *service, in *instance, username, returnTo string) string {
	t.Helper()
	a := get(t, c, svc.url+"/signin?"+url.Values{"instance": {in.url}, "return_to": {returnTo}}.Encode())
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, in.url+"/oauth/authorize?") {
		t.Fatalf("/signin = %d to %q, want a redirect to the instance's authorize page", a.status, a.location)
	}
	authURL, err := url.Parse(a.location)
	if err != nil {
		t.Fatal(err)
	}
	params := authURL.Query()
	if params.Get("code_challenge_method") != "S256" || params.Get("code_challenge") == "" || params.Get("scope") != "read_user" ||
		params.Get("redirect_uri") != svc.url+"/signin/callback" || len(params.Get("state")) < 43 {
		t.Fatalf("authorize parameters = %v", params)
	}
	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	form.Set("username", username)
	if a := send(t, c, http.MethodPost, in.url+"/users/sign_in", form, nil); a.status != http.StatusFound {
		t.Fatalf("simulator sign-in = %d %q", a.status, a.body)
	}
	form.Del("username")
	form.Set("commit", "Authorize")
	a = send(t, c, http.MethodPost, in.url+"/oauth/authorize", form, nil)
	if a.status != http.StatusFound || !strings.HasPrefix(a.location, svc.url+"/signin/callback?") {
		t.Fatalf("authorize = %d to %q", a.status, a.location)
	}
	return a.location
}

// signIn runs the whole flow and returns the browser, signed in.
func signIn(t *testing.T, svc *service, in *instance, username string) *http.Client {
	t.Helper()
	c := newBrowser(t)
	a := get(t, c, startSignIn(t, c, svc, in, username, "/"))
	if a.status != http.StatusSeeOther || a.location != "/" {
		t.Fatalf("callback = %d to %q %q, want a redirect to /", a.status, a.location, a.body)
	}
	if home := get(t, c, svc.url+"/"); !strings.HasPrefix(home.body, "signed in as @"+username+" at "+in.url+";") {
		t.Fatalf("home after sign-in = %q", home.body)
	}
	return c
}

// check asks the /check page whether the browser's viewer may do action.
func (svc *service) check(t *testing.T, c *http.Client, in *instance, p gitlabsim.Project, action string) string {
	t.Helper()
	q := url.Values{"instance": {in.url}, "project": {strconv.FormatInt(p.ID, 10)}, "action": {action}}
	if p.Visibility == gitlabsim.Public {
		q.Set("public", "1")
	}
	a := get(t, c, svc.url+"/check?"+q.Encode())
	if a.status != http.StatusOK {
		return fmt.Sprintf("%d %s", a.status, strings.TrimSpace(a.body))
	}
	return a.body
}

// dump is every value in every table of the database, as text.
func dump(t *testing.T, st *store.Store) string {
	t.Helper()
	ctx := context.Background()
	db := st.WriteDB()
	query := `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`
	if st.Dialect() == store.SQLite {
		query = `SELECT name FROM sqlite_master WHERE type = 'table'`
	}
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	var out strings.Builder
	for _, table := range tables {
		dumpTable(t, db, table, &out)
	}
	return out.String()
}

func dumpTable(t *testing.T, db *sql.DB, table string, out *strings.Builder) {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT * FROM "`+table+`"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			fmt.Fprintf(out, "%v\n", v)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
