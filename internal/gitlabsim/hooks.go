package gitlabsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GitLab's auto-disabling rules for project webhooks (WebHooks::AutoDisabling).
const (
	hookFailuresBeforeBackoff = 4
	hookFailuresPermanent     = 40
	hookInitialBackoff        = time.Minute
	hookMaxBackoff            = 24 * time.Hour
)

// HookSpec configures a project webhook. PushEvents is on unless
// NoPushEvents is set, as in GitLab.
type HookSpec struct {
	URL                      string
	Token                    string
	SigningToken             string // "whsec_" + base64 key: deliveries get Standard Webhooks signatures
	NoPushEvents             bool
	TagPushEvents            bool
	MergeRequestsEvents      bool
	NoteEvents               bool
	ConfidentialNoteEvents   bool
	IssuesEvents             bool
	ConfidentialIssuesEvents bool
	ReleasesEvents           bool
	EmojiEvents              bool
}

// Hook is a project webhook and its delivery health.
type Hook struct {
	ID        int64
	ProjectID int64
	HookSpec
	CreatedAt time.Time
	// RecentFailures counts consecutive failed deliveries.
	RecentFailures int
	// DisabledUntil is set while the hook is temporarily disabled.
	DisabledUntil time.Time
	// PermanentlyDisabled is set after 40 consecutive failures.
	PermanentlyDisabled bool
	backoffCount        int
}

// AlertStatus is GitLab's alert_status of the hook at now: "executable",
// "temporarily_disabled" or "disabled".
func (h Hook) AlertStatus(now time.Time) string {
	switch {
	case h.PermanentlyDisabled:
		return "disabled"
	case now.Before(h.DisabledUntil):
		return "temporarily_disabled"
	default:
		return "executable"
	}
}

type hookEvent string

const (
	eventPush             hookEvent = "Push Hook"
	eventTagPush          hookEvent = "Tag Push Hook"
	eventMergeRequest     hookEvent = "Merge Request Hook"
	eventNote             hookEvent = "Note Hook"
	eventConfidentialNote hookEvent = "Confidential Note Hook"
	eventIssue            hookEvent = "Issue Hook"
	eventConfidentialIss  hookEvent = "Confidential Issue Hook"
	eventRelease          hookEvent = "Release Hook"
	eventEmoji            hookEvent = "Emoji Hook"
)

func (h *Hook) wants(e hookEvent) bool {
	switch e {
	case eventPush:
		return !h.NoPushEvents
	case eventTagPush:
		return h.TagPushEvents
	case eventMergeRequest:
		return h.MergeRequestsEvents
	case eventNote:
		return h.NoteEvents
	case eventConfidentialNote:
		return h.ConfidentialNoteEvents
	case eventIssue:
		return h.IssuesEvents
	case eventConfidentialIss:
		return h.ConfidentialIssuesEvents
	case eventRelease:
		return h.ReleasesEvents
	case eventEmoji:
		return h.EmojiEvents
	}
	return false
}

// Delivery is one webhook request the simulator made (or skipped because the
// hook was disabled at the time).
type Delivery struct {
	ID             int64
	HookID         int64
	ProjectID      int64
	URL            string
	Event          string // X-Gitlab-Event
	Header         http.Header
	Body           []byte
	EventUUID      string
	WebhookUUID    string
	IdempotencyKey string
	Resend         bool
	SentAt         time.Time
	// Skipped is set when the hook was disabled and nothing was sent.
	Skipped    bool
	StatusCode int
	Latency    time.Duration
	Err        string
}

// Succeeded says whether GitLab would count the delivery as a success.
func (d Delivery) Succeeded() bool {
	return !d.Skipped && d.Err == "" && d.StatusCode >= 200 && d.StatusCode < 400
}

