package intake_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// fixtureHeaders maps each real payload to the X-Gitlab-Event GitLab sends with it.
var fixtureHeaders = map[string]string{
	"build.json": "Job Hook", "deployment.json": "Deployment Hook",
	"emoji_issue.json": "Emoji Hook", "emoji_merge_request.json": "Emoji Hook", "emoji_note_commit.json": "Emoji Hook",
	"emoji_note_issue.json": "Emoji Hook", "emoji_note_merge_request.json": "Emoji Hook",
	"emoji_note_snippet.json": "Emoji Hook", "emoji_snippet.json": "Emoji Hook",
	"feature_flag.json": "Feature Flag Hook", "group_merge_request.json": "Merge Request Hook",
	"issue.json": "Issue Hook", "job.json": "Job Hook", "member.json": "Member Hook",
	"merge_request.json": "Merge Request Hook", "milestone_group.json": "Milestone Hook",
	"milestone_project.json": "Milestone Hook", "note_commit.json": "Note Hook", "note_issue.json": "Note Hook",
	"note_merge_request.json": "Note Hook", "note_snippet.json": "Note Hook", "pipeline.json": "Pipeline Hook",
	"project.json": "Project Hook", "push.json": "Push Hook", "release.json": "Release Hook",
	"resource_access_token_group.json":   "Resource Access Token Hook",
	"resource_access_token_project.json": "Resource Access Token Hook",
	"service_merge_request.json":         "Service Hook", "subgroup.json": "Subgroup Hook",
	"tag_push.json": "Tag Push Hook", "vulnerability.json": "Vulnerability Hook", "wiki_page.json": "Wiki Page Hook",
}

// actedOn are the fixtures upbuild turns into events; every other one is
// recorded as ignored.
// The merge request samples are not acted on: merge_request.json names a
// target project other than the hook's own, group_merge_request.json has no
// iid, and "Service Hook" is what integrations receive, not project hooks.
var actedOn = map[string]bool{
	"release.json": true, "push.json": true, "tag_push.json": true, "note_commit.json": true, "note_merge_request.json": true,
}

// The instances the fixtures' projects live on (their web_url hosts).
var fixtureInstances = []string{"http://example.com", "https://example.com", "http://10.126.0.2:3000",
	"http://192.168.64.1:3005", "http://10.40.8.5:3200"}

type fixtureProject struct {
	PathWithNamespace string `json:"path_with_namespace"` // system hooks about a project
	Project           struct {
		PathWithNamespace string `json:"path_with_namespace"`
		WebURL            string `json:"web_url"`
	} `json:"project"`
}

func TestEveryRealPayloadIsAcceptedWithItsOutcome(t *testing.T) {
	entries, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	if len(names) != 32 || len(fixtureHeaders) != 32 {
		t.Fatalf("want the client's 32 payloads, found %d files and %d header mappings", len(names), len(fixtureHeaders))
	}
	testdb.Each(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, fixtureInstances...)
		for i, name := range names {
			body := fixture(t, name)
			var fp fixtureProject
			if err := json.Unmarshal(body, &fp); err != nil {
				t.Fatal(err)
			}
			projectURL := fp.Project.WebURL
			if projectURL == "" && fp.PathWithNamespace != "" {
				projectURL = "http://example.com/" + fp.PathWithNamespace
			}
			if projectURL == "" {
				// Payloads that name no project: any token of the instance authenticates them.
				projectURL = "http://example.com/some/project"
			}
			issued := h.issue(projectURL, false, false)
			a := h.deliver(fixtureHeaders[name], body, map[string]string{
				"X-Gitlab-Token": issued.Token, "Idempotency-Key": fmt.Sprintf("fixture-%d", i),
			})
			if a.Code != 202 {
				t.Errorf("%s: got %d %s, want 202", name, a.Code, a.Raw)
				continue
			}
			wantStatus := "ignored"
			if actedOn[name] {
				wantStatus = "accepted"
			}
			if a.Body["status"] != wantStatus {
				t.Errorf("%s: status %v (%s), want %s", name, a.Body["status"], a.Raw, wantStatus)
			}
			if wantStatus == "ignored" && a.Body["reason"] == "" {
				t.Errorf("%s: ignored without a reason", name)
			}
		}
		if n := h.count(); n != 32 {
			t.Fatalf("stored %d deliveries, want 32", n)
		}
	})
}

