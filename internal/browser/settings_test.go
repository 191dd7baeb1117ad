package browser_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/testdb"
)

// pkgFiles is a project whose merge requests get one build job on target,
// which this machine skips quickly (no build environment for it).
func pkgFiles(target string) map[string]string {
	return map[string]string{"pkg.spec": "Name: pkg\nVersion: 1.0\n", ".packit.yaml": "specfile_path: pkg.spec\n" +
		"jobs:\n  - job: copr_build\n    trigger: pull_request\n    targets: [" + target + "]\n"}
}

// signIn signs username in through the pages: upbuild's "Sign in with"
// link, the simulator's sign-in form and its Authorize button.
func (b *browser) signIn(st *stacktest.Stack, username string) {
	b.t.Helper()
	b.open(st.URL+"/", "a.signin")
	if err := b.do(chromedp.Click(chromedp.CSS("a.signin")), chromedp.WaitVisible(chromedp.CSS("#new_user"))); err != nil {
		b.t.Fatalf("follow the sign-in link to GitLab's sign-in form: %v", err)
	}
	if err := b.do(chromedp.SendKeys(chromedp.CSS("#user_login"), username),
		chromedp.Click(chromedp.CSS(`#new_user button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#authorize"))); err != nil {
		b.t.Fatalf("sign in to GitLab as %s: %v", username, err)
	}
	b.screenshot("authorize")
	if err := b.do(chromedp.Click(chromedp.CSS(`#authorize button[value="Authorize"]`)), chromedp.WaitVisible(chromedp.CSS("form.signout"))); err != nil {
		b.t.Fatalf("authorize upbuild: %v", err)
	}
	if header := b.text("header"); !strings.Contains(header, "signed in as @"+username) {
		b.t.Fatalf("back on upbuild, the header says %q, want signed in as @%s", header, username)
	}
}

// navigate opens url and returns the HTTP status of the page.
func (b *browser) navigate(url string) int64 {
	b.t.Helper()
	resp, err := run(b, chromedp.NavigateResponse(url))
	if err != nil {
		b.t.Fatalf("open %s: %v", url, err)
	}
	return responseStatus(resp)
}

// responseStatus is a page's HTTP status; 0 when there was no response.
func responseStatus(resp *network.Response) int64 {
	if resp == nil {
		return 0
	}
	return resp.Status
}

// getAs fetches a page with an HTTP client and returns its status.
func getAs(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func TestAGuestCannotOpenOrChangeSettings(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		secret := st.ProjectWith(gitlabsim.ProjectSpec{Namespace: "demo", Path: "secret", Visibility: gitlabsim.Private,
			DefaultBranch: "main", Files: pkgFiles("fedora-rawhide-x86_64")})
		open := st.Project("open", pkgFiles("fedora-rawhide-x86_64"))
		for _, p := range []gitlabsim.Project{secret, open} {
			mr := st.OpenMR(p, "alice", "feature", "Feature")
			st.WaitFinal(p.ID, mr.HeadSHA, 1)
		}
		st.User("gus", gitlabsim.Guest)
		// The settings pages exist: a Maintainer opens both.
		maintainer := st.SignIn("alice")
		for _, p := range []gitlabsim.Project{secret, open} {
			if code, body := getAs(t, maintainer, st.SettingsPage(p)); code != http.StatusOK || !strings.Contains(body, `name="save"`) {
				t.Fatalf("a Maintainer opens %s: HTTP %d\n%s", st.SettingsPage(p), code, body)
			}
		}

		b := newBrowser(t)
		b.signIn(st, "gus")

		// A private project's settings do not open for a Guest: the page
		// is the same 404 as for a project that does not exist.
		if code := b.navigate(st.SettingsPage(secret)); code != http.StatusNotFound {
			t.Errorf("a Guest opening a private project's settings: HTTP %d, want 404", code)
		}
		if body := b.text("body"); strings.Contains(body, "Targets") || strings.Contains(body, secret.PathWithNamespace) {
			t.Errorf("the Guest's 404 page shows the settings or names the project: %q", body)
		}
		b.screenshot("private-404")

		// Nor do a public project's: settings are for members, and the
		// refusal says which role opens them.
		if code := b.navigate(st.SettingsPage(open)); code != http.StatusForbidden {
			t.Errorf("a Guest opening a public project's settings: HTTP %d, want 403", code)
		}
		if body := b.text("body"); !strings.Contains(body, "Reporter role") || strings.Contains(body, "Targets") {
			t.Errorf("the Guest's refusal says %q, want the role needed and no settings", body)
		}
		b.screenshot("public-403")
	})
}

func TestAMaintainerChangesTheTargetsAndTheNextRunUsesThem(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		p := st.Project("retarget", pkgFiles("fedora-rawhide-x86_64"))
		mr := st.OpenMR(p, "alice", "feature", "Retarget")
		before := st.WaitFinal(p.ID, mr.HeadSHA, 1)
		if _, ok := before["rpm-build:fedora-rawhide-x86_64"]; !ok {
			t.Fatalf("before the change: %v", before)
		}

		b := newBrowser(t)
		b.signIn(st, "alice")
		// From the project page, as a maintainer would get there.
		b.open(st.ProjectPage(p), `a[href^="/settings/"]`)
		if err := b.do(chromedp.Click(chromedp.CSS(`a[href^="/settings/"]`)), chromedp.WaitVisible(chromedp.CSS("input[name=targets]"))); err != nil {
			t.Fatalf("follow the project page's settings link: %v", err)
		}
		if err := b.do(chromedp.SetValue(chromedp.CSS("input[name=targets]"), "epel-9-x86_64"),
			chromedp.Click(chromedp.CSS("button[name=save]")), chromedp.WaitVisible(chromedp.CSS("#saved"))); err != nil {
			t.Fatalf("save the new targets: %v", err)
		}
		if v := eval[string](b, `document.querySelector("input[name=targets]").value`); v != "epel-9-x86_64" {
			t.Errorf("after saving, the targets field holds %q", v)
		}
		b.screenshot("saved")

		// The next push to the merge request plans with the new target.
		head := st.Push(p, "feature", "alice", "another change", gitlabsim.FileChange{Path: "README", Content: "again\n"})
		after := st.WaitFinal(p.ID, head, 1)
		if _, ok := after["rpm-build:epel-9-x86_64"]; !ok {
			t.Fatalf("the run after the change reports %v, want rpm-build:epel-9-x86_64", after)
		}
		run := st.WaitRun(p.ID, head)
		jobs := st.Jobs(run.ID)
		if len(jobs) != 1 || jobs[0].Target != "epel-9-x86_64" {
			t.Fatalf("the new run's jobs: %+v", jobs)
		}
		b.open(st.RunPage(run.ID), rowOf(fmt.Sprintf("/jobs/%d", jobs[0].ID)))
		if row := b.text(rowOf(fmt.Sprintf("/jobs/%d", jobs[0].ID))); !strings.Contains(row, "epel-9-x86_64") {
			t.Errorf("the new run's page shows the job as %q", row)
		}
		b.screenshot("next-run")
	})
}
