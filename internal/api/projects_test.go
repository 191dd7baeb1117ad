package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"upbuild.dev/upbuild/internal/api"
	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/settings"
	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// projectWorld is upbuild with GitLab sign-in against a simulator whose
// group "demo" has a public and a private project, a Reporter (rita) and a
// Guest (gina). Both projects have a run; the public one also has a passed
// job, a delivery and a refused-delivery counter for the group.
type projectWorld struct {
	url, gitlab string
	st          *store.Store
	open, priv  gitlabsim.Project
	// reporter and guest are signed-in browsers; anonymous has no session.
	reporter, guest, anonymous *http.Client
}

func newProjectWorld(t *testing.T, dbURL string) projectWorld {
	t.Helper()
	// No workers: the planted jobs keep the states the test gives them.
	stack := stacktest.Start(t, dbURL, stacktest.Options{Simulator: gitlabsim.Options{DisableRateLimits: true}, AdminToken: adminToken,
		Configure: func(cfg *config.Config) { cfg.Workers = 0 }})
	ctx := stack.Context()
	st := stack.Server.Store()
	w := projectWorld{url: stack.URL, gitlab: stack.Instance, st: st}
	for _, p := range []struct {
		dst  *gitlabsim.Project
		path string
		vis  gitlabsim.Visibility
	}{{&w.open, "open", gitlabsim.Public}, {&w.priv, "secret", gitlabsim.Private}} {
		var err error
		if *p.dst, err = stack.Sim.AddProject(ctx, gitlabsim.ProjectSpec{Namespace: "demo", Path: p.path, Visibility: p.vis}); err != nil {
			t.Fatal(err)
		}
	}
	stack.User("rita", gitlabsim.Reporter)
	stack.User("gina", gitlabsim.Guest)

	for _, p := range []gitlabsim.Project{w.open, w.priv} {
		res, err := st.ApplyPlan(ctx, store.Plan{
			Run: &store.Run{Instance: w.gitlab, ProjectID: p.ID, ProjectPath: p.PathWithNamespace, Trigger: "commit",
				RunKey: "push-" + p.Path, SHA: "0123456789abcdef0123", Ref: "main", SourceProjectID: p.ID,
				SourceProjectPath: p.PathWithNamespace, Title: "title of " + p.Path, State: store.RunRunning, Visibility: string(p.Visibility)},
			Jobs: []store.Job{{JobType: "copr_build", Target: "fedora-rawhide-x86_64", StatusName: "rpm-build:" + p.Path, State: store.JobQueued}},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, state := range []string{store.JobRunning, store.JobSuccess} {
			if _, err := st.SetJobState(ctx, res.JobIDs[0], state, state); err != nil {
				t.Fatal(err)
			}
		}
		committer := st.NewCommitter(4)
		_, err = committer.Save(ctx, store.Delivery{Instance: w.gitlab, ProjectID: p.ID, ProjectPath: p.PathWithNamespace,
			EventHeader: "Push Hook", EventKind: "push", Headers: map[string]string{"X-Gitlab-Event": "Push Hook"},
			Body: []byte("{}"), Outcome: store.OutcomeAccepted, ReceivedAt: time.Now()})
		committer.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddRejections(ctx, []store.Rejection{
		{Instance: w.gitlab, ScopePath: "demo", Count: 3, FirstAt: time.Now(), LastAt: time.Now(), LastReason: "wrong token"},
		{Instance: w.gitlab, ScopePath: "elsewhere", Count: 1, FirstAt: time.Now(), LastAt: time.Now(), LastReason: "not ours"},
	}); err != nil {
		t.Fatal(err)
	}

	w.anonymous = &http.Client{}
	w.reporter, w.guest = stack.SignIn("rita"), stack.SignIn("gina")
	return w
}

// projectURL is one of a project's API resources ("" for the project).
func (w projectWorld) projectURL(p gitlabsim.Project, sub string) string {
	return fmt.Sprintf("%s/api/v1/projects/%d%s", w.url, p.ID, sub)
}

type apiErr struct{ Error string }

func TestPublicProjectShowsWebhookHealthAndHistoryToAnyone(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newProjectWorld(t, dbURL)
		todayBefore := time.Now().UTC().Format("2006-01-02")
		var p api.ProjectJSON
		if code := fetchJSON(t, w.anonymous, w.projectURL(w.open, ""), "", &p); code != http.StatusOK {
			t.Fatalf("public project anonymously: %d %+v", code, p)
		}
		today := []string{todayBefore, time.Now().UTC().Format("2006-01-02")}
		host := strings.TrimPrefix(w.gitlab, "http://")
		if p.ID != w.open.ID || p.Instance != w.gitlab || p.Path != "demo/open" || p.Visibility != "public" ||
			p.WebURL != w.gitlab+"/demo/open" || p.DashboardURL != "/p/"+host+"/demo/open" {
			t.Errorf("project = %+v", p)
		}
		if want := fmt.Sprintf("/api/v1/projects/%d/runs?instance=%s", w.open.ID, url.QueryEscape(w.gitlab)); p.RunsURL != want {
			t.Errorf("runs_url = %q, want %q", p.RunsURL, want)
		}
		var runs api.RunPage
		if code := fetchJSON(t, w.anonymous, w.url+p.RunsURL, "", &runs); code != http.StatusOK || len(runs.Runs) != 1 || runs.Runs[0].Title != "title of open" {
			t.Errorf("GET runs_url: %d %+v", code, runs)
		}
		if d := p.Webhook.Deliveries; len(d) != 1 || d[0].Event != "Push Hook" || d[0].Outcome != store.OutcomeAccepted {
			t.Errorf("recent deliveries = %+v, want the project's one push", d)
		}
		if r := p.Webhook.Rejections; len(r) != 1 || r[0].ScopePath != "demo" || r[0].Count != 3 || r[0].LastReason != "wrong token" {
			t.Errorf("rejections = %+v, want the group's counter only", r)
		}
		if first, err := time.Parse("2006-01-02", p.History.Since); err != nil ||
			!slices.Contains(today, first.AddDate(0, 0, 89).Format("2006-01-02")) {
			t.Errorf("history since %q, want 89 days before today (%v)", p.History.Since, today)
		}
		jobs := p.History.Jobs
		if len(jobs) != 1 || jobs[0].StatusName != "rpm-build:open" || len(jobs[0].Days) != 1 {
			t.Fatalf("job history = %+v, want today's rpm-build:open", jobs)
		}
		if d := jobs[0].Days[0]; !slices.Contains(today, d.Day) || d.Finished != 1 || d.Passed != 1 || d.Timed != 1 || d.MeanRunSeconds != d.TotalRunSeconds {
			t.Errorf("job day = %+v, want one timed pass today", d)
		}
		if d := p.History.Deliveries; len(d) != 1 || !slices.Contains(today, d[0].Day) || d[0].Accepted != 1 || d[0].Ignored != 0 {
			t.Errorf("delivery history = %+v, want one accepted today", d)
		}
	})
}

func TestPrivateProjectIsA404UnlessReporter(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newProjectWorld(t, dbURL)
		var missing apiErr
		if code := fetchJSON(t, w.anonymous, w.url+"/api/v1/projects/999999", "", &missing); code != http.StatusNotFound {
			t.Fatalf("a project upbuild does not know: %d %q", code, missing.Error)
		}
		sameAsMissing := strings.Replace(missing.Error, "999999", fmt.Sprint(w.priv.ID), 1)
		for _, sub := range []string{"", "/settings", "/audit"} {
			for who, c := range map[string]*http.Client{"anonymous": w.anonymous, "a Guest": w.guest} {
				var e apiErr
				if code := fetchJSON(t, c, w.projectURL(w.priv, sub), "", &e); code != http.StatusNotFound || e.Error != sameAsMissing {
					t.Errorf("GET private project%s as %s = %d %q, want the 404 of a missing project", sub, who, code, e.Error)
				}
			}
		}
		var p api.ProjectJSON
		if code := fetchJSON(t, w.reporter, w.projectURL(w.priv, ""), "", &p); code != http.StatusOK || p.Path != "demo/secret" ||
			len(p.Webhook.Deliveries) != 1 || len(p.History.Jobs) != 1 {
			t.Errorf("private project as a Reporter = %d %+v", code, p)
		}
		if code := fetchJSON(t, w.anonymous, w.projectURL(w.priv, ""), adminToken, &p); code != http.StatusOK || p.Visibility != "private" {
			t.Errorf("private project with the admin token = %d %+v", code, p)
		}
	})
}