// storedEvent returns the normalised event of a stored delivery.
func storedEvent(t *testing.T, h *harness, id float64) forge.Event {
	t.Helper()
	_, raw, err := h.store.DeliveryBody(context.Background(), int64(id))
	if err != nil {
		t.Fatal(err)
	}
	var ev forge.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("stored event %q: %v", raw, err)
	}
	return ev
}

func TestActedOnEventsAreStoredNormalised(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, "http://example.com")
		cases := []struct {
			file, url string
			check     func(ev forge.Event) string
		}{
			{"merge_request_consistent", "http://example.com/gitlabhq/gitlab-test", func(ev forge.Event) string {
				if ev.Kind != forge.KindMergeRequest || ev.Project.ID != 1 || ev.MR == nil || ev.MR.IID != 1 ||
					ev.MR.Action != forge.MROpened || ev.SHA != "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" || ev.Actor.Username != "user1" {
					return fmt.Sprintf("%+v %+v", ev, ev.MR)
				}
				return ""
			}},
			{"push.json", "http://example.com/mike/diaspora", func(ev forge.Event) string {
				if ev.Kind != forge.KindPush || ev.Project.ID != 15 || ev.Ref != "master" ||
					ev.SHA != "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" || ev.Actor.Username != "jsmith" {
					return fmt.Sprintf("%+v", ev)
				}
				return ""
			}},
			{"tag_push.json", "http://example.com/jsmith/example", func(ev forge.Event) string {
				if ev.Kind != forge.KindTagPush || ev.Project.ID != 1 || ev.SHA != "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7" {
					return fmt.Sprintf("%+v", ev)
				}
				return ""
			}},
			{"note_merge_request.json", "http://example.com/gitlab-org/gitlab-test", func(ev forge.Event) string {
				if ev.Kind != forge.KindComment || ev.Project.ID != 5 || ev.Comment == nil || ev.MR == nil || ev.Actor.Username != "root" {
					return fmt.Sprintf("%+v", ev)
				}
				return ""
			}},
		}
		// GitLab's sample MR names another target project than the hook's;
		// a real hook's payload names the same one.
		consistentMR := edit(t, fixture(t, "merge_request.json"), func(m map[string]any) {
			oa := m["object_attributes"].(map[string]any)
			oa["source_project_id"], oa["target_project_id"] = 1, 1
			for _, side := range []string{"source", "target"} {
				p := oa[side].(map[string]any)
				p["path_with_namespace"], p["web_url"] = "gitlabhq/gitlab-test", "http://example.com/gitlabhq/gitlab-test"
			}
		})
		for i, c := range cases {
			issued := h.issue(c.url, false, false)
			body, header := consistentMR, "Merge Request Hook"
			if c.file != "merge_request_consistent" {
				body, header = fixture(t, c.file), fixtureHeaders[c.file]
			}
			a := h.deliver(header, body, map[string]string{
				"X-Gitlab-Token": issued.Token, "X-Gitlab-Event-UUID": fmt.Sprint("uuid-", i),
			})
			if a.Code != 202 || a.Body["status"] != "accepted" {
				t.Fatalf("%s: %d %s", c.file, a.Code, a.Raw)
			}
			if msg := c.check(storedEvent(t, h, a.Body["delivery_id"].(float64))); msg != "" {
				t.Errorf("%s: unexpected event %s", c.file, msg)
			}
		}
	})
}

func TestRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, "http://example.com", "https://gitlab.gnome.org")
		mr := fixture(t, "merge_request.json") // project gitlabhq/gitlab-test on http://example.com
		good := h.issue("http://example.com/gitlabhq/gitlab-test", false, false)
		other := h.issue("http://example.com/other/project", false, false)
		gnome := h.issue("https://gitlab.gnome.org/gitlabhq/gitlab-test", false, false)
		revoked := h.issue("http://example.com/revoked/project", false, false)
		tampered := []byte(good.Token)
		tampered[len(tampered)-3] ^= 1
		cases := []struct {
			name    string
			event   string
			body    []byte
			headers map[string]string
			code    int
			says    string
		}{
			{"no token", "Merge Request Hook", mr, nil, 401, "missing X-Gitlab-Token"},
			{"wrong token", "Merge Request Hook", mr, map[string]string{"X-Gitlab-Token": "hunter2"}, 401, "invalid webhook token"},
			{"tampered token", "Merge Request Hook", mr, map[string]string{"X-Gitlab-Token": string(tampered)}, 401, "invalid webhook token"},
			{"token of project B", "Merge Request Hook", mr, map[string]string{"X-Gitlab-Token": other.Token}, 401, "another project"},
			{"token of another instance", "Merge Request Hook", mr, map[string]string{"X-Gitlab-Token": gnome.Token}, 401, "not on the token's GitLab instance"},
			{"instance header disagrees", "Merge Request Hook", mr, map[string]string{"X-Gitlab-Token": good.Token, "X-Gitlab-Instance": "https://gitlab.gnome.org"}, 401, "another GitLab instance"},
			{"body not JSON", "Merge Request Hook", []byte("not json{"), map[string]string{"X-Gitlab-Token": good.Token}, 400, "malformed"},
			{"body is an array", "Merge Request Hook", []byte("[1,2]"), map[string]string{"X-Gitlab-Token": good.Token}, 400, "malformed"},
			{"body of another kind", "Push Hook", mr, map[string]string{"X-Gitlab-Token": good.Token}, 400, "malformed"},
			{"oversize body", "Merge Request Hook", []byte(`{"x":"` + strings.Repeat("a", 2<<20) + `"}`), map[string]string{"X-Gitlab-Token": good.Token}, 413, "larger than"},
		}
		for _, c := range cases {
			a := h.deliver(c.event, c.body, c.headers)
			if a.Code != c.code || !strings.Contains(a.Raw, c.says) {
				t.Errorf("%s: got %d %s, want %d saying %q", c.name, a.Code, a.Raw, c.code, c.says)
			}
			for _, tok := range []string{good.Token, other.Token, gnome.Token, string(tampered), "hunter2"} {
				if strings.Contains(a.Raw, tok) {
					t.Errorf("%s: the answer echoes a token", c.name)
				}
			}
		}
		// A revoked token is refused from the moment it is revoked.
		revokedMR := edit(t, mr, func(m map[string]any) {
			m["project"].(map[string]any)["path_with_namespace"] = "revoked/project"
			m["project"].(map[string]any)["web_url"] = "http://example.com/revoked/project"
		})
		if a := h.deliver("Merge Request Hook", revokedMR, map[string]string{"X-Gitlab-Token": revoked.Token}); a.Code != 202 {
			t.Fatalf("before revocation: %d %s", a.Code, a.Raw)
		}
		scope, _ := h.tokens.Scope("http://example.com/revoked/project", false)
		if n, err := h.tokens.Revoke(context.Background(), scope); err != nil || n != 1 {
			t.Fatalf("revoke: %d %v", n, err)
		}
		if a := h.deliver("Merge Request Hook", revokedMR, map[string]string{"X-Gitlab-Token": revoked.Token}); a.Code != 401 || !strings.Contains(a.Raw, "revoked") {
			t.Fatalf("after revocation: %d %s", a.Code, a.Raw)
		}
		if n := h.count(); n != 1 {
			t.Fatalf("stored %d deliveries after refusals, want only the 1 accepted", n)
		}
	})
}

