// Package intake is the front door GitLab talks to: POST /api/webhooks/gitlab.
//
// The order of work is fixed, and cheap checks come first:
//  1. verify the token's own integrity (its MAC), which needs no database;
//  2. parse the body;
//  3. check that the token's instance and project match the payload;
//  4. persist, durably, grouped with concurrent deliveries;
//  5. answer 202.
//
// The request path never calls GitLab: everything that talks to GitLab
// happens after the answer, downstream of the store.
package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	gitlabforge "upbuild.dev/upbuild/internal/forge/gitlab"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// Options configure a Handler.
type Options struct {
	Store     *store.Store
	Committer *store.Committer
	Keyring   *token.Keyring
	// Instances are the base URLs of the GitLab instances served.
	Instances    []string
	MaxBodyBytes int64
	// TokenCacheTTL bounds how long a token record (and so a revocation
	// made by another process) may be served from memory.
	TokenCacheTTL      time.Duration
	SignatureTolerance time.Duration
	Logger             *slog.Logger
	Metrics            *Metrics
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Accepted is called after a delivery that upbuild acts on was
	// committed, to nudge the planner in this process. Optional.
	Accepted func()
	// AllowedNamespaces (instance URL + namespace prefix) are where a
	// delivery with no token at all earns the project a confidential issue
	// explaining the setup. Empty: never.
	AllowedNamespaces []string
	// SetupIssuesPerHour caps those issues per instance (default 5).
	SetupIssuesPerHour int
	// PublicURL is upbuild's address, for the setup issue's text.
	PublicURL string
	// Changed is called after a setup issue was recorded (the reporter's nudge).
	Changed func()
}

// Handler serves webhook deliveries.
type Handler struct {
	opts      Options
	instances map[string]bool
	tokens    *tokenCache
	rejects   *rejectionCounter
	setup     *setupIssues
}

// New builds a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Store == nil || opts.Committer == nil || opts.Keyring == nil || opts.Metrics == nil {
		return nil, errors.New("intake: Store, Committer, Keyring and Metrics are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 25 << 20
	}
	if opts.SignatureTolerance <= 0 {
		opts.SignatureTolerance = 5 * time.Minute
	}
	h := &Handler{opts: opts, instances: map[string]bool{}}
	for _, raw := range opts.Instances {
		u, err := token.NormalizeInstanceURL(raw)
		if err != nil {
			return nil, fmt.Errorf("intake: instance %q: %w", raw, err)
		}
		h.instances[u] = true
	}
	h.tokens = newTokenCache(opts.Store, opts.TokenCacheTTL, opts.Now)
	h.rejects = newRejectionCounter(opts.Store, h.instances, opts.Now)
	if h.opts.SetupIssuesPerHour <= 0 {
		h.opts.SetupIssuesPerHour = 5
	}
	h.setup = &setupIssues{h: h, sent: map[string]setupWindow{}}
	return h, nil
}

// Run flushes the rejection counters until ctx ends, then once more.
func (h *Handler) Run(ctx context.Context) {
	h.rejects.run(ctx, h.opts.Logger)
}

