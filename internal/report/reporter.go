// Package report sends what the store's outboxes say GitLab should show:
// commit statuses (status_outbox), one-off comments, emoji and issues
// (forge_actions) and comments kept up to date in place (mr_comments). It is
// the only component that writes to the forge on behalf of runs.
//
// Delivery is at-least-once from the outbox's point of view and shaped so
// that GitLab never shows a duplicate: a status is sent in its latest state
// only, a note that may have been created by a failed call is looked for
// before it is created again, and every failure is either retried with
// back-off (transient) or recorded and dropped (permanent).
package report

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/store"
)

// Defaults of Options.
const (
	DefaultPollInterval = 200 * time.Millisecond
	// DefaultInFlightHold outlasts the forge client's request timeout (30
	// s): by then a request a dead reporter left behind has been applied
	// or dropped by GitLab.
	DefaultInFlightHold = 35 * time.Second
	DefaultConcurrency  = 8
)

// batchSize is how many rows of each outbox one round of a pass loads.
const batchSize = 100

// Options configure a Reporter.
type Options struct {
	// Store holds the outboxes. Required.
	Store *store.Store
	// Forges are the forge clients by instance base URL, exactly as rows
	// store it in Instance. Rows of an instance without a client wait (with
	// back-off) until one is configured.
	Forges map[string]forge.Forge
	// PublicURL is where upbuild's pages are reachable; it completes
	// relative target URLs and is linked from the results comment.
	PublicURL string
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now defaults to time.Now; tests move it to make retries due.
	Now func() time.Time
	// PollInterval is how often the outboxes are looked at without a
	// Wake; 0 means DefaultPollInterval.
	PollInterval time.Duration
	// Concurrency bounds parallel sends; 0 means DefaultConcurrency.
	Concurrency int
	// InFlightHold is how long a status another reporter (perhaps a
	// killed process) began sending waits before this one sends it; 0
	// means DefaultInFlightHold.
	InFlightHold time.Duration
}

// Reporter drains the outboxes. It is safe for concurrent use.
type Reporter struct {
	store       *store.Store
	forges      map[string]forge.Forge
	publicURL   string
	log         *slog.Logger
	now         func() time.Time
	poll        time.Duration
	concurrency int
	// id names this reporter in the status outbox's in-flight marks.
	id string
	// inFlightHold is how long a status another reporter began sending is
	// left alone: that reporter may have died with the request on its way.
	inFlightHold time.Duration

	// wake is a one-slot nudge: a Wake during a pass makes the next pass
	// start at once.
	wake chan struct{}
	// passing is held by the one pass in progress. Passes never overlap,
	// and within a pass each outbox row appears once, so two sends for the
	// same status (or comment, or action) never run at the same time.
	passing chan struct{}
	// locks serialises the first status of a SHA (so that parallel first
	// posts make one pipeline, not two) and the rebuilds of a results
	// comment.
	locks keyedLocks

	skippedMu sync.Mutex
	// noSkipped holds the instances that refused the "skipped" state.
	noSkipped map[string]bool
}

// New makes a Reporter; it does not contact the forges.
func New(opts Options) (*Reporter, error) {
	if opts.Store == nil {
		return nil, errors.New("reporter: a store is required")
	}
	if opts.PollInterval < 0 || opts.Concurrency < 0 {
		return nil, fmt.Errorf("reporter: negative poll interval (%s) or concurrency (%d)", opts.PollInterval, opts.Concurrency)
	}
	r := &Reporter{
		store:        opts.Store,
		forges:       maps.Clone(opts.Forges),
		publicURL:    opts.PublicURL,
		log:          opts.Logger,
		now:          opts.Now,
		poll:         opts.PollInterval,
		concurrency:  opts.Concurrency,
		wake:         make(chan struct{}, 1),
		passing:      make(chan struct{}, 1),
		noSkipped:    map[string]bool{},
		inFlightHold: opts.InFlightHold,
	}
	var idBytes [8]byte
	if _, err := rand.Read(idBytes[:]); err != nil {
		return nil, fmt.Errorf("reporter: %w", err)
	}
	r.id = hex.EncodeToString(idBytes[:])
	if r.inFlightHold == 0 {
		r.inFlightHold = DefaultInFlightHold
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.poll == 0 {
		r.poll = DefaultPollInterval
	}
	if r.concurrency == 0 {
		r.concurrency = DefaultConcurrency
	}
	return r, nil
}

// Wake makes Run look at the outboxes now rather than at the next poll. It
// never blocks.
func (r *Reporter) Wake() {
	select {
	case r.wake <- struct{}{}:
	default: // a pass is already due
	}
}

// Run sends what is due until ctx ends, then returns ctx's error. Failures
// of the store are logged and tried again at the next poll.
func (r *Reporter) Run(ctx context.Context) error {
	timer := time.NewTimer(r.poll)
	defer timer.Stop()
	for {
		if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("reporter: pass failed", "err", err)
		}
		timer.Reset(r.poll) // since Go 1.23 this also drops a tick that was not received
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// Flush sends everything that is due now, including what becomes due while
// it works (a status that moved during its send, a results comment a
// status fell back to), and returns when nothing due is left. Failures to
// reach the forge are not errors: they are scheduled for later. The error
// is the store's, or ctx's.
func (r *Reporter) Flush(ctx context.Context) error {
	select {
	case r.passing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.passing }()
	for {
		did, err := r.round(ctx)
		if err != nil {
			return err
		}
		if !did {
			return nil
		}
	}
}

// round loads one batch of every outbox and sends it, Concurrency at a
// time. It reports whether there was anything to send.
func (r *Reporter) round(ctx context.Context) (bool, error) {
	now := r.now()
	statuses, err := r.store.DueStatusesFor(ctx, now, batchSize, r.id, now.Add(-r.inFlightHold))
	if err != nil {
		return false, fmt.Errorf("reporter: %w", err)
	}
	comments, err := r.store.DueMRComments(ctx, now, batchSize)
	if err != nil {
		return false, fmt.Errorf("reporter: %w", err)
	}
	actions, err := r.store.DueActions(ctx, now, batchSize)
	if err != nil {
		return false, fmt.Errorf("reporter: %w", err)
	}
	var tasks []func(context.Context) error
	for _, row := range statuses {
		tasks = append(tasks, func(ctx context.Context) error { return r.sendStatus(ctx, row) })
	}
	for _, c := range comments {
		tasks = append(tasks, func(ctx context.Context) error { return r.sendComment(ctx, c) })
	}
	for _, a := range actions {
		tasks = append(tasks, func(ctx context.Context) error { return r.sendAction(ctx, a) })
	}
	if len(tasks) == 0 {
		return false, nil
	}
	return true, r.runAll(ctx, tasks)
}

// runAll runs tasks with at most r.concurrency at once and joins their
// errors.
func (r *Reporter) runAll(ctx context.Context, tasks []func(context.Context) error) error {
	slots := make(chan struct{}, r.concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, task := range tasks {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return errors.Join(append(errs, ctx.Err())...)
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := task(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// forgeOf returns the client of an instance.
func (r *Reporter) forgeOf(instance string) (forge.Forge, error) {
	f, ok := r.forges[instance]
	if !ok {
		return nil, errNoForge
	}
	return f, nil
}

// errNoForge is the failure of a row whose instance has no client; it is
// retried because a restart with the right configuration fixes it.
var errNoForge = fmt.Errorf("no forge client is configured for this instance: %w", forge.ErrTransient)