func TestUnconfiguredInstanceIsRefused(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t), "http://example.com")
	issued := h.issue("http://example.com/gitlabhq/gitlab-test", false, false)
	h.stop()
	// The same service keys, so the token's MAC verifies; only the instance
	// is no longer served.
	h2 := newHarnessDir(t, h.cfg.DataDir, testdb.SQLite(t), "https://gitlab.gnome.org")
	a := h2.deliver("Merge Request Hook", fixture(t, "merge_request.json"), map[string]string{"X-Gitlab-Token": issued.Token})
	if a.Code != 401 || !strings.Contains(a.Raw, "does not serve the GitLab instance http://example.com") {
		t.Fatalf("got %d %s", a.Code, a.Raw)
	}
}

func TestDuplicatesAreCountedOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, "http://example.com")
		issued := h.issue("http://example.com/mike/diaspora", false, false)
		push := fixture(t, "push.json")
		headers := map[string]string{"X-Gitlab-Token": issued.Token, "Idempotency-Key": "resend-me", "X-Gitlab-Event-UUID": "ev-1"}
		first := h.deliver("Push Hook", push, headers)
		again := h.deliver("Push Hook", push, headers)
		if first.Code != 202 || first.Body["status"] != "accepted" {
			t.Fatalf("first: %d %s", first.Code, first.Raw)
		}
		if again.Code != 202 || again.Body["status"] != "duplicate" || again.Body["delivery_id"] != first.Body["delivery_id"] {
			t.Fatalf("resend: %d %s", again.Code, again.Raw)
		}
		// Without Idempotency-Key, the Event-UUID is the key, and one
		// GitLab event fires a push and a tag push with the same UUID:
		// both are kept, each once.
		tag := fixture(t, "tag_push.json")
		tagToken := h.issue("http://example.com/jsmith/example", false, false)
		for range 2 {
			h.deliver("Tag Push Hook", tag, map[string]string{"X-Gitlab-Token": tagToken.Token, "X-Gitlab-Event-UUID": "ev-1"})
		}
		if n := h.count(); n != 2 {
			t.Fatalf("stored %d deliveries, want 2", n)
		}
		list, err := h.store.Deliveries(context.Background(), store.DeliveryFilter{ProjectPath: "mike/diaspora"})
		if err != nil || len(list) != 1 || list[0].RepeatCount != 1 {
			t.Fatalf("deliveries = %+v, %v", list, err)
		}
	})
}

func TestConcurrentDuplicatesMakeOneDelivery(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, "http://example.com")
		issued := h.issue("http://example.com/mike/diaspora", false, false)
		push := fixture(t, "push.json")
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[string]int{}
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := h.deliver("Push Hook", push, map[string]string{"X-Gitlab-Token": issued.Token, "Idempotency-Key": "same"})
				mu.Lock()
				statuses[fmt.Sprint(a.Code, a.Body["status"])]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if statuses["202accepted"] != 1 || statuses["202duplicate"] != 19 {
			t.Fatalf("answers %v, want one accepted and 19 duplicates", statuses)
		}
	})
}