// reply is the JSON body of every answer. It is short on purpose: GitLab
// keeps it in the hook's "Recent events".
type reply struct {
	Status     string `json:"status,omitempty"`
	DeliveryID int64  `json:"delivery_id,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Error      string `json:"error,omitempty"`
	Hint       string `json:"hint,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.opts.Now()
	instLabel, eventLabel, outcome := "unknown", eventLabelOf(r.Header.Get("X-Gitlab-Event")), "error"
	defer func() {
		h.opts.Metrics.deliveries.WithLabelValues(instLabel, eventLabel, outcome).Inc()
		h.opts.Metrics.latency.Observe(h.opts.Now().Sub(start).Seconds())
	}()
	refuse := func(status int, why string, rej rejection) {
		outcome = rej.outcome
		if rej.reason != "" {
			h.rejects.add(r, rej)
		}
		writeJSON(w, status, reply{Error: why, Hint: rej.hint})
	}

	// 1. The token's own integrity, before anything else is read.
	secret := r.Header.Get("X-Gitlab-Token")
	if secret == "" {
		h.setup.maybe(r)
		refuse(http.StatusUnauthorized, "missing X-Gitlab-Token", rejection{outcome: "rejected_token", reason: "no token",
			hint: "Set the webhook's Secret token to the token that `upbuild token issue <project URL>` printed."})
		return
	}
	claims, err := h.opts.Keyring.Verify(secret)
	if err != nil {
		msg, reason := "invalid webhook token", "wrong token"
		if errors.Is(err, token.ErrUnknownKey) {
			msg, reason = "webhook token was signed with a key this service no longer has", "token from a retired key"
		}
		refuse(http.StatusUnauthorized, msg, rejection{outcome: "rejected_token", reason: reason,
			hint: "Issue a new token with `upbuild token issue <project URL>` and paste it into the webhook's Secret token."})
		return
	}
	inst := claims.Scope.Instance
	if !h.instances[inst] {
		refuse(http.StatusUnauthorized, "this upbuild does not serve the GitLab instance "+inst, rejection{outcome: "rejected_instance",
			hint: "Ask the operator to add the instance to upbuild's configuration."})
		return
	}
	instLabel = inst
	if hdr := r.Header.Get("X-Gitlab-Instance"); hdr != "" {
		if got, err := token.NormalizeInstanceURL(hdr); err != nil || got != inst {
			refuse(http.StatusUnauthorized, "the token belongs to another GitLab instance than the one sending",
				rejection{outcome: "rejected_instance", reason: "token of another instance", instance: inst, scope: claims.Scope.Path})
			return
		}
	}
	rec, err := h.tokens.get(r.Context(), claims.ID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			refuse(http.StatusUnauthorized, "webhook token is unknown to this service", rejection{outcome: "rejected_token",
				reason: "unknown token", instance: inst, scope: claims.Scope.Path,
				hint: "Issue a new token with `upbuild token issue <project URL>`."})
			return
		}
		h.opts.Logger.Error("load token record", "token_id", claims.ID, "err", err)
		outcome = "store_error"
		writeJSON(w, http.StatusServiceUnavailable, reply{Error: "upbuild cannot read its database; GitLab may resend later"})
		return
	}
	if rec.RevokedAt != nil {
		refuse(http.StatusUnauthorized, "webhook token was revoked", rejection{outcome: "rejected_token", reason: "token revoked",
			instance: inst, scope: claims.Scope.Path, hint: "Issue a new token with `upbuild token issue <project URL>`."})
		return
	}

	// 2. The body.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			outcome = "too_large"
			writeJSON(w, http.StatusRequestEntityTooLarge, reply{Error: fmt.Sprintf("body larger than %d bytes", h.opts.MaxBodyBytes)})
			return
		}
		outcome = "read_error"
		writeJSON(w, http.StatusBadRequest, reply{Error: "could not read the body"})
		return
	}
	if rec.Signing {
		err := token.VerifySignature(h.signingSecret(claims), r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"),
			r.Header.Get("webhook-signature"), body, h.opts.Now(), h.opts.SignatureTolerance)
		if err != nil {
			msg, reason, hint := "invalid webhook signature", "bad signature",
				"This project requires signed deliveries: set the webhook's signing token to the whsec_ token upbuild issued with it."
			switch {
			case errors.Is(err, token.ErrSignatureMissing):
				msg, reason = "missing webhook signature", "no signature"
			case errors.Is(err, token.ErrSignatureTimestamp):
				msg, reason, hint = "stale or future webhook signature timestamp", "stale signature",
					"Check the clocks of GitLab and upbuild; a replayed delivery is refused."
			}
			refuse(http.StatusUnauthorized, msg, rejection{outcome: "rejected_signature", reason: reason,
				instance: inst, scope: claims.Scope.Path, hint: hint})
			return
		}
	}
	eventHeader := r.Header.Get("X-Gitlab-Event")
	if tooDeep(body, maxNesting) {
		// GitLab's payloads nest a few levels; a body nobody could decode
		// again (encoding/json stops at 10,000) is refused, not stored.
		outcome = "malformed"
		writeJSON(w, http.StatusBadRequest, reply{Error: fmt.Sprintf("malformed webhook payload: nested deeper than %d levels", maxNesting)})
		return
	}
	norm, err := gitlabforge.Normalize(eventHeader, body)
	if err != nil {
		outcome = "malformed"
		writeJSON(w, http.StatusBadRequest, reply{Error: err.Error()})
		return
	}
	eventLabel = norm.EventKind
	if strings.ContainsRune(norm.Project.PathWithNamespace, 0) {
		outcome = "malformed"
		writeJSON(w, http.StatusBadRequest, reply{Error: "malformed webhook payload: the project path contains a NUL character"})
		return
	}

	// 3. The token's scope against the payload.
	bind, why := projectAllowed(inst, claims.Scope, rec, norm)
	if why != "" {
		refuse(http.StatusUnauthorized, why, rejection{outcome: "rejected_project", reason: "token of another project",
			instance: inst, scope: claims.Scope.Path,
			hint: "Each project needs its own token: run `upbuild token issue <project URL>` for this project."})
		return
	}

	// 4. Persist.
	d := store.Delivery{
		Instance:    inst,
		ProjectID:   norm.Project.ID,
		ProjectPath: norm.Project.PathWithNamespace,
		EventHeader: eventHeader,
		EventKind:   norm.EventKind,
		DedupKey:    store.DedupKey(inst, norm.Project.ID, norm.Project.PathWithNamespace, eventHeader, dedupKeyOf(r.Header)),
		Headers:     keptHeaders(r.Header),
		Body:        body,
		Outcome:     store.OutcomeAccepted,
		Reason:      norm.IgnoredReason,
		TokenID:     claims.ID,
		ReceivedAt:  start.UTC(),
		BindProject: bind,
	}
	if norm.Event == nil {
		d.Outcome = store.OutcomeIgnored
	} else if d.Event, err = json.Marshal(norm.Event); err != nil {
		outcome = "error"
		writeJSON(w, http.StatusInternalServerError, reply{Error: "could not encode the event"})
		return
	}
	res, err := h.opts.Committer.Save(r.Context(), d)
	if err != nil {
		h.opts.Logger.Error("store delivery", "instance", inst, "project", d.ProjectPath, "err", err)
		outcome = "store_error"
		writeJSON(w, http.StatusServiceUnavailable, reply{Error: "upbuild could not store the delivery; GitLab may resend it"})
		return
	}
	if bind {
		h.tokens.bound(claims.ID, d.ProjectID)
	}

	// 5. Answer.
	switch {
	case res.Duplicate:
		outcome = "duplicate"
		writeJSON(w, http.StatusAccepted, reply{Status: "duplicate", DeliveryID: res.ID})
	case d.Outcome == store.OutcomeIgnored:
		outcome = "ignored"
		writeJSON(w, http.StatusAccepted, reply{Status: "ignored", DeliveryID: res.ID, Reason: d.Reason})
	default:
		outcome = "accepted"
		writeJSON(w, http.StatusAccepted, reply{Status: "accepted", DeliveryID: res.ID})
		if h.opts.Accepted != nil {
			h.opts.Accepted()
		}
	}
}

