package access

import (
	"sync"
	"time"
)

// cacheMax bounds a cache; past it, expired entries are dropped, and if
// none are, the whole cache (it refills from GitLab).
const cacheMax = 10000

type levelKey struct {
	instance  string
	projectID int64
	userID    int64
}

type projectKey struct {
	instance  string
	projectID int64
}

type cached[V any] struct {
	value V
	at    time.Time
}

// ttlCache remembers what GitLab said for ttl: access levels, so that a
// page with many checks asks once and a demoted user keeps a level at most
// ttl; and whether a project is still public, so that one that went
// private stops being shown to everyone within ttl.
type ttlCache[K comparable, V any] struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[K]cached[V]
}

func newTTLCache[K comparable, V any](ttl time.Duration, now func() time.Time) *ttlCache[K, V] {
	return &ttlCache[K, V]{ttl: ttl, now: now, entries: map[K]cached[V]{}}
}

func (c *ttlCache[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || c.now().Sub(e.at) >= c.ttl {
		var zero V
		return zero, false
	}
	return e.value, true
}

func (c *ttlCache[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= cacheMax {
		for key, e := range c.entries {
			if now.Sub(e.at) >= c.ttl {
				delete(c.entries, key)
			}
		}
		if len(c.entries) >= cacheMax {
			clear(c.entries)
		}
	}
	c.entries[k] = cached[V]{value: v, at: now}
}
