package main

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestShortRunOnSQLite drives a tiny load through the real listeners and
// checks the accounting a reader of the report relies on.
func TestShortRunOnSQLite(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("the GitLab simulator needs git")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := options{duration: time.Second, rate: 4, projects: 2, settle: 20 * time.Second, progress: io.Discard}

	res, err := run(ctx, opts)
	if err != nil && !errors.Is(err, ErrMissingPending) {
		t.Fatal(err)
	}
	if !res.ran || res.engine != "sqlite" {
		t.Fatalf("ran = %v on %q, want a run on sqlite", res.ran, res.engine)
	}
	if res.planned != 4 || res.Opened != 4 {
		t.Errorf("planned %d, opened %d; want 4 and 4", res.planned, res.Opened)
	}
	if res.OpenDeliveries != 4 || res.Answered202 != 4 || res.PushAnswered202 != 4 {
		t.Errorf("open deliveries answered 202: %d of %d, pushes %d; want 4 of 4 and 4",
			res.Answered202, res.OpenDeliveries, res.PushAnswered202)
	}
	if res.AllFinal != 4 || len(res.ToFinal) != 4 {
		t.Errorf("all final: %d MRs, %d latencies; want 4 and 4", res.AllFinal, len(res.ToFinal))
	}
	if res.WithPending+len(res.MissingPending) != 4 || len(res.ToPending) != res.WithPending {
		t.Errorf("pending: %d with, %d without, %d latencies; want them to add up to 4",
			res.WithPending, len(res.MissingPending), len(res.ToPending))
	}
	if (err != nil) != (len(res.MissingPending) > 0) {
		t.Errorf("err = %v with %d MRs missing their pending status", err, len(res.MissingPending))
	}

	var out strings.Builder
	if err := printReport(&out, "go run ./bench/latency -duration=1s", res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"command    go run ./bench/latency -duration=1s",
		"database   sqlite",
		"MRs opened                          4\n",
		"MR deliveries answered 202          4 of 4 sent",
		"202 → first pending",
		"| 202 → all statuses final | 4 |",
		"POST /api/v4/projects/:id/statuses/:id",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
