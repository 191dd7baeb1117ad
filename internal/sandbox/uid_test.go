package sandbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/sandbox"
)

// Two sandboxes with the same UID range (as two upbuild processes on one
// host would have) never run jobs under the same UID at the same time.
func TestSandboxesOnOneHostNeverShareAUID(t *testing.T) {
	cfg := sandbox.Config{UIDBase: 232000, UIDCount: 2}
	a, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	uids := make([]int, 2)
	errs := make([]error, 2)
	for i, sb := range []*sandbox.Sandbox{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := sb.Run(ctx, sandbox.Cmd{Args: []string{"sleep", "1"}, WorkDir: reachableDir(t)})
			uids[i], errs[i] = res.UID, err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if uids[0] == uids[1] {
		t.Fatalf("both sandboxes ran their job as UID %d at the same time", uids[0])
	}
}
