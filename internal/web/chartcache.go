package web

import (
	"context"
	"sync"
	"time"
)

// chartTTL is how long a project's 90-day charts are reused. A day's bar
// moves by a few jobs in that time at most, and sixteen people reading a
// busy project's page then sum its history once instead of sixteen times
// (the sums were a fifth of the dashboard's CPU under load).
const chartTTL = 15 * time.Second

// chartCacheSize bounds the cache; when full it starts over, which costs
// one sum per project.
const chartCacheSize = 1024

type chartKey struct {
	instance  string
	projectID int64
}

type projectCharts struct {
	jobs     []chart
	delivery chart
	drawnAt  time.Time
	inFlight chan struct{} // closed when the drawing that fills this entry ends
}

// chartCache holds recently drawn project charts.
type chartCache struct {
	mu      sync.Mutex
	entries map[chartKey]*projectCharts
}

func newChartCache() *chartCache {
	return &chartCache{entries: map[chartKey]*projectCharts{}}
}

// get returns the project's charts, drawing them with draw when none are
// fresh. Concurrent callers for the same project wait for one drawing; if
// it fails (its reader may have gone away), the next one draws again.
func (c *chartCache) get(ctx context.Context, key chartKey, now time.Time,
	draw func(context.Context) ([]chart, chart, error)) ([]chart, chart, error) {
	for {
		c.mu.Lock()
		e, ok := c.entries[key]
		switch {
		case ok && e.inFlight == nil && now.Sub(e.drawnAt) < chartTTL:
			c.mu.Unlock()
			return e.jobs, e.delivery, nil
		case ok && e.inFlight != nil:
			wait := e.inFlight
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, chart{}, ctx.Err()
			}
		}
		if len(c.entries) >= chartCacheSize {
			c.entries = map[chartKey]*projectCharts{}
		}
		e = &projectCharts{inFlight: make(chan struct{})}
		c.entries[key] = e
		c.mu.Unlock()

		jobs, delivery, err := draw(ctx)

		c.mu.Lock()
		e.jobs, e.delivery, e.drawnAt = jobs, delivery, now
		close(e.inFlight)
		e.inFlight = nil
		if err != nil {
			delete(c.entries, key)
		}
		c.mu.Unlock()
		return jobs, delivery, err
	}
}
