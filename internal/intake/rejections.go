package intake

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// rejection describes one refused delivery.
type rejection struct {
	outcome string // metric label
	reason  string // short, for the counter; "" keeps no counter
	hint    string // what the maintainer should do, in the answer
	// instance and scope are set when a verified token says whose hook it is.
	instance, scope string
}

// rejectionCounter aggregates refused deliveries in memory and flushes them
// every second. Counters exist only for scopes that have a token (plus one
// bucket per served instance, and one for everything else), so a flood of
// forged deliveries cannot grow the table.
type rejectionCounter struct {
	store     *store.Store
	instances map[string]bool
	now       func() time.Time

	mu      sync.Mutex
	pending map[[2]string]*store.Rejection
	scopes  map[string][]string // instance -> token scope paths
	loaded  time.Time
}

// unauthenticatedPeek bounds how much of a refused delivery's body is read
// to find out which project it claims to be from.
const unauthenticatedPeek = 1 << 20

func newRejectionCounter(s *store.Store, instances map[string]bool, now func() time.Time) *rejectionCounter {
	return &rejectionCounter{store: s, instances: instances, now: now, pending: map[[2]string]*store.Rejection{}}
}

func (c *rejectionCounter) add(r *http.Request, rej rejection) {
	inst, scope := rej.instance, rej.scope
	if inst == "" {
		inst, scope = c.attribute(r)
	}
	now := c.now().UTC()
	c.mu.Lock()
	defer c.mu.Unlock()
	key := [2]string{inst, scope}
	p, ok := c.pending[key]
	if !ok {
		p = &store.Rejection{Instance: inst, ScopePath: scope, FirstAt: now}
		c.pending[key] = p
	}
	p.Count++
	p.LastAt = now
	p.LastReason = rej.reason
}

// attribute finds the known scope an unauthenticated delivery claims to
// come from, using the instance header and the payload's project path.
func (c *rejectionCounter) attribute(r *http.Request) (instance, scope string) {
	inst, err := token.NormalizeInstanceURL(r.Header.Get("X-Gitlab-Instance"))
	if err != nil || !c.instances[inst] {
		return "", ""
	}
	var payload struct {
		Project struct {
			PathWithNamespace string `json:"path_with_namespace"`
		} `json:"project"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, unauthenticatedPeek))
	if json.Unmarshal(body, &payload) != nil || payload.Project.PathWithNamespace == "" {
		return inst, ""
	}
	path := strings.ToLower(payload.Project.PathWithNamespace)
	c.mu.Lock()
	defer c.mu.Unlock()
	best := ""
	for _, s := range c.scopes[inst] {
		ls := strings.ToLower(s)
		if (path == ls || strings.HasPrefix(path, ls+"/")) && len(s) > len(best) {
			best = s
		}
	}
	return inst, best
}

func (c *rejectionCounter) run(ctx context.Context, log *slog.Logger) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		c.refreshScopes(ctx, log)
		select {
		case <-ctx.Done():
			c.flush(context.WithoutCancel(ctx), log)
			return
		case <-tick.C:
			c.flush(ctx, log)
		}
	}
}

func (c *rejectionCounter) refreshScopes(ctx context.Context, log *slog.Logger) {
	if c.now().Sub(c.loaded) < 10*time.Second {
		return
	}
	scopes, err := c.store.KnownScopes(ctx)
	if err != nil {
		log.Warn("load known token scopes", "err", err)
		return
	}
	c.mu.Lock()
	c.scopes, c.loaded = scopes, c.now()
	c.mu.Unlock()
}

func (c *rejectionCounter) flush(ctx context.Context, log *slog.Logger) {
	c.mu.Lock()
	batch := make([]store.Rejection, 0, len(c.pending))
	for _, p := range c.pending {
		batch = append(batch, *p)
	}
	c.pending = map[[2]string]*store.Rejection{}
	c.mu.Unlock()
	if err := c.store.AddRejections(ctx, batch); err != nil {
		log.Warn("store rejection counters", "err", err, "count", len(batch))
	}
}
