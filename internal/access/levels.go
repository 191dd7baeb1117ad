package access

import (
	"sync"
	"time"

	"upbuild.dev/upbuild/internal/forge"
)

// levelCacheMax bounds the cache; past it, expired entries are dropped,
// and if none are, the whole cache (it refills from GitLab).
const levelCacheMax = 10000

type levelKey struct {
	instance  string
	projectID int64
	userID    int64
}

type cachedLevel struct {
	level forge.AccessLevel
	at    time.Time
}

// levelCache remembers access levels for ttl, so that a page with many
// checks asks GitLab once, and a demoted user keeps a level at most ttl.
type levelCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[levelKey]cachedLevel
}

func newLevelCache(ttl time.Duration, now func() time.Time) *levelCache {
	return &levelCache{ttl: ttl, now: now, entries: map[levelKey]cachedLevel{}}
}

func (c *levelCache) get(k levelKey) (forge.AccessLevel, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || c.now().Sub(e.at) >= c.ttl {
		return forge.NoAccess, false
	}
	return e.level, true
}

func (c *levelCache) put(k levelKey, l forge.AccessLevel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= levelCacheMax {
		for key, e := range c.entries {
			if now.Sub(e.at) >= c.ttl {
				delete(c.entries, key)
			}
		}
		if len(c.entries) >= levelCacheMax {
			clear(c.entries)
		}
	}
	c.entries[k] = cachedLevel{level: l, at: now}
}
