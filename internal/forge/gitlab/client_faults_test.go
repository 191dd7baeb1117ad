package gitlab_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/forge/gitlab"
	"upbuild.dev/upbuild/internal/gitlabsim"
)

func projectPath(id int64) string { return fmt.Sprintf("/api/v4/projects/%d", id) }

func TestThrottledReadWaitsForRetryAfter(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	filesPath := projectPath(w.hello.ID) + "/repository/files/"
	w.sim.InjectFault(gitlabsim.Fault{Method: "GET", PathPrefix: filesPath, Kind: gitlabsim.FaultRateLimit, RetryAfter: time.Second, Times: 1})

	got, err := c.FileAt(context.Background(), w.hello.ID, "hello.spec", "main")
	if err != nil || string(got) != "Name: hello\n" {
		t.Fatalf("FileAt after a 429 = %q, %v", got, err)
	}
	seen := w.rec.requests("GET", strings.TrimPrefix(filesPath, "/api/v4/"))
	if len(seen) != 2 {
		t.Fatalf("GitLab saw %d requests, want the throttled one and one retry", len(seen))
	}
	if gap := seen[1].at.Sub(seen[0].at); gap < time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 1", gap)
	}
}

func TestThrottledNoteIsNotRetried(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{NotesPerMinute: 1})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	mr := w.openMR(t)
	notesPath := fmt.Sprintf("projects/%d/merge_requests/%d/notes", w.hello.ID, mr.IID)
	w.sim.InjectFault(gitlabsim.Fault{Method: "POST", PathPrefix: "/api/v4/" + notesPath, Kind: gitlabsim.FaultRateLimit, RetryAfter: 2 * time.Second, Times: 1})

	_, err := c.CreateMRNote(ctx, w.hello.ID, mr.IID, "Builds queued")
	var limited *forge.RateLimitedError
	if !errors.As(err, &limited) || limited.RetryAfter != 2*time.Second || !errors.Is(err, forge.ErrTransient) {
		t.Fatalf("throttled note: %v, want a RateLimitedError with RetryAfter 2s", err)
	}
	if n := len(w.rec.requests("POST", notesPath)); n != 1 {
		t.Errorf("note creation sent %d times, want once", n)
	}
	if notes := w.sim.Notes(w.hello.ID, mr.IID); len(notes) != 0 {
		t.Errorf("notes = %+v, want none", notes)
	}

	// GitLab's own note limit (here 1 a minute) answers the same way.
	if _, err := c.CreateMRNote(ctx, w.hello.ID, mr.IID, "first"); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateMRNote(ctx, w.hello.ID, mr.IID, "second")
	if !errors.As(err, &limited) || limited.RetryAfter <= 0 || limited.RetryAfter > time.Minute {
		t.Errorf("note over GitLab's limit: %v, want a RateLimitedError within a minute", err)
	}
	if n := len(w.rec.requests("POST", notesPath)); n != 3 {
		t.Errorf("note creation sent %d times in all, want 3 (no retries)", n)
	}
}

func TestLongRetryAfterIsHandedToTheCaller(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	path := projectPath(w.hello.ID)
	tests := []struct {
		name       string
		retryAfter time.Duration
		deadline   time.Duration // 0: none
		tweak      func(*gitlab.Options)
	}{
		{"beyond the caller's deadline", 5 * time.Second, 2 * time.Second, func(*gitlab.Options) {}},
		{"beyond MaxRetryWait", 3 * time.Second, 0, func(o *gitlab.Options) { o.MaxRetryWait = time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := w.client(t, w.bot.Token, tt.tweak)
			before := len(w.rec.requests("GET", strings.TrimPrefix(path, "/api/v4/")))
			w.sim.InjectFault(gitlabsim.Fault{Method: "GET", PathPrefix: path, Kind: gitlabsim.FaultRateLimit, RetryAfter: tt.retryAfter, Times: 1})
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			_, err := c.Project(ctx, strconv.FormatInt(w.hello.ID, 10))
			var limited *forge.RateLimitedError
			if !errors.As(err, &limited) || limited.RetryAfter != tt.retryAfter {
				t.Fatalf("err = %v, want RateLimitedError{%v}", err, tt.retryAfter)
			}
			if n := len(w.rec.requests("GET", strings.TrimPrefix(path, "/api/v4/"))) - before; n != 1 {
				t.Errorf("%d requests, want 1: the wait belongs to the caller", n)
			}
		})
	}
}

