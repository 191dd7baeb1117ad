package main

import (
	"encoding/json"
	"maps"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

func openHook(t *testing.T, iid int64, action string) []byte {
	t.Helper()
	body, err := json.Marshal(map[string]any{"object_kind": "merge_request",
		"object_attributes": map[string]any{"iid": iid, "action": action}})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestSummarizeMatchesDeliveriesAndTransitions(t *testing.T) {
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	mrs := []openedMR{
		{ProjectID: 1, IID: 1, HeadSHA: "aaa"}, // pending, then final
		{ProjectID: 2, IID: 1, HeadSHA: "bbb"}, // skipped straight away, never pending
		{ProjectID: 1, IID: 2, HeadSHA: "ccc"}, // answered 500, pending but not final
	}
	deliveries := []gitlabsim.Delivery{
		{ProjectID: 1, Event: "Push Hook", StatusCode: 202, SentAt: at(0)},
		{ProjectID: 1, Event: "Merge Request Hook", Body: openHook(t, 1, "open"), StatusCode: 202, SentAt: at(10), Latency: 5 * time.Millisecond},
		{ProjectID: 2, Event: "Push Hook", StatusCode: 500, SentAt: at(20)},
		{ProjectID: 2, Event: "Merge Request Hook", Body: openHook(t, 1, "open"), StatusCode: 202, SentAt: at(30), Latency: time.Millisecond},
		{ProjectID: 1, Event: "Merge Request Hook", Body: openHook(t, 2, "open"), StatusCode: 500, SentAt: at(40)},
		// Neither an "open" of an opened MR nor a first send: ignored.
		{ProjectID: 1, Event: "Merge Request Hook", Body: openHook(t, 1, "update"), StatusCode: 202, SentAt: at(50)},
		{ProjectID: 2, Event: "Merge Request Hook", Body: openHook(t, 1, "open"), StatusCode: 202, SentAt: at(60), Resend: true},
		{ProjectID: 3, Event: "Merge Request Hook", Body: openHook(t, 9, "open"), StatusCode: 202, SentAt: at(70)},
	}
	transitions := []gitlabsim.StatusTransition{
		{ProjectID: 1, SHA: "aaa", Name: "build", To: "pending", At: at(40)},
		{ProjectID: 1, SHA: "aaa", Name: "tests", To: "pending", At: at(45)},
		{ProjectID: 2, SHA: "bbb", Name: "build", To: "skipped", At: at(50)},
		{ProjectID: 1, SHA: "ccc", Name: "build", To: "pending", At: at(55)},
		{ProjectID: 1, SHA: "aaa", Name: "build", To: "skipped", At: at(100)},
		{ProjectID: 1, SHA: "aaa", Name: "tests", To: "skipped", At: at(115)},
		// The same SHA in another project is another commit.
		{ProjectID: 2, SHA: "aaa", Name: "build", To: "pending", At: at(1)},
	}

	calls := []apiCall{
		{At: at(12), Route: "GET /api/v4/projects/:id/repository/tree", Project: 1, SHA: "aaa"}, // for the push
		{At: at(20), Route: "GET /api/v4/projects/:id/repository/tree", Project: 1, SHA: "aaa"},
		{At: at(22), Route: "GET /api/v4/projects/:id/repository/files/%2Epackit%2Eyaml/raw", Project: 1, SHA: "aaa"},
		{At: at(35), Route: "POST /api/v4/projects/:id/statuses/:id", Project: 1, SHA: "aaa"},
		{At: at(36), Route: "POST /api/v4/projects/:id/statuses/:id", Project: 1, SHA: "aaa"},
		{At: at(37), Route: "POST /api/v4/projects/:id/statuses/:id", Project: 2, SHA: "aaa"},
	}

	s := summarize(mrs, deliveries, transitions, calls)

	want := summary{Opened: 3, OpenDeliveries: 3, Answered202: 2, PushDeliveries: 2, PushAnswered202: 1,
		WithPending: 2, PendingFirst: 2, AllFinal: 2}
	got := s
	got.ToPending, got.ToFinal, got.MissingPending = nil, nil, nil
	if got.Opened != want.Opened || got.OpenDeliveries != want.OpenDeliveries || got.Answered202 != want.Answered202 ||
		got.PushDeliveries != want.PushDeliveries || got.PushAnswered202 != want.PushAnswered202 ||
		got.WithPending != want.WithPending || got.PendingFirst != want.PendingFirst || got.AllFinal != want.AllFinal {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
	// MR 1/1: 202 at 15 ms, pending at 40 ms, last final at 115 ms.
	if len(s.ToPending) != 1 || s.ToPending[0] != 25*time.Millisecond {
		t.Errorf("202 → pending = %v, want [25ms]", s.ToPending)
	}
	// MR 2/1: 202 at 31 ms, skipped at 50 ms.
	wantFirst := []time.Duration{25 * time.Millisecond, 19 * time.Millisecond}
	if len(s.ToFirstStatus) != 2 || s.ToFirstStatus[0] != wantFirst[0] || s.ToFirstStatus[1] != wantFirst[1] {
		t.Errorf("202 → first status = %v, want %v", s.ToFirstStatus, wantFirst)
	}
	wantFinal := []time.Duration{100 * time.Millisecond, 19 * time.Millisecond}
	if len(s.ToFinal) != 2 || s.ToFinal[0] != wantFinal[0] || s.ToFinal[1] != wantFinal[1] {
		t.Errorf("202 → final = %v, want %v", s.ToFinal, wantFinal)
	}
	if len(s.ToConfigRead) != 1 || s.ToConfigRead[0] != 5*time.Millisecond {
		t.Errorf("202 → config read = %v, want [5ms]", s.ToConfigRead)
	}
	if len(s.ToStatusCall) != 1 || s.ToStatusCall[0] != 20*time.Millisecond {
		t.Errorf("202 → status call = %v, want [20ms]", s.ToStatusCall)
	}
	wantRefused := map[string]int{"Push Hook: HTTP 500": 1, "Merge Request Hook: HTTP 500": 1}
	if !maps.Equal(s.Refused, wantRefused) {
		t.Errorf("refused = %v, want %v", s.Refused, wantRefused)
	}
	if len(s.MissingPending) != 1 || s.MissingPending[0].ProjectID != 2 || s.MissingPending[0].IID != 1 {
		t.Errorf("missing pending = %+v, want project 2 !1", s.MissingPending)
	}
}

func TestOutstandingWantsPendingAndFinal(t *testing.T) {
	mrs := []openedMR{{ProjectID: 1, HeadSHA: "aaa"}, {ProjectID: 1, HeadSHA: "bbb"}, {ProjectID: 1, HeadSHA: "ccc"}}
	transitions := []gitlabsim.StatusTransition{
		{ProjectID: 1, SHA: "aaa", Name: "build", To: "pending"},
		{ProjectID: 1, SHA: "aaa", Name: "build", To: "success"},
		{ProjectID: 1, SHA: "bbb", Name: "build", To: "pending"}, // not final yet
		{ProjectID: 1, SHA: "ccc", Name: "build", To: "skipped"}, // never pending
	}
	if got := outstanding(mrs, transitions); got != 2 {
		t.Errorf("outstanding = %d, want 2", got)
	}
	if got := outstanding(mrs[:1], transitions); got != 0 {
		t.Errorf("outstanding of the settled MR = %d, want 0", got)
	}
}
