package intake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// setupIssues answers a project's first delivery without any token with a
// confidential issue, created by the bot, that explains the setup. Only for
// projects inside the allow-list, once per project (the store's dedup key),
// and at most a few per hour per instance, so forged tokenless deliveries
// cannot make the bot spam.
type setupIssues struct {
	h    *Handler
	mu   sync.Mutex
	sent map[string]setupWindow // instance → this hour's count
}

type setupWindow struct {
	start time.Time
	count int
}

func (s *setupIssues) maybe(r *http.Request) {
	opts := s.h.opts
	if len(opts.AllowedNamespaces) == 0 {
		return
	}
	inst, err := token.NormalizeInstanceURL(r.Header.Get("X-Gitlab-Instance"))
	if err != nil || !s.h.instances[inst] {
		return
	}
	// Read the claimed project, then put the body back for the counter.
	body, _ := io.ReadAll(io.LimitReader(r.Body, unauthenticatedPeek))
	r.Body = io.NopCloser(bytes.NewReader(body))
	var payload struct {
		Project struct {
			PathWithNamespace string `json:"path_with_namespace"`
		} `json:"project"`
	}
	if json.Unmarshal(body, &payload) != nil || payload.Project.PathWithNamespace == "" {
		return
	}
	path := payload.Project.PathWithNamespace
	if !inNamespaces(opts.AllowedNamespaces, inst, path) || !s.take(inst) {
		return
	}
	action := store.ForgeAction{
		Instance: inst, Kind: store.ActionIssue,
		// The reporter resolves the path with the bot's own API call; the
		// unauthenticated payload's project ID is never trusted.
		Payload: map[string]any{"project_path": path, "confidential": true,
			"title": "Set up upbuild's webhook token", "body": setupBody(opts.PublicURL, inst, path)},
		DedupKey: "setup|" + inst + "|" + strings.ToLower(path),
	}
	if err := opts.Store.AddActions(r.Context(), action); err != nil {
		opts.Logger.Warn("record setup issue", "project", path, "err", err)
		return
	}
	if opts.Changed != nil {
		opts.Changed()
	}
}

// take spends one of the instance's setup issues for this hour.
func (s *setupIssues) take(inst string) bool {
	now := s.h.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.sent[inst]
	if now.Sub(w.start) >= time.Hour {
		w = setupWindow{start: now}
	}
	if w.count >= s.h.opts.SetupIssuesPerHour {
		return false
	}
	w.count++
	s.sent[inst] = w
	return true
}

func inNamespaces(namespaces []string, inst, path string) bool {
	full := strings.ToLower(inst + "/" + path)
	for _, ns := range namespaces {
		ns = strings.ToLower(strings.TrimRight(ns, "/"))
		if strings.HasPrefix(full, ns+"/") {
			return true
		}
	}
	return false
}

func setupBody(publicURL, inst, path string) string {
	return fmt.Sprintf(`upbuild (package CI for this project) received a webhook from this project without a secret token, so it ignored it.

To finish the setup, a maintainer of this project:

1. gets a token for this project from the upbuild operator, who runs
   `+"`upbuild token issue %s/%s`"+`;
2. opens **Settings → Webhooks**, edits the webhook that points at %s/api/webhooks/gitlab,
   and pastes the token into **Secret token**;
3. keeps these triggers ticked: push events, tag push events, comments, merge request events, releases.

GitLab's **Test** button then answers 202. This issue is confidential because webhook tokens are
secrets; upbuild opens it once, and you can close it when the hook works.`, inst, path, publicURL)
}
