package main

import (
	"net/http"
	"regexp"
	"sort"
	"sync"
)

// apiCalls counts the API requests that reach the simulator, by method and
// route, to show how many calls upbuild makes per merge request.
type apiCalls struct {
	next   http.Handler
	mu     sync.Mutex
	counts map[string]int
}

// idSegment matches the parts of a path that vary per object.
var idSegment = regexp.MustCompile(`/(\d+|[0-9a-f]{40}|[^/]*%2F[^/]*)(/|$)`)

func (c *apiCalls) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + idSegment.ReplaceAllString(idSegment.ReplaceAllString(r.URL.EscapedPath(), "/:id$2"), "/:id$2")
	c.mu.Lock()
	c.counts[route]++
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

// reset forgets the counts so far.
func (c *apiCalls) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = map[string]int{}
}

type routeCount struct {
	route string
	n     int
}

// byRoute returns the counts, most frequent first.
func (c *apiCalls) byRoute() []routeCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]routeCount, 0, len(c.counts))
	for r, n := range c.counts {
		out = append(out, routeCount{r, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n > out[j].n || out[i].n == out[j].n && out[i].route < out[j].route })
	return out
}
