package joblog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/blob"
	"upbuild.dev/upbuild/internal/store"
)

// Handlers serves job logs and artifacts:
//
//	GET /api/v1/jobs/{id}/log                the log so far, as text/plain
//	GET /api/v1/jobs/{id}/log/stream         Server-Sent Events: each line as a message
//	                                         (id: its Seq), "event: status" with {state, description}
//	                                         when either changes, then "event: end" once the job is final
//	GET /api/v1/jobs/{id}/artifacts          JSON list: name, size, sha256, url
//	GET /api/v1/jobs/{id}/artifacts/{name}   the file, as an attachment
//
// A job of a project that is not public is served to people signed in to
// the dashboard as Reporter or higher of the project, and to the admin token
// ("Authorization: Bearer <token>"); to anyone else the answer is the same
// 404 as for a job that does not exist.
type Handlers struct {
	Store     *store.Store
	Logs      *Logs
	Artifacts *Artifacts
	// AdminToken unlocks private projects' jobs when Access is nil (Register
	// then builds a Guard that knows only the admin token).
	AdminToken string
	// Access decides who sees private projects' jobs.
	Access *access.Guard
	// Logger receives server-side failures; nil means slog.Default().
	Logger *slog.Logger
	// PollInterval is how often a stream looks for lines stored by other
	// processes and for the job's end; 0 means 200 ms. Lines stored by this
	// process wake streams at once.
	PollInterval time.Duration
}

// Register adds the routes to mux.
func (h *Handlers) Register(mux *http.ServeMux) {
	if h.Access == nil && h.Store != nil {
		g, err := access.New(access.Options{Store: h.Store, AdminToken: h.AdminToken, Logger: h.Logger})
		if err != nil {
			panic("joblog: " + err.Error()) // no store: a wiring mistake, found at start
		}
		h.Access = g
	}
	mux.HandleFunc("GET /api/v1/jobs/{id}/log", h.log)
	mux.HandleFunc("GET /api/v1/jobs/{id}/log/stream", h.stream)
	mux.HandleFunc("GET /api/v1/jobs/{id}/artifacts", h.artifacts)
	mux.HandleFunc("GET /api/v1/jobs/{id}/artifacts/{name}", h.artifact)
}

// How long one write to a client may take. The server's own WriteTimeout
// covers a whole response, which streams and large downloads outlast; they
// move the deadline forward as they go.
const (
	writeWindow    = 30 * time.Second
	keepAliveEvery = 15 * time.Second
	pageLines      = 1000
)

type errorJSON struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing left to tell it
}

// job loads the job the request names and checks the caller may see it,
// answering the request itself when not.
func (h *Handlers) job(w http.ResponseWriter, r *http.Request) (store.Job, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeJSON(w, http.StatusNotFound, errorJSON{"no such job"})
		return store.Job{}, false
	}
	job, err := h.Store.Job(r.Context(), id)
	var run store.Run
	if err == nil {
		run, err = h.Store.Run(r.Context(), job.RunID)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		h.logger().Error("load job", "job", id, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, errorJSON{"upbuild cannot read its database right now"})
		return store.Job{}, false
	default:
		ok, err := h.Access.Allowed(r.Context(), r, access.Project{Instance: run.Instance, ID: run.ProjectID, Public: run.Public()}, access.SeePrivate)
		if err != nil {
			h.logger().Warn("access check", "job", id, "err", err)
			writeJSON(w, http.StatusServiceUnavailable, errorJSON{access.ErrUnavailable.Error()})
			return store.Job{}, false
		}
		if ok {
			return job, true
		}
	}
	writeJSON(w, http.StatusNotFound, errorJSON{fmt.Sprintf("job %d does not exist, or its project is not public "+
		"(sign in to the dashboard with GitLab as a Reporter or higher of the project, or send the admin token as 'Authorization: Bearer <token>')", id)})
	return store.Job{}, false
}

func (h *Handlers) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.Default()
	}
	return h.Logger
}

// extendDeadline gives the next writes to the client another window.
func (h *Handlers) extendDeadline(w http.ResponseWriter) {
	err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeWindow))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		h.logger().Warn("extend write deadline", "err", err)
	}
}

