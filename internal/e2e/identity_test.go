package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/testdb"
	"upbuild.dev/upbuild/internal/token"
)

// deliverRaw posts a hand-made payload to upbuild's webhook endpoint with
// a token, as someone holding the token could, and requires it accepted.
func (e *env) deliverRaw(t *testing.T, event, tok string, body map[string]any) {
	t.Helper()
	if code := e.deliverRawCode(t, event, tok, body); code != http.StatusAccepted {
		t.Fatalf("delivery answered %d, want 202", code)
	}
}

// deliverRawCode is deliverRaw returning the answer's status code.
func (e *env) deliverRawCode(t *testing.T, event, tok string, body map[string]any) int {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(e.Context(), http.MethodPost, e.URL+"/api/webhooks/gitlab", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Gitlab-Event", event)
	req.Header.Set("X-Gitlab-Token", tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestATokenSpeaksOnlyForItsOwnProject covers a token's first delivery,
// whose project ID intake takes from the payload: a fresh token for
// evil/pkg whose first push names a private victim project's ID (with the
// token's own path) must not make the bot read the victim's config, record
// a run for it, or set statuses on its commit; nor may a later delivery
// that names the victim's ID and path. A delivery whose ID and path are
// the token's project is acted on as usual.
func TestATokenSpeaksOnlyForItsOwnProject(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		victim := e.ProjectWith(gitlabsim.ProjectSpec{Namespace: "demo", Path: "victim", Visibility: gitlabsim.Private,
			Files: helloFiles(helloSpec)})
		sha, err := e.Sim.BranchHead(e.Context(), victim.ID, "main")
		if err != nil {
			t.Fatal(err)
		}
		evilFiles := helloFiles(helloSpec)
		evilFiles[".packit.yaml"] = strings.ReplaceAll(evilFiles[".packit.yaml"], "trigger: pull_request", "trigger: commit")
		evil := e.Project("pkg", evilFiles)
		issued, err := e.Tokens().Issue(e.Context(), token.Scope{Kind: token.ScopeProject, Instance: e.Instance, Path: evil.PathWithNamespace}, false, "mallory")
		if err != nil {
			t.Fatal(err)
		}
		push := func(id int64, path, sha string) map[string]any {
			return map[string]any{
				"object_kind": "push", "ref": "refs/heads/main", "checkout_sha": sha, "after": sha, "user_id": 1, "user_username": "mallory",
				"project": map[string]any{"id": id, "path_with_namespace": path, "web_url": e.SimURL + "/" + path,
					"default_branch": "main", "visibility_level": 20},
			}
		}
		e.deliverRaw(t, "Push Hook", issued.Token, push(victim.ID, evil.PathWithNamespace, sha))
		e.deliverRaw(t, "Push Hook", issued.Token, push(victim.ID, victim.PathWithNamespace, sha))
		// The token's own project, as a control that deliveries are planned.
		// Intake refuses it (another ID is bound to the token) until the
		// planner has dropped the false binding and intake's token cache
		// (token_cache_ttl) has let go of it.
		evilSHA, err := e.Sim.BranchHead(e.Context(), evil.ID, "main")
		if err != nil {
			t.Fatal(err)
		}
		e.Eventually("the token's own project gets its run", func() (bool, string) {
			if len(e.Runs(evil.ID)) > 0 {
				return true, ""
			}
			code := e.deliverRawCode(t, "Push Hook", issued.Token, push(evil.ID, evil.PathWithNamespace, evilSHA))
			return false, fmt.Sprintf("delivery answered %d, runs %v", code, e.Runs(evil.ID))
		})
		if err := e.Sim.WaitDeliveries(e.Context()); err != nil {
			t.Fatal(err)
		}
		if got := e.Statuses(victim.ID, sha); len(got) > 0 {
			t.Errorf("the bot set statuses on the victim's commit: %v", got)
		}
		if runs := e.Runs(victim.ID); len(runs) > 0 {
			t.Errorf("runs were recorded for the victim project: %v", runs)
		}
	})
}