// AddHook adds a webhook to a project.
func (s *Simulator) AddHook(projectID int64, spec HookSpec) (Hook, error) {
	if !strings.HasPrefix(spec.URL, "http://") && !strings.HasPrefix(spec.URL, "https://") {
		return Hook{}, fmt.Errorf("hook url %q: %w", spec.URL, ErrInvalid)
	}
	if spec.SigningToken != "" {
		if _, err := signingKey(spec.SigningToken); err != nil {
			return Hook{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.projects[projectID]; !ok {
		return Hook{}, fmt.Errorf("project %d: %w", projectID, ErrNotFound)
	}
	h := &Hook{ID: s.nextIDLocked("hook"), ProjectID: projectID, HookSpec: spec, CreatedAt: s.now()}
	s.hooks[h.ID] = h
	return *h, nil
}

// Hooks lists a project's webhooks with their health.
func (s *Simulator) Hooks(projectID int64) []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.projectHooksLocked(projectID)
}

func (s *Simulator) projectHooksLocked(projectID int64) []Hook {
	var out []Hook
	for id := int64(1); id <= s.seq["hook"]; id++ {
		if h, ok := s.hooks[id]; ok && h.ProjectID == projectID {
			out = append(out, *h)
		}
	}
	return out
}

// EnableHook clears a hook's failures, as a maintainer re-enabling it does.
func (s *Simulator) EnableHook(hookID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hooks[hookID]
	if !ok {
		return fmt.Errorf("hook %d: %w", hookID, ErrNotFound)
	}
	h.RecentFailures, h.backoffCount, h.DisabledUntil, h.PermanentlyDisabled = 0, 0, time.Time{}, false
	return nil
}

func signingKey(token string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(token, "whsec_")
	if !ok {
		return nil, fmt.Errorf("signing token must start with whsec_: %w", ErrInvalid)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("signing token is not base64 after whsec_: %w", ErrInvalid)
	}
	return key, nil
}

// Sign computes the Standard Webhooks signature header value GitLab sends
// for body with a "whsec_" signing token.
func Sign(signingToken, webhookID string, timestamp int64, body []byte) (string, error) {
	key, err := signingKey(signingToken)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", webhookID, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// fireLocked queues event for every hook of the project that subscribes to
// it. All deliveries of one event share the X-Gitlab-Event-UUID.
func (s *Simulator) fireLocked(projectID int64, event hookEvent, body []byte) {
	eventUUID := newUUID()
	for _, h := range s.projectHooksLocked(projectID) {
		if !h.wants(event) {
			continue
		}
		s.webhooks.enqueue(deliveryJob{
			hookID: h.ID, projectID: projectID, event: string(event), body: body,
			eventUUID: eventUUID, idempotencyKey: newUUID(),
		})
	}
}

type deliveryJob struct {
	hookID         int64
	projectID      int64
	event          string
	body           []byte
	eventUUID      string
	idempotencyKey string
	resend         bool
}

// hookSender delivers webhooks asynchronously, one queue per hook so that a
// hook sees its events in order and its failure count is well defined.
type hookSender struct {
	sim     *Simulator
	mu      sync.Mutex
	queues  map[int64][]deliveryJob
	running map[int64]bool
	pending int
	idle    []chan struct{}
}

func newHookSender(s *Simulator) *hookSender {
	return &hookSender{sim: s, queues: map[int64][]deliveryJob{}, running: map[int64]bool{}}
}

func (hs *hookSender) enqueue(job deliveryJob) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.pending++
	hs.queues[job.hookID] = append(hs.queues[job.hookID], job)
	if !hs.running[job.hookID] {
		hs.running[job.hookID] = true
		go hs.drain(job.hookID)
	}
}

func (hs *hookSender) drain(hookID int64) {
	for {
		hs.mu.Lock()
		queue := hs.queues[hookID]
		if len(queue) == 0 {
			hs.running[hookID] = false
			hs.mu.Unlock()
			return
		}
		job := queue[0]
		hs.queues[hookID] = queue[1:]
		hs.mu.Unlock()

		hs.sim.deliver(job)

		hs.mu.Lock()
		hs.pending--
		if hs.pending == 0 {
			for _, ch := range hs.idle {
				close(ch)
			}
			hs.idle = nil
		}
		hs.mu.Unlock()
	}
}

func (hs *hookSender) wait(ctx context.Context) error {
	hs.mu.Lock()
	if hs.pending == 0 {
		hs.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	hs.idle = append(hs.idle, ch)
	hs.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for webhook deliveries: %w", ctx.Err())
	}
}

// WaitDeliveries blocks until every queued webhook has been sent (or skipped).
func (s *Simulator) WaitDeliveries(ctx context.Context) error {
	return s.webhooks.wait(ctx)
}

// Deliveries returns every delivery so far, oldest first.
func (s *Simulator) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		out[i] = *d
		out[i].Header = d.Header.Clone()
	}
	return out
}

