package exec

import (
	"context"
	"sync"
)

// describer records what a running job is doing, for its page, beside the
// job rather than in its way: each description is a database write that
// waits its turn for the one writer, and a job's next step need not wait
// for it. Descriptions set while one is being written collapse into the
// latest, which is all the page shows.
type describer struct {
	e     *Executor
	ctx   context.Context
	jobID int64

	mu      sync.Mutex
	pending string
	waiting bool

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// describer starts a job's describer; stop it with close before the job's
// final state is recorded.
func (e *Executor) describer(ctx context.Context, jobID int64) *describer {
	d := &describer{e: e, ctx: ctx, jobID: jobID,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

// set makes what the job's description.
func (d *describer) set(what string) {
	d.mu.Lock()
	d.pending, d.waiting = what, true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default: // a wake-up is already waiting; it will find this one
	}
}

// close writes the last description set and waits until it is stored, so
// the job's final state is the last write.
func (d *describer) close() {
	close(d.stop)
	<-d.done
}

func (d *describer) run() {
	defer close(d.done)
	for {
		select {
		case <-d.wake:
			d.write()
		case <-d.stop:
			d.write()
			return
		}
	}
}

func (d *describer) write() {
	d.mu.Lock()
	what, waiting := d.pending, d.waiting
	d.waiting = false
	d.mu.Unlock()
	if !waiting {
		return
	}
	if err := d.e.opts.Store.SetJobDescription(d.ctx, d.jobID, what); err != nil {
		d.e.opts.Logger.Warn("describe job", "job", d.jobID, "err", err)
	}
}
