package web

import (
	"testing"

	"upbuild.dev/upbuild/internal/store"
)

// The state shown for a run in the lists follows its jobs.
func TestRunGlance(t *testing.T) {
	for _, c := range []struct {
		name  string
		tally store.JobTally
		class string
		text  string
	}{
		{"one passed, one running", store.JobTally{store.JobSuccess: 1, store.JobRunning: 1}, store.JobRunning, "1 of 2 passed"},
		{"one failed", store.JobTally{store.JobSuccess: 2, store.JobFailed: 1}, store.JobFailed, "2 of 3 passed"},
		{"passed, one skipped", store.JobTally{store.JobSuccess: 1, store.JobSkipped: 1}, store.JobSuccess, "1 of 2 passed"},
		{"only skipped", store.JobTally{store.JobSkipped: 1}, store.JobSkipped, "1 of 1 skipped"},
		{"canceled and skipped", store.JobTally{store.JobCanceled: 1, store.JobSkipped: 1}, store.JobCanceled, "0 of 2 passed"},
	} {
		got := glanceOf(store.Run{State: "planned"}, c.tally)
		if got.Class != c.class || got.Detail != c.text {
			t.Errorf("%s: %s %q, want %s %q", c.name, got.Class, got.Detail, c.class, c.text)
		}
	}
}
