// Command intake benchmarks webhook intake over loopback.
//
// It starts a real `upbuild serve` (SQLite by default, PostgreSQL with
// -database postgres://...), issues tokens through the CLI, and sends GitLab's
// real payloads (a fixed mix of MR, push and note events, each with a unique
// Idempotency-Key) from 64 connections for 30 s. In the same run it measures
// a bare net/http handler that reads the body and answers 202, and prints
// the ratio between the two.
//
//	go run ./bench/intake                       # SQLite
//	go run ./bench/intake -database postgres://postgres@127.0.0.1:55433/postgres
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"upbuild.dev/upbuild/internal/loadgen"
	"upbuild.dev/upbuild/internal/store"
)

func main() {
	var (
		conns    = flag.Int("connections", 64, "concurrent connections")
		duration = flag.Duration("duration", 30*time.Second, "how long each measurement runs")
		database = flag.String("database", "", "database URL (default: SQLite in a temporary data dir)")
		fixtures = flag.String("fixtures", "internal/forge/gitlab/testdata/webhooks", "GitLab's sample payloads")
		bareOnly = flag.Bool("bare-server", false, "internal: run the bare handler on -listen")
		listen   = flag.String("listen", "", "internal: address for -bare-server")
	)
	flag.Parse()
	if *bareOnly {
		bareServer(*listen)
		return
	}
	if err := run(*conns, *duration, *database, *fixtures); err != nil {
		fmt.Fprintln(os.Stderr, "bench/intake:", err)
		os.Exit(1)
	}
}

// bareServer is the yardstick: read the body, answer 202, nothing else.
func bareServer(addr string) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status":"accepted"}` + "\n"))
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = http.Serve(ln, h)
}

func run(conns int, duration time.Duration, database, fixtures string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "upbuild-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "upbuild")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/upbuild").CombinedOutput(); err != nil {
		return fmt.Errorf("build upbuild: %v: %s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	// The yardstick first, in its own process, like the real service.
	bareAddr, err := loadgen.FreeAddr()
	if err != nil {
		return err
	}
	bare := exec.Command(self, "-bare-server", "-listen", bareAddr)
	if err := bare.Start(); err != nil {
		return err
	}
	defer bare.Process.Kill() //nolint:errcheck
	waitListening(bareAddr)
	bareMix := []loadgen.Template{{Event: "Push Hook", Token: "x", Body: mustRead(filepath.Join(fixtures, "push.json"))}}
	bareRep, err := loadgen.Run(ctx, loadgen.Config{URL: "http://" + bareAddr + "/", Connections: conns, Duration: duration, Mix: bareMix, KeyPrefix: "bare"})
	if err != nil {
		return err
	}
	_ = bare.Process.Kill()

	dbURL := database
	engine := "sqlite"
	if dbURL == "" {
		dbURL = filepath.Join(dir, "data", "upbuild.db")
	} else if store.IsPostgresURL(dbURL) {
		engine = "postgres"
	}
	addr, err := loadgen.FreeAddr()
	if err != nil {
		return err
	}
	svc := &loadgen.Service{Binary: bin, Listen: addr, Log: filepath.Join(dir, "upbuild.log"), Env: []string{
		"UPBUILD_DATA_DIR=" + filepath.Join(dir, "data"), "UPBUILD_DATABASE_URL=" + dbURL,
		"UPBUILD_INSTANCES=http://example.com", "UPBUILD_LOG_LEVEL=warn", "UPBUILD_WORKERS=" + os.Getenv("BENCH_WORKERS"),
	}}
	mix, err := loadgen.StandardMix(fixtures, func(u string) (string, error) { return svc.IssueToken(ctx, u) })
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer svc.Stop() //nolint:errcheck
	before, err := countRows(ctx, dbURL)
	if err != nil {
		return err
	}
	rep, err := loadgen.Run(ctx, loadgen.Config{URL: "http://" + addr + "/api/webhooks/gitlab", Connections: conns,
		Duration: duration, Mix: mix, KeyPrefix: fmt.Sprint("bench-", time.Now().UnixNano())})
	if err != nil {
		return err
	}
	rss, err := loadgen.PeakRSS(svc.Pid())
	if err != nil {
		return err
	}
	if err := svc.Stop(); err != nil {
		return err
	}
	after, err := countRows(ctx, dbURL)
	if err != nil {
		return err
	}

	fmt.Printf("intake benchmark: %s, %d connections, %s per measurement, mix MR:push:note = 2:2:1\n", engine, conns, duration)
	fmt.Printf("  bare net/http handler: %8.0f req/s   p50 %6.2f ms   p99 %6.2f ms\n",
		bareRep.PerSecond(), ms(bareRep.Percentile(50)), ms(bareRep.Percentile(99)))
	fmt.Printf("  upbuild (durable):     %8.0f req/s   p50 %6.2f ms   p99 %6.2f ms\n",
		rep.PerSecond(), ms(rep.Percentile(50)), ms(rep.Percentile(99)))
	fmt.Printf("  ratio upbuild / bare:  %.2f\n", rep.PerSecond()/bareRep.PerSecond())
	fmt.Printf("  answers: %v, transport errors: %d\n", rep.Answered, rep.Errors)
	fmt.Printf("  rows stored: %d (202 answers: %d)\n", after-before, rep.Answered[http.StatusAccepted])
	fmt.Printf("  upbuild peak RSS (VmHWM): %.1f MB\n", float64(rss)/1e6)
	if after-before != rep.Answered[http.StatusAccepted] {
		return fmt.Errorf("stored %d rows but answered 202 to %d deliveries", after-before, rep.Answered[http.StatusAccepted])
	}
	return nil
}

func countRows(ctx context.Context, dbURL string) (int64, error) {
	s, err := store.Open(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return 0, err
	}
	return s.CountDeliveries(ctx)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return b
}

func waitListening(addr string) {
	for range 500 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