func TestSettingsAndAuditAreForMembersEvenOfPublicProjects(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newProjectWorld(t, dbURL)
		ctx := context.Background()
		for _, sub := range []string{"/settings", "/audit"} {
			var e apiErr
			if code := fetchJSON(t, w.anonymous, w.projectURL(w.open, sub), "", &e); code != http.StatusForbidden ||
				!strings.Contains(e.Error, "Reporter role") || !strings.Contains(e.Error, "Sign in") {
				t.Errorf("GET public project%s anonymously = %d %q, want 403 asking to sign in", sub, code, e.Error)
			}
			if code := fetchJSON(t, w.guest, w.projectURL(w.open, sub), "", &e); code != http.StatusForbidden ||
				!strings.Contains(e.Error, "Reporter role") || strings.Contains(e.Error, "Sign in") {
				t.Errorf("GET public project%s as a Guest = %d %q, want 403 naming the role", sub, code, e.Error)
			}
		}

		var s api.ProjectSettingsJSON
		if code := fetchJSON(t, w.reporter, w.projectURL(w.open, "/settings"), "", &s); code != http.StatusOK ||
			s.Version != 0 || !s.Settings.IsZero() || s.UpdatedAt != nil || s.CanEdit {
			t.Fatalf("never-saved settings as a Reporter = %d %+v", code, s)
		}
		data, err := settings.Encode(settings.Settings{Targets: []string{"fedora-all"}, ApprovalPolicy: settings.ApprovalAll,
			Jobs: []settings.JobOverride{{Type: "tests", Disabled: true}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.st.SaveProjectSettings(ctx, store.SettingsChange{Instance: w.gitlab, ProjectID: w.open.ID, Data: data,
			Actor: "mia", Detail: "targets: fedora-all"}); err != nil {
			t.Fatal(err)
		}
		if code := fetchJSON(t, w.reporter, w.projectURL(w.open, "/settings"), "", &s); code != http.StatusOK ||
			s.Version != 1 || s.UpdatedBy != "mia" || s.UpdatedAt == nil || s.CanEdit ||
			!slices.Equal(s.Settings.Targets, []string{"fedora-all"}) || s.Settings.ApprovalPolicy != settings.ApprovalAll ||
			len(s.Settings.Jobs) != 1 || !s.Settings.Jobs[0].Disabled {
			t.Errorf("saved settings as a Reporter = %d %+v", code, s)
		}
		if code := fetchJSON(t, w.anonymous, w.projectURL(w.open, "/settings"), adminToken, &s); code != http.StatusOK || !s.CanEdit || s.Version != 1 {
			t.Errorf("settings with the admin token = %d %+v, want editable", code, s)
		}
		var audit api.AuditPage
		if code := fetchJSON(t, w.reporter, w.projectURL(w.open, "/audit"), "", &audit); code != http.StatusOK ||
			len(audit.Entries) != 1 || audit.Entries[0].Actor != "mia" || audit.Entries[0].Action != "settings.change" || audit.Next != "" {
			t.Errorf("audit log as a Reporter = %d %+v", code, audit)
		}
	})
}

func TestAuditLogIsPagedWithANextLink(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newProjectWorld(t, dbURL)
		ctx := context.Background()
		for i := range 5 {
			if _, err := w.st.AppendAudit(ctx, store.AuditEntry{Instance: w.gitlab, ProjectID: w.priv.ID, Actor: "rita",
				Action: "job.rerun", Detail: fmt.Sprint("re-ran job ", i)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.st.AppendAudit(ctx, store.AuditEntry{Instance: w.gitlab, ProjectID: w.open.ID, Actor: "rita",
			Action: "job.cancel", Detail: "another project"}); err != nil {
			t.Fatal(err)
		}
		var details []string
		next := w.projectURL(w.priv, "/audit?limit=2")
		for pages := 0; next != ""; pages++ {
			if pages > 3 {
				t.Fatalf("more pages than entries: next %s", next)
			}
			var page api.AuditPage
			if code := fetchJSON(t, w.reporter, next, "", &page); code != http.StatusOK || len(page.Entries) > 2 {
				t.Fatalf("GET %s: %d %+v", next, code, page)
			}
			for _, e := range page.Entries {
				details = append(details, e.Detail)
			}
			next = ""
			if page.Next != "" {
				next = w.url + page.Next
			}
		}
		want := []string{"re-ran job 4", "re-ran job 3", "re-ran job 2", "re-ran job 1", "re-ran job 0"}
		if !slices.Equal(details, want) {
			t.Fatalf("paged audit log = %q, want %q", details, want)
		}
		for _, query := range []string{"?limit=0", "?limit=501", "?before=-1", "?before=x"} {
			var e apiErr
			if code := fetchJSON(t, w.reporter, w.projectURL(w.priv, "/audit"+query), "", &e); code != http.StatusBadRequest || e.Error == "" {
				t.Errorf("GET audit%s = %d %q, want 400", query, code, e.Error)
			}
		}
	})
}

func TestAProjectIDOnSeveralInstancesNeedsTheInstance(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newProjectWorld(t, dbURL)
		ctx := context.Background()
		const shared = 424242
		for _, instance := range []string{"https://gitlab.a.example", "https://gitlab.b.example"} {
			if _, err := w.st.ApplyPlan(ctx, store.Plan{Run: &store.Run{Instance: instance, ProjectID: shared, ProjectPath: "pkg/on-" + instance[8:16],
				Trigger: "commit", RunKey: "push-" + instance, SHA: "abc", Ref: "main", SourceProjectID: shared, SourceProjectPath: "pkg/x",
				Title: "a push", State: store.RunRunning, Visibility: "public"}}, nil); err != nil {
				t.Fatal(err)
			}
		}
		base := fmt.Sprintf("%s/api/v1/projects/%d", w.url, shared)
		for _, sub := range []string{"", "/settings", "/audit"} {
			var e apiErr
			if code := fetchJSON(t, w.anonymous, base+sub, adminToken, &e); code != http.StatusBadRequest ||
				!strings.Contains(e.Error, "pass instance=") || !strings.Contains(e.Error, "https://gitlab.a.example, https://gitlab.b.example") {
				t.Errorf("GET %s without instance = %d %q, want 400 naming both instances", sub, code, e.Error)
			}
		}
		for instance, want := range map[string]string{
			"https://gitlab.b.example":  "pkg/on-gitlab.b",
			"https://GitLab.a.example/": "pkg/on-gitlab.a",
		} {
			var p api.ProjectJSON
			if code := fetchJSON(t, w.anonymous, base+"?instance="+url.QueryEscape(instance), "", &p); code != http.StatusOK || p.Path != want {
				t.Errorf("GET with instance %s = %d %+v, want %s", instance, code, p, want)
			}
		}
		var e apiErr
		if code := fetchJSON(t, w.anonymous, base+"?instance=ftp://gitlab.a.example", "", &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "instance must be") {
			t.Errorf("a malformed instance = %d %q", code, e.Error)
		}
		if code := fetchJSON(t, w.anonymous, base+"?instance=https://gitlab.c.example", "", &e); code != http.StatusNotFound {
			t.Errorf("an instance without the project = %d %q", code, e.Error)
		}
		// The ID alone is enough where it is unique.
		var p api.ProjectJSON
		if code := fetchJSON(t, w.anonymous, w.projectURL(w.open, ""), "", &p); code != http.StatusOK || p.Instance != w.gitlab {
			t.Errorf("a unique ID without instance = %d %+v", code, p)
		}
	})
}

