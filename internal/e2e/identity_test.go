package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/stacktest"
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

// TestAMergeRequestIsWhatGitLabSaysItIs covers merge request payloads
// written by someone holding the project's own token: one that names a
// private victim project as the source of a merge request that does not
// exist, and one that does so for a real merge request. The bot must set
// no status on the victim's commit; the real merge request still gets its
// statuses, on its own head commit.
func TestAMergeRequestIsWhatGitLabSaysItIs(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		victim := e.ProjectWith(gitlabsim.ProjectSpec{Namespace: "demo", Path: "victim", Visibility: gitlabsim.Private,
			Files: helloFiles(helloSpec)})
		victimSHA, err := e.Sim.BranchHead(e.Context(), victim.ID, "main")
		if err != nil {
			t.Fatal(err)
		}
		evil := e.Project("evil", helloFiles(helloSpec))
		if _, err := e.Sim.CreateTag(e.Context(), evil.ID, "alice", "v1.0", "main", "release 1.0"); err != nil {
			t.Fatal(err)
		}
		mr := e.openMR(evil, "alice", "feature") // connects the project and opens a real merge request
		host := hostTarget()
		e.requireFinal(t, evil.ID, mr.HeadSHA, map[string]string{"rpm-build:" + host: "success",
			"rpm-build:fedora-rawhide-x86_64": "skipped", "testing-farm:" + host: "success"})
		issued := e.Hook(evil.ID) // a second token for the project, as its maintainer could get
		for _, iid := range []int64{mr.IID + 100, mr.IID} {
			e.deliverRaw(t, "Merge Request Hook", issued.Token, map[string]any{
				"object_kind": "merge_request", "event_type": "merge_request", "user": map[string]any{"id": 1, "username": "mallory"},
				"project": map[string]any{"id": evil.ID, "path_with_namespace": evil.PathWithNamespace, "web_url": evil.WebURL,
					"default_branch": "main", "visibility_level": 20},
				"object_attributes": map[string]any{"iid": iid, "action": "open", "title": "x", "source_project_id": victim.ID,
					"target_project_id": evil.ID, "source_branch": "main", "target_branch": "main", "author_id": e.Seed.Maintainer.ID,
					"last_commit": map[string]any{"id": victimSHA},
					"source":      map[string]any{"path_with_namespace": victim.PathWithNamespace, "web_url": victim.WebURL}},
			})
		}
		if err := e.Sim.WaitDeliveries(e.Context()); err != nil {
			t.Fatal(err)
		}
		// Planning is asynchronous: a real delivery after the forged ones is
		// planned after them.
		if _, err := e.Sim.AddNote(e.Context(), evil.ID, mr.IID, "alice", "/packit build"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the real merge request's rebuild", func() (bool, string) {
			runs := e.Runs(evil.ID)
			return len(runs) >= 2, fmt.Sprint(len(runs))
		})
		if got := e.Statuses(victim.ID, victimSHA); len(got) > 0 {
			t.Errorf("the bot set statuses on the victim's commit: %v", got)
		}
		for _, r := range e.Runs(evil.ID) {
			if r.SHA == victimSHA || r.SourceProjectID == victim.ID {
				t.Errorf("a run was recorded for the victim's commit: %+v", r)
			}
		}
	})
}

// TestAProjectThatWentPrivateLeavesThePublicLists covers a project made
// private at GitLab, which sends no webhook for it: its runs, listed to
// anyone while it was public, leave the home page and /api/v1/runs once
// upbuild asks GitLab again (access_level_ttl, short here), as its run
// page already does.
func TestAProjectThatWentPrivateLeavesThePublicLists(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		e := newEnvWith(t, dbURL, stacktest.Options{Configure: func(c *config.Config) { c.AccessLevelTTL = 50 * time.Millisecond }})
		const title = "Secret: acquisition of ACME"
		p := e.Project("secretive", helloFiles(helloSpec))
		mr := e.OpenMR(p, "alice", "feature", title)
		e.WaitRun(p.ID, mr.HeadSHA)
		for _, path := range []string{"/", "/api/v1/runs"} {
			if _, body := e.get(t, e.URL+path); !strings.Contains(body, "acquisition of ACME") {
				t.Fatalf("positive control: %s does not list the public project's run", path)
			}
		}
		if err := e.Sim.SetProjectVisibility(p.ID, gitlabsim.Private); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // past access_level_ttl
		for _, path := range []string{"/", "/api/v1/runs"} {
			if code, body := e.get(t, e.URL+path); code != http.StatusOK || strings.Contains(body, "acquisition of ACME") {
				t.Errorf("%s answers %d and still lists the private project's run", path, code)
			}
		}
	})
}
