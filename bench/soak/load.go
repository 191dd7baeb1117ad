package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

// loadStats counts what the load did on the simulator.
type loadStats struct {
	opened, mrPushes, mainPushes, commands, chatter, duplicates int
}

func (l loadStats) String() string {
	return fmt.Sprintf("%d MRs opened, %d pushes to MRs, %d pushes to main, %d /packit build comments, %d other comments, %d duplicate deliveries",
		l.opened, l.mrPushes, l.mainPushes, l.commands, l.chatter, l.duplicates)
}

// openMR is a merge request the load may push to or comment on.
type openMR struct {
	project gitlabsim.Project
	iid     int64
	branch  string
}

// drive sends a steady mix of events at the configured rate until ctx ends.
func (s *soak) drive(ctx context.Context, rng *rand.Rand) (loadStats, error) {
	var st loadStats
	var mrs []openMR
	tick := time.NewTicker(time.Duration(float64(time.Second) / s.opts.rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return st, nil
		case <-tick.C:
		}
		p := s.projects[rng.IntN(len(s.projects))]
		var err error
		switch roll := rng.IntN(100); {
		case roll < 30 || len(mrs) == 0:
			branch := fmt.Sprintf("change-%05d", n)
			if _, err = s.sim.PushCommits(ctx, p.ID, branch, s.author, change(n, "hello.sh")); err != nil {
				break
			}
			var mr gitlabsim.MergeRequest
			mr, err = s.sim.OpenMergeRequest(ctx, gitlabsim.MergeRequestSpec{ProjectID: p.ID, SourceBranch: branch,
				TargetBranch: p.DefaultBranch, Title: fmt.Sprintf("Change %d", n), Author: s.author})
			if err == nil {
				mrs = append(mrs, openMR{project: p, iid: mr.IID, branch: branch})
				st.opened++
			}
		case roll < 50:
			mr := mrs[rng.IntN(len(mrs))]
			_, err = s.sim.PushCommits(ctx, mr.project.ID, mr.branch, s.author, change(n, "hello.sh"))
			st.mrPushes++
		case roll < 65:
			_, err = s.sim.PushCommits(ctx, p.ID, p.DefaultBranch, s.author, change(n, "CHANGES"))
			st.mainPushes++
		case roll < 75:
			mr := mrs[rng.IntN(len(mrs))]
			_, err = s.sim.AddNote(ctx, mr.project.ID, mr.iid, s.author, "/packit build")
			st.commands++
		case roll < 85:
			mr := mrs[rng.IntN(len(mrs))]
			_, err = s.sim.AddNote(ctx, mr.project.ID, mr.iid, s.author, fmt.Sprintf("Looks good (%d).", n))
			st.chatter++
		default:
			// GitLab's "Resend Request" on a delivery that already
			// succeeded: upbuild must count it once.
			if d, ok := recentAccepted(s.sim.Deliveries(), rng); ok {
				err = s.sim.ResendDelivery(d.ID)
				st.duplicates++
			}
		}
		if err != nil && ctx.Err() == nil {
			return st, fmt.Errorf("load: %w", err)
		}
	}
}

func change(n int, path string) gitlabsim.CommitSpec {
	return gitlabsim.CommitSpec{Message: fmt.Sprintf("Change %d", n),
		Changes: []gitlabsim.FileChange{{Path: path, Content: fmt.Sprintf("change %d\n", n)}}}
}

// recentAccepted picks one of the last deliveries that got a 202.
func recentAccepted(ds []gitlabsim.Delivery, rng *rand.Rand) (gitlabsim.Delivery, bool) {
	var recent []gitlabsim.Delivery
	for i := len(ds) - 1; i >= 0 && len(recent) < 50; i-- {
		if ds[i].StatusCode == http.StatusAccepted {
			recent = append(recent, ds[i])
		}
	}
	if len(recent) == 0 {
		return gitlabsim.Delivery{}, false
	}
	return recent[rng.IntN(len(recent))], true
}

// unanswered returns, per Idempotency-Key that never got a 202, its latest
// delivery (which may still be in flight).
func unanswered(ds []gitlabsim.Delivery) map[string]gitlabsim.Delivery {
	accepted := map[string]bool{}
	latest := map[string]gitlabsim.Delivery{}
	for _, d := range ds {
		if d.StatusCode == http.StatusAccepted {
			accepted[d.IdempotencyKey] = true
		}
		latest[d.IdempotencyKey] = d
	}
	for key := range accepted {
		delete(latest, key)
	}
	return latest
}

func inFlight(d gitlabsim.Delivery) bool {
	return !d.Skipped && d.StatusCode == 0 && d.Err == ""
}

// repairLoop does what a maintainer does about failed deliveries while
// upbuild is being killed: re-enable the hooks and resend.
func (s *soak) repairLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.repair()
		}
	}
}

// resendPause keeps a resend from being repeated while it is queued.
const resendPause = 3 * time.Second

func (s *soak) repair() {
	for _, id := range s.hookIDs {
		// The hook exists (prepare added it), so this cannot fail.
		_ = s.sim.EnableHook(id)
	}
	now := time.Now()
	for key, d := range unanswered(s.sim.Deliveries()) {
		if inFlight(d) || now.Sub(s.resentAt[key]) < resendPause {
			continue
		}
		if err := s.sim.ResendDelivery(d.ID); err == nil {
			s.resentAt[key] = now
		}
	}
}
