package web_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/blob"
	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
	"upbuild.dev/upbuild/internal/web"
)

const (
	adminToken = "s3cret-admin-token"
	xss        = `<script>alert(1)</script>`
)

type fixture struct {
	st   *store.Store
	logs *joblog.Logs
	arts *joblog.Artifacts
	url  string
}

func setup(t *testing.T, dbURL string) fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f := fixture{st: st, logs: joblog.NewLogs(st, joblog.Options{}), arts: joblog.NewArtifacts(st, blob.FS{Root: t.TempDir()})}
	mux := http.NewServeMux()
	(&web.Pages{Store: st, Logs: f.logs, Artifacts: f.arts, PublicURL: "https://upbuild.example", AdminToken: adminToken,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// runSpec describes a run to plan.
type runSpec struct {
	project    string
	projectID  int64
	visibility string
	trigger    string
	ref        string
	mr         int64
	title      string
}

// plan creates a run with two queued jobs and returns the run and job IDs.
func (f fixture) plan(t *testing.T, r runSpec) (int64, []int64) {
	t.Helper()
	res, err := f.st.ApplyPlan(context.Background(), store.Plan{
		Run: &store.Run{Instance: "https://gitlab.example", ProjectID: r.projectID, ProjectPath: r.project, Trigger: r.trigger,
			RunKey: fmt.Sprintf("%s-%s-%s-%d-%s", r.project, r.trigger, r.ref, r.mr, r.title), SHA: "0123456789abcdef0123",
			Ref: r.ref, MRIID: r.mr, SourceProjectID: r.projectID, SourceProjectPath: r.project, Title: r.title,
			State: store.RunRunning, Visibility: r.visibility},
		Jobs: []store.Job{
			{JobType: "copr_build", Target: "fedora-rawhide-x86_64", StatusName: "rpm-build:fedora-rawhide-x86_64", State: store.JobQueued},
			{JobType: "tests", Target: "fedora-rawhide-x86_64", StatusName: "testing-farm:fedora-rawhide-x86_64", State: store.JobQueued},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.RunID, res.JobIDs
}

func (f fixture) setState(t *testing.T, jobID int64, states ...string) {
	t.Helper()
	for _, s := range states {
		if _, err := f.st.SetJobState(context.Background(), jobID, s, s); err != nil {
			t.Fatal(err)
		}
	}
}

func get(t *testing.T, url, token string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func mustGet(t *testing.T, url, token string) string {
	t.Helper()
	code, hdr, body := get(t, url, token)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("GET %s: Content-Security-Policy %q", url, csp)
	}
	return body
}

// rows counts the run rows of a page's table.
func rows(body string) int {
	return strings.Count(body, `<tr>
<td><a href="/runs/`)
}

func TestPagesShowPublicRunsAndHidePrivateOnes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		f := setup(t, dbURL)
		pubRun, pubJobs := f.plan(t, runSpec{project: "g/open", projectID: 7, visibility: "public", trigger: "pull_request",
			ref: "feature", mr: 3, title: "Add frobnicator"})
		privRun, privJobs := f.plan(t, runSpec{project: "g/secret", projectID: 8, visibility: "private", trigger: "commit",
			ref: "main", title: "secret-title"})
		f.setState(t, pubJobs[0], store.JobRunning, store.JobSuccess)
		f.setState(t, pubJobs[1], store.JobRunning, store.JobFailed)

		home := mustGet(t, f.url+"/", "")
		for _, want := range []string{"g/open", "Add frobnicator", "!3", "0123456789ab", `class="state failed"`, "1 of 2 passed"} {
			if !strings.Contains(home, want) {
				t.Errorf("home page lacks %q:\n%s", want, home)
			}
		}
		if strings.Contains(home, "g/secret") || strings.Contains(home, "secret-title") {
			t.Error("home page shows a private project")
		}
		if admin := mustGet(t, f.url+"/", adminToken); !strings.Contains(admin, "g/secret") {
			t.Error("home page hides the private project from the admin")
		}

		run := mustGet(t, fmt.Sprintf("%s/runs/%d", f.url, pubRun), "")
		for _, want := range []string{"rpm-build:fedora-rawhide-x86_64", "testing-farm:fedora-rawhide-x86_64",
			"https://gitlab.example/g/open/-/merge_requests/3", fmt.Sprintf(`href="/jobs/%d"`, pubJobs[1])} {
			if !strings.Contains(run, want) {
				t.Errorf("run page lacks %q", want)
			}
		}

		for _, path := range []string{
			fmt.Sprintf("/runs/%d", privRun), fmt.Sprintf("/jobs/%d", privJobs[0]), "/p/gitlab.example/g/secret",
			"/runs/999999", "/jobs/999999", "/p/gitlab.example/g/nothing",
		} {
			code, _, body := get(t, f.url+path, "")
			if code != http.StatusNotFound || strings.Contains(body, "secret-title") {
				t.Errorf("GET %s without the admin token: %d %s", path, code, body)
			}
		}
		for _, path := range []string{fmt.Sprintf("/runs/%d", privRun), fmt.Sprintf("/jobs/%d", privJobs[0]), "/p/gitlab.example/g/secret"} {
			if body := mustGet(t, f.url+path, adminToken); !strings.Contains(body, "g/secret") {
				t.Errorf("GET %s with the admin token does not show the project", path)
			}
		}
	})
}

func TestProjectPageFiltersAndPages(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		f := setup(t, dbURL)
		for i := range 55 {
			f.plan(t, runSpec{project: "g/busy", projectID: 9, visibility: "public", trigger: "commit", ref: "main",
				title: fmt.Sprint("push ", i)})
		}
		f.plan(t, runSpec{project: "g/busy", projectID: 9, visibility: "public", trigger: "pull_request", ref: "topic", mr: 12, title: "MR twelve"})
		f.plan(t, runSpec{project: "g/busy", projectID: 9, visibility: "public", trigger: "release", ref: "v1.0", title: "release one"})

		page := mustGet(t, f.url+"/p/gitlab.example/g/busy", "")
		if n := rows(page); n != 50 {
			t.Fatalf("first page has %d runs, want 50", n)
		}
		next := regexp.MustCompile(`<a href="(\?before=\d+)">Older runs</a>`).FindStringSubmatch(page)
		if next == nil {
			t.Fatal("no link to older runs")
		}
		if older := mustGet(t, f.url+"/p/gitlab.example/g/busy"+next[1], ""); rows(older) != 7 || strings.Contains(older, "Older runs") {
			t.Fatalf("second page has %d runs", rows(older))
		}
		for query, want := range map[string]string{"?mr=12": "MR twelve", "?ref=topic": "MR twelve", "?trigger=release": "v1.0"} {
			body := mustGet(t, f.url+"/p/gitlab.example/g/busy"+query, "")
			if rows(body) != 1 || !strings.Contains(body, want) {
				t.Errorf("%s: %d runs, want 1 with %q", query, rows(body), want)
			}
		}
		for _, want := range []string{"https://upbuild.example/api/webhooks/gitlab", "Merge request events",
			"upbuild token issue https://gitlab.example/g/busy"} {
			if !strings.Contains(page, want) {
				t.Errorf("setup instructions lack %q", want)
			}
		}
	})
}