func TestTransientFailuresAreRetriedOnlyWhenSafe(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx := context.Background()
	mr := w.openMR(t)
	sha := w.head(t, w.hello.ID, "main")
	hello := projectPath(w.hello.ID)
	notesPath := fmt.Sprintf("%s/merge_requests/%d/notes", hello, mr.IID)
	count := func(method, path string) int {
		return len(w.rec.requests(method, strings.TrimPrefix(path, "/api/v4/")))
	}

	type attempt struct {
		name   string
		fault  gitlabsim.Fault
		call   func() error
		wantOK bool
		sent   int
	}
	noteID := must(w.sim.AddNote(ctx, w.hello.ID, mr.IID, "upbuild-bot", "Builds queued"))(t).ID
	attempts := []attempt{
		{
			name:  "read after a 502",
			fault: gitlabsim.Fault{Method: "GET", PathPrefix: hello, Kind: gitlabsim.FaultError, Status: 502, Times: 1},
			call: func() error {
				_, err := c.Project(ctx, strconv.FormatInt(w.hello.ID, 10))
				return err
			},
			wantOK: true, sent: 2,
		},
		{
			name:  "commit status after a 503",
			fault: gitlabsim.Fault{Method: "POST", PathPrefix: hello + "/statuses/", Kind: gitlabsim.FaultError, Status: 503, Times: 1},
			call: func() error {
				_, err := c.SetCommitStatus(ctx, w.hello.ID, sha, forge.StatusUpdate{State: forge.StatusPending, Name: "upbuild", Ref: "main"})
				return err
			},
			wantOK: true, sent: 2,
		},
		{
			name:  "note edit after a 500",
			fault: gitlabsim.Fault{Method: "PUT", PathPrefix: notesPath, Kind: gitlabsim.FaultError, Status: 500, Times: 1},
			call: func() error {
				return c.UpdateMRNote(ctx, w.hello.ID, mr.IID, noteID, "Builds running")
			},
			wantOK: true, sent: 2,
		},
		{
			name:  "emoji after a dropped connection",
			fault: gitlabsim.Fault{Method: "POST", PathPrefix: notesPath + "/", Kind: gitlabsim.FaultDown, Times: 1},
			call: func() error {
				return c.AwardEmojiOnMRNote(ctx, w.hello.ID, mr.IID, noteID, "eyes")
			},
			wantOK: true, sent: 2,
		},
		{
			name:  "note creation after a 500",
			fault: gitlabsim.Fault{Method: "POST", PathPrefix: notesPath, Kind: gitlabsim.FaultError, Status: 500, Times: 1},
			call: func() error {
				_, err := c.CreateMRNote(ctx, w.hello.ID, mr.IID, "must not be doubled")
				return err
			},
			sent: 1,
		},
		{
			name:  "issue creation after a dropped connection",
			fault: gitlabsim.Fault{Method: "POST", PathPrefix: hello + "/issues", Kind: gitlabsim.FaultDown, Times: 1},
			call: func() error {
				_, err := c.CreateIssue(ctx, w.hello.ID, "must not be doubled", "", true)
				return err
			},
			sent: 1,
		},
		{
			name:  "read that keeps failing",
			fault: gitlabsim.Fault{Method: "GET", PathPrefix: hello, Kind: gitlabsim.FaultError, Status: 500, Times: 10},
			call: func() error {
				_, err := c.FileAt(ctx, w.hello.ID, "hello.spec", "main")
				return err
			},
			sent: gitlab.DefaultMaxAttempts,
		},
	}
	for _, a := range attempts {
		w.sim.ClearFaults()
		before := count(a.fault.Method, a.fault.PathPrefix)
		w.sim.InjectFault(a.fault)
		err := a.call()
		if a.wantOK && err != nil {
			t.Errorf("%s: %v, want success after a retry", a.name, err)
		}
		if !a.wantOK && (!errors.Is(err, forge.ErrTransient) || errors.Is(err, forge.ErrPermanent)) {
			t.Errorf("%s: %v, want ErrTransient", a.name, err)
		}
		if sent := count(a.fault.Method, a.fault.PathPrefix) - before; sent != a.sent {
			t.Errorf("%s: sent %d times, want %d", a.name, sent, a.sent)
		}
	}
	w.sim.ClearFaults()

	if notes := w.sim.Notes(w.hello.ID, mr.IID); len(notes) != 1 || notes[0].Body != "Builds running" {
		t.Errorf("notes = %+v, want only the edited bot note", notes)
	}
	if issues := w.sim.Issues(w.hello.ID); len(issues) != 0 {
		t.Errorf("issues = %+v, want none", issues)
	}
	if awards := w.sim.AwardEmoji(noteID); len(awards) != 1 {
		t.Errorf("awards = %+v, want one", awards)
	}
	if statuses := w.sim.Statuses(w.hello.ID, sha); len(statuses) != 1 || statuses[0].Status != "pending" {
		t.Errorf("statuses = %+v, want one pending", statuses)
	}
}