// docSchema is a schema of docs/openapi.yaml with what a nested check
// needs.
type docSchema struct {
	Ref        string               `yaml:"$ref"`
	Required   []string             `yaml:"required"`
	Properties map[string]docSchema `yaml:"properties"`
	Items      *docSchema           `yaml:"items"`
	AllOf      []docSchema          `yaml:"allOf"`
}

type docFile struct {
	Paths map[string]map[string]struct {
		Responses map[string]struct {
			Content map[string]struct {
				Schema docSchema `yaml:"schema"`
			} `yaml:"content"`
		} `yaml:"responses"`
	} `yaml:"paths"`
	Components struct {
		Schemas map[string]docSchema `yaml:"schemas"`
	} `yaml:"components"`
}

// resolve follows references and merges allOf into one schema.
func (d docFile) resolve(t *testing.T, s docSchema) docSchema {
	t.Helper()
	if s.Ref != "" {
		got, ok := d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		if !ok {
			t.Fatalf("dangling schema reference %s", s.Ref)
		}
		return d.resolve(t, got)
	}
	if len(s.AllOf) == 0 {
		return s
	}
	out := docSchema{Required: slices.Clone(s.Required), Properties: map[string]docSchema{}, Items: s.Items}
	for k, v := range s.Properties {
		out.Properties[k] = v
	}
	for _, part := range s.AllOf {
		p := d.resolve(t, part)
		out.Required = append(out.Required, p.Required...)
		for k, v := range p.Properties {
			out.Properties[k] = v
		}
	}
	return out
}