// ResendDelivery sends a recorded delivery again with the same body,
// X-Gitlab-Event-UUID and Idempotency-Key (a new X-Gitlab-Webhook-UUID), like
// the "Resend Request" button. Like that button it ignores auto-disabling.
func (s *Simulator) ResendDelivery(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deliveries {
		if d.ID == id {
			s.webhooks.enqueue(deliveryJob{
				hookID: d.HookID, projectID: d.ProjectID, event: d.Event, body: d.Body,
				eventUUID: d.EventUUID, idempotencyKey: d.IdempotencyKey, resend: true,
			})
			return nil
		}
	}
	return fmt.Errorf("delivery %d: %w", id, ErrNotFound)
}

// deliver sends one job and applies GitLab's failure accounting.
func (s *Simulator) deliver(job deliveryJob) {
	s.mu.Lock()
	h, ok := s.hooks[job.hookID]
	if !ok {
		s.mu.Unlock()
		return
	}
	now := s.now()
	d := &Delivery{
		ID: s.nextIDLocked("delivery"), HookID: h.ID, ProjectID: job.projectID, URL: h.URL, Event: job.event,
		Body: job.body, EventUUID: job.eventUUID, WebhookUUID: newUUID(), IdempotencyKey: job.idempotencyKey,
		Resend: job.resend, SentAt: now,
	}
	s.deliveries = append(s.deliveries, d)
	if !job.resend && h.AlertStatus(now) != "executable" {
		d.Skipped = true
		s.mu.Unlock()
		return
	}
	spec := h.HookSpec
	instance := s.baseURL
	userAgent := "GitLab/" + s.opts.Version
	s.mu.Unlock()

	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", userAgent)
	header.Set("X-Gitlab-Event", job.event)
	header.Set("X-Gitlab-Webhook-UUID", d.WebhookUUID)
	header.Set("X-Gitlab-Instance", instance)
	header.Set("X-Gitlab-Event-UUID", job.eventUUID)
	header.Set("Idempotency-Key", job.idempotencyKey)
	if spec.Token != "" {
		header.Set("X-Gitlab-Token", spec.Token)
	}
	if spec.SigningToken != "" {
		ts := now.Unix()
		// AddHook validated the token, so signing cannot fail here; the
		// error never contains the token.
		if sig, err := Sign(spec.SigningToken, job.idempotencyKey, ts, job.body); err != nil {
			s.log.Warn("gitlabsim: cannot sign webhook", "hook", job.hookID, "err", err)
		} else {
			header.Set("webhook-id", job.idempotencyKey)
			header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
			header.Set("webhook-signature", sig)
		}
	}

	status, latency, sendErr := s.send(spec.URL, header, job.body)

	s.mu.Lock()
	defer s.mu.Unlock()
	d.Header = header
	d.StatusCode = status
	d.Latency = latency
	if sendErr != nil {
		d.Err = sendErr.Error()
	}
	if job.resend {
		return
	}
	if d.Succeeded() {
		h.RecentFailures, h.backoffCount, h.DisabledUntil = 0, 0, time.Time{}
		return
	}
	h.RecentFailures++
	switch {
	case h.RecentFailures >= hookFailuresPermanent:
		h.PermanentlyDisabled = true
	case h.RecentFailures >= hookFailuresBeforeBackoff:
		backoff := hookInitialBackoff << h.backoffCount
		if backoff > hookMaxBackoff || backoff <= 0 {
			backoff = hookMaxBackoff
		}
		h.backoffCount++
		h.DisabledUntil = s.now().Add(backoff)
	}
}

func (s *Simulator) send(url string, header http.Header, body []byte) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header = header.Clone()
	start := time.Now()
	resp, err := s.client.Do(req)
	latency := time.Since(start)
	if err != nil {
		return 0, latency, fmt.Errorf("send webhook: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	// GitLab keeps only the start of the response; the receiver's body does
	// not matter for success.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, latency, nil
}
