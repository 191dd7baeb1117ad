package intake_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"upbuild.dev/upbuild/internal/loadgen"
	"upbuild.dev/upbuild/internal/testdb"
)

// BenchmarkIntake drives the whole handler (token, parse, durable grouped
// save) in-process over loopback HTTP, for profiling. The end-to-end figure
// that counts is bench/intake's, which runs the real binary.
func BenchmarkIntake(b *testing.B) {
	h := newBenchHarness(b)
	mix, err := loadgen.StandardMix(fixtures, func(u string) (string, error) { return h.issue(u, false, false).Token, nil })
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			tpl := mix[int(i)%len(mix)]
			a := h.deliver(tpl.Event, tpl.Body, map[string]string{"X-Gitlab-Token": tpl.Token, "Idempotency-Key": fmt.Sprint("k", i)})
			if a.Code != 202 {
				b.Errorf("%d %s", a.Code, a.Raw)
				return
			}
		}
	})
}

func newBenchHarness(b *testing.B) *harness {
	h := newHarnessTB(b, testdb.SQLite(b), "http://example.com")
	return h
}
