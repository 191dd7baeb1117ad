package web_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/testdb"
)

const settingsPackit = `specfile_path: pkg.spec
jobs:
  - job: copr_build
    trigger: commit
    targets: [fedora-rawhide-x86_64]
  - job: tests
    trigger: commit
    identifier: smoke
`

// settingsProject creates a project in the demo group, hooks it up and
// waits for the run of a first push to main, so upbuild knows the project
// and has read its default branch's config.
func (s *stack) settingsProject(name string, vis gitlabsim.Visibility) gitlabsim.Project {
	s.t.Helper()
	p := s.ProjectWith(gitlabsim.ProjectSpec{Namespace: "demo", Path: name, Visibility: vis, DefaultBranch: "main",
		Files: map[string]string{".packit.yaml": settingsPackit, "pkg.spec": "Name: pkg\nVersion: 1.0\n"}})
	s.waitRun(p, s.pushMain(p, "first"))
	return p
}

// pushMain pushes a commit that writes content into README on main.
func (s *stack) pushMain(p gitlabsim.Project, content string) string {
	s.t.Helper()
	return s.Push(p, "main", s.Seed.Maintainer.Username, content, gitlabsim.FileChange{Path: "README", Content: content + "\n"})
}

// waitRun returns the status names of the run at sha, once planned.
func (s *stack) waitRun(p gitlabsim.Project, sha string) []string {
	s.t.Helper()
	var names []string
	for _, j := range s.Jobs(s.WaitRun(p.ID, sha).ID) {
		names = append(names, j.StatusName)
	}
	slices.Sort(names)
	return names
}

func TestSettingsPageOfAPublicProject(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		p := s.settingsProject("open", gitlabsim.Public)
		path := s.settingsPath(p)

		// Settings are for members, even of a public project: a passer-by
		// and a Guest are told why they cannot open them.
		if got := s.anonymous().do(http.MethodGet, path, nil); got.status != http.StatusForbidden ||
			!strings.Contains(got.body, "Reporter role") || !strings.Contains(got.body, "Sign in with GitLab first") {
			t.Fatalf("anonymous GET: %d %s", got.status, got.body)
		}
		guest := s.signIn("gina", gitlabsim.Guest)
		if got := guest.do(http.MethodGet, path, nil); got.status != http.StatusForbidden || !strings.Contains(got.body, "Reporter role") ||
			strings.Contains(got.body, "Sign in") {
			t.Fatalf("guest GET: %d %s", got.status, got.body)
		}
		// A Reporter sees the settings and the effective config, read-only.
		got := s.signIn("rita", gitlabsim.Reporter).do(http.MethodGet, path, nil)
		if got.status != http.StatusOK {
			t.Fatalf("reporter GET: %d %s", got.status, got.body)
		}
		for _, want := range []string{`id="read-only"`, "<fieldset disabled>", "rpm-build:main:fedora-rawhide-x86_64",
			"testing-farm:main:fedora-rawhide-x86_64:smoke", ".packit.yaml at main",
			// No project choice: the operator's default policy is what applies.
			"Fork approval in force: forks"} {
			if !strings.Contains(got.body, want) {
				t.Errorf("the Reporter's page lacks %q:\n%s", want, got.body)
			}
		}
		if strings.Contains(got.body, `name="save"`) {
			t.Error("a read-only page offers a Save button")
		}
		// A POST without the form's CSRF token is refused, even from a Maintainer's session.
		if got := s.anonymous().do(http.MethodPost, path, url.Values{"targets": {"epel-9"}, "version": {"0"}}); got.status != http.StatusForbidden {
			t.Fatalf("anonymous POST: %d %s", got.status, got.body)
		}
		alice := s.signIn("alice", gitlabsim.Maintainer)
		if got := alice.do(http.MethodPost, path, url.Values{"targets": {"epel-9"}, "version": {"0"}}); got.status != http.StatusForbidden ||
			!strings.Contains(got.body, "CSRF") {
			t.Fatalf("CSRF-less POST from a Maintainer: %d %s", got.status, got.body)
		}
		if got := s.signIn("dora", gitlabsim.Developer).submit(path, url.Values{"targets": {"epel-9"}, "save": {"1"}}); got.status != http.StatusForbidden ||
			!strings.Contains(got.body, "Maintainer role") {
			t.Fatalf("developer save: %d %s", got.status, got.body)
		}
		if row, found, err := s.Server.Store().ProjectSettings(s.Context(), s.Instance, p.ID); err != nil || found {
			t.Fatalf("refused POSTs saved something: %+v %v", row, err)
		}
	})
}