func TestSignedDeliveries(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, "http://example.com")
		issued := h.issue("http://example.com/mike/diaspora", false, true)
		if !strings.HasPrefix(issued.SigningSecret, "whsec_") {
			t.Fatalf("signing secret %q", issued.SigningSecret)
		}
		push := fixture(t, "push.json")
		sign := func(id string, ts time.Time, body []byte) map[string]string {
			key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(issued.SigningSecret, "whsec_"))
			stamp := strconv.FormatInt(ts.Unix(), 10)
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte(id + "." + stamp + "."))
			mac.Write(body)
			return map[string]string{"X-Gitlab-Token": issued.Token, "Idempotency-Key": id, "webhook-id": id,
				"webhook-timestamp": stamp, "webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))}
		}
		unsigned := h.deliver("Push Hook", push, map[string]string{"X-Gitlab-Token": issued.Token, "Idempotency-Key": "u"})
		if unsigned.Code != 401 || !strings.Contains(unsigned.Raw, "signature") {
			t.Fatalf("unsigned delivery to a signing project: %d %s", unsigned.Code, unsigned.Raw)
		}
		stale := h.deliver("Push Hook", push, sign("s", time.Now().Add(-time.Hour), push))
		if stale.Code != 401 {
			t.Fatalf("stale signature: %d %s", stale.Code, stale.Raw)
		}
		tamperedHeaders := sign("t", time.Now(), push)
		tamperedBody := append([]byte(nil), push...)
		tamperedBody[len(tamperedBody)-2] = ' '
		if a := h.deliver("Push Hook", tamperedBody, tamperedHeaders); a.Code != 401 {
			t.Fatalf("tampered body: %d %s", a.Code, a.Raw)
		}
		ok := h.deliver("Push Hook", push, sign("g", time.Now(), push))
		if ok.Code != 202 || ok.Body["status"] != "accepted" {
			t.Fatalf("valid signature: %d %s", ok.Code, ok.Raw)
		}
		list, _ := h.store.Deliveries(context.Background(), store.DeliveryFilter{})
		for _, d := range list {
			for k, v := range d.Headers {
				if strings.EqualFold(k, "webhook-signature") || strings.EqualFold(k, "X-Gitlab-Token") || strings.Contains(v, issued.Token) {
					t.Fatalf("a secret header was stored: %s", k)
				}
			}
		}
	})
}

func TestRenamedProjectKeepsWorkingAndNewProjectAtOldPathDoesNot(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, "http://example.com")
		issued := h.issue("http://example.com/mike/diaspora", false, false)
		push := fixture(t, "push.json") // project id 15
		hdr := func(k string) map[string]string {
			return map[string]string{"X-Gitlab-Token": issued.Token, "Idempotency-Key": k}
		}
		if a := h.deliver("Push Hook", push, hdr("1")); a.Code != 202 {
			t.Fatalf("first delivery: %d %s", a.Code, a.Raw)
		}
		renamed := edit(t, push, func(m map[string]any) {
			p := m["project"].(map[string]any)
			p["path_with_namespace"], p["web_url"] = "newowner/diaspora-ng", "http://example.com/newowner/diaspora-ng"
		})
		if a := h.deliver("Push Hook", renamed, hdr("2")); a.Code != 202 {
			t.Fatalf("renamed project: %d %s", a.Code, a.Raw)
		}
		impostor := edit(t, push, func(m map[string]any) { m["project"].(map[string]any)["id"] = 999 })
		if a := h.deliver("Push Hook", impostor, hdr("3")); a.Code != 401 {
			t.Fatalf("another project at the old path: %d %s", a.Code, a.Raw)
		}
	})
}

func TestGroupTokenCoversSubgroupsOnly(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, "http://example.com")
		issued := h.issue("http://example.com/mike", true, false)
		at := func(path string, id int) []byte {
			return edit(t, fixture(t, "push.json"), func(m map[string]any) {
				p := m["project"].(map[string]any)
				p["path_with_namespace"], p["web_url"], p["id"] = path, "http://example.com/"+path, id
			})
		}
		cases := []struct {
			path string
			code int
		}{{"mike/diaspora", 202}, {"mike/sub/group/deep", 202}, {"mikeother/project", 401}, {"other/mike", 401}}
		for i, c := range cases {
			a := h.deliver("Push Hook", at(c.path, 100+i), map[string]string{"X-Gitlab-Token": issued.Token, "Idempotency-Key": c.path})
			if a.Code != c.code {
				t.Errorf("%s: %d %s, want %d", c.path, a.Code, a.Raw, c.code)
			}
		}
	})
}

