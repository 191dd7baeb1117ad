package demo

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// eventKind says what a write to the simulator was.
type eventKind int

const (
	statusSet eventKind = iota + 1
	commentCreated
	commentEdited
)

// event is one write upbuild made to the simulator, as the simulator
// answered it: the answer carries the state GitLab ended up with, including
// the description, which the simulator's transition log does not keep.
type event struct {
	kind eventKind
	at   time.Time
	// code is the simulator's HTTP status; a write it refused has no
	// status or note, and refusal holds its answer.
	code    int
	refusal string
	status  statusAnswer
	note    noteAnswer
}

// statusAnswer is the part of GitLab's commit status JSON the demo shows.
type statusAnswer struct {
	ID          int64  `json:"id"`
	SHA         string `json:"sha"`
	Name        string `json:"name"`
	Status      string `json:"status"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
}

// noteAnswer is the part of GitLab's note JSON the demo shows.
type noteAnswer struct {
	ID          int64  `json:"id"`
	Body        string `json:"body"`
	NoteableIID int64  `json:"noteable_iid"`
	Author      struct {
		Username string `json:"username"`
	} `json:"author"`
}

// watcher sits in front of the simulator and records the commit status and
// merge request note writes it answers, in the order it answered them.
type watcher struct {
	next    http.Handler
	now     func() time.Time
	mu      sync.Mutex
	events  []event
	changed chan struct{}
}

func newWatcher(next http.Handler) *watcher {
	return &watcher{next: next, now: time.Now, changed: make(chan struct{}, 1)}
}

// maxAnswer bounds how much of an answer is kept for decoding.
const maxAnswer = 1 << 20

func (w *watcher) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	kind := classify(r.Method, r.URL.EscapedPath())
	if kind == 0 {
		w.next.ServeHTTP(rw, r)
		return
	}
	rec := &recorder{ResponseWriter: rw, code: http.StatusOK}
	w.next.ServeHTTP(rec, r)
	ev := event{kind: kind, at: w.now(), code: rec.code}
	switch {
	case rec.code >= 300:
		ev.refusal = strings.TrimSpace(rec.body.String())
	case kind == statusSet:
		if json.Unmarshal(rec.body.Bytes(), &ev.status) != nil {
			return
		}
	default:
		if json.Unmarshal(rec.body.Bytes(), &ev.note) != nil {
			return
		}
	}
	w.mu.Lock()
	w.events = append(w.events, ev)
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// since returns the events after the first n.
func (w *watcher) since(n int) []event {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n >= len(w.events) {
		return nil
	}
	return append([]event(nil), w.events[n:]...)
}

// classify recognises the API writes the demo reports, from the escaped
// path (a project given as "demo%2Fhello" stays one segment).
func classify(method, escapedPath string) eventKind {
	rest, ok := strings.CutPrefix(escapedPath, "/api/v4/projects/")
	if !ok {
		return 0
	}
	parts := strings.Split(rest, "/")
	switch {
	case method == http.MethodPost && len(parts) == 3 && parts[1] == "statuses":
		return statusSet
	case method == http.MethodPost && len(parts) == 4 && parts[1] == "merge_requests" && parts[3] == "notes":
		return commentCreated
	case method == http.MethodPut && len(parts) == 5 && parts[1] == "merge_requests" && parts[3] == "notes":
		return commentEdited
	}
	return 0
}

// recorder passes an answer through and keeps a copy of its start.
type recorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	if room := maxAnswer - r.body.Len(); room > 0 {
		r.body.Write(p[:min(len(p), room)])
	}
	return r.ResponseWriter.Write(p)
}
