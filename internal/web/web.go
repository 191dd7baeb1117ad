// Package web serves upbuild's pages. For now that is the job page every
// commit status links to; the dashboard grows here.
package web

import (
	"crypto/subtle"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/store"
)

// Pages serves the HTML pages.
type Pages struct {
	Store *store.Store
	// AdminToken lets an operator see private projects' pages until sign-in
	// exists ("Authorization: Bearer <token>").
	AdminToken string
	Logger     *slog.Logger
}

// Register adds the routes to mux.
func (p *Pages) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /jobs/{id}", p.job)
}

var jobPage = template.Must(template.New("job").Funcs(template.FuncMap{
	"when": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Job.StatusName}} · upbuild</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
dt{font-weight:600}dd{margin:0 0 .6rem 0}.state{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;background:#eee}
.success{background:#d4f4dd}.failed,.error{background:#fbd5d5}.running{background:#d9e8fb}.canceled,.skipped{background:#eee}</style>
</head><body>
<p><a href="/">upbuild</a></p>
<h1>{{.Job.StatusName}}</h1>
<p><span class="state {{.Job.State}}">{{.Job.State}}</span> {{.Job.Description}}</p>
<dl>
<dt>Project</dt><dd><a href="{{.Run.Instance}}/{{.Run.ProjectPath}}" rel="noreferrer">{{.Run.ProjectPath}}</a></dd>
<dt>Trigger</dt><dd>{{.Run.Trigger}}{{if .Run.MRIID}} — <a href="{{.Run.Instance}}/{{.Run.ProjectPath}}/-/merge_requests/{{.Run.MRIID}}" rel="noreferrer">merge request !{{.Run.MRIID}}</a>{{end}}{{if .Run.Title}}: {{.Run.Title}}{{end}}</dd>
<dt>Commit</dt><dd><a href="{{.Run.Instance}}/{{.Run.SourceProjectPath}}/-/commit/{{.Run.SHA}}" rel="noreferrer"><code>{{short .Run.SHA}}</code></a>{{if .Run.Ref}} on {{.Run.Ref}}{{end}}</dd>
<dt>Job</dt><dd>{{.Job.JobType}}{{if .Job.Target}} on {{.Job.Target}}{{end}}{{if .Job.Package}}, package {{.Job.Package}}{{end}}</dd>
<dt>Created</dt><dd>{{when .Created}}</dd>
<dt>Started</dt><dd>{{when .Job.StartedAt}}</dd>
<dt>Finished</dt><dd>{{when .Job.FinishedAt}}</dd>
</dl>
<p>Live logs and artifacts appear here once this service executes jobs.</p>
</body></html>
`))

func (p *Pages) job(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "no such job", http.StatusNotFound)
		return
	}
	job, err := p.Store.Job(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "no such job", http.StatusNotFound)
		return
	}
	if err != nil {
		p.Logger.Error("job page", "job", id, "err", err)
		http.Error(w, "upbuild cannot read its database right now", http.StatusServiceUnavailable)
		return
	}
	run, err := p.Store.Run(r.Context(), job.RunID)
	if err != nil {
		p.Logger.Error("job page", "job", id, "err", err)
		http.Error(w, "upbuild cannot read its database right now", http.StatusServiceUnavailable)
		return
	}
	if !run.Public() && !p.admin(r) {
		// Without sign-in, nothing of a private project is shown.
		http.Error(w, "This job belongs to a project that is not public. Its page needs sign-in, which this service does not offer yet.", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	created := job.CreatedAt
	if err := jobPage.Execute(w, map[string]any{"Job": job, "Run": run, "Created": &created}); err != nil {
		p.Logger.Warn("render job page", "job", id, "err", err)
	}
}

func (p *Pages) admin(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && p.AdminToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(p.AdminToken)) == 1
}
