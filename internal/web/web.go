// Package web serves upbuild's dashboard: server-rendered pages that read
// without JavaScript, plus one small script that follows a running job's log.
//
// Routes:
//
//	GET /                      recent runs of public projects (?before= pages back)
//	GET /p/{host}/{path...}    a project by its GitLab host and path: runs (?mr=, ?ref=,
//	                           ?trigger=, ?before=), 90-day charts, webhook health, setup
//	GET /runs/{id}             a run and its jobs
//	GET /jobs/{id}             a job: timing, artifacts, log (live while it runs)
//	GET /static/{file}         style sheet and log.js
//
// A project that is not public is shown to people signed in with GitLab
// (access.Guard) who are Reporter or higher on it, and to the admin token
// ("Authorization: Bearer <token>"); to everyone else every page of it is
// the same 404 as for something that does not exist.
//
// Every page's data is a map[string]any; render adds "Session" (who is
// signed in, the sign-in links, for the layout) and "CSRF" (the token every
// POST form carries) unless the page set them itself.
package web

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/store"
)

// Pages serves the HTML pages.
type Pages struct {
	Store *store.Store
	// Logs and Artifacts fill the job page; nil leaves those parts empty.
	Logs      *joblog.Logs
	Artifacts *joblog.Artifacts
	// PublicURL is where GitLab reaches this service, for the setup
	// instructions; empty means the URL the page was requested at.
	PublicURL string
	// AdminToken lets an operator see private projects' pages
	// ("Authorization: Bearer <token>"). It is used only when Access is
	// nil: Register then builds a Guard that knows the admin token and
	// offers no sign-in.
	AdminToken string
	// ApprovalPolicy and Aliases are the operator's fork approval policy
	// and target alias table, so the settings page validates and previews
	// the way the planner will apply them. Empty: "forks" and Packit's
	// default aliases.
	ApprovalPolicy string
	Aliases        packitcfg.AliasTable
	// Access signs people in and decides what they may see and do.
	Access *access.Guard
	Logger *slog.Logger

	charts *chartCache // made by Register
}

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Register adds the routes to mux.
func (p *Pages) Register(mux *http.ServeMux) {
	p.charts = newChartCache()
	if p.Access == nil && p.Store != nil {
		g, err := access.New(access.Options{Store: p.Store, AdminToken: p.AdminToken, Logger: p.Logger})
		if err != nil {
			panic("web.Pages: " + err.Error()) // no store: a wiring mistake, found at start
		}
		p.Access = g
	}
	mux.HandleFunc("GET /{$}", p.home)
	mux.HandleFunc("GET /p/{host}/{path...}", p.project)
	mux.HandleFunc("GET /runs/{id}", p.run)
	mux.HandleFunc("GET /jobs/{id}", p.job)
	p.registerSettings(mux)
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the directory is embedded above; only a broken build lacks it
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	}))
}

var funcs = template.FuncMap{
	"when":       when,
	"whenp":      whenp,
	"age":        func(t time.Time) string { return age(time.Since(t)) },
	"took":       took,
	"short":      shortSHA12,
	"projectURL": projectURL,
	"jobRows":    jobRows,
	"runRows":    runRowsHTML,
	"logText":    logText,
}

// when is a moment, in UTC.
func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// whenp is a time that may not have come yet.
func whenp(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// took is how long something that started and ended took.
func took(start, end *time.Time) string {
	if start == nil || end == nil {
		return "—"
	}
	return roundDuration(end.Sub(*start))
}

// pages holds one parsed template set per page, each with the layout.
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err) // the pattern is constant and valid
	}
	// Every file but the layout is a page, named after the file.
	for _, file := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(file, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", file))
	}
	return out
}()

// projectURL is a run's project page on this server.
func projectURL(r store.Run) string {
	host := r.Instance
	if u, err := url.Parse(r.Instance); err == nil && u.Host != "" {
		host = u.Host
	}
	return "/p/" + url.PathEscape(host) + "/" + r.ProjectPath
}

// age says how long ago something was, coarsely.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
	}
}

// render writes a page. It renders into a buffer first, so a template
// failure is a clean 500 rather than half a page.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, page string, data any) {
	if m, ok := data.(map[string]any); ok {
		if _, set := m["Session"]; !set {
			m["Session"] = p.session(r)
		}
		if _, set := m["CSRF"]; !set {
			m["CSRF"] = p.Access.CSRFToken(r)
		}
	}
	var buf bytes.Buffer
	if err := pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		p.Logger.Error("render page", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, "upbuild could not render this page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Scripts and styles only from this server: an injected tag does nothing.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(w) // the client went away; nothing left to tell it
}

// session is what the layout shows about who is looking.
type session struct {
	Viewer   access.Viewer
	SignedIn bool
	CSRF     string
	SignIns  []access.SignInLink
}

func (p *Pages) session(r *http.Request) session {
	v, ok := p.Access.Viewer(r)
	if !ok {
		return session{SignIns: p.Access.SignInLinks(r)}
	}
	return session{Viewer: v, SignedIn: true, CSRF: p.Access.CSRFToken(r)}
}

func notFound(w http.ResponseWriter, what string) {
	http.Error(w, what+" does not exist, or belongs to a project that is not public. "+
		"Pages of private projects are for its members with the Reporter role or higher: sign in with GitLab.", http.StatusNotFound)
}

func (p *Pages) unavailable(w http.ResponseWriter, what string, err error) {
	p.Logger.Error(what, "err", err)
	http.Error(w, "upbuild cannot read its database right now", http.StatusServiceUnavailable)
}

// accessUnknown answers when GitLab could not be asked for the viewer's
// access level: nothing is shown on a guess.
func (p *Pages) accessUnknown(w http.ResponseWriter, err error) {
	p.Logger.Warn("access check", "err", err)
	http.Error(w, access.ErrUnavailable.Error(), http.StatusServiceUnavailable)
}

// forbidden explains a 403 in a sentence: the role a needs, and to sign in
// first when nobody is.
func (p *Pages) forbidden(w http.ResponseWriter, r *http.Request, a access.Action, what string) {
	role := map[access.Action]string{access.SeePrivate: "Reporter", access.Trigger: "Developer", access.Administer: "Maintainer"}[a]
	msg := "You need the " + role + " role or higher on this project in GitLab to " + what + "."
	if _, ok := p.Access.Viewer(r); !ok {
		msg += " Sign in with GitLab first."
	}
	http.Error(w, msg, http.StatusForbidden)
}

// mayView says whether r's viewer may see a project's pages; for a project
// that is not public it asks the Guard. It answers the request itself
// (404 or 503) when the answer is no.
func (p *Pages) mayView(w http.ResponseWriter, r *http.Request, proj access.Project, what string) bool {
	ok, err := p.Access.Allowed(r.Context(), r, proj, access.SeePrivate)
	switch {
	case err != nil:
		p.accessUnknown(w, err)
		return false
	case !ok:
		notFound(w, what)
		return false
	}
	return true
}

// seesPrivateRuns says whether r's viewer sees the project's runs that are
// not public (a project can change visibility; older runs keep theirs).
func (p *Pages) seesPrivateRuns(r *http.Request, instance string, projectID int64) bool {
	ok, err := p.Access.Allowed(r.Context(), r, access.Project{Instance: instance, ID: projectID}, access.SeePrivate)
	return err == nil && ok
}

// operator says whether r carries the admin token.
func (p *Pages) operator(r *http.Request) bool {
	v, ok := p.Access.Viewer(r)
	return ok && v.Operator
}

// pathID reads a positive integer path parameter.
func pathID(r *http.Request) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return n, err == nil && n > 0
}
