package main

import (
	"context"
	"os"
	"runtime"
	"sync"
	"time"
)

// usage is one sample of this process, which hosts the simulator and is
// never killed.
type usage struct {
	goroutines int
	fds        int
	heapBytes  uint64 // live heap right after a collection
}

// sampler records the soak process's resource use over the run.
type sampler struct {
	mu  sync.Mutex
	max usage
}

func newSampler() *sampler { return &sampler{} }

func (s *sampler) sample() usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	u := usage{goroutines: runtime.NumGoroutine(), fds: -1, heapBytes: ms.HeapAlloc}
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		u.fds = len(entries)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.max.goroutines = max(s.max.goroutines, u.goroutines)
	s.max.fds = max(s.max.fds, u.fds)
	s.max.heapBytes = max(s.max.heapBytes, u.heapBytes)
	return u
}

func (s *sampler) every(ctx context.Context, d time.Duration) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.sample()
		}
	}
}

// sampleSettled samples once connections to the stopped upbuild have had a
// moment to close, so what is left is what the run leaked.
func (s *sampler) sampleSettled(ctx context.Context) usage {
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
	return s.sample()
}

func (s *sampler) peak() usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}
