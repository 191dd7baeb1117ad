package benchkit_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"upbuild.dev/upbuild/internal/benchkit"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

const packitYAML = `specfile_path: hello.spec
upstream_package_name: hello
downstream_package_name: hello
jobs:
  - job: copr_build
    trigger: commit
    targets: [fedora-rawhide-x86_64]
`

// TestServiceTakesTheSimulatorsDeliveries starts the simulator and upbuild
// on each engine, connects a project with an issued token and checks that
// upbuild answers its push delivery with 202.
func TestServiceTakesTheSimulatorsDeliveries(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			serverURL := ""
			if engine == "postgres" {
				serverURL = os.Getenv(testdb.EnvPostgresURL)
				if serverURL == "" {
					t.Fatalf("%s is not set: run the README's test command, which starts PostgreSQL", testdb.EnvPostgresURL)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			tmp := t.TempDir()
			db, err := benchkit.PrepareDatabase(ctx, serverURL, filepath.Join(tmp, "data"), "benchkit_test_")
			if err != nil {
				t.Fatal(err)
			}
			if db.Engine != engine {
				t.Errorf("engine %q, want %q", db.Engine, engine)
			}
			sim, err := benchkit.StartSimulator(ctx, filepath.Join(tmp, "repos"), nil)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := benchkit.StartService(ctx, benchkit.ServiceConfig{
				Instance: sim.URL, BotToken: sim.Seeded.Bot.Token, DataDir: filepath.Join(tmp, "data"),
				DatabaseURL: db.URL, LogPath: filepath.Join(tmp, "upbuild.log"), LogLevel: slog.LevelWarn,
			})
			if err != nil {
				t.Fatal(errors.Join(err, sim.Stop(), db.Drop(ctx)))
			}

			p, err := sim.AddProject(ctx, gitlabsim.ProjectSpec{Namespace: "demo", Path: "bench", Visibility: gitlabsim.Public,
				DefaultBranch: "main", Files: benchkit.HelloFiles(packitYAML)})
			if err != nil {
				t.Fatal(err)
			}
			issued, err := svc.IssueWebhookToken(ctx, benchkit.TokenRequest{URL: p.WebURL, IssuedBy: "benchkit test"})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(issued.WebhookURL, svc.URL+"/") {
				t.Errorf("webhook URL %s is not on the service at %s", issued.WebhookURL, svc.URL)
			}
			if _, err := sim.AddHook(p.ID, gitlabsim.HookSpec{URL: issued.WebhookURL, Token: issued.Token}); err != nil {
				t.Fatal(err)
			}
			if _, err := sim.PushCommits(ctx, p.ID, "main", sim.Seeded.Maintainer.Username, gitlabsim.CommitSpec{
				Message: "Change", Changes: []gitlabsim.FileChange{{Path: "hello.sh", Content: "#!/bin/sh\necho hi\n"}}}); err != nil {
				t.Fatal(err)
			}
			if err := sim.WaitDeliveries(ctx); err != nil {
				t.Fatal(err)
			}
			var pushes []gitlabsim.Delivery
			for _, d := range sim.Deliveries() {
				if d.Event == "Push Hook" {
					pushes = append(pushes, d)
				}
			}
			if len(pushes) != 1 || pushes[0].StatusCode != http.StatusAccepted {
				t.Errorf("push deliveries %+v, want one answered 202", pushes)
			}

			// The service's own store already holds the delivery.
			if n, err := svc.Store().CountDeliveries(ctx); err != nil || n != 1 {
				t.Errorf("service store: %d deliveries (%v), want 1", n, err)
			}

			logged, err := svc.Stop(ctx)
			if err != nil {
				t.Error(err)
			}
			for _, line := range logged {
				if strings.Contains(line, `"level":"ERROR"`) {
					t.Errorf("upbuild logged an error: %s", line)
				}
			}
			if err := sim.Stop(); err != nil {
				t.Error(err)
			}
			// The delivery was stored in the benchmark's database.
			st, err := store.Open(ctx, db.URL)
			if err != nil {
				t.Fatal(err)
			}
			n, err := st.CountDeliveries(ctx)
			if cerr := st.Close(); cerr != nil {
				t.Error(cerr)
			}
			if err != nil || n != 1 {
				t.Errorf("%d deliveries stored (%v), want 1", n, err)
			}
			if err := db.Drop(ctx); err != nil {
				t.Error(err)
			}
			if engine == "postgres" {
				if conn, err := pgx.Connect(ctx, db.URL); err == nil {
					t.Errorf("database %s still there after Drop", db.Where)
					_ = conn.Close(ctx)
				}
			}
		})
	}
}
