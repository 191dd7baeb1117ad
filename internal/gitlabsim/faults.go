package gitlabsim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultKind says how a faulty request is answered.
type FaultKind int

// Kinds of fault.
const (
	// FaultError answers Status (default 500) with GitLab's error body.
	FaultError FaultKind = iota
	// FaultRateLimit answers 429 with Retry-After, as a throttled GitLab does.
	FaultRateLimit
	// FaultDelay waits Delay, then serves the request normally.
	FaultDelay
	// FaultDown closes the connection without an answer, like a server that
	// is down or restarting.
	FaultDown
)

// Fault makes matching requests misbehave. Method "" and PathPrefix "" match
// everything; PathPrefix is compared with the escaped request path (e.g.
// "/api/v4/projects/1/statuses/"). For limits the fault in simulator-clock
// time from injection, Times to the first N matching requests; zero means no
// limit.
type Fault struct {
	Method     string
	PathPrefix string
	Kind       FaultKind
	Status     int
	RetryAfter time.Duration
	Delay      time.Duration
	For        time.Duration
	Times      int
}

type activeFault struct {
	Fault
	until time.Time
	used  int
}

// InjectFault adds a fault; faults are checked in the order they were added.
func (s *Simulator) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	af := &activeFault{Fault: f}
	if f.For > 0 {
		af.until = s.now().Add(f.For)
	}
	s.faults = append(s.faults, af)
}

// ClearFaults removes every fault.
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Simulator) matchFault(r *http.Request) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	path := r.URL.EscapedPath()
	for _, f := range s.faults {
		if !f.until.IsZero() && !now.Before(f.until) {
			continue
		}
		if f.Times > 0 && f.used >= f.Times {
			continue
		}
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
			continue
		}
		if !strings.HasPrefix(path, f.PathPrefix) {
			continue
		}
		f.used++
		return f.Fault, true
	}
	return Fault{}, false
}

// applyFault answers the request when a fault matches; it reports whether
// the request is done (false for a delay that then lets the request through).
func (s *Simulator) applyFault(w http.ResponseWriter, r *http.Request) bool {
	f, ok := s.matchFault(r)
	if !ok {
		return false
	}
	switch f.Kind {
	case FaultDelay:
		timer := time.NewTimer(f.Delay)
		defer timer.Stop()
		select {
		case <-timer.C:
			return false
		case <-r.Context().Done():
			return true
		}
	case FaultRateLimit:
		retry := int(f.RetryAfter / time.Second)
		if retry < 1 {
			retry = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		w.Header().Set("RateLimit-Reset", strconv.FormatInt(s.now().Add(time.Duration(retry)*time.Second).Unix(), 10))
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte("Retry later\n"))
		return true
	case FaultDown:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		// Not hijackable (HTTP/2): the closest is an empty 502 from a proxy.
		w.WriteHeader(http.StatusBadGateway)
		return true
	default:
		status := f.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		writeJSON(w, status, map[string]string{"message": strconv.Itoa(status) + " " + http.StatusText(status)})
		return true
	}
}
