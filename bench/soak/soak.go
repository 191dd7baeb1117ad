package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	"upbuild.dev/upbuild/internal/benchkit"
	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/loadgen"
	"upbuild.dev/upbuild/internal/store"
)

// packitConfig runs a build and tests for merge requests and a build for
// pushes to main, all on a target without a build environment here, so
// every job ends quickly as "skipped".
const packitConfig = `specfile_path: hello.spec
upstream_package_name: hello
downstream_package_name: hello
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
  - job: tests
    trigger: pull_request
    targets: [fedora-rawhide-x86_64]
  - job: copr_build
    trigger: commit
    targets: [fedora-rawhide-x86_64]
`

// soak is one run: the simulator in this process, upbuild as a child.
type soak struct {
	opts     options
	db       database
	sim      *benchkit.Simulator
	svc      *loadgen.Service
	svcMu    sync.Mutex // the chaos loop and the settle phase both restart upbuild
	author   string
	projects []gitlabsim.Project
	hookIDs  []int64
	sampler  *sampler
	// resentAt is when repair last resent a delivery, by Idempotency-Key.
	resentAt map[string]time.Time
	log      func(format string, args ...any)
}

func newSoak(ctx context.Context, opts options, dir string, db database) (*soak, error) {
	// The simulator's own rate limits are off: 429s come from the chaos.
	sim, err := benchkit.StartSimulator(ctx, filepath.Join(dir, "repos"), nil)
	if err != nil {
		return nil, err
	}
	addr, err := loadgen.FreeAddr()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("upbuild address: %w", err), sim.Stop())
	}
	svc := &loadgen.Service{Binary: opts.upbuild, Listen: addr, Log: filepath.Join(dir, "upbuild.log"), Env: []string{
		"UPBUILD_DATA_DIR=" + filepath.Join(dir, "data"),
		"UPBUILD_DATABASE_URL=" + db.url,
		"UPBUILD_PUBLIC_URL=http://" + addr,
		"UPBUILD_INSTANCES=" + sim.URL,
		config.BotTokenEnvName(sim.URL) + "=" + sim.Seeded.Bot.Token,
	}}
	s := &soak{opts: opts, db: db, sim: sim, svc: svc, author: sim.Seeded.Maintainer.Username,
		resentAt: map[string]time.Time{},
		log: func(format string, args ...any) {
			fmt.Fprintf(opts.out, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		}}
	return s, nil
}

// prepare starts upbuild, creates the projects and connects each to
// upbuild with its own webhook token, as a maintainer would.
func (s *soak) prepare(ctx context.Context) error {
	if err := s.svc.Start(ctx); err != nil {
		return fmt.Errorf("start upbuild: %w", err)
	}
	for i := range s.opts.projects {
		p, err := s.sim.AddProject(ctx, gitlabsim.ProjectSpec{
			Namespace: "demo", Path: fmt.Sprintf("soak-%02d", i+1), Visibility: gitlabsim.Public, DefaultBranch: "main",
			Files: benchkit.HelloFiles(packitConfig),
		})
		if err != nil {
			return fmt.Errorf("simulator: project %d: %w", i+1, err)
		}
		tok, err := s.svc.IssueToken(ctx, p.WebURL)
		if err != nil {
			return err
		}
		h, err := s.sim.AddHook(p.ID, gitlabsim.HookSpec{URL: "http://" + s.svc.Listen + "/api/webhooks/gitlab", Token: tok,
			TagPushEvents: true, MergeRequestsEvents: true, NoteEvents: true, ReleasesEvents: true})
		if err != nil {
			return fmt.Errorf("webhook for %s: %w", p.PathWithNamespace, err)
		}
		s.projects = append(s.projects, p)
		s.hookIDs = append(s.hookIDs, h.ID)
	}
	return nil
}

