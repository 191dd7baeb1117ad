package browser_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/testdb"
)

// xssTitle would open two alerts if a page put it into HTML unescaped.
const xssTitle = `<img src=x onerror=alert(1)><script>alert(2)</script>`

// injected counts what the title would have added to the page as markup.
const injected = `document.querySelectorAll('img[src="x"], script:not([src])').length`

func TestAnXSSPayloadInAnMRTitleIsShownAsText(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		p := st.Project("xss", map[string]string{"pkg.spec": "Name: pkg\nVersion: 1.0\n", ".packit.yaml": "specfile_path: pkg.spec\n" +
			"jobs:\n  - job: copr_build\n    trigger: pull_request\n    targets: [fedora-rawhide-x86_64]\n"})
		mr := st.OpenMR(p, "alice", "xss", xssTitle)
		st.WaitFinal(p.ID, mr.HeadSHA, 1)
		run := st.WaitRun(p.ID, mr.HeadSHA)
		jobs := st.Jobs(run.ID)
		if len(jobs) != 1 {
			t.Fatalf("jobs of the run: %+v", jobs)
		}
		b := newBrowser(t)

		// The dialog watch works: a page that does call alert is seen.
		b.open(`data:text/html,<p id="probe">probe</p><script>alert("probe")</script>`, "#probe")
		st.Eventually("the probe's alert to be seen", func() (bool, string) {
			d := b.openedDialogs()
			return len(d) == 1 && d[0] == "alert: probe", fmt.Sprint(d)
		})

		runRow := rowOf(fmt.Sprintf("/runs/%d", run.ID))
		mrCell := runRow + " td:nth-child(4)"
		pages := []struct {
			name, url, sel string
		}{
			{"home", st.URL + "/", mrCell},
			{"project", st.ProjectPage(p), mrCell},
			{"run", st.RunPage(run.ID), "dd:has(a[href$='/merge_requests/1'])"},
			{"job", st.JobPage(jobs[0].ID), "dd:has(a[href$='/merge_requests/1'])"},
		}
		for _, page := range pages {
			b.open(page.url, page.sel)
			// The title is the end of the element's text, character for
			// character: "!1 <title>" in a table, "… !1: <title>" on a page.
			if text := strings.TrimSpace(b.text(page.sel)); !strings.HasSuffix(text, xssTitle) {
				t.Errorf("%s page: the MR shows as %q, want it to end with the title as text", page.name, text)
			}
			if n := eval[int](b, injected); n != 0 {
				t.Errorf("%s page: the title added %d img or inline script elements", page.name, n)
			}
			b.screenshot(page.name)
		}
		// Leaving the last page needs any dialog it opened answered, so
		// every dialog is in the list after this.
		if err := b.do(chromedp.Navigate("about:blank")); err != nil {
			t.Fatalf("leave the pages: %v", err)
		}
		if d := b.openedDialogs(); len(d) != 1 {
			t.Errorf("dialogs opened, the probe's first: %q", d)
		}
	})
}
