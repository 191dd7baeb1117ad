package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

// delivery is one kind of webhook in the intake mix.
type delivery struct {
	event string
	body  []byte
}

// intakeTarget is a project deliveries are for.
type intakeTarget struct {
	id   int64
	path string
}

// intakeTargets are the public projects of the seeded group: the big one
// and its neighbours. 500 deliveries a second is an instance's load, not
// one project's (that would be 43 million a day), so intake spreads over
// them, as one group webhook token allows.
func intakeTargets() []intakeTarget {
	out := []intakeTarget{{bigProjectID, bigProjectPath}}
	for p := range smallProjects {
		out = append(out, intakeTarget{smallProjectID(p), smallProjectPath(p)})
	}
	return out
}

// intakeMix loads GitLab's sample payloads and points them at each target
// project in turn: two merge request events, two pushes and one MR
// comment in every five deliveries, as bench/intake sends.
func intakeMix(fixtureDir, instance string) ([]delivery, error) {
	load := func(name string) (map[string]any, error) {
		b, err := os.ReadFile(filepath.Join(fixtureDir, name))
		if err != nil {
			return nil, fmt.Errorf("intake mix: %w", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("intake mix: %s: %w", name, err)
		}
		return m, nil
	}
	var mix []delivery
	for _, target := range intakeTargets() {
		ours := func(p map[string]any) {
			p["id"], p["path_with_namespace"], p["web_url"] = target.id, target.path, instance+"/"+target.path
			p["visibility_level"] = 20
		}
		for _, x := range []struct {
			file, event string
			n           int
		}{{"merge_request.json", "Merge Request Hook", 2}, {"push.json", "Push Hook", 2}, {"note_merge_request.json", "Note Hook", 1}} {
			m, err := load(x.file)
			if err != nil {
				return nil, err
			}
			ours(m["project"].(map[string]any))
			if _, ok := m["project_id"]; ok {
				m["project_id"] = target.id
			}
			if oa, ok := m["object_attributes"].(map[string]any); ok && x.event == "Merge Request Hook" {
				oa["source_project_id"], oa["target_project_id"] = target.id, target.id
				ours(oa["source"].(map[string]any))
				ours(oa["target"].(map[string]any))
			}
			if mr, ok := m["merge_request"].(map[string]any); ok {
				mr["source_project_id"], mr["target_project_id"] = target.id, target.id
			}
			body, err := json.Marshal(m)
			if err != nil {
				return nil, fmt.Errorf("intake mix: %w", err)
			}
			for range x.n {
				mix = append(mix, delivery{event: x.event, body: body})
			}
		}
	}
	return mix, nil
}

// intakeResult is what the paced sender saw.
type intakeResult struct {
	Planned  int
	Accepted int
	Failures int
	// FirstFailure describes one failure, for the report.
	FirstFailure string
	Elapsed      time.Duration
	// Latencies are of 202 answers, from the request's start.
	Latencies []time.Duration
	// Late counts deliveries that went out more than lateAfter after
	// their planned time (every sender was busy).
	Late int
}

// Rate is the achieved rate of 202 answers.
func (r intakeResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Accepted) / r.Elapsed.Seconds()
}

// lateAfter is how far behind its schedule a delivery may go out before it
// counts as late: a few ticks of the dispatcher.
const lateAfter = 50 * time.Millisecond

// intakeLoad sends signed deliveries at a fixed rate: the k-th is planned
// at start + k/rate whatever happened to the ones before (an open loop, as
// GitLab sends), from a pool of senders.
type intakeLoad struct {
	url     string
	token   string
	signing string
	mix     []delivery
	rate    float64
	senders int
	client  *http.Client
}

func (l *intakeLoad) run(ctx context.Context, duration time.Duration) intakeResult {
	total := max(1, int(l.rate*duration.Seconds()+0.5))
	interval := time.Duration(float64(time.Second) / l.rate)
	type task struct {
		k       int
		planned time.Time
	}
	tasks := make(chan task, total)
	var mu sync.Mutex
	res := intakeResult{Planned: total}
	var wg sync.WaitGroup
	for range l.senders {
		wg.Go(func() {
			var lat []time.Duration
			accepted, late, failures, first := 0, 0, 0, ""
			for t := range tasks {
				if time.Since(t.planned) > lateAfter {
					late++
				}
				began := time.Now()
				if err := l.send(ctx, t.k); err != nil {
					failures++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				accepted++
				lat = append(lat, time.Since(began))
			}
			mu.Lock()
			defer mu.Unlock()
			res.Latencies = append(res.Latencies, lat...)
			res.Accepted += accepted
			res.Late += late
			res.Failures += failures
			if res.FirstFailure == "" {
				res.FirstFailure = first
			}
		})
	}
	start := time.Now()
	ticker := time.NewTicker(interval)
	next := 0
	// dispatch hands out every delivery whose time has come, so a late
	// tick is caught up at once instead of shifting the schedule.
	dispatch := func() {
		now := time.Now()
		for next < total {
			planned := start.Add(time.Duration(next) * interval)
			if planned.After(now) {
				return
			}
			tasks <- task{k: next, planned: planned}
			next++
		}
	}
	for dispatch(); next < total && ctx.Err() == nil; dispatch() {
		select {
		case <-ctx.Done():
		case <-ticker.C:
		}
	}
	ticker.Stop()
	close(tasks)
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(res.Latencies)
	return res
}

// send posts the k-th delivery, signed as GitLab signs with a signing
// token, and wants a 202.
func (l *intakeLoad) send(ctx context.Context, k int) error {
	d := l.mix[k%len(l.mix)]
	id := "bench-dashboard-" + strconv.Itoa(k) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ts := time.Now().Unix()
	sig, err := gitlabsim.Sign(l.signing, id, ts, d.body)
	if err != nil {
		return fmt.Errorf("sign delivery: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(d.body))
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitLab/18.6.0")
	h.Set("X-Gitlab-Event", d.event)
	h.Set("X-Gitlab-Token", l.token)
	h.Set("Idempotency-Key", id)
	h.Set("X-Gitlab-Event-UUID", id)
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	resp, err := l.client.Do(req)
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("delivery: read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("delivery answered %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}
