package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/settings"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// What the project page shows, and the settings and audit pages:
//
//	GET /api/v1/projects/{id}           the project, its webhook health and 90-day history
//	GET /api/v1/projects/{id}/settings  its stored settings (Reporter+, even when public)
//	GET /api/v1/projects/{id}/audit     who did what to it, newest first (Reporter+, even when public)
//
// {id} is the GitLab project ID; ?instance= says which GitLab when upbuild
// knows projects with that ID on several.

const (
	// recentDeliveries is how many deliveries the webhook health lists,
	// as on the project page.
	recentDeliveries = 20
	// historyDays is the charts' window, today included.
	historyDays = 90
	// dayFormat writes a day of the history series.
	dayFormat = "2006-01-02"
)

// ProjectJSON is a project as its dashboard page shows it.
type ProjectJSON struct {
	Instance   string `json:"instance"`
	ID         int64  `json:"id"`
	Path       string `json:"path"`
	Visibility string `json:"visibility"`
	// WebURL is the project on GitLab; DashboardURL its page on this server.
	WebURL       string `json:"web_url"`
	DashboardURL string `json:"dashboard_url"`
	// RunsURL, SettingsURL and AuditURL are its other API resources.
	RunsURL     string            `json:"runs_url"`
	SettingsURL string            `json:"settings_url"`
	AuditURL    string            `json:"audit_url"`
	Webhook     WebhookHealthJSON `json:"webhook"`
	History     HistoryJSON       `json:"history"`
}

// WebhookHealthJSON is GitLab's "Recent events" seen from upbuild's side:
// the latest stored deliveries and the counters of refused ones.
type WebhookHealthJSON struct {
	Deliveries []RecentDeliveryJSON `json:"deliveries"`
	// Rejections are the project's counters and its groups', most recent
	// first.
	Rejections []RejectionJSON `json:"rejections"`
}

// RecentDeliveryJSON is one stored delivery as the project page lists it.
type RecentDeliveryJSON struct {
	ID           int64      `json:"id"`
	Event        string     `json:"event"`
	EventKind    string     `json:"event_kind"`
	Outcome      string     `json:"outcome"`
	Reason       string     `json:"reason,omitempty"`
	ReceivedAt   time.Time  `json:"received_at"`
	RepeatCount  int64      `json:"repeat_count"`
	LastRepeatAt *time.Time `json:"last_repeat_at,omitempty"`
}

// HistoryJSON is what the project page's charts draw, per UTC day from
// Since (a YYYY-MM-DD day, 89 days before today) through today. Days
// without anything are left out.
type HistoryJSON struct {
	Since      string            `json:"since"`
	Jobs       []JobSeriesJSON   `json:"jobs"`
	Deliveries []DeliveryDayJSON `json:"deliveries"`
}

// JobSeriesJSON is one job name's days, oldest first.
type JobSeriesJSON struct {
	StatusName string       `json:"status_name"`
	Days       []JobDayJSON `json:"days"`
}

// JobDayJSON is what one job name did on one day.
type JobDayJSON struct {
	Day string `json:"day"`
	// Finished jobs ended in success, failed or error; Passed succeeded.
	Finished int `json:"finished"`
	Passed   int `json:"passed"`
	// Timed finished jobs had started; their run times sum to
	// TotalRunSeconds, MeanRunSeconds each on average (0 when none).
	Timed           int     `json:"timed"`
	TotalRunSeconds float64 `json:"total_run_seconds"`
	MeanRunSeconds  float64 `json:"mean_run_seconds"`
}

// DeliveryDayJSON counts one day's stored deliveries by outcome.
type DeliveryDayJSON struct {
	Day      string `json:"day"`
	Accepted int    `json:"accepted"`
	Ignored  int    `json:"ignored"`
}