func TestMaintainerChangesTargetsAndTheNextRunUsesThem(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		p := s.settingsProject("closed", gitlabsim.Private)
		path := s.settingsPath(p)

		if got := s.anonymous().do(http.MethodGet, path, nil); got.status != http.StatusNotFound {
			t.Fatalf("anonymous GET of a private project: %d", got.status)
		}
		if got := s.signIn("gina", gitlabsim.Guest).do(http.MethodGet, path, nil); got.status != http.StatusNotFound {
			t.Fatalf("guest GET of a private project: %d", got.status)
		}
		dev := s.signIn("dev", gitlabsim.Developer)
		if got := dev.do(http.MethodGet, path, nil); got.status != http.StatusOK || !strings.Contains(got.body, `id="read-only"`) {
			t.Fatalf("developer GET: %d", got.status)
		}
		if got := dev.submit(path, url.Values{"targets": {"epel-9"}}); got.status != http.StatusForbidden {
			t.Fatalf("developer save: %d %s", got.status, got.body)
		}

		alice := s.signIn("alice", gitlabsim.Maintainer)
		// Preview first: the merged result shows, nothing is saved.
		got := alice.submit(path, url.Values{"targets": {"epel-9, fedora-latest-aarch64"}, "preview": {"1"}})
		if got.status != http.StatusOK || !strings.Contains(got.body, "of this form (not saved)") ||
			!strings.Contains(got.body, "rpm-build:main:epel-9-x86_64") || !strings.Contains(got.body, "rpm-build:main:fedora-45-aarch64") {
			t.Fatalf("preview: %d %s", got.status, got.body)
		}
		if _, found, err := s.Server.Store().ProjectSettings(s.Context(), s.Instance, p.ID); err != nil || found {
			t.Fatalf("the preview saved: %v %v", found, err)
		}
		// Save: a redirect to the page, which says so.
		got = alice.submit(path, url.Values{"targets": {"epel-9, fedora-latest-aarch64"}, "save": {"1"}})
		if got.status != http.StatusSeeOther || got.location != path+"?saved=1" {
			t.Fatalf("save: %d %q %s", got.status, got.location, got.body)
		}
		got = alice.do(http.MethodGet, got.location, nil)
		if !strings.Contains(got.body, `id="saved"`) || !strings.Contains(got.body, `value="epel-9 fedora-latest-aarch64"`) ||
			!strings.Contains(got.body, "saved by alice") {
			t.Fatalf("page after saving: %s", got.body)
		}
		// The next run uses the new targets.
		names := s.waitRun(p, s.pushMain(p, "second"))
		want := []string{"rpm-build:main:epel-9-x86_64", "rpm-build:main:fedora-45-aarch64",
			"testing-farm:main:epel-9-x86_64:smoke", "testing-farm:main:fedora-45-aarch64:smoke"}
		if !slices.Equal(names, want) {
			t.Fatalf("next run: %v, want %v", names, want)
		}
		// The audit log says who changed what.
		log, err := s.Server.Store().AuditLog(s.Context(), s.Instance, p.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 1 || log[0].Actor != "alice" || log[0].Action != "settings.change" ||
			log[0].Detail != "targets: (from the config) → epel-9, fedora-latest-aarch64" {
			t.Fatalf("audit log %+v", log)
		}
	})
}

func TestSettingsFormErrorsAndStaleForms(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL, 0)
		p := s.settingsProject("pkg", gitlabsim.Public)
		path := s.settingsPath(p)
		op := s.operator()

		// Every problem at once, with the fallback config's line, and the
		// attacker-controlled input shown as text.
		got := op.submit(path, url.Values{"targets": {"fedora-al <script>alert(1)</script>"}, "status_name_template": {"ci/{job}"},
			"fallback_config": {"specfile_path: a.spec\r\nsynced_files: [a]\r\n"}, "save": {"1"}})
		if got.status != http.StatusUnprocessableEntity {
			t.Fatalf("invalid form: %d %s", got.status, got.body)
		}
		for _, want := range []string{"Nothing was saved", `&#34;fedora-al&#34; is neither a chroot`, "unknown placeholder {job}",
			"fallback_config line 2, column 1", "&lt;script&gt;alert(1)&lt;/script&gt;"} {
			if !strings.Contains(got.body, want) {
				t.Errorf("error page lacks %q", want)
			}
		}
		if strings.Contains(got.body, "<script>alert(1)") {
			t.Error("the page echoes a script tag")
		}

		// The operator saves (version 0 → 1); a form rendered before that
		// is stale and says by whom, keeping what was typed.
		stale := op.do(http.MethodGet, path, nil)
		if got := op.submit(path, url.Values{"approval_policy": {"all"}}); got.status != http.StatusSeeOther {
			t.Fatalf("operator save: %d %s", got.status, got.body)
		}
		form := url.Values{"version": {versionRe.FindStringSubmatch(stale.body)[1]}, "targets": {"epel-9"},
			"job_type": {"tests"}, "job_identifier": {"smoke"}, "job_state": {"off"}, "job_triggers": {""}, "job_branch": {""}}
		got = op.do(http.MethodPost, path, form)
		if got.status != http.StatusConflict || !strings.Contains(got.body, "changed by operator meanwhile") ||
			!strings.Contains(got.body, `value="epel-9"`) || !strings.Contains(got.body, "approval policy: all → the operator&#39;s") {
			t.Fatalf("stale save: %d %s", got.status, got.body)
		}
		// Saving the same form again (now from the current version) works.
		form.Set("version", versionRe.FindStringSubmatch(got.body)[1])
		if got := op.do(http.MethodPost, path, form); got.status != http.StatusSeeOther {
			t.Fatalf("second save: %d %s", got.status, got.body)
		}
		row, _, err := s.Server.Store().ProjectSettings(s.Context(), s.Instance, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if row.Version != 2 || !strings.Contains(string(row.Data), `"disabled":true`) || strings.Contains(string(row.Data), "approval") {
			t.Fatalf("saved %d %s", row.Version, row.Data)
		}
		page := op.do(http.MethodGet, path, nil)
		if strings.Contains(page.body, "testing-farm:") || !strings.Contains(page.body, "tests smoke is switched off") {
			t.Fatalf("preview after switching tests off:\n%s", page.body)
		}
	})
}
