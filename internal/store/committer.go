package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Committer groups concurrent Save calls into shared transactions, so that
// many deliveries cost one durable commit (one fsync) instead of one each.
// A caller's Save returns only after its delivery is committed.
type Committer struct {
	store    *Store
	insert   *sql.Stmt // nil when preparing failed; each batch then prepares its own
	requests chan *saveRequest
	maxBatch int
	stop     chan struct{}
	wg       sync.WaitGroup
}

type saveRequest struct {
	delivery Delivery
	done     chan saveReply
}

type saveReply struct {
	result SaveResult
	err    error
}

// ErrCommitterClosed is returned by Save after Close.
var ErrCommitterClosed = errors.New("store committer is closed")

// NewCommitter starts the writer goroutines. SQLite gets one writer (it has
// one write lock anyway); PostgreSQL gets several, since it commits
// concurrent transactions in parallel and groups their WAL flushes itself.
func (s *Store) NewCommitter(maxBatch int) *Committer {
	if maxBatch <= 0 {
		maxBatch = 256
	}
	writers := 1
	if s.dialect == Postgres {
		writers = 4
	}
	c := &Committer{store: s, requests: make(chan *saveRequest, maxBatch*writers), maxBatch: maxBatch, stop: make(chan struct{})}
	if stmt, err := s.write.Prepare(s.q(insertDeliverySQL)); err == nil {
		c.insert = stmt
	}
	for range writers {
		c.wg.Add(1)
		go c.loop()
	}
	return c
}

// Save commits one delivery, grouped with whatever else is waiting.
func (c *Committer) Save(ctx context.Context, d Delivery) (SaveResult, error) {
	req := &saveRequest{delivery: d, done: make(chan saveReply, 1)}
	select {
	case c.requests <- req:
	case <-c.stop:
		return SaveResult{}, ErrCommitterClosed
	case <-ctx.Done():
		return SaveResult{}, fmt.Errorf("save delivery: %w", ctx.Err())
	}
	// Once queued, wait for the answer even if the caller gives up: the
	// reply must reflect what really happened to the delivery.
	reply := <-req.done
	return reply.result, reply.err
}

// Close stops accepting deliveries, commits what is queued and waits.
func (c *Committer) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.wg.Wait()
	if c.insert != nil {
		_ = c.insert.Close()
		c.insert = nil
	}
}

func (c *Committer) loop() {
	defer c.wg.Done()
	batch := make([]*saveRequest, 0, c.maxBatch)
	for {
		select {
		case req := <-c.requests:
			batch = append(batch[:0], req)
		case <-c.stop:
			// Drain what was queued before Close, then stop.
			for {
				select {
				case req := <-c.requests:
					c.commit([]*saveRequest{req})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < c.maxBatch {
			select {
			case req := <-c.requests:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		c.commit(batch)
	}
}

// commit writes a batch. If the batch fails as a whole, each delivery is
// retried alone, so one bad row cannot fail its neighbours.
func (c *Committer) commit(batch []*saveRequest) {
	deliveries := make([]Delivery, len(batch))
	for i, r := range batch {
		deliveries[i] = r.delivery
	}
	results, err := c.save(deliveries)
	if err == nil {
		for i, r := range batch {
			r.done <- saveReply{result: results[i]}
		}
		return
	}
	if len(batch) == 1 {
		batch[0].done <- saveReply{err: err}
		return
	}
	for _, r := range batch {
		res, err := c.save([]Delivery{r.delivery})
		if err != nil {
			r.done <- saveReply{err: err}
			continue
		}
		r.done <- saveReply{result: res[0]}
	}
}

// commitTimeout bounds one commit. It stays below GitLab's 10 s webhook
// timeout, so a stuck database turns into a 503 rather than a hung hook.
const commitTimeout = 7 * time.Second

// save runs one batch. The batch outlives any one caller's context: a caller
// that hangs up must not abort its neighbours' commit.
func (c *Committer) save(deliveries []Delivery) ([]SaveResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	return c.store.saveBatch(ctx, c.insert, deliveries)
}