func TestRequestTimeoutIsTransient(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token, func(o *gitlab.Options) {
		o.RequestTimeout = 200 * time.Millisecond
		o.MaxAttempts = 1
	})
	w.sim.InjectFault(gitlabsim.Fault{Method: "GET", Kind: gitlabsim.FaultDelay, Delay: 5 * time.Second, Times: 1})
	_, err := c.Project(context.Background(), "pkgs/hello")
	if !errors.Is(err, forge.ErrTransient) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow answer: %v, want ErrTransient (the caller's context is still alive)", err)
	}
}

func TestCallerContextEndsTheCall(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Project(ctx, "pkgs/hello"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v, want context.Canceled", err)
	}
	if n := len(w.rec.requests("GET", "")); n != 0 {
		t.Errorf("%d requests sent with a canceled context", n)
	}
}

func TestRequestBudgetPacesCalls(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	const (
		perMinute = 600 // one token every 100ms
		burst     = 2
		calls     = 10
		window    = 300 * time.Millisecond
		refill    = time.Minute / perMinute
	)
	c := w.client(t, w.bot.Token, func(o *gitlab.Options) {
		o.RequestsPerMinute = perMinute
		o.Burst = burst
	})
	for range calls {
		if _, err := c.Project(context.Background(), "pkgs/hello"); err != nil {
			t.Fatal(err)
		}
	}
	seen := w.rec.requests("GET", "projects/")
	if len(seen) != calls {
		t.Fatalf("GitLab saw %d requests, want %d", len(seen), calls)
	}
	// In any window GitLab sees at most the burst plus the window's refills;
	// one more is tolerated for a request that was slow to arrive.
	limit := burst + int(window/refill) + 1
	for i := range seen {
		inWindow := 0
		for _, r := range seen[i:] {
			if r.at.Sub(seen[i].at) < window {
				inWindow++
			}
		}
		if inWindow > limit {
			t.Errorf("%d requests within %v of request %d, budget allows %d", inWindow, window, i, limit)
		}
	}
	// The calls beyond the burst each needed a refill.
	if span, least := seen[calls-1].at.Sub(seen[0].at), time.Duration(calls-burst-1)*refill; span < least {
		t.Errorf("%d calls spread over %v, want at least %v", calls, span, least)
	}
}

