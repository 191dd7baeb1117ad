package gitlabsim

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// rateLimiter counts requests in fixed one-minute windows per (limit, user),
// the way Rack::Attack and GitLab's ApplicationRateLimiter do.
type rateLimiter struct {
	mu     sync.Mutex
	counts map[rateKey]int
}

type rateKey struct {
	limit  string
	userID int64
	window int64
}

func newRateLimiter() *rateLimiter {
	return &rateLimiter{counts: map[rateKey]int{}}
}

// verdict is the outcome of counting one request.
type verdict struct {
	allowed  bool
	limit    int
	observed int
	reset    time.Time
}

func (rl *rateLimiter) take(limit string, userID int64, perMinute int, now time.Time) verdict {
	window := now.Unix() / 60
	key := rateKey{limit, userID, window}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for k := range rl.counts {
		if k.window < window {
			delete(rl.counts, k)
		}
	}
	rl.counts[key]++
	observed := rl.counts[key]
	return verdict{
		allowed: observed <= perMinute, limit: perMinute, observed: observed,
		reset: time.Unix((window+1)*60, 0).UTC(),
	}
}

// retryAfter is the whole seconds until the window resets, at least 1.
func (v verdict) retryAfter(now time.Time) int {
	secs := int(v.reset.Sub(now).Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	return secs
}

// writeThrottleHeaders sets the headers of a throttled API response:
// Rack::Attack throttles also send RateLimit-*; application limits (like note
// creation) send only Retry-After and RateLimit-Reset.
func (v verdict) writeThrottleHeaders(h http.Header, now time.Time, full bool) {
	h.Set("Retry-After", strconv.Itoa(v.retryAfter(now)))
	h.Set("RateLimit-Reset", strconv.FormatInt(v.reset.Unix(), 10))
	if full {
		remaining := v.limit - v.observed
		if remaining < 0 {
			remaining = 0
		}
		h.Set("RateLimit-Name", "throttle_authenticated_api")
		h.Set("RateLimit-Limit", strconv.Itoa(v.limit))
		h.Set("RateLimit-Observed", strconv.Itoa(v.observed))
		h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("RateLimit-ResetTime", v.reset.Format(http.TimeFormat))
	}
}