func (h *Handler) signingSecret(c token.Claims) string {
	s, err := h.opts.Keyring.SigningSecret(c)
	if err != nil {
		// Verify already found the key, so this cannot fail; an empty
		// secret makes the signature check fail closed anyway.
		return ""
	}
	return s
}

// projectAllowed decides whether a verified token may speak for the payload's
// project. A project ID the token has authenticated before always passes, so
// renames and transfers keep working; a project token bound to one ID never
// passes for another ID, even at the same path.
func projectAllowed(inst string, scope token.Scope, rec store.TokenRecord, norm gitlabforge.Delivery) (bind bool, why string) {
	p := norm.Project
	if p.WebURL != "" {
		if _, _, err := token.SplitProjectURL(inst, p.WebURL); err != nil {
			return false, "the payload's project is not on the token's GitLab instance"
		}
	}
	if p.PathWithNamespace == "" {
		// Nothing to compare the scope with (system-level payloads, or
		// ones that carry only a project ID): such payloads are only ever
		// recorded as ignored, never acted on.
		if norm.Event != nil {
			return false, "the payload names no project path"
		}
		return false, ""
	}
	for _, id := range rec.ProjectIDs {
		if p.ID != 0 && id == p.ID {
			return false, ""
		}
	}
	if scope.Kind == token.ScopeProject && len(rec.ProjectIDs) > 0 && p.ID != 0 {
		return false, "this token belongs to another project"
	}
	if !scope.Covers(inst, p.PathWithNamespace) {
		return false, "this token belongs to another project"
	}
	return p.ID != 0, ""
}

