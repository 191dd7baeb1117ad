package browser_test

import (
	"fmt"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// slowTests prints 20 lines over about six seconds.
const slowTests = "tests:\n  - name: slow\n    run: 'for i in $(seq 1 20); do echo line $i; sleep 0.3; done'\n"

// logView is what the job page shows of the log and the job's state.
type logView struct {
	Lines int    `json:"lines"` // lines of the test's output ("line N")
	State string `json:"state"` // the page's job state
	Probe string `json:"probe"` // set by the test after load; a reload clears it
}

const readLogView = `(() => ({
	lines: document.getElementById("log").textContent.split("\n").filter(l => /^line \d+$/.test(l)).length,
	state: document.getElementById("job-state").textContent,
	probe: document.body.dataset.probe || "",
}))()`

func TestTheLiveLogGrowsWhileTheJobRuns(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st := stacktest.Start(t, dbURL, stacktest.Options{})
		p := greeterProject(t, st, "slow", "  - job: tests\n    trigger: pull_request\n    targets: ["+hostTarget+"]\n", slowTests)
		mr := st.OpenMR(p, "alice", "slow", "Slow tests")
		run := st.WaitRun(p.ID, mr.HeadSHA)
		var job store.Job
		st.Eventually("the tests job to run", func() (bool, string) {
			jobs := st.Jobs(run.ID)
			if len(jobs) != 1 {
				return false, fmt.Sprintf("%d jobs", len(jobs))
			}
			job = jobs[0]
			return job.State == store.JobRunning, job.State
		})

		b := newBrowser(t)
		b.open(st.JobPage(job.ID), "#log")
		eval[bool](b, `(document.body.dataset.probe = "loaded") !== ""`)
		first := eval[logView](b, readLogView)
		if first.State != store.JobRunning || first.Lines >= 20 {
			t.Fatalf("the page opened on a job that is not running: %+v", first)
		}

		// The page, never reloaded, shows more lines while the job (on
		// the page and in the store) is still running.
		var grown logView
		st.Eventually("the log to grow while the job runs", func() (bool, string) {
			grown = eval[logView](b, readLogView)
			if grown.State != store.JobRunning {
				return false, fmt.Sprintf("the job ended first: %+v", grown)
			}
			return grown.Lines > first.Lines && grown.Lines < 20 && storeState(t, st, job.ID) == store.JobRunning, fmt.Sprintf("%+v", grown)
		})
		if grown.Probe != "loaded" {
			t.Fatalf("the page reloaded: %+v", grown)
		}
		b.screenshot("running")

		var last logView
		st.Eventually("the page to show the finished job", func() (bool, string) {
			last = eval[logView](b, readLogView)
			return last.State == store.JobSuccess, fmt.Sprintf("%+v", last)
		})
		if last.Lines != 20 || last.Probe != "loaded" {
			t.Errorf("after the job: %+v, want all 20 lines on the page as loaded", last)
		}
		// What the job did is followed too, not only its state.
		ended, err := st.Server.Store().Job(st.Context(), job.ID)
		if err != nil {
			t.Fatal(err)
		}
		st.Eventually("the page to show the job's last description", func() (bool, string) {
			shown := eval[string](b, `document.getElementById("job-description").textContent`)
			return shown == ended.Description && shown != job.Description, fmt.Sprintf("page %q, store %q, at load %q", shown, ended.Description, job.Description)
		})
		shown := b.text("#log")
		if want := plainLog(t, st, job.ID); strings.TrimRight(shown, "\n") != strings.TrimRight(want, "\n") {
			t.Errorf("the followed log differs from the job's log:\n--- page\n%s\n--- log\n%s", shown, want)
		}
		b.screenshot("finished")
	})
}

// storeState is a job's state in upbuild's store.
func storeState(t *testing.T, st *stacktest.Stack, jobID int64) string {
	t.Helper()
	j, err := st.Server.Store().Job(st.Context(), jobID)
	if err != nil {
		t.Fatalf("job %d: %v", jobID, err)
	}
	return j.State
}
