package e2e

import (
	"context"
	"testing"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/stacktest"
	"upbuild.dev/upbuild/internal/testdb"
)

// A serving node without workers, and an `upbuild worker` process that
// executes the jobs, sharing one PostgreSQL database.
func TestSeparateWorkerExecutesJobs(t *testing.T) {
	dbURL := testdb.Postgres(t)
	e := newEnvWith(t, dbURL, stacktest.Options{Configure: func(cfg *config.Config) { cfg.Workers = 0 }})
	p := e.Project("pkg", projectFiles)
	mr := e.openMR(p, "alice", "feature")
	// Nothing executes yet: the statuses stay pending.
	e.Eventually("pending statuses", func() (bool, string) {
		got := e.statuses(p.ID, mr.HeadSHA)
		return len(got) == 2 && got["rpm-build:fedora-rawhide-x86_64"] == "pending", ""
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.RunWorker(ctx, e.Config, e.Logger()) }()
	e.allFinal(p.ID, mr.HeadSHA, 2)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
}
