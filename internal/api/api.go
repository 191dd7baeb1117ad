// Package api serves upbuild's JSON API under /api/v1.
package api

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/store"
)

// API holds what the handlers need.
type API struct {
	Store *store.Store
	// AdminToken guards the admin endpoints; empty disables them.
	AdminToken string
	// Access decides who sees private projects' runs and jobs: people
	// signed in to the dashboard as Reporter or higher (the session cookie
	// works here too), and the admin token. Nil: Register builds a Guard
	// that knows only the admin token.
	Access *access.Guard
	// Jobs, when set, adds the re-run and cancel endpoints.
	Jobs   *JobActions
	Logger *slog.Logger
}

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	if a.Access == nil && a.Store != nil {
		g, err := access.New(access.Options{Store: a.Store, AdminToken: a.AdminToken, Logger: a.Logger})
		if err != nil {
			panic("api: " + err.Error()) // no store: a wiring mistake, found at start
		}
		a.Access = g
	}
	mux.Handle("GET /api/v1/deliveries", a.admin(http.HandlerFunc(a.deliveries)))
	mux.Handle("GET /api/v1/rejections", a.admin(http.HandlerFunc(a.rejections)))
	mux.HandleFunc("GET /api/v1/runs", a.runs)
	mux.HandleFunc("GET /api/v1/runs/{id}", a.run)
	mux.HandleFunc("GET /api/v1/jobs/{id}", a.job)
	mux.HandleFunc("GET /api/v1/projects/{id}/runs", a.projectRuns)
	mux.HandleFunc("GET /api/v1/projects/{id}", a.project)
	mux.HandleFunc("GET /api/v1/projects/{id}/settings", a.projectSettings)
	mux.HandleFunc("GET /api/v1/projects/{id}/audit", a.projectAudit)
	if a.Jobs != nil {
		mux.HandleFunc("POST /api/v1/jobs/{id}/rerun", a.Jobs.HandleRerun)
		mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", a.Jobs.HandleCancel)
		mux.HandleFunc("POST /api/v1/runs/{id}/approve", a.Jobs.HandleApprove)
	}
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// admin lets a request through only with the admin token, compared in
// constant time.
func (a *API) admin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.AdminToken == "" {
			writeJSON(w, http.StatusForbidden, apiError{"the admin API is disabled: configure an admin token (UPBUILD_ADMIN_TOKEN)"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.AdminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="upbuild admin"`)
			writeJSON(w, http.StatusUnauthorized, apiError{"this endpoint needs the admin token as 'Authorization: Bearer <token>'"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// DeliveryJSON is one delivery in the API.
type DeliveryJSON struct {
	ID           int64             `json:"id"`
	Instance     string            `json:"instance"`
	ProjectID    int64             `json:"project_id"`
	ProjectPath  string            `json:"project_path"`
	Event        string            `json:"event"`
	EventKind    string            `json:"event_kind"`
	Outcome      string            `json:"outcome"`
	Reason       string            `json:"reason,omitempty"`
	ReceivedAt   time.Time         `json:"received_at"`
	RepeatCount  int64             `json:"repeat_count"`
	LastRepeatAt *time.Time        `json:"last_repeat_at,omitempty"`
	Headers      map[string]string `json:"headers"`
}

// DeliveryPage is one page of deliveries, newest first.
type DeliveryPage struct {
	Deliveries []DeliveryJSON `json:"deliveries"`
	// Next is the URL of the next (older) page, empty on the last one.
	Next string `json:"next,omitempty"`
}

func (a *API) deliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.DeliveryFilter{Instance: q.Get("instance"), ProjectPath: q.Get("project"), Limit: 50}
	for name, dst := range map[string]*int64{"project_id": &f.ProjectID, "before": &f.BeforeID} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				writeJSON(w, http.StatusBadRequest, apiError{name + " must be a non-negative integer"})
				return
			}
			*dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeJSON(w, http.StatusBadRequest, apiError{"limit must be between 1 and 500"})
			return
		}
		f.Limit = n
	}
	// One extra row says whether there is a next page.
	want := f.Limit
	f.Limit++
	list, err := a.Store.Deliveries(r.Context(), f)
	if err != nil {
		a.Logger.Error("list deliveries", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, apiError{"could not read deliveries"})
		return
	}
	page := DeliveryPage{Deliveries: make([]DeliveryJSON, 0, min(len(list), want))}
	for i, d := range list {
		if i == want {
			next := url.Values{}
			for k, v := range q {
				next[k] = v
			}
			next.Set("before", strconv.FormatInt(list[want-1].ID, 10))
			page.Next = "/api/v1/deliveries?" + next.Encode()
			break
		}
		page.Deliveries = append(page.Deliveries, DeliveryJSON{
			ID: d.ID, Instance: d.Instance, ProjectID: d.ProjectID, ProjectPath: d.ProjectPath,
			Event: d.EventHeader, EventKind: d.EventKind, Outcome: d.Outcome, Reason: d.Reason,
			ReceivedAt: d.ReceivedAt, RepeatCount: d.RepeatCount, LastRepeatAt: d.LastRepeatAt, Headers: d.Headers,
		})
	}
	writeJSON(w, http.StatusOK, page)
}

// RejectionJSON is one rejection counter.
type RejectionJSON struct {
	Instance   string    `json:"instance"`
	ScopePath  string    `json:"scope_path"`
	Count      int64     `json:"count"`
	FirstAt    time.Time `json:"first_at"`
	LastAt     time.Time `json:"last_at"`
	LastReason string    `json:"last_reason"`
}

func (a *API) rejections(w http.ResponseWriter, r *http.Request) {
	list, err := a.Store.Rejections(r.Context(), r.URL.Query().Get("instance"))
	if err != nil {
		a.Logger.Error("list rejections", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, apiError{"could not read rejections"})
		return
	}
	out := make([]RejectionJSON, 0, len(list))
	for _, x := range list {
		out = append(out, RejectionJSON(x))
	}
	writeJSON(w, http.StatusOK, map[string]any{"rejections": out})
}