func TestRejectionsAreCountedPerProjectWithTheReason(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, "http://example.com")
		h.issue("http://example.com/mike/diaspora", false, false)
		// The counter loads known scopes at start; wait until it knows this one.
		time.Sleep(10 * time.Millisecond)
		push := fixture(t, "push.json")
		for range 3 {
			h.deliver("Push Hook", push, map[string]string{"X-Gitlab-Token": "wrong", "X-Gitlab-Instance": "http://example.com"})
		}
		var got []store.Rejection
		waitFor(t, "rejection counter", func() bool {
			var err error
			got, err = h.store.Rejections(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, r := range got {
				n += r.Count
			}
			return n == 3
		})
		// Deliveries claiming a project with no token land in the instance's bucket.
		for _, r := range got {
			if r.Instance != "http://example.com" || r.LastReason != "wrong token" {
				t.Fatalf("rejection %+v", r)
			}
		}
		a := h.get("/api/v1/rejections", adminToken)
		if a.Code != 200 || !strings.Contains(a.Raw, "wrong token") {
			t.Fatalf("rejections API: %d %s", a.Code, a.Raw)
		}
	})
}

func TestDeliveriesAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, "http://example.com")
		issued := h.issue("http://example.com/mike/diaspora", false, false)
		for i := range 5 {
			if a := h.deliver("Push Hook", fixture(t, "push.json"), map[string]string{"X-Gitlab-Token": issued.Token, "Idempotency-Key": fmt.Sprint(i)}); a.Code != 202 {
				t.Fatal(a.Raw)
			}
		}
		if a := h.get("/api/v1/deliveries", ""); a.Code != 401 {
			t.Fatalf("without the admin token: %d", a.Code)
		}
		if a := h.get("/api/v1/deliveries", "nope"); a.Code != 401 {
			t.Fatalf("with a wrong admin token: %d", a.Code)
		}
		var keys []string
		next := "/api/v1/deliveries?limit=2&project=" + url.QueryEscape("mike/diaspora")
		for next != "" {
			a := h.get(next, adminToken)
			if a.Code != 200 {
				t.Fatalf("%s: %d %s", next, a.Code, a.Raw)
			}
			for _, d := range a.Body["deliveries"].([]any) {
				d := d.(map[string]any)
				if d["outcome"] != "accepted" || d["event"] != "Push Hook" {
					t.Fatalf("delivery %v", d)
				}
				keys = append(keys, d["headers"].(map[string]any)["Idempotency-Key"].(string))
			}
			next, _ = a.Body["next"].(string)
		}
		if strings.Join(keys, ",") != "4,3,2,1,0" {
			t.Fatalf("pages gave %v, want newest first 4..0", keys)
		}
		if a := h.get("/api/v1/deliveries?project=someone/else", adminToken); a.Code != 200 || len(a.Body["deliveries"].([]any)) != 0 {
			t.Fatalf("filter by another project: %d %s", a.Code, a.Raw)
		}
		if a := h.get("/api/v1/deliveries?limit=0", adminToken); a.Code != 400 {
			t.Fatalf("limit=0: %d", a.Code)
		}
	})
}

func TestStoreFailureAnswers503(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t), "http://example.com")
	h.cfg.TokenCacheTTL = time.Hour
	issued := h.issue("http://example.com/mike/diaspora", false, false)
	// Break the database under the running server: drop the table it writes to.
	if _, err := h.store.WriteDB().Exec(`DROP TABLE deliveries`); err != nil {
		t.Fatal(err)
	}
	a := h.deliver("Push Hook", fixture(t, "push.json"), map[string]string{"X-Gitlab-Token": issued.Token, "Idempotency-Key": "x"})
	if a.Code != 503 {
		t.Fatalf("got %d %s, want 503", a.Code, a.Raw)
	}
}
