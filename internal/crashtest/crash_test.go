package crashtest

import (
	"context"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/loadgen"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

const fixtures = "../forge/gitlab/testdata/webhooks"

func buildUpbuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "upbuild")
	out, err := exec.Command("go", "build", "-o", bin, "upbuild.dev/upbuild/cmd/upbuild").CombinedOutput()
	if err != nil {
		t.Fatalf("build upbuild: %v\n%s", err, out)
	}
	return bin
}

func TestAcceptedDeliveriesSurviveSIGKILL(t *testing.T) {
	bin := buildUpbuild(t)
	testdb.Each(t, func(t *testing.T, dbURL string) {
		dir := t.TempDir()
		addr, err := loadgen.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		svc := &loadgen.Service{Binary: bin, Listen: addr, Log: filepath.Join(dir, "upbuild.log"), Env: []string{
			"UPBUILD_DATA_DIR=" + filepath.Join(dir, "data"), "UPBUILD_DATABASE_URL=" + dbURL,
			"UPBUILD_INSTANCES=http://example.com",
		}}
		ctx := context.Background()
		mix, err := loadgen.StandardMix(fixtures, func(u string) (string, error) { return svc.IssueToken(ctx, u) })
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Kill() })

		genCtx, stopGen := context.WithCancel(ctx)
		var rep loadgen.Report
		var genErr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Resend: after a lost answer the same delivery is sent again
			// with the same Idempotency-Key, as GitLab's "Resend" does.
			rep, genErr = loadgen.Run(genCtx, loadgen.Config{URL: "http://" + addr + "/api/webhooks/gitlab",
				Connections: 16, Mix: mix, KeyPrefix: "crash", Resend: true, ErrorPause: 20 * time.Millisecond})
		}()
		const kills = 5
		for range kills {
			time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
			if err := svc.Kill(); err != nil {
				t.Fatalf("SIGKILL: %v", err)
			}
			time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
			if err := svc.Start(ctx); err != nil {
				t.Fatalf("restart: %v", err)
			}
		}
		time.Sleep(300 * time.Millisecond)
		stopGen()
		wg.Wait()
		if genErr != nil {
			t.Fatal(genErr)
		}
		if err := svc.Stop(); err != nil {
			t.Fatal(err)
		}

		stored := storedKeys(t, dbURL)
		for key, n := range stored {
			if n != 1 {
				t.Errorf("Idempotency-Key %s is stored %d times", key, n)
			}
		}
		missing := 0
		for _, key := range rep.AcceptedKey {
			if stored[key] != 1 {
				missing++
				if missing < 10 {
					t.Errorf("delivery %s got a 202 but is not in the store", key)
				}
			}
		}
		if len(rep.AcceptedKey) < 100 {
			t.Fatalf("only %d deliveries were accepted; the test did not exercise intake", len(rep.AcceptedKey))
		}
		if rep.Errors == 0 {
			t.Fatalf("no request failed: the kills did not hit the load")
		}
		t.Logf("%d kills; generator: %d sent, %d answered 202 (incl. duplicates of resends), %d lost answers; store: %d rows; missing: %d",
			kills, rep.Sent, len(rep.AcceptedKey), rep.Errors, len(stored), missing)
	})
}

// storedKeys counts the stored deliveries by Idempotency-Key.
func storedKeys(t *testing.T, dbURL string) map[string]int {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string]int{}
	var before int64
	for {
		page, err := s.Deliveries(ctx, store.DeliveryFilter{BeforeID: before, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		for _, d := range page {
			out[d.Headers["Idempotency-Key"]]++
		}
		before = page[len(page)-1].ID
	}
}
