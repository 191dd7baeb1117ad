package report

import (
	"context"
	"sync"
)

// keyedLocks is a set of mutexes created on demand by key and dropped when
// nobody holds or waits for them.
type keyedLocks struct {
	mu   sync.Mutex
	byID map[string]*keyLock
}

type keyLock struct {
	held  chan struct{} // one slot: full while locked
	users int           // holders and waiters
}

// lock takes the lock of key, waiting while someone else holds it, and
// returns the function that releases it.
func (k *keyedLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.byID == nil {
		k.byID = map[string]*keyLock{}
	}
	l, ok := k.byID[key]
	if !ok {
		l = &keyLock{held: make(chan struct{}, 1)}
		k.byID[key] = l
	}
	l.users++
	k.mu.Unlock()
	select {
	case l.held <- struct{}{}:
		return func() { <-l.held; k.release(key, l) }, nil
	case <-ctx.Done():
		k.release(key, l)
		return nil, ctx.Err()
	}
}

func (k *keyedLocks) release(key string, l *keyLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l.users--
	if l.users == 0 {
		delete(k.byID, key)
	}
}
