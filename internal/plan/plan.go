// Package plan turns stored deliveries into runs and jobs: it reads the
// project's .packit.yaml at the event's commit, applies Packit's triggers and
// upbuild's policies (allow-list, drafts, the fork approval gate, comment
// commands and who may use them) and writes the result to the store in one
// transaction. It finds its work in the store, so intake never calls it.
package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/store"
)

// Policy is the operator's say over what runs.
type Policy struct {
	// AllowedNamespaces are instance URL + namespace prefixes; empty allows all.
	AllowedNamespaces []string
	// ApprovalPolicy is off, forks or all.
	ApprovalPolicy string
	// CommandPrefixes start comment commands ("/packit").
	CommandPrefixes []string
	// Aliases resolve target aliases such as fedora-all.
	Aliases packitcfg.AliasTable
}

// Options configure a Planner.
type Options struct {
	Store  *store.Store
	Forges map[string]forge.Forge // by instance URL
	// Enqueue hands queued job IDs to the job queue.
	Enqueue func(ctx context.Context, jobIDs ...int64) error
	// Cancel stops a job the queue may be running (new commits supersede
	// it). Optional; the job's own state is already canceled in the store,
	// so a worker that picks it up later does nothing.
	Cancel func(ctx context.Context, jobID int64) error
	// Changed is called after the store gained something to report.
	Changed   func()
	PublicURL string
	Policy    Policy
	Logger    *slog.Logger
	// PollInterval is how often the store is checked when nothing wakes
	// the planner (other processes' deliveries). Default 250 ms.
	PollInterval time.Duration
	// Parallel is how many projects are planned at once. Default 8.
	Parallel int
}

// passGap is the pause after a wake-up before planning, which batches
// bursts; it is a small part of the 50 ms budget from 202 to the first
// pending status.
const passGap = 5 * time.Millisecond

// Planner plans stored deliveries.
type Planner struct {
	opts  Options
	wake  chan struct{}
	mu    sync.Mutex
	retry map[int64]time.Time // delivery → earliest next attempt after a transient failure
	fails map[int64]int
	bots  map[string]forge.User // instance → the bot user, once known
	// nothing holds deliveries planned with nothing to write, until flushDone.
	nothing []int64
	// files caches what was read at a commit (tree listings, config files).
	files *commitCache
	// recorded holds a digest of the default-branch config last recorded
	// per project, so an unchanged one is not written again.
	recorded map[string][32]byte
}

// commitCache is a small bounded map of what the planner read at commits.
type commitCache struct {
	mu    sync.Mutex
	max   int
	order []string
	items map[string][]byte
}

func newCommitCache(max int) *commitCache {
	return &commitCache{max: max, items: map[string][]byte{}}
}

func (c *commitCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.items[key]
	return v, ok
}