// conforms checks that every object in v has the schema's required fields
// and no undocumented ones, all the way down.
func (d docFile) conforms(t *testing.T, where string, s docSchema, v any) {
	t.Helper()
	s = d.resolve(t, s)
	switch v := v.(type) {
	case map[string]any:
		if s.Properties == nil {
			return // a map (additionalProperties), not an object with fields
		}
		for _, name := range s.Required {
			if _, ok := v[name]; !ok {
				t.Errorf("%s: no %q in %v", where, name, v)
			}
		}
		for name, field := range v {
			fs, ok := s.Properties[name]
			if !ok {
				t.Errorf("%s: field %q is not documented", where, name)
				continue
			}
			d.conforms(t, where+"."+name, fs, field)
		}
	case []any:
		if s.Items == nil {
			t.Errorf("%s: an array, but the document gives no items", where)
			return
		}
		for i, item := range v {
			d.conforms(t, fmt.Sprintf("%s[%d]", where, i), *s.Items, item)
		}
	}
}

func TestProjectResponsesHaveTheDocumentedFieldsAllTheWayDown(t *testing.T) {
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc docFile
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newProjectWorld(t, dbURL)
		data, err := settings.Encode(settings.Settings{Targets: []string{"fedora-all"}, StatusNameTemplate: "upbuild/{job_name}",
			Jobs: []settings.JobOverride{{Type: "copr_build", Triggers: []packitcfg.Trigger{packitcfg.TriggerCommit}, Branch: "main"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.st.SaveProjectSettings(context.Background(), store.SettingsChange{Instance: w.gitlab, ProjectID: w.open.ID,
			Data: data, Actor: "mia", Detail: "targets"}); err != nil {
			t.Fatal(err)
		}
		// A second entry, so that the audit page of one has a next link.
		if _, err := w.st.AppendAudit(context.Background(), store.AuditEntry{Instance: w.gitlab, ProjectID: w.open.ID,
			Actor: "operator", Action: "token.issue", Detail: "webhook token #1"}); err != nil {
			t.Fatal(err)
		}
		for path, sub := range map[string]string{
			"/api/v1/projects/{id}":          "",
			"/api/v1/projects/{id}/settings": "/settings",
			"/api/v1/projects/{id}/audit":    "/audit?limit=1",
		} {
			op, ok := doc.Paths[path]["get"]
			if !ok {
				t.Fatalf("GET %s is not documented", path)
			}
			var got any
			if code := fetchJSON(t, w.anonymous, w.projectURL(w.open, sub), adminToken, &got); code != http.StatusOK {
				t.Fatalf("GET %s: %d %v", path, code, got)
			}
			doc.conforms(t, "GET "+path, op.Responses["200"].Content["application/json"].Schema, got)
		}
	})
}
