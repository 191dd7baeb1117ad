package gitlab_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/forge/gitlab"
)

// FuzzNormalize checks that Normalize never panics and that every result is
// one the intake can act on without second-guessing it.
func FuzzNormalize(f *testing.F) {
	for name, header := range fixtureHeaders {
		body, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(header, body)
		f.Add("Foo Hook", body)
	}
	f.Add("Confidential Note Hook", readFixture(f, "note_merge_request.json"))
	f.Add("Push Hook", []byte(`{"object_kind":"push","after":"0000000000000000000000000000000000000000","ref":"refs/heads/x","project":{"id":1}}`))
	f.Add("Merge Request Hook", []byte(`[]`))
	f.Add("", []byte(`{}`))
	f.Add("Pipeline Hook", []byte(`{"object_kind":"pipeline","x":"}\\\"{[","PROJECT":{"id":9},"proj\u0065ct_id":9}`))
	f.Add("Push Hook", []byte(`{"object_kind":"push","project":{"id":1},"project":{"id":2},"commits":"x","ref":"refs/heads/a","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}`))

	f.Fuzz(func(t *testing.T, header string, body []byte) {
		got, err := gitlab.Normalize(header, body)
		if got.EventKind == "" {
			t.Errorf("EventKind is empty")
		}
		if err != nil {
			if !errors.Is(err, gitlab.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if got.Event != nil || got.IgnoredReason != "" {
				t.Errorf("error %v comes with an outcome: %+v", err, got)
			}
			var object map[string]json.RawMessage
			if got.EventKind == gitlab.EventKindUnknown && json.Unmarshal(body, &object) == nil && object != nil {
				t.Errorf("unknown kind with a JSON object body is an error: %v", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("a body that is not JSON is accepted: %+v", got)
		}
		if (got.Event != nil) == (got.IgnoredReason != "") {
			t.Fatalf("want exactly one of Event and IgnoredReason, got %+v", got)
		}
		if got.Event == nil {
			return
		}
		checkEvent(t, got)
	})
}

func checkEvent(t *testing.T, got gitlab.Delivery) {
	t.Helper()
	event := got.Event
	if event.Project != got.Project {
		t.Errorf("Event.Project %+v differs from Delivery.Project %+v", event.Project, got.Project)
	}
	if event.Project.ID == 0 {
		t.Errorf("event without a project id")
	}
	if event.SHA != "" && !isCommitID(event.SHA) {
		t.Errorf("SHA %q is not a commit id", event.SHA)
	}
	switch event.Kind {
	case forge.KindPush, forge.KindTagPush:
		if event.SHA == "" || event.Ref == "" {
			t.Errorf("%s without sha or ref: %+v", event.Kind, event)
		}
	case forge.KindMergeRequest:
		if event.MR == nil || event.MR.IID <= 0 || event.MR.Action == "" || event.MR.TargetProject.ID != event.Project.ID {
			t.Errorf("merge request event is incomplete: %+v", event.MR)
		}
	case forge.KindComment:
		if event.Comment == nil || event.SHA == "" {
			t.Errorf("comment event is incomplete: %+v", event)
		}
		if event.MR != nil && (event.MR.IID <= 0 || event.MR.TargetProject.ID != event.Project.ID) {
			t.Errorf("comment's merge request is inconsistent: %+v", event.MR)
		}
	case forge.KindRelease:
		if event.Release == nil || event.Release.Tag == "" || event.Release.Tag != event.Ref || event.SHA == "" {
			t.Errorf("release event is incomplete: %+v", event)
		}
	default:
		t.Errorf("unexpected event kind %q", event.Kind)
	}
}

func isCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
