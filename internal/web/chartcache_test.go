package web

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestChartCacheDrawsOncePerProjectAndTTL(t *testing.T) {
	c := newChartCache()
	ctx := context.Background()
	var draws atomic.Int32
	release := make(chan struct{})
	draw := func(context.Context) ([]chart, chart, error) {
		draws.Add(1)
		<-release
		return []chart{{Title: "rpm-build"}}, chart{Title: "deliveries"}, nil
	}
	key := chartKey{"https://gitlab.example", 1}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			jobs, delivery, err := c.get(ctx, key, now, draw)
			if err != nil || len(jobs) != 1 || jobs[0].Title != "rpm-build" || delivery.Title != "deliveries" {
				t.Errorf("get = %v %v %v", jobs, delivery, err)
			}
		})
	}
	// Let the readers pile up on the one drawing, then let it finish.
	for c.waiting(key) == nil {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := draws.Load(); n != 1 {
		t.Fatalf("16 readers drew the charts %d times, want once", n)
	}
	if _, _, err := c.get(ctx, key, now.Add(chartTTL-time.Second), draw); err != nil || draws.Load() != 1 {
		t.Fatalf("a fresh entry was drawn again (%d draws, %v)", draws.Load(), err)
	}
	if _, _, err := c.get(ctx, key, now.Add(chartTTL), draw); err != nil || draws.Load() != 2 {
		t.Fatalf("a stale entry was not drawn again (%d draws, %v)", draws.Load(), err)
	}
	if _, _, err := c.get(ctx, chartKey{"https://gitlab.example", 2}, now, draw); err != nil || draws.Load() != 3 {
		t.Fatalf("another project shared the entry (%d draws, %v)", draws.Load(), err)
	}
}

func TestChartCacheDoesNotKeepFailures(t *testing.T) {
	c := newChartCache()
	key := chartKey{"https://gitlab.example", 1}
	now := time.Now()
	broken := errors.New("database is locked")
	if _, _, err := c.get(context.Background(), key, now, func(context.Context) ([]chart, chart, error) {
		return nil, chart{}, broken
	}); !errors.Is(err, broken) {
		t.Fatalf("err = %v, want the drawing's error", err)
	}
	jobs, _, err := c.get(context.Background(), key, now, func(context.Context) ([]chart, chart, error) {
		return []chart{{Title: "ok"}}, chart{}, nil
	})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("after a failure the next reader got %v %v, want a new drawing", jobs, err)
	}
}

// waiting is the in-flight channel of key's entry, nil when none.
func (c *chartCache) waiting(key chartKey) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		return e.inFlight
	}
	return nil
}
