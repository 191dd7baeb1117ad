package report

import (
	"errors"
	"math/rand/v2"
	"time"

	"upbuild.dev/upbuild/internal/forge"
)

// Back-off bounds: the first retry comes after about firstRetry, and each
// further one waits twice as long, up to maxRetry, so that a forge that was
// down for minutes gets everything within maxRetry of coming back.
const (
	firstRetry = time.Second
	maxRetry   = 5 * time.Minute
)

// retryDelay is how long to wait before trying again after err, the
// attempts-th failure in a row (0 for the first): exactly what the forge
// asked for when it throttled us with a Retry-After, else exponential
// back-off with jitter so that rows that failed together do not come back
// in step.
func retryDelay(err error, attempts int) time.Duration {
	var limited *forge.RateLimitedError
	if errors.As(err, &limited) && limited.RetryAfter > 0 {
		return limited.RetryAfter
	}
	d := maxRetry
	if attempts >= 0 && attempts < 9 { // 1s<<9 is already past the cap
		d = min(firstRetry<<attempts, maxRetry)
	}
	// Up to a fifth earlier, never later: the cap stays a promise.
	return d - rand.N(d/5+1)
}

// worthRetrying says whether a failure may go away by itself. Failures the
// forge does not classify are retried too: giving up is only for answers
// that say a repeat will fail the same way.
func worthRetrying(err error) bool {
	return errors.Is(err, forge.ErrTransient) || !errors.Is(err, forge.ErrPermanent)
}
