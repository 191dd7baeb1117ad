package web_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/testdb"
)

var (
	tokenRe   = regexp.MustCompile(`<code id="token">([^<]+)</code>`)
	signingRe = regexp.MustCompile(`<code id="signing-token">([^<]+)</code>`)
	revokeRe  = regexp.MustCompile(`name="token" value="(\d+)"`)
)

func TestIssuedTokenIsShownOnceAndAuthenticatesUntilRevoked(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		p := s.project("fresh", gitlabsim.Private, map[string]string{"README": "hi\n"})

		page := s.do(http.MethodGet, s.tokensPath(p), nil, true)
		if page.status != http.StatusOK || !strings.Contains(page.body, "No token was issued for this project yet.") {
			t.Fatalf("tokens page of a project upbuild never ran anything for: %d %s", page.status, page.body)
		}
		// Passers-by do not get GitLab asked about paths upbuild never saw
		// (that spends the bot's API budget): they are asked to sign in.
		open := s.project("fresh-public", gitlabsim.Public, map[string]string{"README": "hi\n"})
		if page := s.do(http.MethodGet, s.tokensPath(open), nil, false); page.status != http.StatusForbidden ||
			!strings.Contains(page.body, "Sign in with GitLab first") {
			t.Fatalf("anonymous tokens page of a project upbuild never saw: %d %s", page.status, page.body)
		}
		resp := s.issue(p, "signing")
		m := tokenRe.FindStringSubmatch(resp.body)
		sm := signingRe.FindStringSubmatch(resp.body)
		if m == nil || sm == nil {
			t.Fatalf("the issue page shows no token and signing token:\n%s", resp.body)
		}
		tok, signing := html.UnescapeString(m[1]), html.UnescapeString(sm[1])
		for _, want := range []string{s.URL + "/api/webhooks/gitlab", "Push events", "Tag push events", "Comments",
			"Merge request events", "Releases events", "only time upbuild shows this token", p.PathWithNamespace + "/-/hooks"} {
			if !strings.Contains(resp.body, want) {
				t.Errorf("the issue page lacks %q", want)
			}
		}
		again := s.do(http.MethodGet, s.tokensPath(p), nil, true)
		if strings.Contains(again.body, tok) || strings.Contains(again.body, signing) {
			t.Fatal("the tokens page shows the token a second time")
		}
		ids := revokeRe.FindAllStringSubmatch(again.body, -1)
		if len(ids) != 1 {
			t.Fatalf("want one revocable token listed, got %v in\n%s", ids, again.body)
		}

		// Pasted into GitLab by hand, the token authenticates deliveries.
		if _, err := s.Sim.AddHook(p.ID, gitlabsim.HookSpec{URL: s.URL + "/api/webhooks/gitlab", Token: tok, SigningToken: signing,
			MergeRequestsEvents: true}); err != nil {
			t.Fatal(err)
		}
		if codes := s.push(p, "main"); fmt.Sprint(codes) != "[202]" {
			t.Fatalf("delivery with the issued token answered %v, want [202]", codes)
		}

		revoked := s.do(http.MethodPost, s.tokensPath(p), url.Values{"action": {"revoke"}, "token": {ids[0][1]}}, true)
		if revoked.status != http.StatusSeeOther || revoked.location != s.tokensPath(p) {
			t.Fatalf("revoke: %d to %q", revoked.status, revoked.location)
		}
		if page := s.do(http.MethodGet, s.tokensPath(p), nil, true); !strings.Contains(page.body, "revoked") ||
			len(revokeRe.FindAllString(page.body, -1)) != 0 {
			t.Fatalf("the revoked token is not shown as revoked:\n%s", page.body)
		}
		if codes := s.push(p, "main"); fmt.Sprint(codes) != "[401]" {
			t.Fatalf("delivery with the revoked token answered %v, want [401]", codes)
		}

		audit := s.do(http.MethodGet, s.auditPath(p), nil, true)
		if audit.status != http.StatusOK {
			t.Fatalf("audit page: %d %s", audit.status, audit.body)
		}
		revokeAt, issueAt := strings.Index(audit.body, "token.revoke"), strings.Index(audit.body, "token.issue")
		if revokeAt < 0 || issueAt < 0 || revokeAt > issueAt || !strings.Contains(audit.body, "<td>operator</td>") ||
			!strings.Contains(audit.body, "with a signing token") {
			t.Fatalf("the audit log does not list the revoke above the issue, by the operator:\n%s", audit.body)
		}
		if strings.Contains(audit.body, tok) {
			t.Fatal("the audit log shows the token")
		}
	})
}