// ProjectSettingsJSON is a project's settings-page overrides.
type ProjectSettingsJSON struct {
	Instance  string            `json:"instance"`
	ProjectID int64             `json:"project_id"`
	Settings  settings.Settings `json:"settings"`
	// Version counts saves; 0 means never saved, and then UpdatedBy and
	// UpdatedAt are absent.
	Version   int64      `json:"version"`
	UpdatedBy string     `json:"updated_by,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	// CanEdit says whether the caller may change them (Maintainer+) on the
	// settings page, SettingsPage.
	CanEdit      bool   `json:"can_edit"`
	SettingsPage string `json:"settings_page"`
}

// AuditEntryJSON is one thing a person did to a project through upbuild.
type AuditEntryJSON struct {
	ID int64 `json:"id"`
	// Actor is a GitLab username, or "operator" for the admin token.
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Detail string    `json:"detail"`
	At     time.Time `json:"at"`
}

// AuditPage is one page of a project's audit log, newest first.
type AuditPage struct {
	Entries []AuditEntryJSON `json:"entries"`
	// Next is the URL of the next (older) page, empty on the last one.
	Next string `json:"next,omitempty"`
}

func (a *API) project(w http.ResponseWriter, r *http.Request) {
	proj, ok := a.visibleProject(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	deliveries, err := a.Store.Deliveries(ctx, store.DeliveryFilter{Instance: proj.Instance, ProjectPath: proj.Path, Limit: recentDeliveries})
	if err != nil {
		a.unavailable(w, "project deliveries", err)
		return
	}
	rejections, err := a.Store.ProjectRejections(ctx, proj)
	if err != nil {
		a.unavailable(w, "project rejections", err)
		return
	}
	since := historyStart(time.Now())
	jobDays, err := a.Store.JobDays(ctx, proj.Instance, proj.ProjectID, since)
	if err != nil {
		a.unavailable(w, "project job history", err)
		return
	}
	deliveryDays, err := a.Store.DeliveryDays(ctx, proj.Instance, proj.ProjectID, since)
	if err != nil {
		a.unavailable(w, "project delivery history", err)
		return
	}
	out := ProjectJSON{Instance: proj.Instance, ID: proj.ProjectID, Path: proj.Path, Visibility: proj.Visibility,
		WebURL: proj.Instance + "/" + proj.Path, DashboardURL: dashboardURL(proj),
		RunsURL: projectURL(proj, "/runs"), SettingsURL: projectURL(proj, "/settings"), AuditURL: projectURL(proj, "/audit"),
		Webhook: WebhookHealthJSON{Deliveries: make([]RecentDeliveryJSON, 0, len(deliveries)), Rejections: make([]RejectionJSON, 0, len(rejections))},
		History: HistoryJSON{Since: since.Format(dayFormat), Jobs: jobSeries(jobDays), Deliveries: make([]DeliveryDayJSON, 0, len(deliveryDays))}}
	for _, d := range deliveries {
		out.Webhook.Deliveries = append(out.Webhook.Deliveries, RecentDeliveryJSON{ID: d.ID, Event: d.EventHeader, EventKind: d.EventKind,
			Outcome: d.Outcome, Reason: d.Reason, ReceivedAt: d.ReceivedAt, RepeatCount: d.RepeatCount, LastRepeatAt: d.LastRepeatAt})
	}
	for _, x := range rejections {
		out.Webhook.Rejections = append(out.Webhook.Rejections, RejectionJSON(x))
	}
	for _, d := range deliveryDays {
		out.History.Deliveries = append(out.History.Deliveries, DeliveryDayJSON{Day: d.Day.UTC().Format(dayFormat), Accepted: d.Accepted, Ignored: d.Ignored})
	}
	writeJSON(w, http.StatusOK, out)
}

// historyStart is midnight UTC of the first day the charts show, as the
// project page computes it.
func historyStart(now time.Time) time.Time {
	return now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -(historyDays - 1))
}

// jobSeries groups the store's days (ordered by name, then day) per job name.
func jobSeries(days []store.JobDay) []JobSeriesJSON {
	out := []JobSeriesJSON{}
	for _, d := range days {
		if len(out) == 0 || out[len(out)-1].StatusName != d.StatusName {
			out = append(out, JobSeriesJSON{StatusName: d.StatusName})
		}
		day := JobDayJSON{Day: d.Day.UTC().Format(dayFormat), Finished: d.Finished, Passed: d.Passed, Timed: d.Timed,
			TotalRunSeconds: d.TotalRun.Seconds()}
		if d.Timed > 0 {
			day.MeanRunSeconds = d.TotalRun.Seconds() / float64(d.Timed)
		}
		series := &out[len(out)-1]
		series.Days = append(series.Days, day)
	}
	return out
}

// dashboardURL is the project's page on this server.
func dashboardURL(p store.ProjectRef) string {
	host := p.Instance
	if u, err := url.Parse(p.Instance); err == nil && u.Host != "" {
		host = u.Host
	}
	segments := strings.Split(p.Path, "/")
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	return "/p/" + url.PathEscape(host) + "/" + strings.Join(segments, "/")
}

// projectURL is one of the project's API resources, naming its instance so
// that it stays unambiguous.
func projectURL(p store.ProjectRef, suffix string) string {
	return "/api/v1/projects/" + strconv.FormatInt(p.ProjectID, 10) + suffix + "?" + url.Values{"instance": {p.Instance}}.Encode()
}

func (a *API) projectSettings(w http.ResponseWriter, r *http.Request) {
	proj, ok := a.memberProject(w, r, "The settings of a project are shown to its members with the Reporter role or higher in GitLab, and changed by its Maintainers.")
	if !ok {
		return
	}
	ctx := r.Context()
	row, _, err := a.Store.ProjectSettings(ctx, proj.Instance, proj.ProjectID)
	if err != nil {
		a.unavailable(w, "project settings", err)
		return
	}
	saved, err := settings.Decode(row.Data)
	if err != nil {
		a.Logger.Error("decode project settings", "instance", proj.Instance, "project", proj.ProjectID, "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{"the saved settings cannot be read: " + err.Error()})
		return
	}
	canEdit, err := a.Access.Allowed(ctx, r, guarded(proj), access.Administer)
	if err != nil {
		a.accessUnknown(w, err)
		return
	}
	out := ProjectSettingsJSON{Instance: proj.Instance, ProjectID: proj.ProjectID, Settings: saved, Version: row.Version,
		CanEdit: canEdit, SettingsPage: strings.Replace(dashboardURL(proj), "/p/", "/settings/", 1)}
	if row.Version > 0 {
		at := row.UpdatedAt.UTC()
		out.UpdatedBy, out.UpdatedAt = row.UpdatedBy, &at
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) projectAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	before, limit, err := pageParams(q)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	proj, ok := a.memberProject(w, r, "The audit log of a project names people: it is shown to the project's members with the Reporter role or higher in GitLab.")
	if !ok {
		return
	}
	entries, err := a.Store.AuditLog(r.Context(), proj.Instance, proj.ProjectID, before, limit+1) // one extra says whether there is a next page
	if err != nil {
		a.unavailable(w, "audit log", err)
		return
	}
	page := AuditPage{Entries: make([]AuditEntryJSON, 0, min(len(entries), limit))}
	if len(entries) > limit {
		entries = entries[:limit]
		q.Set("instance", proj.Instance)
		q.Set("before", strconv.FormatInt(entries[limit-1].ID, 10))
		page.Next = r.URL.Path + "?" + q.Encode()
	}
	for _, e := range entries {
		page.Entries = append(page.Entries, AuditEntryJSON{ID: e.ID, Actor: e.Actor, Action: e.Action, Detail: e.Detail, At: e.At.UTC()})
	}
	writeJSON(w, http.StatusOK, page)
}

// pageParams reads the before cursor and the page size (default 50).
func pageParams(q url.Values) (before int64, limit int, err error) {
	limit = 50
	if v := q.Get("before"); v != "" {
		if before, err = strconv.ParseInt(v, 10, 64); err != nil || before < 0 {
			return 0, 0, errors.New("before must be a non-negative integer")
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 500 {
			return 0, 0, errors.New("limit must be between 1 and 500")
		}
	}
	return before, limit, nil
}

// visibleProject finds the project of {id} and ?instance= and checks that
// the caller may see it. It answers the request itself and returns false
// when not: 404 when the project does not exist or is not the caller's to
// see, 400 when the ID is ambiguous or the instance malformed, 503 when the
// database or GitLab cannot be asked.
func (a *API) visibleProject(w http.ResponseWriter, r *http.Request) (store.ProjectRef, bool) {
	id, ok := pathID(r, "id")
	if !ok {
		notVisible(w, "this project")
		return store.ProjectRef{}, false
	}
	what := "project " + strconv.FormatInt(id, 10)
	instances, err := a.projectInstances(r, id)
	if errors.Is(err, token.ErrBadURL) {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return store.ProjectRef{}, false
	}
	if err != nil {
		a.unavailable(w, "find project instance", err)
		return store.ProjectRef{}, false
	}
	// Only the projects the caller may see count: whether a project with
	// this ID exists elsewhere, and where, is not theirs to learn.
	var visible []store.ProjectRef
	for _, instance := range instances {
		proj, err := a.Store.Project(r.Context(), instance, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			a.unavailable(w, "load project", err)
			return store.ProjectRef{}, false
		}
		allowed, err := a.Access.Allowed(r.Context(), r, guarded(proj), access.SeePrivate)
		if err != nil {
			a.accessUnknown(w, err)
			return store.ProjectRef{}, false
		}
		if allowed {
			visible = append(visible, proj)
		}
	}
	switch len(visible) {
	case 0:
		notVisible(w, what)
		return store.ProjectRef{}, false
	case 1:
		return visible[0], true
	}
	ambiguous := &ambiguousError{id: id}
	for _, p := range visible {
		ambiguous.instances = append(ambiguous.instances, p.Instance)
	}
	writeJSON(w, http.StatusBadRequest, apiError{ambiguous.Error()})
	return store.ProjectRef{}, false
}

// ambiguousError is a project ID that the caller may see on several
// instances.
type ambiguousError struct {
	id        int64
	instances []string
}

func (e *ambiguousError) Error() string {
	return fmt.Sprintf("upbuild knows a project %d on several GitLab instances (%s): pass instance=<its GitLab URL>",
		e.id, strings.Join(e.instances, ", "))
}

// projectInstances are the instances to look for project id on: the
// normalised ?instance=, or without one every instance upbuild knows a
// project with this ID on, in order.
func (a *API) projectInstances(r *http.Request, id int64) ([]string, error) {
	if raw := r.URL.Query().Get("instance"); raw != "" {
		instance, err := token.NormalizeInstanceURL(raw)
		if err != nil {
			return nil, fmt.Errorf("instance must be a GitLab base URL such as https://gitlab.com: %w", err)
		}
		return []string{instance}, nil
	}
	instances, err := a.Store.ProjectInstances(r.Context(), id)
	if err != nil {
		return nil, fmt.Errorf("instances of project %d: %w", id, err)
	}
	return instances, nil
}

// memberProject is visibleProject for what only the project's members
// (Reporter+) see even when the project is public: anyone else who may see
// the project gets a 403 saying why (denial).
func (a *API) memberProject(w http.ResponseWriter, r *http.Request, denial string) (store.ProjectRef, bool) {
	proj, ok := a.visibleProject(w, r)
	if !ok {
		return store.ProjectRef{}, false
	}
	members := guarded(proj)
	members.Public = false
	isMember, err := a.Access.Allowed(r.Context(), r, members, access.SeePrivate)
	if err != nil {
		a.accessUnknown(w, err)
		return store.ProjectRef{}, false
	}
	if !isMember {
		if _, signedIn := a.Access.Viewer(r); !signedIn {
			denial += " Sign in to the dashboard with GitLab first, or send the admin token as 'Authorization: Bearer <token>'."
		}
		writeJSON(w, http.StatusForbidden, apiError{denial})
		return store.ProjectRef{}, false
	}
	return proj, true
}

// guarded is what an access decision about p needs.
func guarded(p store.ProjectRef) access.Project {
	return access.Project{Instance: p.Instance, ID: p.ProjectID, Public: p.Public()}
}

// accessUnknown answers 503 when GitLab could not say what the caller may
// do: nothing is allowed on a guess.
func (a *API) accessUnknown(w http.ResponseWriter, err error) {
	a.Logger.Warn("access check", "err", err)
	writeJSON(w, http.StatusServiceUnavailable, apiError{access.ErrUnavailable.Error()})
}
