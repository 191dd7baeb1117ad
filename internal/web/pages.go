package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/store"
)

const (
	runsPerPage  = 50
	logPageLines = 5000 // lines of log rendered into the job page; the rest streams or is in the plain log
	recentHooks  = 20
)

// glance sums up a run in one word (a CSS class too) and a detail.
type glance struct {
	Class  string
	Detail string
}

func glanceOf(r store.Run, tally store.JobTally) glance {
	switch r.State {
	case store.RunConfigError, store.RunRefused, store.RunWaiting:
		return glance{Class: r.State, Detail: r.Message}
	}
	total := 0
	for _, n := range tally {
		total += n
	}
	detail := fmt.Sprintf("%d of %d passed", tally[store.JobSuccess], total)
	switch {
	case tally[store.JobRunning] > 0 || tally[store.JobQueued] > 0:
		return glance{Class: store.JobRunning, Detail: detail}
	case tally[store.JobFailed] > 0 || tally[store.JobError] > 0:
		return glance{Class: store.JobFailed, Detail: detail}
	case tally[store.JobSuccess] > 0:
		return glance{Class: store.JobSuccess, Detail: detail}
	case tally[store.JobWaiting] > 0 || tally[store.JobHeld] > 0:
		return glance{Class: store.JobWaiting, Detail: detail}
	case tally[store.JobCanceled] > 0:
		return glance{Class: store.JobCanceled, Detail: detail}
	case tally[store.JobSkipped] > 0:
		// Nothing could run here (e.g. no build environment): say so,
		// rather than calling it canceled.
		return glance{Class: store.JobSkipped, Detail: fmt.Sprintf("%d of %d skipped", tally[store.JobSkipped], total)}
	case total > 0:
		return glance{Class: store.JobCanceled, Detail: detail}
	}
	return glance{Class: r.State}
}

type runRow struct {
	Run    store.Run
	Glance glance
}

// runRows loads one page of runs with their job tallies, and the link to
// the next page ("" on the last).
func (p *Pages) runRows(ctx context.Context, r *http.Request, q store.RunQuery) ([]runRow, string, error) {
	q.Limit = runsPerPage + 1 // one extra row says whether there is a next page
	runs, err := p.Store.ListRuns(ctx, q)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(runs) > runsPerPage {
		runs = runs[:runsPerPage]
		v := r.URL.Query()
		v.Set("before", strconv.FormatInt(runs[runsPerPage-1].ID, 10))
		next = "?" + v.Encode()
	}
	if q.PublicOnly && p.Access != nil {
		runs = p.Access.StillPublicRuns(ctx, runs)
	}
	ids := make([]int64, len(runs))
	for i, run := range runs {
		ids[i] = run.ID
	}
	tallies, err := p.Store.JobTallies(ctx, ids)
	if err != nil {
		return nil, "", err
	}
	rows := make([]runRow, len(runs))
	for i, run := range runs {
		rows[i] = runRow{Run: run, Glance: glanceOf(run, tallies[run.ID])}
	}
	return rows, next, nil
}

