package gitlab_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/forge/gitlab"
)

// fixtureHeaders maps each payload shipped with the GitLab Go client (copied
// into testdata/webhooks) to the X-Gitlab-Event header GitLab sends with it.
var fixtureHeaders = map[string]string{
	"build.json":                         "Build Hook",
	"deployment.json":                    "Deployment Hook",
	"emoji_issue.json":                   "Emoji Hook",
	"emoji_merge_request.json":           "Emoji Hook",
	"emoji_note_commit.json":             "Emoji Hook",
	"emoji_note_issue.json":              "Emoji Hook",
	"emoji_note_merge_request.json":      "Emoji Hook",
	"emoji_note_snippet.json":            "Emoji Hook",
	"emoji_snippet.json":                 "Emoji Hook",
	"feature_flag.json":                  "Feature Flag Hook",
	"group_merge_request.json":           "Merge Request Hook",
	"issue.json":                         "Issue Hook",
	"job.json":                           "Job Hook",
	"member.json":                        "Member Hook",
	"merge_request.json":                 "Merge Request Hook",
	"milestone_group.json":               "Milestone Hook",
	"milestone_project.json":             "Milestone Hook",
	"note_commit.json":                   "Note Hook",
	"note_issue.json":                    "Note Hook",
	"note_merge_request.json":            "Note Hook",
	"note_snippet.json":                  "Note Hook",
	"pipeline.json":                      "Pipeline Hook",
	"project.json":                       "Project Hook",
	"push.json":                          "Push Hook",
	"release.json":                       "Release Hook",
	"resource_access_token_group.json":   "Resource Access Token Hook",
	"resource_access_token_project.json": "Resource Access Token Hook",
	"service_merge_request.json":         "Service Hook",
	"subgroup.json":                      "Subgroup Hook",
	"tag_push.json":                      "Tag Push Hook",
	"vulnerability.json":                 "Vulnerability Hook",
	"wiki_page.json":                     "Wiki Page Hook",
}

// Projects as the fixtures describe them, read by hand from the JSON.
var (
	diaspora = forge.Project{
		ID: 15, PathWithNamespace: "mike/diaspora",
		WebURL: "http://example.com/mike/diaspora", GitHTTPURL: "http://example.com/mike/diaspora.git",
		DefaultBranch: "master", Visibility: "private",
	}
	jsmithExample = forge.Project{
		ID: 1, PathWithNamespace: "jsmith/example",
		WebURL: "http://example.com/jsmith/example", GitHTTPURL: "http://example.com/jsmith/example.git",
		DefaultBranch: "master", Visibility: "private",
	}
	exampleProject = forge.Project{
		ID: 327622, PathWithNamespace: "exm-namespace/example-project",
		WebURL: "http://example.com/exm-namespace/example-project", GitHTTPURL: "http://example.com/exm-namespace/example-project.git",
		DefaultBranch: "master", Visibility: "private",
	}
	gitlabhqTest = forge.Project{
		ID: 5, PathWithNamespace: "gitlabhq/gitlab-test",
		WebURL: "http://example.com/gitlabhq/gitlab-test", GitHTTPURL: "http://example.com/gitlabhq/gitlab-test.git",
		DefaultBranch: "master", Visibility: "public",
	}
	gitlabOrgTest = forge.Project{
		ID: 5, PathWithNamespace: "gitlab-org/gitlab-test",
		WebURL: "http://example.com/gitlab-org/gitlab-test", GitHTTPURL: "http://example.com/gitlab-org/gitlab-test.git",
		DefaultBranch: "master", Visibility: "internal",
	}
)

