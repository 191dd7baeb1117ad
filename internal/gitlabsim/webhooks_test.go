package gitlabsim_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{status: http.StatusOK}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.requests = append(rc.requests, received{header: r.Header.Clone(), body: body})
		w.WriteHeader(rc.status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setStatus(code int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status = code
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.requests...)
}

func wait(t *testing.T, sim *gitlabsim.Simulator) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sim.WaitDeliveries(ctx); err != nil {
		t.Fatal(err)
	}
}

// parse checks the delivery with gitlab.ParseWebhook like a receiver would.
func parse(t *testing.T, r received) any {
	t.Helper()
	ev, err := gitlab.ParseWebhook(gitlab.EventType(r.header.Get("X-Gitlab-Event")), r.body)
	if err != nil {
		t.Fatalf("ParseWebhook(%s): %v\n%s", r.header.Get("X-Gitlab-Event"), err, r.body)
	}
	return ev
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestWebhookFlowForMergeRequestLifecycle(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	rc := newReceiver(t)
	ctx := context.Background()
	hook, _, err := w.client(t, w.maintainer.Token).Projects.AddProjectHook(w.project.ID, &gitlab.AddProjectHookOptions{
		URL: gitlab.Ptr(rc.srv.URL), Token: gitlab.Ptr("s3cret"), PushEvents: gitlab.Ptr(true),
		MergeRequestsEvents: gitlab.Ptr(true), NoteEvents: gitlab.Ptr(true), TagPushEvents: gitlab.Ptr(true), ReleasesEvents: gitlab.Ptr(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !hook.TokenPresent || !hook.MergeRequestsEvents || hook.AlertStatus != "executable" {
		t.Errorf("hook = %+v", hook)
	}

	mr := openMR(t, w) // push (branch creation) + MR open
	newHead := must[string](t)(w.sim.PushCommits(ctx, w.project.ID, "feature", "alice", gitlabsim.CommitSpec{
		Message: "Fix feature", Changes: []gitlabsim.FileChange{{Path: "feature.txt", Content: "fixed\n"}},
	})) // push + MR update with oldrev
	must[gitlabsim.MergeRequest](t)(w.sim.UpdateMergeRequest(ctx, w.project.ID, mr.IID, "alice", gitlabsim.MergeRequestUpdate{Labels: &[]string{"bug"}}))
	note := must[gitlabsim.Note](t)(w.sim.AddNote(ctx, w.project.ID, mr.IID, "alice", "/packit build"))
	must[gitlabsim.MergeRequest](t)(w.sim.CloseMergeRequest(ctx, w.project.ID, mr.IID, "alice"))
	must[gitlabsim.MergeRequest](t)(w.sim.ReopenMergeRequest(ctx, w.project.ID, mr.IID, "alice"))
	merged := must[gitlabsim.MergeRequest](t)(w.sim.MergeMergeRequest(ctx, w.project.ID, mr.IID, "alice"))
	wait(t, w.sim)

	got := rc.got()
	var kinds []string
	for _, r := range got {
		kinds = append(kinds, r.header.Get("X-Gitlab-Event"))
		h := r.header
		if h.Get("Content-Type") != "application/json" || h.Get("X-Gitlab-Token") != "s3cret" ||
			h.Get("X-Gitlab-Instance") != w.url || !regexp.MustCompile(`^GitLab/18\.`).MatchString(h.Get("User-Agent")) ||
			!uuidPattern.MatchString(h.Get("X-Gitlab-Event-UUID")) || !uuidPattern.MatchString(h.Get("X-Gitlab-Webhook-UUID")) ||
			!uuidPattern.MatchString(h.Get("Idempotency-Key")) || h.Get("webhook-signature") != "" {
			t.Errorf("headers of %s: %v", kinds[len(kinds)-1], h)
		}
	}
	want := []string{"Push Hook", "Merge Request Hook", "Push Hook", "Merge Request Hook", "Merge Request Hook",
		"Note Hook", "Merge Request Hook", "Merge Request Hook", "Push Hook", "Merge Request Hook"}
	if len(kinds) != len(want) {
		t.Fatalf("events = %v\nwant     %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events = %v\nwant     %v", kinds, want)
		}
	}

	push := parse(t, got[0]).(*gitlab.PushEvent)
	if push.Before != "0000000000000000000000000000000000000000" || push.After != mr.HeadSHA || push.Ref != "refs/heads/feature" ||
		push.UserUsername != "alice" || push.Project.PathWithNamespace != "GNOME/gtk" || push.Project.GitHTTPURL != w.url+"/GNOME/gtk.git" ||
		push.TotalCommitsCount != 1 || len(push.Commits) != 1 || push.Commits[0].Added[0] != "feature.txt" || push.Commits[0].Timestamp == nil {
		t.Errorf("push = %+v", push)
	}
	open := parse(t, got[1]).(*gitlab.MergeEvent)
	oa := open.ObjectAttributes
	if oa.Action != "open" || oa.IID != mr.IID || oa.State != "opened" || oa.SourceBranch != "feature" || oa.TargetBranch != "main" ||
		oa.LastCommit.ID != mr.HeadSHA || oa.OldRev != "" || oa.SourceProjectID != w.project.ID || oa.TargetProjectID != w.project.ID ||
		open.User.Username != "alice" || open.Project.ID != w.project.ID || oa.Source.PathWithNamespace != "GNOME/gtk" ||
		oa.URL != w.url+"/GNOME/gtk/-/merge_requests/1" {
		t.Errorf("open = %+v", oa)
	}
	update := parse(t, got[3]).(*gitlab.MergeEvent).ObjectAttributes
	if update.Action != "update" || update.OldRev != mr.HeadSHA || update.LastCommit.ID != newHead {
		t.Errorf("update with code = action %s oldrev %s last %s", update.Action, update.OldRev, update.LastCommit.ID)
	}
	labels := parse(t, got[4]).(*gitlab.MergeEvent)
	if labels.ObjectAttributes.Action != "update" || labels.ObjectAttributes.OldRev != "" || len(labels.Labels) != 1 ||
		labels.Labels[0].Title != "bug" || len(labels.Changes.Labels.Current) != 1 {
		t.Errorf("label update = %+v, changes %+v", labels.ObjectAttributes, labels.Changes.Labels)
	}
	comment := parse(t, got[5]).(*gitlab.MergeCommentEvent)
	if comment.ObjectAttributes.Note != "/packit build" || comment.ObjectAttributes.ID != note.ID ||
		comment.ObjectAttributes.NoteableType != "MergeRequest" || comment.ObjectAttributes.Action != "create" ||
		comment.MergeRequest.IID != mr.IID || comment.MergeRequest.LastCommit.ID != newHead || comment.User.Username != "alice" ||
		comment.ObjectAttributes.URL != w.url+"/GNOME/gtk/-/merge_requests/1#note_"+strconv.FormatInt(note.ID, 10) {
		t.Errorf("note = %+v / %+v", comment.ObjectAttributes, comment.MergeRequest)
	}
	for i, action := range map[int]string{6: "close", 7: "reopen", 9: "merge"} {
		if got := parse(t, got[i]).(*gitlab.MergeEvent).ObjectAttributes.Action; got != action {
			t.Errorf("event %d action %q, want %q", i, got, action)
		}
	}
	mergePush := parse(t, got[8]).(*gitlab.PushEvent)
	if mergePush.Ref != "refs/heads/main" || mergePush.After != merged.MergeCommitSHA || mergePush.TotalCommitsCount != 3 {
		t.Errorf("merge push = ref %s after %s total %d", mergePush.Ref, mergePush.After, mergePush.TotalCommitsCount)
	}

	deliveries := w.sim.Deliveries()
	if len(deliveries) != len(want) || !deliveries[0].Succeeded() || deliveries[0].StatusCode != 200 {
		t.Errorf("deliveries = %+v", deliveries)
	}
}

func TestTagReleaseAndCommitNoteHooks(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	rc := newReceiver(t)
	ctx := context.Background()
	if _, err := w.sim.AddHook(w.project.ID, gitlabsim.HookSpec{URL: rc.srv.URL, NoPushEvents: true, TagPushEvents: true, ReleasesEvents: true, NoteEvents: true}); err != nil {
		t.Fatal(err)
	}
	head := w.head(t, w.project.ID, "main")
	rel := must[gitlabsim.Release](t)(w.sim.CreateRelease(ctx, w.project.ID, "alice", gitlabsim.ReleaseSpec{Tag: "1.0.0", Ref: "main", Description: "First"}))
	must[gitlabsim.Note](t)(w.sim.AddCommitNote(ctx, w.project.ID, head, "alice", "/packit propose-downstream"))
	wait(t, w.sim)

	got := rc.got()
	if len(got) != 3 {
		t.Fatalf("got %d deliveries, want tag push, release, note", len(got))
	}
	tag := parse(t, got[0]).(*gitlab.TagEvent)
	if tag.Ref != "refs/tags/1.0.0" || tag.Before != "0000000000000000000000000000000000000000" || tag.CheckoutSHA != head || tag.UserUsername != "alice" {
		t.Errorf("tag push = %+v", tag)
	}
	release := parse(t, got[1]).(*gitlab.ReleaseEvent)
	if release.Action != "create" || release.Tag != "1.0.0" || release.Commit.ID != head || release.ID != rel.ID ||
		release.Project.PathWithNamespace != "GNOME/gtk" || release.URL != w.url+"/GNOME/gtk/-/releases/1.0.0" {
		t.Errorf("release = %+v", release)
	}
	note := parse(t, got[2]).(*gitlab.CommitCommentEvent)
	if note.ObjectAttributes.NoteableType != "Commit" || note.Commit.ID != head || note.ObjectAttributes.CommitID != head ||
		note.ObjectAttributes.Note != "/packit propose-downstream" {
		t.Errorf("commit note = %+v", note.ObjectAttributes)
	}
}

func TestSignedDeliveryAndResend(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	rc := newReceiver(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	signing := "whsec_" + base64.StdEncoding.EncodeToString(key)
	if _, err := w.sim.AddHook(w.project.ID, gitlabsim.HookSpec{URL: rc.srv.URL, Token: "t", SigningToken: signing}); err != nil {
		t.Fatal(err)
	}
	must[string](t)(w.sim.PushCommits(context.Background(), w.project.ID, "main", "alice", gitlabsim.CommitSpec{
		Message: "Bump", Changes: []gitlabsim.FileChange{{Path: "gtk.spec", Content: "Name: gtk\nVersion: 2\n"}},
	}))
	wait(t, w.sim)
	first := w.sim.Deliveries()[0]
	if err := w.sim.ResendDelivery(first.ID); err != nil {
		t.Fatal(err)
	}
	wait(t, w.sim)

	got := rc.got()
	if len(got) != 2 {
		t.Fatalf("got %d requests", len(got))
	}
	for _, r := range got {
		id, ts := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp")
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "."))
		mac.Write(r.body)
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if r.header.Get("webhook-signature") != want || id != r.header.Get("Idempotency-Key") || ts != strconv.FormatInt(w.clock.Now().Unix(), 10) {
			t.Errorf("signature headers %v, want signature %s", r.header, want)
		}
	}
	if got[0].header.Get("Idempotency-Key") != got[1].header.Get("Idempotency-Key") ||
		got[0].header.Get("X-Gitlab-Event-UUID") != got[1].header.Get("X-Gitlab-Event-UUID") ||
		got[0].header.Get("X-Gitlab-Webhook-UUID") == got[1].header.Get("X-Gitlab-Webhook-UUID") ||
		string(got[0].body) != string(got[1].body) {
		t.Error("a resend must keep Idempotency-Key, event UUID and body, with a new webhook UUID")
	}
}

func TestHookIsDisabledAfterFourFailuresAndRecovers(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	rc := newReceiver(t)
	rc.setStatus(http.StatusInternalServerError)
	ctx := context.Background()
	hook := must[gitlabsim.Hook](t)(w.sim.AddHook(w.project.ID, gitlabsim.HookSpec{URL: rc.srv.URL}))
	push := func(i int) {
		t.Helper()
		must[string](t)(w.sim.PushCommits(ctx, w.project.ID, "main", "alice", gitlabsim.CommitSpec{
			Message: "c" + strconv.Itoa(i), Changes: []gitlabsim.FileChange{{Path: "n", Content: strconv.Itoa(i)}},
		}))
		wait(t, w.sim)
	}
	status := func() string {
		t.Helper()
		hooks, _, err := w.client(t, w.maintainer.Token).Projects.ListProjectHooks(w.project.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		return hooks[0].AlertStatus
	}
	for i := range 4 {
		push(i)
	}
	if s := status(); s != "temporarily_disabled" {
		t.Fatalf("after 4 failures alert_status = %s", s)
	}
	push(4) // not sent while disabled
	if n := len(rc.got()); n != 4 {
		t.Errorf("receiver got %d requests, want 4", n)
	}
	if d := w.sim.Deliveries(); !d[4].Skipped {
		t.Errorf("5th delivery = %+v, want skipped", d[4])
	}

	w.clock.Advance(time.Minute)
	push(5) // sent, fails again: back-off doubles to 2 minutes
	w.clock.Advance(time.Minute)
	if s := status(); s != "temporarily_disabled" {
		t.Errorf("1 minute into a 2 minute back-off: %s", s)
	}
	w.clock.Advance(time.Minute)
	rc.setStatus(http.StatusAccepted)
	push(6)
	if s := status(); s != "executable" {
		t.Errorf("after a success: %s", s)
	}
	if h := w.sim.Hooks(w.project.ID)[0]; h.ID != hook.ID || h.RecentFailures != 0 {
		t.Errorf("hook after recovery = %+v", h)
	}
	if n := len(rc.got()); n != 6 {
		t.Errorf("receiver got %d requests, want 6", n)
	}
}

func TestHookIsDisabledForGoodAfterFortyFailures(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	rc := newReceiver(t)
	rc.setStatus(http.StatusBadRequest)
	ctx := context.Background()
	hook := must[gitlabsim.Hook](t)(w.sim.AddHook(w.project.ID, gitlabsim.HookSpec{URL: rc.srv.URL, NoteEvents: true, NoPushEvents: true}))
	mr := openMR(t, w)
	for i := range 40 {
		must[gitlabsim.Note](t)(w.sim.AddNote(ctx, w.project.ID, mr.IID, "alice", "n"+strconv.Itoa(i)))
		wait(t, w.sim)
		w.clock.Advance(25 * time.Hour)
	}
	h := w.sim.Hooks(w.project.ID)[0]
	if !h.PermanentlyDisabled || h.AlertStatus(w.clock.Now()) != "disabled" {
		t.Fatalf("hook after 40 failures = %+v", h)
	}
	if err := w.sim.EnableHook(hook.ID); err != nil {
		t.Fatal(err)
	}
	if s := w.sim.Hooks(w.project.ID)[0].AlertStatus(w.clock.Now()); s != "executable" {
		t.Errorf("re-enabled hook: %s", s)
	}
}