func TestRequestBudgetHonoursTheDeadline(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	c := w.client(t, w.bot.Token, func(o *gitlab.Options) { o.RequestsPerMinute = 1 })
	if _, err := c.Project(context.Background(), "pkgs/hello"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := c.Project(ctx, "pkgs/hello"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("no budget before the deadline: %v, want context.DeadlineExceeded", err)
	}
	if n := len(w.rec.requests("GET", "projects/")); n != 1 {
		t.Errorf("GitLab saw %d requests, want 1", n)
	}
}

func TestSecretsStayOutOfErrorsAndLogs(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	ctx := context.Background()
	mr := w.openMR(t)
	hookToken := "whtok-" + strings.Repeat("s3cr3t", 4)
	wrongToken := "glpat-" + strings.Repeat("wr0ng", 4)
	closed := httptest.NewServer(w.rec)
	closed.Close()

	bot := w.client(t, w.bot.Token, func(o *gitlab.Options) { o.RequestTimeout = 300 * time.Millisecond })
	hello := projectPath(w.hello.ID)
	failures := []struct {
		name  string
		fault *gitlabsim.Fault
		call  func() error
	}{
		{"wrong token", nil, func() error {
			_, err := w.client(t, wrongToken).Project(ctx, "pkgs/hello")
			return err
		}},
		{"not found", nil, func() error {
			_, err := bot.Project(ctx, "pkgs/missing")
			return err
		}},
		{"forbidden", nil, func() error {
			_, err := bot.SetCommitStatus(ctx, w.side.ID, w.head(t, w.side.ID, "main"), forge.StatusUpdate{State: forge.StatusRunning, Name: "x"})
			return err
		}},
		{"server error, retried", &gitlabsim.Fault{Method: "GET", PathPrefix: hello, Kind: gitlabsim.FaultError, Status: 500}, func() error {
			_, err := bot.FileAt(ctx, w.hello.ID, "hello.spec", "main")
			return err
		}},
		{"dropped connection", &gitlabsim.Fault{Method: "POST", PathPrefix: hello, Kind: gitlabsim.FaultDown}, func() error {
			_, err := bot.CreateMRNote(ctx, w.hello.ID, mr.IID, "hi")
			return err
		}},
		{"throttled", &gitlabsim.Fault{Method: "POST", PathPrefix: hello, Kind: gitlabsim.FaultRateLimit, RetryAfter: time.Minute}, func() error {
			_, err := bot.CreateIssue(ctx, w.hello.ID, "t", "b", true)
			return err
		}},
		{"timeout", &gitlabsim.Fault{Method: "GET", PathPrefix: hello, Kind: gitlabsim.FaultDelay, Delay: 3 * time.Second}, func() error {
			_, err := bot.TopLevelFiles(ctx, w.hello.ID, "main")
			return err
		}},
		{"connection refused", nil, func() error {
			c := w.client(t, w.bot.Token, func(o *gitlab.Options) { o.BaseURL = closed.URL })
			_, err := c.CurrentUser(ctx)
			return err
		}},
		{"hook refused", nil, func() error {
			_, err := bot.CreateProjectHook(ctx, w.hello.ID, forge.HookOptions{URL: "https://ci.example/hook", Token: hookToken, SigningToken: hookToken})
			return err
		}},
		{"credentials in the base URL", nil, func() error {
			_, err := gitlab.New(gitlab.Options{BaseURL: "https://bot:" + w.bot.Token + "@gitlab.example", Token: w.bot.Token})
			return err
		}},
	}
	secrets := []string{w.bot.Token, wrongToken, hookToken}
	for _, f := range failures {
		w.sim.ClearFaults()
		if f.fault != nil {
			w.sim.InjectFault(*f.fault)
		}
		err := f.call()
		if err == nil {
			t.Errorf("%s: no error", f.name)
			continue
		}
		for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err)} {
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("%s: error %q holds a secret", f.name, text)
				}
			}
		}
	}
	w.sim.ClearFaults()

	logs := w.logs.String()
	if !strings.Contains(logs, "retrying") {
		t.Errorf("expected retry log lines, got %q", logs)
	}
	for _, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("logs hold a secret: %s", logs)
		}
	}
}