// dedupKeyOf picks the delivery's idempotency key: GitLab's Idempotency-Key
// (the same on a resend), else the event UUID.
func dedupKeyOf(h http.Header) string {
	if k := h.Get("Idempotency-Key"); k != "" {
		return "idem:" + k
	}
	if k := h.Get("X-Gitlab-Event-UUID"); k != "" {
		return "uuid:" + k
	}
	return ""
}

// secretHeaders are never stored.
var secretHeaders = map[string]bool{
	"X-Gitlab-Token": true, "Webhook-Signature": true, "Authorization": true, "Cookie": true, "Private-Token": true,
}

func keptHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if secretHeaders[http.CanonicalHeaderKey(k)] || len(v) == 0 {
			continue
		}
		out[k] = strings.Join(v, ", ")
	}
	return out
}

// knownEvents bounds the metric label values.
var knownEvents = map[string]string{
	"Push Hook": "push", "Tag Push Hook": "tag_push", "Merge Request Hook": "merge_request",
	"Note Hook": "note", "Confidential Note Hook": "note", "Release Hook": "release",
	"Pipeline Hook": "pipeline", "Job Hook": "build", "Issue Hook": "issue",
}

func eventLabelOf(header string) string {
	if k, ok := knownEvents[header]; ok {
		return k
	}
	return "other"
}

func writeJSON(w http.ResponseWriter, status int, v reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// tokenCache keeps token records in memory for a short time, so the hot
// path does one map lookup instead of a query per delivery.
type tokenCache struct {
	store *store.Store
	ttl   time.Duration
	now   func() time.Time
	mu    sync.Mutex
	items map[int64]cachedToken
}

type cachedToken struct {
	rec     store.TokenRecord
	fetched time.Time
}

func newTokenCache(s *store.Store, ttl time.Duration, now func() time.Time) *tokenCache {
	return &tokenCache{store: s, ttl: ttl, now: now, items: map[int64]cachedToken{}}
}

func (c *tokenCache) get(ctx context.Context, id int64) (store.TokenRecord, error) {
	c.mu.Lock()
	it, ok := c.items[id]
	c.mu.Unlock()
	if ok && c.now().Sub(it.fetched) < c.ttl {
		return it.rec, nil
	}
	rec, err := c.store.Token(ctx, id)
	if err != nil {
		return store.TokenRecord{}, err
	}
	c.mu.Lock()
	c.items[id] = cachedToken{rec: rec, fetched: c.now()}
	c.mu.Unlock()
	return rec, nil
}

// bound records a project binding that was just committed.
func (c *tokenCache) bound(id, projectID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[id]
	if !ok {
		return
	}
	for _, p := range it.rec.ProjectIDs {
		if p == projectID {
			return
		}
	}
	it.rec.ProjectIDs = append(append([]int64(nil), it.rec.ProjectIDs...), projectID)
	c.items[id] = it
}

// maxNesting bounds how deeply a webhook body may nest objects and arrays.
const maxNesting = 256

// tooDeep reports whether JSON text nests deeper than max. It only counts
// brackets outside strings; validity is Normalize's business.
func tooDeep(body []byte, max int) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}
