package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/store"
)

// RunJSON is one run in the API.
type RunJSON struct {
	ID           int64          `json:"id"`
	Instance     string         `json:"instance"`
	ProjectID    int64          `json:"project_id"`
	ProjectPath  string         `json:"project_path"`
	Trigger      string         `json:"trigger"`
	SHA          string         `json:"sha"`
	Ref          string         `json:"ref"`
	MRIID        int64          `json:"mr_iid,omitempty"`
	TargetBranch string         `json:"target_branch,omitempty"`
	Title        string         `json:"title"`
	Actor        string         `json:"actor"`
	State        string         `json:"state"`
	Message      string         `json:"message,omitempty"`
	CreatedAt    time.Time      `json:"created_at"`
	FinishedAt   *time.Time     `json:"finished_at,omitempty"`
	JobStates    map[string]int `json:"job_states"`
	// URL is the run's page on this server.
	URL string `json:"url"`
}

// RunDetailJSON is one run with its jobs in plan order.
type RunDetailJSON struct {
	RunJSON
	Jobs []JobJSON `json:"jobs"`
}

// JobJSON is one job in the API.
type JobJSON struct {
	ID          int64      `json:"id"`
	RunID       int64      `json:"run_id"`
	JobType     string     `json:"job_type"`
	Target      string     `json:"target"`
	Package     string     `json:"package"`
	StatusName  string     `json:"status_name"`
	State       string     `json:"state"`
	Description string     `json:"description"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// URL is the job's page; LogURL and ArtifactsURL are its log and artifacts.
	URL          string `json:"url"`
	LogURL       string `json:"log_url"`
	ArtifactsURL string `json:"artifacts_url"`
}

// RunPage is one page of runs, newest first.
type RunPage struct {
	Runs []RunJSON `json:"runs"`
	// Next is the URL of the next (older) page, empty on the last one.
	Next string `json:"next,omitempty"`
}

func runJSON(r store.Run, tally store.JobTally) RunJSON {
	if tally == nil {
		tally = store.JobTally{}
	}
	return RunJSON{ID: r.ID, Instance: r.Instance, ProjectID: r.ProjectID, ProjectPath: r.ProjectPath, Trigger: r.Trigger,
		SHA: r.SHA, Ref: r.Ref, MRIID: r.MRIID, TargetBranch: r.TargetBranch, Title: r.Title, Actor: r.Actor, State: r.State,
		Message: r.Message, CreatedAt: r.CreatedAt, FinishedAt: r.FinishedAt, JobStates: tally,
		URL: "/runs/" + strconv.FormatInt(r.ID, 10)}
}

func jobJSON(j store.Job) JobJSON {
	id := strconv.FormatInt(j.ID, 10)
	return JobJSON{ID: j.ID, RunID: j.RunID, JobType: j.JobType, Target: j.Target, Package: j.Package, StatusName: j.StatusName,
		State: j.State, Description: j.Description, CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
		URL: "/jobs/" + id, LogURL: "/api/v1/jobs/" + id + "/log", ArtifactsURL: "/api/v1/jobs/" + id + "/artifacts"}
}

// isAdmin reports whether the request carries the admin token, which sees
// every project's runs in the lists.
func (a *API) isAdmin(r *http.Request) bool {
	v, ok := a.Access.Viewer(r)
	return ok && v.Operator
}

// notVisible is the answer for something that does not exist or that the
// caller may not see: the two are indistinguishable on purpose.
func notVisible(w http.ResponseWriter, what string) {
	writeJSON(w, http.StatusNotFound, apiError{what + " does not exist, or its project is not public " +
		"(sign in to the dashboard with GitLab as a Reporter or higher of the project, or send the admin token as 'Authorization: Bearer <token>')"})
}

// mayView says whether r's caller may see a run's project, answering the
// request itself (404, or 503 when GitLab cannot be asked) when not.
func (a *API) mayView(w http.ResponseWriter, r *http.Request, run store.Run, what string) bool {
	ok, err := a.Access.Allowed(r.Context(), r, access.Project{Instance: run.Instance, ID: run.ProjectID, Public: run.Public()}, access.SeePrivate)
	switch {
	case err != nil:
		a.Logger.Warn("access check", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, apiError{access.ErrUnavailable.Error()})
		return false
	case !ok:
		notVisible(w, what)
		return false
	}
	return true
}

func (a *API) unavailable(w http.ResponseWriter, what string, err error) {
	a.Logger.Error(what, "err", err)
	writeJSON(w, http.StatusServiceUnavailable, apiError{"upbuild cannot read its database right now"})
}

// pathID reads a positive integer path parameter.
func pathID(r *http.Request, name string) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return n, err == nil && n > 0
}

// runQuery reads the run filters and the page cursor from the query string.
func runQuery(q url.Values) (store.RunQuery, error) {
	f := store.RunQuery{Instance: q.Get("instance"), Ref: q.Get("ref"), Trigger: q.Get("trigger"), Limit: 50}
	switch f.Trigger {
	case "", "pull_request", "commit", "release":
	default:
		return f, errors.New("trigger must be pull_request, commit or release")
	}
	for name, dst := range map[string]*int64{"project_id": &f.ProjectID, "mr": &f.MRIID, "before": &f.BeforeID} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return f, errors.New(name + " must be a non-negative integer")
			}
			*dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return f, errors.New("limit must be between 1 and 500")
		}
		f.Limit = n
	}
	return f, nil
}

func (a *API) runs(w http.ResponseWriter, r *http.Request) {
	f, err := runQuery(r.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	a.runPage(w, r, f, "/api/v1/runs")
}

func (a *API) projectRuns(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r, "id")
	if !ok {
		notVisible(w, "this project")
		return
	}
	f, err := runQuery(r.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	f.ProjectID = id
	a.runPage(w, r, f, r.URL.Path)
}

// runPage answers with one page of runs and the link to the next.
func (a *API) runPage(w http.ResponseWriter, r *http.Request, f store.RunQuery, path string) {
	f.PublicOnly = !a.isAdmin(r)
	if f.PublicOnly && f.Instance != "" && f.ProjectID != 0 {
		// One project's runs: its members see the private ones too.
		ok, err := a.Access.Allowed(r.Context(), r, access.Project{Instance: f.Instance, ID: f.ProjectID}, access.SeePrivate)
		f.PublicOnly = err != nil || !ok
	}
	want := f.Limit
	f.Limit++ // one extra row says whether there is a next page
	list, err := a.Store.ListRuns(r.Context(), f)
	if err != nil {
		a.unavailable(w, "list runs", err)
		return
	}
	next := ""
	if len(list) > want {
		list = list[:want]
		q := r.URL.Query()
		q.Set("before", strconv.FormatInt(list[want-1].ID, 10))
		next = path + "?" + q.Encode()
	}
	if f.PublicOnly && a.Access != nil {
		list = a.Access.StillPublicRuns(r.Context(), list)
	}
	ids := make([]int64, len(list))
	for i, run := range list {
		ids[i] = run.ID
	}
	tallies, err := a.Store.JobTallies(r.Context(), ids)
	if err != nil {
		a.unavailable(w, "count jobs", err)
		return
	}
	page := RunPage{Runs: make([]RunJSON, 0, len(list)), Next: next}
	for _, run := range list {
		page.Runs = append(page.Runs, runJSON(run, tallies[run.ID]))
	}
	writeJSON(w, http.StatusOK, page)
}

func (a *API) run(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r, "id")
	if !ok {
		notVisible(w, "this run")
		return
	}
	run, err := a.Store.Run(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		notVisible(w, "run "+strconv.FormatInt(id, 10))
		return
	}
	if err != nil {
		a.unavailable(w, "load run", err)
		return
	}
	if !a.mayView(w, r, run, "run "+strconv.FormatInt(id, 10)) {
		return
	}
	jobs, err := a.Store.RunJobs(r.Context(), id)
	if err != nil {
		a.unavailable(w, "list jobs", err)
		return
	}
	tally := store.JobTally{}
	out := make([]JobJSON, 0, len(jobs))
	for _, j := range jobs {
		tally[j.State]++
		out = append(out, jobJSON(j))
	}
	writeJSON(w, http.StatusOK, RunDetailJSON{RunJSON: runJSON(run, tally), Jobs: out})
}

func (a *API) job(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r, "id")
	if !ok {
		notVisible(w, "this job")
		return
	}
	job, err := a.Store.Job(r.Context(), id)
	var run store.Run
	if err == nil {
		run, err = a.Store.Run(r.Context(), job.RunID)
	}
	if errors.Is(err, store.ErrNotFound) {
		notVisible(w, "job "+strconv.FormatInt(id, 10))
		return
	}
	if err != nil {
		a.unavailable(w, "load job", err)
		return
	}
	if !a.mayView(w, r, run, "job "+strconv.FormatInt(id, 10)) {
		return
	}
	writeJSON(w, http.StatusOK, jobJSON(job))
}