// before reads the ?before= cursor; a malformed one starts from the newest.
func before(r *http.Request) int64 {
	n, err := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func (p *Pages) home(w http.ResponseWriter, r *http.Request) {
	rows, next, err := p.runRows(r.Context(), r, store.RunQuery{PublicOnly: !p.operator(r), BeforeID: before(r)})
	if err != nil {
		p.unavailable(w, "home page", err)
		return
	}
	p.render(w, r, "home", map[string]any{"Runs": rows, "Next": next})
}

func (p *Pages) project(w http.ResponseWriter, r *http.Request) {
	host, path := r.PathValue("host"), strings.Trim(r.PathValue("path"), "/")
	proj, err := p.Store.FindProject(r.Context(), host, path)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w, "This project")
		return
	}
	if err != nil {
		p.unavailable(w, "project page", err)
		return
	}
	if !p.mayView(w, r, access.Project{Instance: proj.Instance, ID: proj.ProjectID, Public: proj.Public()}, "This project") {
		return
	}
	ctx := r.Context()
	v := r.URL.Query()
	q := store.RunQuery{Instance: proj.Instance, ProjectID: proj.ProjectID, BeforeID: before(r), Ref: v.Get("ref"),
		PublicOnly: !p.seesPrivateRuns(r, proj.Instance, proj.ProjectID)}
	var filters []string
	if mr, err := strconv.ParseInt(v.Get("mr"), 10, 64); err == nil && mr > 0 {
		q.MRIID = mr
		filters = append(filters, "merge request !"+strconv.FormatInt(mr, 10))
	}
	if q.Ref != "" {
		filters = append(filters, "ref "+q.Ref)
	}
	switch t := v.Get("trigger"); t {
	case "pull_request", "commit", "release":
		q.Trigger = t
		filters = append(filters, "trigger "+t)
	}
	rows, next, err := p.runRows(ctx, r, q)
	if err != nil {
		p.unavailable(w, "project runs", err)
		return
	}
	now := time.Now()
	projectJobCharts, hookChart, err := p.charts.get(ctx, chartKey{proj.Instance, proj.ProjectID}, now,
		func(ctx context.Context) ([]chart, chart, error) {
			since := windowStart(now)
			jobDays, err := p.Store.JobDays(ctx, proj.Instance, proj.ProjectID, since)
			if err != nil {
				return nil, chart{}, fmt.Errorf("project job history: %w", err)
			}
			hookDays, err := p.Store.DeliveryDays(ctx, proj.Instance, proj.ProjectID, since)
			if err != nil {
				return nil, chart{}, fmt.Errorf("project delivery history: %w", err)
			}
			return jobCharts(jobDays, now), deliveryChart(hookDays, now), nil
		})
	if err != nil {
		p.unavailable(w, "project charts", err)
		return
	}
	deliveries, err := p.Store.Deliveries(ctx, store.DeliveryFilter{Instance: proj.Instance, ProjectPath: proj.Path, Limit: recentHooks})
	if err != nil {
		p.unavailable(w, "project deliveries", err)
		return
	}
	rejections, err := p.Store.ProjectRejections(ctx, proj)
	if err != nil {
		p.unavailable(w, "project rejections", err)
		return
	}
	p.render(w, r, "project", map[string]any{
		"Project": proj, "Runs": rows, "Next": next, "Query": q, "Filter": strings.Join(filters, ", "),
		"JobCharts": projectJobCharts, "DeliveryChart": hookChart,
		"Deliveries": deliveries, "Rejections": rejections,
		"WebhookURL": p.webhookURL(r), "Events": hooktoken.Events,
	})
}

// rejections are the refusal counters of the project and of the groups
// above it (a group token covers its projects).
func (p *Pages) webhookURL(r *http.Request) string {
	base := strings.TrimSuffix(p.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/api/webhooks/gitlab"
}

// visibleRun loads a run the caller may see, answering the request itself
// when there is none.
func (p *Pages) visibleRun(w http.ResponseWriter, r *http.Request, id int64, what string) (store.Run, bool) {
	run, err := p.Store.Run(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w, what)
		return store.Run{}, false
	}
	if err != nil {
		p.unavailable(w, "load run", err)
		return store.Run{}, false
	}
	if !p.mayView(w, r, access.Project{Instance: run.Instance, ID: run.ProjectID, Public: run.Public()}, what) {
		return store.Run{}, false
	}
	return run, true
}

func (p *Pages) run(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		notFound(w, "This run")
		return
	}
	run, ok := p.visibleRun(w, r, id, "This run")
	if !ok {
		return
	}
	jobs, err := p.Store.RunJobs(r.Context(), id)
	if err != nil {
		p.unavailable(w, "run page", err)
		return
	}
	tally := store.JobTally{}
	for _, j := range jobs {
		tally[j.State]++
	}
	p.render(w, r, "run", map[string]any{"Run": run, "Jobs": jobs, "Glance": glanceOf(run, tally),
		"Actions": p.jobButtons(r, run, nil, jobs)})
}

// artifactLink is one artifact on the job page.
type artifactLink struct {
	Name   string
	Size   int64
	SHA256 string
	URL    string
}

func (p *Pages) job(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		notFound(w, "This job")
		return
	}
	job, err := p.Store.Job(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w, "This job")
		return
	}
	if err != nil {
		p.unavailable(w, "job page", err)
		return
	}
	run, ok := p.visibleRun(w, r, job.RunID, "This job")
	if !ok {
		return
	}
	var lines []joblog.Line
	if p.Logs != nil {
		if lines, err = p.Logs.Lines(r.Context(), id, 0, logPageLines); err != nil {
			p.unavailable(w, "job log", err)
			return
		}
	}
	var after int64
	if len(lines) > 0 {
		after = lines[len(lines)-1].Seq
	}
	var arts []artifactLink
	if p.Artifacts != nil {
		list, err := p.Artifacts.List(r.Context(), id)
		if err != nil {
			p.unavailable(w, "job artifacts", err)
			return
		}
		for _, a := range list {
			arts = append(arts, artifactLink{Name: a.Name, Size: a.Size, SHA256: a.SHA256,
				URL: "/api/v1/jobs/" + strconv.FormatInt(id, 10) + "/artifacts/" + url.PathEscape(a.Name)})
		}
	}
	p.render(w, r, "job", map[string]any{"Job": job, "Run": run, "Log": lines, "After": after,
		"LogCut": len(lines) == logPageLines, "LogLines": logPageLines, "Final": store.JobFinal(job.State), "Artifacts": arts,
		"Actions": p.jobButtons(r, run, &job, nil)})
}