func TestProjectPageChartsAndWebhookHealth(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		f := setup(t, dbURL)
		ctx := context.Background()
		_, jobs := f.plan(t, runSpec{project: "g/p", projectID: 7, visibility: "public", trigger: "commit", ref: "main"})
		f.setState(t, jobs[0], store.JobRunning, store.JobSuccess)
		f.setState(t, jobs[1], store.JobRunning, store.JobFailed)
		committer := f.st.NewCommitter(8)
		defer committer.Close()
		if _, err := committer.Save(ctx, store.Delivery{Instance: "https://gitlab.example", ProjectID: 7, ProjectPath: "g/p",
			EventHeader: "Push Hook", EventKind: "push", Headers: map[string]string{}, Body: []byte("{}"),
			Outcome: store.OutcomeIgnored, Reason: "branch deleted", ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		seen := time.Date(2026, 3, 4, 10, 42, 0, 0, time.UTC)
		if err := f.st.AddRejections(ctx, []store.Rejection{{Instance: "https://gitlab.example", ScopePath: "g", Count: 4,
			FirstAt: seen, LastAt: seen, LastReason: "wrong token " + xss}}); err != nil {
			t.Fatal(err)
		}
		page := mustGet(t, f.url+"/p/gitlab.example/g/p", "")
		for _, want := range []string{"Push Hook", "branch deleted", "wrong token &lt;script&gt;", "2026-03-04 10:42:00 UTC"} {
			if !strings.Contains(page, want) {
				t.Errorf("webhook health lacks %q", want)
			}
		}
		svgs := regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(page, -1)
		if len(svgs) != 3 { // two jobs and the deliveries
			t.Fatalf("%d charts, want 3", len(svgs))
		}
		for _, svg := range svgs {
			var doc struct {
				XMLName xml.Name
				Title   string `xml:"title"`
				Rects   []struct {
					Class string `xml:"class,attr"`
					Title string `xml:"title"`
				} `xml:"rect"`
			}
			if err := xml.Unmarshal([]byte(svg), &doc); err != nil {
				t.Fatalf("chart is not well-formed XML: %v\n%s", err, svg)
			}
			if doc.XMLName.Local != "svg" || doc.XMLName.Space != "http://www.w3.org/2000/svg" || len(doc.Rects) != 1 {
				t.Fatalf("chart %q: %+v", doc.Title, doc)
			}
			want := map[string]string{
				"rpm-build:fedora-rawhide-x86_64":    "1 of 1 passed",
				"testing-farm:fedora-rawhide-x86_64": "0 of 1 passed",
				"Webhook deliveries per day":         "0 accepted, 1 ignored",
			}[doc.Title]
			if want == "" || !strings.Contains(doc.Rects[0].Title, want) {
				t.Errorf("chart %q says %q, want %q", doc.Title, doc.Rects[0].Title, want)
			}
		}
	})
}

