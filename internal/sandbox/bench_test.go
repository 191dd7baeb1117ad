package sandbox_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"upbuild.dev/upbuild/internal/sandbox"
)

// BenchmarkRunTrue measures what one sandboxed command costs before it
// does anything: `true` in a fresh sandbox, start to finish.
func BenchmarkRunTrue(b *testing.B) {
	sb, err := sandbox.New(sandbox.Config{UIDBase: 232000, UIDCount: 8})
	if err != nil {
		b.Fatal(err)
	}
	work := b.TempDir()
	for _, d := range []string{filepath.Dir(work), work} {
		if err := os.Chmod(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	for b.Loop() {
		res, err := sb.Run(ctx, sandbox.Cmd{Args: []string{"true"}, WorkDir: work})
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("true: %+v, %v", res, err)
		}
	}
}