func TestNormalizeEveryClientFixture(t *testing.T) {
	type want struct {
		kind        string
		projectID   int64
		projectPath string
		reason      string       // expected IgnoredReason, or
		event       *forge.Event // the expected event
	}
	notActedOn := func(header string) string { return `event kind "` + header + `" is not acted on` }
	emoji := want{kind: "emoji", projectID: 7, projectPath: "flightjs/Flight", reason: notActedOn("Emoji Hook")}

	cases := map[string]want{
		"build.json":                    {kind: "build", projectID: 380, reason: notActedOn("Build Hook")},
		"deployment.json":               {kind: "deployment", projectID: 30, projectPath: "root/test-deployment-webhooks", reason: notActedOn("Deployment Hook")},
		"emoji_issue.json":              emoji,
		"emoji_merge_request.json":      emoji,
		"emoji_note_commit.json":        emoji,
		"emoji_note_issue.json":         emoji,
		"emoji_note_merge_request.json": emoji,
		"emoji_note_snippet.json":       emoji,
		"emoji_snippet.json":            emoji,
		"feature_flag.json":             {kind: "feature_flag", projectID: 1, projectPath: "gitlabhq/gitlab-test", reason: notActedOn("Feature Flag Hook")},
		// The documentation sample has keys with trailing spaces ("iid "),
		// so GitLab's real keys are missing and the project has no id.
		"group_merge_request.json": {kind: "merge_request", projectPath: "exm-namespace/example-project", reason: "merge request payload has no iid"},
		"issue.json":               {kind: "issue", projectID: 1, projectPath: "gitlabhq/gitlab-test", reason: notActedOn("Issue Hook")},
		"job.json":                 {kind: "build", projectID: 1, projectPath: "gitlab-org/gitlab-test", reason: notActedOn("Job Hook")},
		"member.json":              {kind: "member", reason: notActedOn("Member Hook")},
		// The documentation sample names project 1 at the top and target
		// project 14 in the merge request; a delivery authenticated for one
		// project must not steer work into another.
		"merge_request.json":     {kind: "merge_request", projectID: 1, projectPath: "gitlabhq/gitlab-test", reason: "merge request target project 14 is not the hook's project 1"},
		"milestone_group.json":   {kind: "milestone", reason: notActedOn("Milestone Hook")},
		"milestone_project.json": {kind: "milestone", projectID: 7, projectPath: "flightjs/Flight", reason: notActedOn("Milestone Hook")},
		"note_commit.json": {kind: "note", projectID: 5, projectPath: "gitlabhq/gitlab-test", event: &forge.Event{
			Kind:    forge.KindComment,
			Project: gitlabhqTest,
			Actor:   forge.User{ID: 42, Username: "user1"},
			SHA:     "cfe32cf61b73a0d5e9f13e774abde7ff789b1660",
			Comment: &forge.Comment{
				ID:           1243,
				Body:         "This is a commit comment. How does this work?",
				URL:          "http://example.com/gitlab-org/gitlab-test/commit/cfe32cf61b73a0d5e9f13e774abde7ff789b1660#note_1243",
				NoteableType: "Commit",
				CommitSHA:    "cfe32cf61b73a0d5e9f13e774abde7ff789b1660",
			},
		}},
		"note_issue.json": {kind: "note", projectID: 5, projectPath: "gitlab-org/gitlab-test", reason: "comments on issues start no work"},
		"note_merge_request.json": {kind: "note", projectID: 5, projectPath: "gitlab-org/gitlab-test", event: &forge.Event{
			Kind:    forge.KindComment,
			Project: gitlabOrgTest,
			Actor:   forge.User{ID: 1, Username: "root"},
			SHA:     "562e173be03b8ff2efb05345d12df18815438a4b",
			Ref:     "master",
			MR: &forge.MergeRequest{
				IID:           1,
				Title:         "Tempora et eos debitis quae laborum et.",
				URL:           "http://example.com/gitlab-org/gitlab-test/-/merge_requests/1",
				SourceProject: gitlabOrgTest,
				TargetProject: gitlabOrgTest,
				SourceBranch:  "master",
				TargetBranch:  "markdown",
				HeadSHA:       "562e173be03b8ff2efb05345d12df18815438a4b",
				Labels:        []string{"Afterpod", "Element"},
				AuthorID:      8,
			},
			Comment: &forge.Comment{
				ID:           1244,
				Body:         "This MR needs work.",
				URL:          "http://example.com/gitlab-org/gitlab-test/merge_requests/1#note_1244",
				NoteableType: "MergeRequest",
			},
		}},
		"note_snippet.json": {kind: "note", projectID: 5, projectPath: "gitlab-org/gitlab-test", reason: "comments on snippets start no work"},
		"pipeline.json":     {kind: "pipeline", projectID: 1, projectPath: "gitlab-org/gitlab-test", reason: notActedOn("Pipeline Hook")},
		// A group-level project hook names the project at the top level.
		"project.json": {kind: "project", projectID: 7, projectPath: "flightjs/flight", reason: notActedOn("Project Hook")},
		"push.json": {kind: "push", projectID: 15, projectPath: "mike/diaspora", event: &forge.Event{
			Kind:    forge.KindPush,
			Project: diaspora,
			Actor:   forge.User{ID: 4, Username: "jsmith"},
			SHA:     "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
			Ref:     "master",
		}},
		"release.json": {kind: "release", projectID: 327622, projectPath: "exm-namespace/example-project", event: &forge.Event{
			Kind:    forge.KindRelease,
			Project: exampleProject,
			SHA:     "2626dbdb936782b5c54816b1c6d45b1279303c6d",
			Ref:     "1.0.0",
			Release: &forge.Release{
				Tag:    "1.0.0",
				Name:   "1.0.0",
				Action: "create",
				URL:    "http://example.com/exm-namespace/example-project/-/releases/1.0.0",
			},
		}},
		"resource_access_token_group.json":   {kind: "resource_access_token", reason: notActedOn("Resource Access Token Hook")},
		"resource_access_token_project.json": {kind: "resource_access_token", projectID: 7, projectPath: "flightjs/Flight", reason: notActedOn("Resource Access Token Hook")},
		"service_merge_request.json":         {kind: "service", projectID: 2, projectPath: "test/woodpecker", reason: notActedOn("Service Hook")},
		"subgroup.json":                      {kind: "subgroup", reason: notActedOn("Subgroup Hook")},
		"tag_push.json": {kind: "tag_push", projectID: 1, projectPath: "jsmith/example", event: &forge.Event{
			Kind:    forge.KindTagPush,
			Project: jsmithExample,
			Actor:   forge.User{ID: 1, Username: "jsmith"},
			SHA:     "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
			Ref:     "v1.0.0",
		}},
		// Vulnerability hooks name their project only in object_attributes.
		"vulnerability.json": {kind: "vulnerability", projectID: 7, reason: notActedOn("Vulnerability Hook")},
		"wiki_page.json":     {kind: "wiki_page", projectID: 1, projectPath: "root/awesome-project", reason: notActedOn("Wiki Page Hook")},
	}

	files, err := filepath.Glob(filepath.Join("testdata", "webhooks", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 32 || len(cases) != 32 || len(fixtureHeaders) != 32 {
		t.Fatalf("want 32 fixtures, cases and headers; have %d, %d, %d", len(files), len(cases), len(fixtureHeaders))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			want, ok := cases[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			got, err := gitlab.Normalize(fixtureHeaders[name], readFixture(t, name))
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if got.EventKind != want.kind {
				t.Errorf("EventKind = %q, want %q", got.EventKind, want.kind)
			}
			if got.Project.ID != want.projectID || got.Project.PathWithNamespace != want.projectPath {
				t.Errorf("Project = %d %q, want %d %q", got.Project.ID, got.Project.PathWithNamespace, want.projectID, want.projectPath)
			}
			if got.IgnoredReason != want.reason {
				t.Errorf("IgnoredReason = %q, want %q", got.IgnoredReason, want.reason)
			}
			if !reflect.DeepEqual(got.Event, want.event) {
				t.Errorf("Event =\n%s\nwant\n%s", asJSON(t, got.Event), asJSON(t, want.event))
			}
		})
	}
}

// The merge request fixture, made consistent: a fork merge request from
// awesome_space/awesome_project (14) into gitlabhq/gitlab-test (1).
func forkMergeRequest(t testing.TB, edit func(payload map[string]any)) []byte {
	t.Helper()
	return editFixture(t, "merge_request.json", func(payload map[string]any) {
		attrs := object(t, payload, "object_attributes")
		attrs["target_project_id"] = 1
		attrs["target"] = payload["project"]
		if edit != nil {
			edit(payload)
		}
	})
}

var (
	gitlabhqTestTarget = forge.Project{
		ID: 1, PathWithNamespace: "gitlabhq/gitlab-test",
		WebURL: "http://example.com/gitlabhq/gitlab-test", GitHTTPURL: "http://example.com/gitlabhq/gitlab-test.git",
		DefaultBranch: "master", Visibility: "public",
	}
	awesomeFork = forge.Project{
		ID: 14, PathWithNamespace: "awesome_space/awesome_project",
		WebURL: "http://example.com/awesome_space/awesome_project", GitHTTPURL: "http://example.com/awesome_space/awesome_project.git",
		DefaultBranch: "master", Visibility: "public",
	}
)

func TestNormalizeForkMergeRequestOpened(t *testing.T) {
	got, err := gitlab.Normalize("Merge Request Hook", forkMergeRequest(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &forge.Event{
		Kind:    forge.KindMergeRequest,
		Project: gitlabhqTestTarget,
		Actor:   forge.User{ID: 1, Username: "user1"},
		SHA:     "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
		Ref:     "ms-viewport",
		MR: &forge.MergeRequest{
			IID:           1,
			Action:        forge.MROpened,
			Title:         "MS-Viewport",
			URL:           "http://example.com/diaspora/merge_requests/1",
			SourceProject: awesomeFork,
			TargetProject: gitlabhqTestTarget,
			SourceBranch:  "ms-viewport",
			TargetBranch:  "master",
			HeadSHA:       "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
			Labels:        []string{"API"},
			AuthorID:      51,
		},
	}
	if !reflect.DeepEqual(got.Event, want) {
		t.Errorf("Event =\n%s\nwant\n%s", asJSON(t, got.Event), asJSON(t, want))
	}
	if got.EventKind != "merge_request" || got.Project != gitlabhqTestTarget || got.IgnoredReason != "" {
		t.Errorf("Delivery = %q %+v %q", got.EventKind, got.Project, got.IgnoredReason)
	}
}

func TestNormalizeMergeRequestActions(t *testing.T) {
	const oldrev = "95790bf891e76fee5e1747ab589903a6a1f80f22"
	cases := []struct {
		name       string
		edit       func(attrs map[string]any)
		wantAction forge.MRAction
		wantOldRev string
		wantDraft  bool
		wantReason string
	}{
		{name: "reopen", edit: setAction("reopen"), wantAction: forge.MRReopened},
		{name: "close", edit: setAction("close"), wantAction: forge.MRClosed},
		{name: "merge", edit: setAction("merge"), wantAction: forge.MRMerged},
		{name: "update with oldrev", edit: func(attrs map[string]any) {
			attrs["action"] = "update"
			attrs["oldrev"] = oldrev
		}, wantAction: forge.MRNewCommits, wantOldRev: oldrev},
		{name: "update without oldrev", edit: setAction("update"),
			wantReason: "merge request update without new commits (no oldrev) starts no work"},
		{name: "approved", edit: setAction("approved"), wantReason: `merge request action "approved" starts no work`},
		{name: "unapproved", edit: setAction("unapproved"), wantReason: `merge request action "unapproved" starts no work`},
		{name: "approval", edit: setAction("approval"), wantReason: `merge request action "approval" starts no work`},
		{name: "unapproval", edit: setAction("unapproval"), wantReason: `merge request action "unapproval" starts no work`},
		{name: "older GitLab test delivery without action", edit: func(attrs map[string]any) { delete(attrs, "action") },
			wantReason: "merge request delivery has no action (older GitLab test deliveries send none)"},
		{name: "draft", edit: func(attrs map[string]any) { attrs["draft"] = true }, wantAction: forge.MROpened, wantDraft: true},
		{name: "work in progress", edit: func(attrs map[string]any) { attrs["work_in_progress"] = true }, wantAction: forge.MROpened, wantDraft: true},
		{name: "open without last commit", edit: func(attrs map[string]any) { delete(attrs, "last_commit") },
			wantReason: "merge request payload has no last_commit"},
		{name: "merged without last commit", edit: func(attrs map[string]any) {
			attrs["action"] = "merge"
			delete(attrs, "last_commit")
		}, wantAction: forge.MRMerged},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := forkMergeRequest(t, func(payload map[string]any) { tc.edit(object(t, payload, "object_attributes")) })
			got, err := gitlab.Normalize("Merge Request Hook", body)
			if err != nil {
				t.Fatal(err)
			}
			if got.IgnoredReason != tc.wantReason {
				t.Errorf("IgnoredReason = %q, want %q", got.IgnoredReason, tc.wantReason)
			}
			if got.Project.ID != 1 {
				t.Errorf("Project.ID = %d, want 1", got.Project.ID)
			}
			if tc.wantReason != "" {
				if got.Event != nil {
					t.Errorf("ignored delivery has an event: %s", asJSON(t, got.Event))
				}
				return
			}
			if got.Event == nil || got.Event.MR == nil {
				t.Fatalf("no merge request event")
			}
			mr := got.Event.MR
			if mr.Action != tc.wantAction || mr.OldRev != tc.wantOldRev || mr.Draft != tc.wantDraft {
				t.Errorf("action %q oldrev %q draft %v, want %q %q %v", mr.Action, mr.OldRev, mr.Draft, tc.wantAction, tc.wantOldRev, tc.wantDraft)
			}
			if mr.IID != 1 || got.Event.Ref != "ms-viewport" || got.Event.Actor.Username != "user1" {
				t.Errorf("iid %d ref %q actor %q", mr.IID, got.Event.Ref, got.Event.Actor.Username)
			}
		})
	}
}

func TestNormalizePushVariants(t *testing.T) {
	const zeros = "0000000000000000000000000000000000000000"
	cases := []struct {
		name       string
		file       string
		header     string
		edit       func(payload map[string]any)
		wantSHA    string
		wantRef    string
		wantReason string
	}{
		{name: "branch deletion", file: "push.json", header: "Push Hook", edit: func(p map[string]any) {
			p["after"] = zeros
			p["checkout_sha"] = nil
			p["commits"] = []any{}
		}, wantReason: "branch deletion"},
		{name: "branch creation", file: "push.json", header: "Push Hook", edit: func(p map[string]any) { p["before"] = zeros },
			wantSHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", wantRef: "master"},
		{name: "no checkout_sha falls back to after", file: "push.json", header: "Push Hook", edit: func(p map[string]any) {
			p["checkout_sha"] = nil
		}, wantSHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", wantRef: "master"},
		{name: "branch with slashes", file: "push.json", header: "Push Hook", edit: func(p map[string]any) { p["ref"] = "refs/heads/feature/x" },
			wantSHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", wantRef: "feature/x"},
		{name: "empty repository test delivery", file: "push.json", header: "Push Hook", edit: func(p map[string]any) {
			p["before"], p["after"], p["checkout_sha"] = nil, nil, nil
		}, wantReason: "push names no commit"},
		{name: "tag deletion", file: "tag_push.json", header: "Tag Push Hook", edit: func(p map[string]any) {
			p["before"] = "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"
			p["after"] = zeros
			p["checkout_sha"] = nil
		}, wantReason: "tag deletion"},
		{name: "annotated tag builds the commit", file: "tag_push.json", header: "Tag Push Hook", edit: func(p map[string]any) {
			p["after"] = "1111111111111111111111111111111111111111"
		}, wantSHA: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", wantRef: "v1.0.0"},
		{name: "project_id disagrees with project", file: "push.json", header: "Push Hook", edit: func(p map[string]any) { p["project_id"] = 16 },
			wantReason: "project.id 15 and project_id 16 name different projects"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gitlab.Normalize(tc.header, editFixture(t, tc.file, tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			if got.IgnoredReason != tc.wantReason {
				t.Errorf("IgnoredReason = %q, want %q", got.IgnoredReason, tc.wantReason)
			}
			if tc.wantReason != "" {
				if got.Event != nil {
					t.Errorf("ignored delivery has an event: %s", asJSON(t, got.Event))
				}
				return
			}
			if got.Event == nil {
				t.Fatal("no event")
			}
			if got.Event.SHA != tc.wantSHA || got.Event.Ref != tc.wantRef {
				t.Errorf("sha %q ref %q, want %q %q", got.Event.SHA, got.Event.Ref, tc.wantSHA, tc.wantRef)
			}
		})
	}
}

func TestNormalizeReleaseActions(t *testing.T) {
	for action, wantReason := range map[string]string{
		"update": "release updates start no work; only release creation does",
		"delete": "release deletion starts no work",
	} {
		body := editFixture(t, "release.json", func(p map[string]any) { p["action"] = action })
		got, err := gitlab.Normalize("Release Hook", body)
		if err != nil {
			t.Fatal(err)
		}
		if got.Event != nil || got.IgnoredReason != wantReason || got.Project.ID != 327622 {
			t.Errorf("%s: event %v reason %q project %d", action, got.Event != nil, got.IgnoredReason, got.Project.ID)
		}
	}
}

func TestNormalizeNoteVariants(t *testing.T) {
	cases := []struct {
		name       string
		file       string
		header     string
		edit       func(payload map[string]any)
		wantKind   string
		wantReason string // empty: a comment event is expected
	}{
		{name: "edited comment", file: "note_merge_request.json", header: "Note Hook",
			edit: setAttr(t, "action", "update"), wantKind: "note", wantReason: "comment edits do not trigger"},
		{name: "edited commit comment", file: "note_commit.json", header: "Note Hook",
			edit: setAttr(t, "action", "update"), wantKind: "note", wantReason: "comment edits do not trigger"},
		{name: "older GitLab without action", file: "note_merge_request.json", header: "Note Hook",
			edit: func(p map[string]any) { delete(object(t, p, "object_attributes"), "action") }, wantKind: "note"},
		{name: "system note", file: "note_merge_request.json", header: "Note Hook",
			edit: setAttr(t, "system", true), wantKind: "note", wantReason: "system notes start no work"},
		{name: "internal note on a merge request", file: "note_merge_request.json", header: "Confidential Note Hook",
			wantKind: "confidential_note"},
		{name: "note on a confidential issue", file: "note_issue.json", header: "Confidential Note Hook",
			wantKind: "confidential_note", wantReason: "comments on confidential issues start no work"},
		{name: "note on a design", file: "note_issue.json", header: "Note Hook",
			edit: setAttr(t, "noteable_type", "DesignManagement::Design"), wantKind: "note",
			wantReason: `comments on "DesignManagement::Design" start no work`},
		{name: "merge request of another project", file: "note_merge_request.json", header: "Note Hook",
			edit:     func(p map[string]any) { object(t, p, "merge_request")["target_project_id"] = 6 },
			wantKind: "note", wantReason: "merge request target project 6 is not the hook's project 5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gitlab.Normalize(tc.header, editFixture(t, tc.file, tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			if got.EventKind != tc.wantKind || got.IgnoredReason != tc.wantReason || got.Project.ID != 5 {
				t.Errorf("kind %q reason %q project %d, want %q %q 5", got.EventKind, got.IgnoredReason, got.Project.ID, tc.wantKind, tc.wantReason)
			}
			if tc.wantReason != "" {
				if got.Event != nil {
					t.Errorf("ignored delivery has an event: %s", asJSON(t, got.Event))
				}
				return
			}
			if got.Event == nil || got.Event.Kind != forge.KindComment || got.Event.Comment == nil || got.Event.Comment.ID != 1244 {
				t.Fatalf("want comment 1244, got %s", asJSON(t, got.Event))
			}
		})
	}
}

func TestNormalizeUnknownHeaderIsIgnoredNotAnError(t *testing.T) {
	cases := []struct {
		name        string
		header      string
		body        string
		wantProject forge.Project
		wantReason  string
	}{
		{name: "unknown kind with a project", header: "Foo Hook", body: string(readFixture(t, "push.json")),
			wantProject: diaspora, wantReason: `event kind "Foo Hook" is not known`},
		{name: "unknown kind with project_id only", header: "Foo Hook", body: `{"object_kind":"foo","project_id":42}`,
			wantProject: forge.Project{ID: 42}, wantReason: `event kind "Foo Hook" is not known`},
		{name: "unknown kind with an odd project", header: "Foo Hook", body: `{"project":"not an object"}`,
			wantReason: `event kind "Foo Hook" is not known`},
		{name: "no header", header: "", body: `{"project":{"id":3,"path_with_namespace":"a/b"}}`,
			wantProject: forge.Project{ID: 3, PathWithNamespace: "a/b"}, wantReason: "delivery has no X-Gitlab-Event header"},
		{name: "long header is clipped", header: strings.Repeat("x", 100), body: `{}`,
			wantReason: `event kind "` + strings.Repeat("x", 64) + `…" is not known`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gitlab.Normalize(tc.header, []byte(tc.body))
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			want := gitlab.Delivery{EventKind: gitlab.EventKindUnknown, Project: tc.wantProject, IgnoredReason: tc.wantReason}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestNormalizeMalformed(t *testing.T) {
	const secret = "s3cr3t-value-from-the-body"
	cases := []struct {
		name      string
		header    string
		body      []byte
		wantInErr string
	}{
		{name: "not JSON", header: "Push Hook", body: []byte("token=" + secret), wantInErr: "body is not JSON"},
		{name: "truncated JSON", header: "Push Hook", body: readFixture(t, "push.json")[:200], wantInErr: "not valid JSON"},
		{name: "empty body", header: "Push Hook", body: nil, wantInErr: "body is empty"},
		{name: "array", header: "Push Hook", body: []byte(`[{"object_kind":"push"}]`), wantInErr: "not an object"},
		{name: "null", header: "Merge Request Hook", body: []byte(`null`), wantInErr: "not an object"},
		{name: "array for an unknown kind", header: "Foo Hook", body: []byte(`[]`), wantInErr: "not an object"},
		{name: "trailing garbage", header: "Push Hook", body: append(readFixture(t, "push.json"), []byte("{}"+secret)...), wantInErr: "not valid JSON"},
		{name: "header says merge request, body is a push", header: "Merge Request Hook", body: readFixture(t, "push.json"),
			wantInErr: `object_kind does not match X-Gitlab-Event "Merge Request Hook"`},
		{name: "ignored kind with another object_kind", header: "Pipeline Hook", body: readFixture(t, "push.json"),
			wantInErr: "object_kind does not match"},
		{name: "object_kind missing", header: "Push Hook", body: editFixture(t, "push.json", func(p map[string]any) { delete(p, "object_kind") }),
			wantInErr: "has no object_kind"},
		{name: "object_kind not a string", header: "Push Hook", body: editFixture(t, "push.json", func(p map[string]any) { p["object_kind"] = 7 }),
			wantInErr: "object_kind must be a string"},
		{name: "project id is a string", header: "Push Hook", body: editFixture(t, "push.json", func(p map[string]any) {
			object(t, p, "project")["id"] = secret
		}), wantInErr: `project: field "id" must be an integer`},
		{name: "project of an ignored kind is a string", header: "Pipeline Hook", body: editFixture(t, "pipeline.json", func(p map[string]any) {
			p["project"] = secret
		}), wantInErr: "project must be an object"},
		{name: "merge request iid is a string", header: "Merge Request Hook", body: forkMergeRequest(t, func(p map[string]any) {
			object(t, p, "object_attributes")["iid"] = secret
		}), wantInErr: `field "object_attributes.iid" must be an integer`},
		{name: "merge request last commit is not a sha", header: "Merge Request Hook", body: forkMergeRequest(t, func(p map[string]any) {
			object(t, object(t, p, "object_attributes"), "last_commit")["id"] = "../../" + secret
		}), wantInErr: "last_commit.id is not a commit id"},
		{name: "push ref is a number", header: "Push Hook", body: editFixture(t, "push.json", func(p map[string]any) { p["ref"] = 12 }),
			wantInErr: `field "ref" must be a string`},
		{name: "push checkout_sha is not a sha", header: "Push Hook", body: editFixture(t, "push.json", func(p map[string]any) { p["checkout_sha"] = secret }),
			wantInErr: "checkout_sha is not a commit id"},
		{name: "noteable_type is a number", header: "Note Hook", body: editFixture(t, "note_merge_request.json", setAttr(t, "noteable_type", 3)),
			wantInErr: `field "object_attributes.noteable_type" must be a string`},
		{name: "release commit is a string", header: "Release Hook", body: editFixture(t, "release.json", func(p map[string]any) { p["commit"] = secret }),
			wantInErr: `field "commit" must be an object`},
		{name: "custom decoder error keeps the value out", header: "Merge Request Hook", body: forkMergeRequest(t, func(p map[string]any) {
			object(t, p, "object_attributes")["merge_params"] = map[string]any{"force_remove_source_branch": secret}
		}), wantInErr: "does not match its declared kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gitlab.Normalize(tc.header, tc.body)
			if !errors.Is(err, gitlab.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("err = %q, want it to mention %q", err, tc.wantInErr)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error echoes the body: %q", err)
			}
			if got.Event != nil || got.IgnoredReason != "" {
				t.Errorf("malformed delivery has an outcome: %+v", got)
			}
		})
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// editFixture decodes a fixture, lets edit change it, and encodes it again.
// Numbers stay json.Number so ids survive unchanged.
func editFixture(t testing.TB, name string, edit func(payload map[string]any)) []byte {
	t.Helper()
	decoder := json.NewDecoder(bytes.NewReader(readFixture(t, name)))
	decoder.UseNumber()
	var payload map[string]any
	if err := decoder.Decode(&payload); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(payload)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func object(t testing.TB, payload map[string]any, key string) map[string]any {
	t.Helper()
	child, ok := payload[key].(map[string]any)
	if !ok {
		t.Fatalf("fixture has no object %q", key)
	}
	return child
}

func setAction(action string) func(attrs map[string]any) {
	return func(attrs map[string]any) { attrs["action"] = action }
}

func setAttr(t testing.TB, key string, value any) func(payload map[string]any) {
	return func(payload map[string]any) { object(t, payload, "object_attributes")[key] = value }
}

func asJSON(t testing.TB, v any) string {
	t.Helper()
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func BenchmarkNormalize(b *testing.B) {
	for _, name := range []string{"push.json", "note_merge_request.json", "pipeline.json"} {
		body := readFixture(b, name)
		header := fixtureHeaders[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := gitlab.Normalize(header, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Acted-on payloads are checked only in the fields Normalize reads, like
// every other kind: a field GitLab retypes in a part upbuild never looks at
// must not turn deliveries into 400 answers.
func TestNormalizeIgnoresFieldsItDoesNotRead(t *testing.T) {
	cases := []struct {
		name, file, header string
		edit               func(payload map[string]any)
		wantReason         string // empty: an event is expected
	}{
		{name: "push with odd commits", file: "push.json", header: "Push Hook",
			edit: func(p map[string]any) { p["commits"] = "not a list"; p["repository"] = 7 }},
		{name: "tag push with odd total_commits_count", file: "tag_push.json", header: "Tag Push Hook",
			edit: func(p map[string]any) { p["total_commits_count"] = "many" }},
		{name: "release with odd assets", file: "release.json", header: "Release Hook",
			edit: func(p map[string]any) { p["assets"] = "none" }},
		{name: "commit comment with an odd user name", file: "note_commit.json", header: "Note Hook",
			edit: func(p map[string]any) { object(t, p, "user")["name"] = 5; p["merge_request"] = "x" }},
		{name: "comment on an issue with an odd merge_request", file: "note_issue.json", header: "Note Hook",
			edit:       func(p map[string]any) { p["merge_request"] = map[string]any{"iid": "x"} },
			wantReason: "comments on issues start no work"},
		{name: "merge request comment with odd repository", file: "note_merge_request.json", header: "Note Hook",
			edit: func(p map[string]any) { p["repository"] = []any{}; p["commit"] = "x" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gitlab.Normalize(tc.header, editFixture(t, tc.file, tc.edit))
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if got.IgnoredReason != tc.wantReason {
				t.Errorf("IgnoredReason = %q, want %q", got.IgnoredReason, tc.wantReason)
			}
			if tc.wantReason == "" && got.Event == nil {
				t.Errorf("no event")
			}
		})
	}
	t.Run("opened merge request with odd assignees", func(t *testing.T) {
		got, err := gitlab.Normalize("Merge Request Hook", forkMergeRequest(t, func(p map[string]any) {
			p["assignees"] = 3
			object(t, p, "object_attributes")["created_at"] = 1
		}))
		if err != nil {
			t.Fatal(err)
		}
		if got.Event == nil || got.Event.MR == nil || got.Event.MR.Action != forge.MROpened {
			t.Errorf("want an opened merge request, got %+v", got)
		}
	})
}

// The generic fields are read as encoding/json reads a struct's fields:
// keys match ignoring case and after unescaping, the last of repeated keys
// wins, and nothing inside other values is mistaken for a key.
func TestNormalizeReadsGenericFieldsAsJSONDoes(t *testing.T) {
	cases := []struct {
		name string
		body string
		want forge.Project
	}{
		{name: "keys in another case", body: `{"OBJECT_KIND":"pipeline","Project":{"ID":3,"Path_With_Namespace":"a/b"}}`,
			want: forge.Project{ID: 3, PathWithNamespace: "a/b"}},
		{name: "escaped key", body: `{"object_kind":"pipeline","proj\u0065ct":{"id":4}}`, want: forge.Project{ID: 4}},
		{name: "repeated key, last wins", body: `{"object_kind":"pipeline","project":{"id":1,"path_with_namespace":"a/b"},"project":{"id":2}}`,
			want: forge.Project{ID: 2}},
		{name: "keys and brackets inside strings", body: `{"object_kind":"pipeline","x":"}\\\"project\":{\"id\":7}","y":[{"z":"]"},{"project":{"id":8}}],"project":{"id":5}}`,
			want: forge.Project{ID: 5}},
		{name: "only object_attributes.project_id", body: ` {"object_kind":"pipeline" , "object_attributes" : {"project_id":6} } `,
			want: forge.Project{ID: 6}},
	}
	for _, tc := range cases {
		for _, header := range []string{"Pipeline Hook", "Foo Hook"} {
			t.Run(tc.name+"/"+header, func(t *testing.T) {
				got, err := gitlab.Normalize(header, []byte(tc.body))
				if err != nil {
					t.Fatalf("Normalize: %v", err)
				}
				if got.Project != tc.want {
					t.Errorf("Project = %+v, want %+v", got.Project, tc.want)
				}
			})
		}
	}
}
