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
// Until sign-in exists, a project that is not public is shown only with the
// admin token ("Authorization: Bearer <token>"); without it every page of it
// is the same 404 as for something that does not exist.
package web

import (
	"bytes"
	"crypto/subtle"
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
	// AdminToken lets an operator see private projects' pages until sign-in
	// exists ("Authorization: Bearer <token>").
	AdminToken string
	// Access signs people in and decides what they may see and do.
	Access *access.Guard
	Logger *slog.Logger
}

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Register adds the routes to mux.
func (p *Pages) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.home)
	mux.HandleFunc("GET /p/{host}/{path...}", p.project)
	mux.HandleFunc("GET /runs/{id}", p.run)
	mux.HandleFunc("GET /jobs/{id}", p.job)
	p.registerSettings(mux)
	p.registerManage(mux)
	p.registerJobActions(mux)
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
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"whenp": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"age": func(t time.Time) string { return age(time.Since(t)) },
	"took": func(start, end *time.Time) string {
		if start == nil || end == nil {
			return "—"
		}
		return roundDuration(end.Sub(*start))
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"projectURL": projectURL,
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

func notFound(w http.ResponseWriter, what string) {
	http.Error(w, what+" does not exist, or belongs to a project that is not public. "+
		"Pages of private projects need sign-in, which this service does not offer yet.", http.StatusNotFound)
}

func (p *Pages) unavailable(w http.ResponseWriter, what string, err error) {
	p.Logger.Error(what, "err", err)
	http.Error(w, "upbuild cannot read its database right now", http.StatusServiceUnavailable)
}

func (p *Pages) admin(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && p.AdminToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(p.AdminToken)) == 1
}

// pathID reads a positive integer path parameter.
func pathID(r *http.Request) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return n, err == nil && n > 0
}