func (c *commitCache) put(key string, v []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	if len(c.order) >= c.max {
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
	c.order = append(c.order, key)
	c.items[key] = v
}

// New builds a Planner.
func New(opts Options) (*Planner, error) {
	if opts.Store == nil || opts.Enqueue == nil {
		return nil, errors.New("plan: Store and Enqueue are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Changed == nil {
		opts.Changed = func() {}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	if len(opts.Policy.CommandPrefixes) == 0 {
		opts.Policy.CommandPrefixes = []string{"/packit"}
	}
	if opts.Policy.ApprovalPolicy == "" {
		opts.Policy.ApprovalPolicy = "forks"
	}
	if opts.Policy.Aliases == nil {
		opts.Policy.Aliases = packitcfg.DefaultAliasTable()
	}
	return &Planner{opts: opts, wake: make(chan struct{}, 1), retry: map[int64]time.Time{},
		fails: map[int64]int{}, bots: map[string]forge.User{}, files: newCommitCache(512), recorded: map[string][32]byte{}}, nil
}

// Wake makes the planner look for new deliveries at once.
func (p *Planner) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run plans deliveries until ctx ends.
func (p *Planner) Run(ctx context.Context) error {
	t := time.NewTicker(p.opts.PollInterval)
	defer t.Stop()
	for {
		if _, err := p.PlanPending(ctx); err != nil && ctx.Err() == nil {
			p.opts.Logger.Warn("planning", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
			// Let a burst of deliveries gather so that one pass (and one
			// commit) plans them all, instead of a pass per delivery
			// competing with intake for the database.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(passGap):
			}
		case <-t.C:
		}
	}
}

// PlanPending plans every delivery that is due now and returns how many
// were planned. Deliveries of one project are planned in order; different
// projects in parallel.
func (p *Planner) PlanPending(ctx context.Context) (int, error) {
	total := 0
	for {
		list, err := p.opts.Store.UnplannedDeliveries(ctx, 200)
		if err != nil {
			return total, err
		}
		groups := map[string][]store.UnplannedDelivery{}
		var order []string
		now := time.Now()
		for _, d := range list {
			if p.waiting(d.ID, now) {
				continue
			}
			key := fmt.Sprintf("%s|%d", d.Instance, d.ProjectID)
			if _, ok := groups[key]; !ok {
				order = append(order, key)
			}
			groups[key] = append(groups[key], d)
		}
		if len(order) == 0 {
			return total, nil
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, p.opts.Parallel)
		planned := 0
		for _, key := range order {
			wg.Add(1)
			sem <- struct{}{}
			go func(ds []store.UnplannedDelivery) {
				defer wg.Done()
				defer func() { <-sem }()
				for _, d := range ds {
					err := p.planDelivery(ctx, d)
					if err != nil {
						p.backOff(d.ID, err)
						// Later deliveries of the project wait, so order holds.
						return
					}
					p.forget(d.ID)
					mu.Lock()
					planned++
					mu.Unlock()
				}
			}(groups[key])
		}
		wg.Wait()
		if err := p.flushDone(ctx); err != nil {
			return total, err
		}
		total += planned
		if planned == 0 || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}

func (p *Planner) waiting(id int64, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.retry[id]
	return ok && now.Before(at)
}

func (p *Planner) forget(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.retry, id)
	delete(p.fails, id)
}

// backOff schedules a delivery whose planning failed (GitLab unreachable,
// database busy) for a later attempt, doubling the wait up to 5 minutes.
func (p *Planner) backOff(id int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fails[id]++
	wait := time.Second << min(p.fails[id]-1, 8)
	var rl *forge.RateLimitedError
	if errors.As(err, &rl) && rl.RetryAfter > 0 {
		wait = rl.RetryAfter
	}
	wait = min(wait, 5*time.Minute)
	p.retry[id] = time.Now().Add(wait)
	p.opts.Logger.Warn("planning a delivery failed; will retry", "delivery", id, "in", wait, "err", err)
}

// planDelivery plans one delivery. A returned error means "try again
// later"; everything else, including bad configs, ends with the delivery
// marked planned.
func (p *Planner) planDelivery(ctx context.Context, d store.UnplannedDelivery) error {
	var ev forge.Event
	if err := json.Unmarshal(d.Event, &ev); err != nil {
		// Cannot happen for rows intake wrote; do not retry forever.
		p.opts.Logger.Error("undecodable stored event", "delivery", d.ID, "err", err)
		return p.done(ctx, d.ID)
	}
	fg := p.opts.Forges[d.Instance]
	if fg == nil {
		p.opts.Logger.Warn("no bot token for instance; delivery recorded but not planned", "instance", d.Instance, "delivery", d.ID)
		return p.done(ctx, d.ID)
	}
	in := &input{p: p, d: d, ev: ev, forge: fg}
	var act func(context.Context) error
	switch ev.Kind {
	case forge.KindMergeRequest:
		act = in.mergeRequest
	case forge.KindPush:
		act = func(ctx context.Context) error { return in.trigger(ctx, packitcfg.TriggerCommit) }
	case forge.KindTagPush, forge.KindRelease:
		act = func(ctx context.Context) error { return in.trigger(ctx, packitcfg.TriggerRelease) }
	case forge.KindComment:
		act = in.comment
	default:
		return p.done(ctx, d.ID)
	}
	err := in.checkProject(ctx)
	if err == nil {
		err = act(ctx)
	}
	if errors.Is(err, errNotTheTokensProject) {
		p.opts.Logger.Warn("delivery not acted on", "delivery", d.ID, "instance", d.Instance, "err", err)
		return p.done(ctx, d.ID)
	}
	return err
}

// done notes a delivery that needs nothing written but its planned mark.
// Marks are gathered and committed together at the end of a pass (one
// commit for many deliveries, so planning does not fight intake for the
// database); a crash before that only means planning them again, which
// changes nothing.
func (p *Planner) done(_ context.Context, deliveryID int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nothing = append(p.nothing, deliveryID)
	return nil
}

// flushDone commits the gathered planned marks.
func (p *Planner) flushDone(ctx context.Context) error {
	p.mu.Lock()
	ids := p.nothing
	p.nothing = nil
	p.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	if err := p.opts.Store.MarkPlanned(ctx, ids); err != nil {
		p.mu.Lock()
		p.nothing = append(p.nothing, ids...)
		p.mu.Unlock()
		return err
	}
	return nil
}

// allowed reports whether a project is inside the allow-list.
func (p *Planner) allowed(instance, projectPath string) bool {
	if len(p.opts.Policy.AllowedNamespaces) == 0 {
		return true
	}
	full := strings.ToLower(instance + "/" + projectPath)
	for _, ns := range p.opts.Policy.AllowedNamespaces {
		ns = strings.ToLower(ns)
		if full == ns || strings.HasPrefix(full, ns+"/") {
			return true
		}
	}
	return false
}

// bot returns the bot user of an instance, asking the forge once.
func (p *Planner) bot(ctx context.Context, instance string, fg forge.Forge) (forge.User, error) {
	p.mu.Lock()
	u, ok := p.bots[instance]
	p.mu.Unlock()
	if ok {
		return u, nil
	}
	u, err := fg.CurrentUser(ctx)
	if err != nil {
		return forge.User{}, fmt.Errorf("who is the bot: %w", err)
	}
	p.mu.Lock()
	p.bots[instance] = u
	p.mu.Unlock()
	return u, nil
}

// jobURL is the page a commit status links to.
func (p *Planner) jobURL(jobID int64) string {
	return fmt.Sprintf("%s/jobs/%d", p.opts.PublicURL, jobID)
}
