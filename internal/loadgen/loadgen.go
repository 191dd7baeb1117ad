// Package loadgen sends GitLab-shaped webhook deliveries at an upbuild
// endpoint from many connections at once. The benchmark and the crash test
// use it; it keeps its own record of what was answered, so their counts
// never come from upbuild itself.
package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"upbuild.dev/upbuild/internal/benchkit"
)

// Template is one kind of delivery in the mix.
type Template struct {
	Event string // X-Gitlab-Event
	Token string // X-Gitlab-Token
	Body  []byte
}

// Config says what to send.
type Config struct {
	URL         string // the webhook endpoint
	Connections int
	Duration    time.Duration
	// MaxRequests stops the run after this many requests in all (0: no cap).
	MaxRequests int64
	Mix         []Template // sent round-robin
	// KeyPrefix makes the Idempotency-Keys of one run unique.
	KeyPrefix string
	// Resend, when set, re-sends a delivery with the same key after a
	// transport error instead of moving on, as GitLab's "Resend" does.
	Resend bool
	// Pause between a transport error and the next try, so a dead server
	// is not hammered.
	ErrorPause time.Duration
}

// Result is one answered request.
type Result struct {
	Key     string
	Status  int
	Latency time.Duration
}

// Report summarises a run.
type Report struct {
	Sent        int64
	Answered    map[int]int64 // by HTTP status
	Errors      int64         // transport errors (no answer)
	Elapsed     time.Duration
	Latencies   []time.Duration // of 202 answers, sorted
	AcceptedKey []string        // keys answered 202, in answer order
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// the 202 latencies, as every benchmark reports it.
func (r Report) Percentile(p float64) time.Duration {
	return benchkit.Percentile(r.Latencies, p)
}

// PerSecond is the rate of 202 answers.
func (r Report) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Answered[http.StatusAccepted]) / r.Elapsed.Seconds()
}

// Run sends deliveries until the duration, the request cap or ctx ends.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Connections <= 0 || len(cfg.Mix) == 0 {
		return Report{}, fmt.Errorf("loadgen: need connections and a mix")
	}
	if cfg.ErrorPause <= 0 {
		cfg.ErrorPause = 50 * time.Millisecond
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Connections,
		MaxIdleConnsPerHost: cfg.Connections,
		MaxConnsPerHost:     cfg.Connections,
		IdleConnTimeout:     30 * time.Second,
	}
	defer transport.CloseIdleConnections()
	// GitLab gives up after 10 s; so do we.
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	// The duration stops new requests; requests in flight finish, so that
	// every delivery sent has an answer (or a transport error) on record.
	stop := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		stop, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var seq, sent, errs atomic.Int64
	var mu sync.Mutex
	answered := map[int]int64{}
	var latencies []time.Duration
	var keys []string
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			var localKeys []string
			localAnswered := map[int]int64{}
			defer func() {
				mu.Lock()
				latencies = append(latencies, local...)
				keys = append(keys, localKeys...)
				for k, v := range localAnswered {
					answered[k] += v
				}
				mu.Unlock()
			}()
			pending := ""
			var tpl Template
			for stop.Err() == nil {
				if pending == "" {
					n := seq.Add(1)
					if cfg.MaxRequests > 0 && n > cfg.MaxRequests {
						return
					}
					tpl = cfg.Mix[int(n)%len(cfg.Mix)]
					pending = fmt.Sprintf("%s-%d-%d", cfg.KeyPrefix, w, n)
				}
				sent.Add(1)
				t0 := time.Now()
				status, err := send(ctx, client, cfg.URL, tpl, pending)
				if err != nil {
					errs.Add(1)
					if !cfg.Resend {
						pending = ""
					}
					select {
					case <-stop.Done():
					case <-time.After(cfg.ErrorPause):
					}
					continue
				}
				localAnswered[status]++
				if status == http.StatusAccepted {
					local = append(local, time.Since(t0))
					localKeys = append(localKeys, pending)
				}
				pending = ""
			}
		}()
	}
	wg.Wait()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	return Report{Sent: sent.Load(), Answered: answered, Errors: errs.Load(), Elapsed: time.Since(start),
		Latencies: latencies, AcceptedKey: keys}, nil
}

func send(ctx context.Context, client *http.Client, url string, tpl Template, key string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(tpl.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitLab/18.6.0")
	req.Header.Set("X-Gitlab-Event", tpl.Event)
	req.Header.Set("X-Gitlab-Token", tpl.Token)
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("X-Gitlab-Event-UUID", key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// PeakRSS returns a process's peak resident set size (VmHWM) in bytes.
func PeakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("read VmHWM: %w", err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		var kb int64
		if n, _ := fmt.Sscanf(string(line), "VmHWM: %d kB", &kb); n == 1 {
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