func TestAttackerControlledTextIsEscaped(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		f := setup(t, dbURL)
		ctx := context.Background()
		runID, jobs := f.plan(t, runSpec{project: "g/p", projectID: 7, visibility: "public", trigger: "pull_request",
			ref: "evil" + xss, mr: 5, title: "title" + xss})
		f.setState(t, jobs[0], store.JobRunning)
		w := f.logs.Writer(ctx, jobs[0])
		if _, err := io.WriteString(w, "compiling\nlog"+xss+"\n"); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/", fmt.Sprintf("/runs/%d", runID), fmt.Sprintf("/jobs/%d", jobs[0]), "/p/gitlab.example/g/p"} {
			body := mustGet(t, f.url+path, "")
			if strings.Contains(body, xss) {
				t.Errorf("%s contains the raw payload", path)
			}
			if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
				t.Errorf("%s does not show the escaped payload", path)
			}
		}
	})
}

func TestJobPageShowsLogArtifactsAndFollowsALiveLog(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		f := setup(t, dbURL)
		ctx := context.Background()
		_, jobs := f.plan(t, runSpec{project: "g/p", projectID: 7, visibility: "public", trigger: "commit", ref: "main"})
		f.setState(t, jobs[0], store.JobRunning)
		w := f.logs.Writer(ctx, jobs[0])
		if _, err := io.WriteString(w, "first line\nsecond line\n"); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.arts.Save(ctx, jobs[0], "hello-1.0.src.rpm", strings.NewReader("rpm bytes")); err != nil {
			t.Fatal(err)
		}
		page := mustGet(t, fmt.Sprintf("%s/jobs/%d", f.url, jobs[0]), "")
		for _, want := range []string{"first line\nsecond line\n", `data-after="2"`, `data-final="false"`,
			fmt.Sprintf(`data-stream="/api/v1/jobs/%d/log/stream"`, jobs[0]), `<script src="/static/log.js"></script>`,
			fmt.Sprintf(`href="/api/v1/jobs/%d/artifacts/hello-1.0.src.rpm"`, jobs[0])} {
			if !strings.Contains(page, want) {
				t.Errorf("job page lacks %q", want)
			}
		}
		code, hdr, script := get(t, f.url+"/static/log.js", "")
		if code != http.StatusOK || !strings.Contains(hdr.Get("Content-Type"), "javascript") || !strings.Contains(script, "EventSource") {
			t.Fatalf("log.js: %d %q", code, hdr.Get("Content-Type"))
		}
		f.setState(t, jobs[0], store.JobSuccess)
		if page := mustGet(t, fmt.Sprintf("%s/jobs/%d", f.url, jobs[0]), ""); !strings.Contains(page, `data-final="true"`) {
			t.Error("a finished job's page still asks to follow the log")
		}
	})
}