func TestConnectProjectCreatesTheWebhook(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		p := s.project("connected", gitlabsim.Public, map[string]string{"README": "hi\n"})

		// The seed's bot is a Developer: GitLab refuses, and the page says why
		// while still showing the token for adding the webhook by hand.
		refused := s.issue(p, "connect")
		if !strings.Contains(refused.body, "only a Maintainer of the project may add webhooks") || tokenRe.FindString(refused.body) == "" {
			t.Fatalf("a refused connect does not explain itself:\n%s", refused.body)
		}
		if hooks := s.Sim.Hooks(p.ID); len(hooks) != 0 {
			t.Fatalf("hooks after a refused connect: %+v", hooks)
		}

		if err := s.Sim.AddProjectMember(p.ID, s.Seed.Bot.ID, gitlabsim.Maintainer); err != nil {
			t.Fatal(err)
		}
		resp := s.issue(p, "connect")
		if !strings.Contains(resp.body, "upbuild created the webhook on GitLab") {
			t.Fatalf("connect did not report the webhook:\n%s", resp.body)
		}
		hooks := s.Sim.Hooks(p.ID)
		if len(hooks) != 1 {
			t.Fatalf("want one hook, got %+v", hooks)
		}
		h := hooks[0].HookSpec
		want := gitlabsim.HookSpec{URL: s.URL + "/api/webhooks/gitlab", Token: html.UnescapeString(tokenRe.FindStringSubmatch(resp.body)[1]),
			TagPushEvents: true, MergeRequestsEvents: true, NoteEvents: true, ReleasesEvents: true}
		if h != want {
			t.Fatalf("hook %+v\nwant %+v", h, want)
		}
		if codes := s.push(p, "main"); fmt.Sprint(codes) != "[202]" {
			t.Fatalf("delivery through the created hook answered %v, want [202]", codes)
		}
		audit := s.do(http.MethodGet, s.auditPath(p), nil, true)
		if strings.Count(audit.body, "token.issue") != 2 || strings.Count(audit.body, "project.connect") != 1 {
			t.Fatalf("audit log after two issues and one connect:\n%s", audit.body)
		}
	})
}

func TestManagePagesAreForProjectMembers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		private := s.project("secret", gitlabsim.Private, nil)
		public := s.project("open", gitlabsim.Public, nil)
		for _, c := range []struct {
			name, method, path string
			form               url.Values
			status             int
			says               string
			operator           bool
		}{
			// upbuild never saw these projects: passers-by are asked to sign in,
			// the same answer as for a path that does not exist at all.
			{"private tokens page", http.MethodGet, s.tokensPath(private), nil, http.StatusForbidden, "Sign in with GitLab first", false},
			{"private audit log", http.MethodGet, s.auditPath(private), nil, http.StatusForbidden, "Sign in with GitLab first", false},
			{"public tokens page", http.MethodGet, s.tokensPath(public), nil, http.StatusForbidden, "Maintainer role", false},
			{"public audit log", http.MethodGet, s.auditPath(public), nil, http.StatusForbidden, "Reporter role", false},
			{"issue without CSRF", http.MethodPost, s.tokensPath(public), url.Values{"action": {"issue"}}, http.StatusForbidden, "CSRF", false},
			{"no such project, anonymous", http.MethodGet, "/tokens/" + s.host + "/demo/nothing-here", nil, http.StatusForbidden, "Sign in with GitLab first", false},
			{"no such project", http.MethodGet, "/tokens/" + s.host + "/demo/nothing-here", nil, http.StatusNotFound, "does not exist", true},
		} {
			resp := s.do(c.method, c.path, c.form, c.operator)
			if resp.status != c.status || !strings.Contains(resp.body, c.says) {
				t.Errorf("%s: %d %q, want %d saying %q", c.name, resp.status, resp.body, c.status, c.says)
			}
		}
		recs, err := s.Server.Store().Tokens(s.Context())
		if err != nil || len(recs) != 0 {
			t.Fatalf("tokens after refused requests: %v %v", recs, err)
		}
		if resp := s.do(http.MethodPost, s.tokensPath(public), url.Values{"action": {"revoke"}, "token": {"1"}}, true); resp.status != http.StatusNotFound {
			t.Fatalf("revoking a token the project does not have: %d %s", resp.status, resp.body)
		}
	})
}

