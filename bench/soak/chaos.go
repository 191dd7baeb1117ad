package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

// chaosStats counts what the chaos loop did.
type chaosStats struct {
	kills, databaseRestarts, errors5xx, rateLimits, slow, down int
}

func (c chaosStats) String() string {
	return fmt.Sprintf("%d SIGKILLs of upbuild, %d database restarts, GitLab faults: %d 5xx, %d 429, %d slow, %d down",
		c.kills, c.databaseRestarts, c.errors5xx, c.rateLimits, c.slow, c.down)
}

// chaos picks a random fault every so often (uniform in 0.5–1.5 times
// chaosEvery) until ctx ends, and leaves upbuild running.
func (s *soak) chaos(ctx context.Context, rng *rand.Rand) (chaosStats, error) {
	var st chaosStats
	for {
		pause := time.Duration((0.5 + rng.Float64()) * float64(s.opts.chaosEvery))
		select {
		case <-ctx.Done():
			return st, nil
		case <-time.After(pause):
		}
		// GitLab faults last a few seconds of simulator time.
		lasting := time.Duration(1+rng.IntN(4)) * time.Second
		api := "/api/v4/"
		switch roll := rng.IntN(100); {
		case roll < 40:
			if err := s.killAndRestart(ctx, time.Duration(rng.IntN(500))*time.Millisecond); err != nil {
				return st, err
			}
			st.kills++
		case roll < 50 && s.db.restart != nil:
			s.log("chaos: restart PostgreSQL")
			if err := s.db.restart(ctx, time.Duration(rng.IntN(2000))*time.Millisecond); err != nil {
				return st, fmt.Errorf("chaos: %w", err)
			}
			st.databaseRestarts++
		case roll < 65:
			codes := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}
			s.sim.InjectFault(gitlabsim.Fault{PathPrefix: api, Kind: gitlabsim.FaultError, Status: codes[rng.IntN(len(codes))], For: lasting})
			st.errors5xx++
		case roll < 80:
			s.sim.InjectFault(gitlabsim.Fault{PathPrefix: api, Kind: gitlabsim.FaultRateLimit, RetryAfter: time.Second, For: lasting})
			st.rateLimits++
		case roll < 90:
			s.sim.InjectFault(gitlabsim.Fault{PathPrefix: api, Kind: gitlabsim.FaultDelay,
				Delay: time.Duration(200+rng.IntN(2000)) * time.Millisecond, For: lasting})
			st.slow++
		default:
			s.sim.InjectFault(gitlabsim.Fault{Kind: gitlabsim.FaultDown, For: lasting})
			st.down++
		}
	}
}

// killAndRestart SIGKILLs upbuild, as a crash or the OOM killer would, and
// starts it again after down.
func (s *soak) killAndRestart(ctx context.Context, down time.Duration) error {
	s.svcMu.Lock()
	defer s.svcMu.Unlock()
	if err := s.svc.Kill(); err != nil {
		return fmt.Errorf("chaos: SIGKILL upbuild: %w", err)
	}
	time.Sleep(down)
	// A cancelled ctx must not leave upbuild down: the settle phase needs it.
	if err := s.svc.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("chaos: restart upbuild: %w", err)
	}
	return nil
}