func (h *Handlers) log(w http.ResponseWriter, r *http.Request) {
	job, ok := h.job(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	var after int64
	for {
		lines, err := h.Logs.Lines(r.Context(), job.ID, after, pageLines)
		if err != nil {
			h.logger().Error("read job log", "job", job.ID, "err", err)
			if after == 0 {
				writeJSON(w, http.StatusServiceUnavailable, errorJSON{"upbuild cannot read its database right now"})
			}
			// Past the first page the status is sent: the client sees a cut-short body.
			return
		}
		h.extendDeadline(w)
		var b strings.Builder
		for _, ln := range lines {
			b.WriteString(ln.Text)
			b.WriteByte('\n')
		}
		if _, err := io.WriteString(w, b.String()); err != nil {
			return // the client went away
		}
		if len(lines) < pageLines {
			return
		}
		after = lines[len(lines)-1].Seq
	}
}

// stream tails a job's log as Server-Sent Events. A reconnecting
// EventSource sends Last-Event-ID and resumes after that line; ?after=N
// does the same by hand.
func (h *Handlers) stream(w http.ResponseWriter, r *http.Request) {
	job, ok := h.job(w, r)
	if !ok {
		return
	}
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, errorJSON{"after must be a line number (0 or more)"})
			return
		}
		after = n
	} else if n, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && n > 0 {
		// An ID this handler did not send (or none) starts from the beginning.
		after = n
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // tell nginx-like proxies not to hold events back
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	poll := h.PollInterval
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	ctx := r.Context()
	lastWrite := time.Now()
	shown := jobStatus{State: job.State, Description: job.Description}
	for {
		// The state is read before the lines: lines stored before the job
		// went final are then certain to be in this read.
		current, err := h.Store.Job(ctx, job.ID)
		if err != nil {
			h.streamFailed(ctx, job.ID, err)
			return
		}
		stored := h.Logs.stored()
		var b strings.Builder
		// send writes what b holds and empties it.
		send := func() bool {
			h.extendDeadline(w)
			if _, err := io.WriteString(w, b.String()); err != nil {
				return false // the client went away
			}
			if err := rc.Flush(); err != nil {
				return false
			}
			b.Reset()
			lastWrite = time.Now()
			return true
		}
		for {
			lines, err := h.Logs.Lines(ctx, job.ID, after, pageLines)
			if err != nil {
				h.streamFailed(ctx, job.ID, err)
				return
			}
			for _, ln := range lines {
				writeEvent(&b, ln)
				after = ln.Seq
			}
			if len(lines) < pageLines {
				break
			}
			// A long backlog goes out a page at a time, never whole in
			// memory: each request would otherwise hold all of it.
			if !send() {
				return
			}
		}
		if current.State != shown.State || current.Description != shown.Description {
			// The page shows the state and what the job is doing: keep both current.
			status, err := json.Marshal(shown.update(current))
			if err != nil {
				h.streamFailed(ctx, job.ID, err)
				return
			}
			fmt.Fprintf(&b, "event: status\ndata: %s\n\n", status)
		}
		final := store.JobFinal(current.State)
		if final {
			fmt.Fprintf(&b, "event: end\ndata: %s\n\n", current.State)
		}
		if b.Len() == 0 && time.Since(lastWrite) >= keepAliveEvery {
			b.WriteString(": keep-alive\n\n")
		}
		if b.Len() > 0 && !send() {
			return
		}
		if final {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-stored:
		}
	}
}

func (h *Handlers) streamFailed(ctx context.Context, jobID int64, err error) {
	if ctx.Err() == nil {
		h.logger().Error("stream job log", "job", jobID, "err", err)
	}
}

// writeEvent writes one line as an SSE message. A carriage return inside a
// line cannot travel in an SSE field, so each CR-separated piece becomes a
// data field and the client sees them joined by newlines.
func writeEvent(b *strings.Builder, ln Line) {
	fmt.Fprintf(b, "id: %d\n", ln.Seq)
	for piece := range strings.SplitSeq(ln.Text, "\r") {
		b.WriteString("data: ")
		b.WriteString(piece)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
}

// jobStatus is what a "status" event carries: the job's state and what it
// is doing, sent whenever either changes.
type jobStatus struct {
	State       string `json:"state"`
	Description string `json:"description"`
}

// update takes the job's current status and returns it.
func (s *jobStatus) update(j store.Job) jobStatus {
	s.State, s.Description = j.State, j.Description
	return *s
}

// ArtifactJSON is one artifact in the API.
type ArtifactJSON struct {
	Name      string    `json:"name"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	CreatedAt time.Time `json:"created_at"`
	// URL is the download path on this server.
	URL string `json:"url"`
}

func (h *Handlers) artifacts(w http.ResponseWriter, r *http.Request) {
	job, ok := h.job(w, r)
	if !ok {
		return
	}
	arts, err := h.Artifacts.List(r.Context(), job.ID)
	if err != nil {
		h.logger().Error("list artifacts", "job", job.ID, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, errorJSON{"upbuild cannot read its database right now"})
		return
	}
	out := struct {
		Artifacts []ArtifactJSON `json:"artifacts"`
	}{Artifacts: []ArtifactJSON{}}
	for _, a := range arts {
		out.Artifacts = append(out.Artifacts, ArtifactJSON{Name: a.Name, Size: a.Size, SHA256: a.SHA256, CreatedAt: a.CreatedAt,
			URL: "/api/v1/jobs/" + strconv.FormatInt(job.ID, 10) + "/artifacts/" + url.PathEscape(a.Name)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handlers) artifact(w http.ResponseWriter, r *http.Request) {
	job, ok := h.job(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if blob.CheckName(name) != nil {
		// No artifact can have such a name; answer before it reaches a
		// query (PostgreSQL refuses a NUL in text).
		writeJSON(w, http.StatusNotFound, errorJSON{fmt.Sprintf("job %d has no artifact called %q", job.ID, name)})
		return
	}
	rc, art, err := h.Artifacts.Open(r.Context(), job.ID, name)
	if errors.Is(err, ErrNotFound) {
		writeJSON(w, http.StatusNotFound, errorJSON{fmt.Sprintf("job %d has no artifact called %q", job.ID, name)})
		return
	}
	if err != nil {
		h.logger().Error("open artifact", "job", job.ID, "name", name, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, errorJSON{"upbuild cannot read its artifact storage right now"})
		return
	}
	defer rc.Close()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/octet-stream")
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": art.Name})
	if disposition == "" { // a name the header cannot carry; the browser picks one from the URL
		disposition = "attachment"
	}
	hdr.Set("Content-Disposition", disposition)
	hdr.Set("Content-Length", strconv.FormatInt(art.Size, 10))
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hdr.Set("ETag", `"`+art.SHA256+`"`)
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 256<<10)
	for {
		h.extendDeadline(w)
		n, readErr := rc.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return // the client went away
			}
		}
		if errors.Is(readErr, io.EOF) {
			return
		}
		if readErr != nil {
			// The status is sent; a short body (against Content-Length) tells the client.
			h.logger().Error("send artifact", "job", job.ID, "name", name, "err", readErr)
			return
		}
	}
}