// run drives the soak and returns the final checks.
func (s *soak) run(ctx context.Context) (rep report, err error) {
	rep.engine = s.db.engine
	rep.seed = s.opts.seed
	defer func() { err = errors.Join(err, s.sim.Stop()) }()
	if err := s.prepare(ctx); err != nil {
		return rep, errors.Join(err, s.svc.Kill())
	}
	s.sampler = newSampler()
	rep.before = s.sampler.sample()
	s.log("%s, %d projects ready (seed %d); %g events a second and chaos for %s", s.db.engine, len(s.projects), s.opts.seed, s.opts.rate, s.opts.duration)

	loadCtx, stopLoad := context.WithTimeout(ctx, s.opts.duration)
	defer stopLoad()
	var wg sync.WaitGroup
	var loadErr error
	var loadStats loadStats
	wg.Go(func() {
		loadStats, loadErr = s.drive(loadCtx, rand.New(rand.NewPCG(s.opts.seed, 1)))
	})
	var chaosStats chaosStats
	var chaosErr error
	wg.Go(func() {
		chaosStats, chaosErr = s.chaos(loadCtx, rand.New(rand.NewPCG(s.opts.seed, 2)))
	})
	wg.Go(func() { s.repairLoop(loadCtx) })
	wg.Go(func() { s.sampler.every(loadCtx, 5*time.Second) })
	wg.Wait()
	rep.load, rep.chaos = loadStats, chaosStats
	if err := errors.Join(loadErr, chaosErr); err != nil {
		return rep, errors.Join(err, s.svc.Kill())
	}
	s.sim.ClearFaults()
	s.log("load done: %s; chaos: %s; settling for up to %s", loadStats, chaosStats, s.opts.settle)

	st, err := store.Open(ctx, s.db.url)
	if err != nil {
		return rep, errors.Join(fmt.Errorf("open upbuild's store: %w", err), s.svc.Kill())
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	settled, err := s.settle(ctx, st)
	if err != nil {
		return rep, errors.Join(err, s.svc.Kill())
	}
	rep.settled = settled
	s.svcMu.Lock()
	err = s.svc.Stop()
	s.svcMu.Unlock()
	if err != nil {
		return rep, fmt.Errorf("stop upbuild: %w", err)
	}
	if err := s.sim.WaitDeliveries(ctx); err != nil {
		return rep, err
	}
	rep.after = s.sampler.sampleSettled(ctx)
	rep.peak = s.sampler.peak()
	return s.check(ctx, st, rep)
}

// ensureUp restarts upbuild when the chaos left it down.
func (s *soak) ensureUp(ctx context.Context) error {
	s.svcMu.Lock()
	defer s.svcMu.Unlock()
	if s.svc.Pid() != 0 {
		return nil
	}
	return s.svc.Start(ctx)
}

// settle keeps resending lost deliveries until every delivery got its 202,
// every job is final and every status on the simulator shows the job's
// state, or the settle time is up. It reports whether all of that held.
func (s *soak) settle(ctx context.Context, st *store.Store) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.settle)
	defer cancel()
	if err := s.ensureUp(ctx); err != nil {
		return false, fmt.Errorf("restart upbuild to settle: %w", err)
	}
	for {
		s.repair()
		done, err := s.quiet(ctx, st)
		if err != nil && ctx.Err() == nil {
			return false, err
		}
		if done {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// quiet says whether nothing is left to do.
func (s *soak) quiet(ctx context.Context, st *store.Store) (bool, error) {
	if len(unanswered(s.sim.Deliveries())) > 0 {
		return false, nil
	}
	// Every accepted delivery must be planned before its runs can be counted.
	unplanned, err := st.UnplannedDeliveries(ctx, 1)
	if err != nil || len(unplanned) > 0 {
		return false, err
	}
	jobs, err := allJobs(ctx, st)
	if err != nil {
		return false, err
	}
	for _, j := range jobs {
		if !store.JobFinal(j.job.State) {
			return false, nil
		}
	}
	return len(statusMismatches(s.sim.Simulator, jobs)) == 0, nil
}
