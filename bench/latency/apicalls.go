package main

import (
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// apiCall is one API request upbuild made to the simulator. Project and
// SHA are filled in for the calls that name a commit: status writes (SHA in
// the path) and repository reads (SHA as ref).
type apiCall struct {
	At      time.Time
	Route   string
	Project int64
	SHA     string
}

// apiCalls records the API requests that reach the simulator, to show how
// many calls upbuild makes per merge request and when it makes them.
type apiCalls struct {
	next  http.Handler
	mu    sync.Mutex
	calls []apiCall
}

// idSegment matches the parts of a path that vary per object.
var idSegment = regexp.MustCompile(`/(\d+|[0-9a-f]{40}|[^/]*%2F[^/]*)(/|$)`)

// projectPath splits /api/v4/projects/<id>/<rest>.
var projectPath = regexp.MustCompile(`^/api/v4/projects/(\d+)/(.*)$`)

func (c *apiCalls) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := apiCall{At: time.Now()}
	path := r.URL.EscapedPath()
	// Twice, because a match eats the slash the next one starts with.
	call.Route = r.Method + " " + idSegment.ReplaceAllString(idSegment.ReplaceAllString(path, "/:id$2"), "/:id$2")
	if m := projectPath.FindStringSubmatch(path); m != nil {
		call.Project, _ = strconv.ParseInt(m[1], 10, 64) // the pattern admits digits only
		switch rest := m[2]; {
		case strings.HasPrefix(rest, "statuses/"):
			call.SHA = strings.TrimPrefix(rest, "statuses/")
		case strings.HasPrefix(rest, "repository/"):
			call.SHA = r.URL.Query().Get("ref")
		}
	}
	c.mu.Lock()
	c.calls = append(c.calls, call)
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

// watch puts the recorder in front of the simulator's handler.
func (c *apiCalls) watch(next http.Handler) http.Handler {
	c.next = next
	return c
}

// reset forgets the calls so far.
func (c *apiCalls) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = nil
}

// list returns the calls so far, in arrival order.
func (c *apiCalls) list() []apiCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]apiCall(nil), c.calls...)
}

type routeCount struct {
	route string
	n     int
}

// byRoute counts calls per route, most frequent first.
func byRoute(calls []apiCall) []routeCount {
	counts := map[string]int{}
	for _, c := range calls {
		counts[c.Route]++
	}
	out := make([]routeCount, 0, len(counts))
	for r, n := range counts {
		out = append(out, routeCount{r, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n > out[j].n || out[i].n == out[j].n && out[i].route < out[j].route })
	return out
}

// callRate is how fast calls came: on average from the first to the last,
// and in the busiest whole second.
type callRate struct {
	average float64
	peak    int
}

func rateOf(calls []apiCall) callRate {
	if len(calls) < 2 {
		return callRate{}
	}
	first, last := calls[0].At, calls[len(calls)-1].At
	perSecond := map[int64]int{}
	var r callRate
	for _, c := range calls {
		sec := int64(c.At.Sub(first) / time.Second)
		perSecond[sec]++
		r.peak = max(r.peak, perSecond[sec])
	}
	if span := last.Sub(first).Seconds(); span > 0 {
		r.average = float64(len(calls)) / span
	}
	return r
}