func TestSignedInRolesDecide(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		p, mr := s.connectedMR(gitlabsim.Private)
		jobs := s.statuses(p, mr.HeadSHA)
		build, tests := jobs[buildStatus].job, jobs[testsStatus].job
		auditPath := s.auditPath(p)

		outsider := s.signIn("outsider", 0)
		if resp := outsider.get(auditPath); resp.status != http.StatusNotFound {
			t.Fatalf("a non-member opens a private project's audit log: %d", resp.status)
		}
		reporter := s.signIn("rita", gitlabsim.Reporter)
		developer := s.signIn("dave", gitlabsim.Developer)
		maintainer := s.signIn(s.Seed.Maintainer.Username, gitlabsim.Maintainer)

		for _, c := range []struct {
			who    client
			path   string
			form   url.Values
			csrf   bool
			status int
			says   string
		}{
			{reporter, "/jobs/" + build + "/cancel", url.Values{}, true, http.StatusForbidden, "Developer role"},
			{reporter, "/jobs/" + build + "/rerun", url.Values{}, true, http.StatusForbidden, "Developer role"},
			{developer, s.tokensPath(p), url.Values{"action": {"issue"}}, true, http.StatusForbidden, "Maintainer role"},
			{developer, "/jobs/" + build + "/cancel", url.Values{}, false, http.StatusForbidden, "CSRF"},
			{developer, "/jobs/" + build + "/cancel", url.Values{}, true, http.StatusSeeOther, ""},
			{developer, "/jobs/" + build + "/rerun", url.Values{}, true, http.StatusSeeOther, ""},
			{maintainer, s.tokensPath(p), url.Values{"action": {"issue"}}, false, http.StatusForbidden, "CSRF"},
			{maintainer, s.tokensPath(p), url.Values{"action": {"issue"}}, true, http.StatusOK, "only time upbuild shows this token"},
			{maintainer, "/jobs/" + tests + "/cancel", url.Values{}, true, http.StatusSeeOther, ""},
		} {
			page := ""
			if c.csrf {
				page = auditPath
			}
			resp := c.who.post(c.path, c.form, page)
			if resp.status != c.status || !strings.Contains(resp.body, c.says) {
				t.Errorf("%s POST %s: %d %q, want %d saying %q", c.who.name, c.path, resp.status, resp.body, c.status, c.says)
			}
		}
		if resp := developer.get(s.tokensPath(p)); resp.status != http.StatusForbidden {
			t.Errorf("a Developer opens the tokens page: %d", resp.status)
		}
		audit := reporter.get(auditPath)
		for _, want := range []string{"<td>dave</td><td><code>job.cancel</code>", "<td>dave</td><td><code>job.rerun</code>",
			"<td>alice</td><td><code>token.issue</code>", "<td>alice</td><td><code>job.cancel</code>"} {
			if !strings.Contains(audit.body, want) {
				t.Errorf("the audit log lacks %q:\n%s", want, audit.body)
			}
		}
		if strings.Contains(audit.body, "<td>rita</td>") {
			t.Error("the audit log records a refused action")
		}
	})
}
