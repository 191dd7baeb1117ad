package summary_test

import (
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/summary"
)

func TestRenderShowsEveryJobSafely(t *testing.T) {
	run := store.Run{SHA: "0123456789abcdef", Message: "Waiting for approval."}
	jobs := []store.Job{
		{ID: 7, StatusName: "rpm-build:fedora-rawhide-x86_64", State: store.JobSuccess, Description: "built"},
		{ID: 8, StatusName: "testing-farm:x|y", State: store.JobHeld, Description: "@everyone <script>"},
	}
	got := summary.Render(run, jobs, "https://ci.example.org")
	for _, want := range []string{
		summary.Marker + " for commit 01234567", "Waiting for approval.",
		"| [rpm-build:fedora-rawhide-x86\\_64](https://ci.example.org/jobs/7) | success | built |",
		"testing-farm:x\\|y", "| pending |", "@\u200beveryone &lt;script&gt;",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "<script>") || strings.Contains(got, "@everyone") {
		t.Errorf("summary lets markup or a mention through:\n%s", got)
	}
}

func TestRenderConfigError(t *testing.T) {
	got := summary.Render(store.Run{SHA: "abc", State: store.RunConfigError, Message: "bad config"}, nil, "https://ci")
	if !strings.Contains(got, "bad config") || !strings.Contains(got, "until the configuration is fixed") {
		t.Fatalf("got:\n%s", got)
	}
}
