// Command soak drives upbuild under a steady mix of GitLab events while a
// chaos loop SIGKILLs and restarts it, restarts PostgreSQL and makes the
// GitLab simulator fail, then checks from the simulator's own records that
// nothing was lost, duplicated or left behind.
//
// The simulator runs in this process, which is never killed; upbuild runs
// as a child process (`upbuild serve`, workers in-process) on loopback, so a
// SIGKILL hits upbuild only. The long soak, 10 minutes on SQLite:
//
//	go run ./bench/soak
//
// and on a throwaway PostgreSQL cluster that the soak starts with
// scripts/postgres.sh in DIR and restarts during the chaos:
//
//	go run ./bench/soak -postgres-dir /tmp/soak-pg
//
// The 60-second smoke mode (run by internal/soaktest): go run ./bench/soak -smoke
//
// At the end it prints, per check, "check NAME: ok|FAIL (details)", and
// exits 1 when a check failed or the run could not be set up. -seed makes
// the event mix and the chaos schedule repeatable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// options configure one soak.
type options struct {
	duration     time.Duration // load and chaos
	settle       time.Duration // bound on the wait for everything to finish after the load
	rate         float64       // events a second
	projects     int
	seed         uint64
	upbuild      string // binary; built from this module when empty
	database     string // postgres URL; SQLite in the data dir when empty
	postgresDir  string // start a PostgreSQL cluster here and restart it during the chaos
	postgresPort int
	chaosEvery   time.Duration // mean pause between chaos actions
	workDir      string        // kept for inspection when set; a temporary dir otherwise
	out          io.Writer
}

func main() {
	opts := options{out: os.Stdout}
	smoke := flag.Bool("smoke", false, "smoke mode: 40 s of load and chaos, then up to 50 s to settle (a status a killed upbuild was sending is held 35 s)")
	flag.DurationVar(&opts.duration, "duration", 10*time.Minute, "how long the load and the chaos run")
	flag.DurationVar(&opts.settle, "settle", 2*time.Minute, "how long to wait after the load for every delivery and job to finish")
	flag.Float64Var(&opts.rate, "rate", 4, "events a second (MRs, pushes, comments, duplicate deliveries)")
	flag.IntVar(&opts.projects, "projects", 4, "projects the events are spread over")
	flag.Uint64Var(&opts.seed, "seed", uint64(time.Now().UnixNano()), "random seed for the event mix and the chaos schedule")
	flag.StringVar(&opts.upbuild, "upbuild", "", "upbuild binary (default: go build ./cmd/upbuild)")
	flag.StringVar(&opts.database, "database", "", "PostgreSQL URL of an empty database (default: SQLite in the data dir); it is not restarted")
	flag.StringVar(&opts.postgresDir, "postgres-dir", "", "start a throwaway PostgreSQL in this directory with scripts/postgres.sh and restart it during the chaos")
	flag.IntVar(&opts.postgresPort, "postgres-port", 55441, "port for the -postgres-dir cluster")
	flag.DurationVar(&opts.chaosEvery, "chaos-every", 8*time.Second, "mean pause between chaos actions")
	flag.StringVar(&opts.workDir, "work-dir", "", "keep logs and data here (default: a temporary dir, removed after a passing run)")
	flag.Parse()
	if *smoke {
		opts.duration, opts.settle, opts.chaosEvery = 40*time.Second, 50*time.Second, 4*time.Second
	}
	if flag.NArg() > 0 || opts.duration <= 0 || opts.rate <= 0 || opts.projects <= 0 || opts.chaosEvery <= 0 {
		fmt.Fprintln(os.Stderr, "bench/soak: want positive -duration, -rate, -projects and -chaos-every, and no arguments")
		flag.Usage()
		os.Exit(2)
	}
	if opts.database != "" && opts.postgresDir != "" {
		fmt.Fprintln(os.Stderr, "bench/soak: -database and -postgres-dir exclude each other")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Set-up and shutdown take seconds; the bound only guards against a hang.
	ctx, cancel := context.WithTimeout(ctx, opts.duration+opts.settle+3*time.Minute)
	defer cancel()
	err := run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/soak:", err)
		cancel()
		stop()
		os.Exit(1)
	}
}

// errChecksFailed means the soak ran but some final check failed.
var errChecksFailed = errors.New("some checks failed")

// run prepares the work directory and the database, runs the soak and
// removes what it made unless asked to keep it or a check failed.
func run(ctx context.Context, opts options) (err error) {
	dir := opts.workDir
	keep := dir != ""
	if dir == "" {
		if dir, err = os.MkdirTemp("", "upbuild-soak-"); err != nil {
			return fmt.Errorf("work dir: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	defer func() {
		if keep || err != nil {
			fmt.Fprintf(opts.out, "logs and data kept in %s\n", dir)
			return
		}
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove %s: %w", dir, rerr))
		}
	}()
	if opts.upbuild == "" {
		opts.upbuild = filepath.Join(dir, "upbuild")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", opts.upbuild, "upbuild.dev/upbuild/cmd/upbuild").CombinedOutput()
		if err != nil {
			return fmt.Errorf("build upbuild: %w\n%s", err, out)
		}
	}
	db := database{url: filepath.Join(dir, "data", "upbuild.db"), engine: "sqlite"}
	switch {
	case opts.database != "":
		db = database{url: opts.database, engine: "postgres"}
	case opts.postgresDir != "":
		pg := &postgres{dir: opts.postgresDir, port: opts.postgresPort}
		url, err := pg.start(ctx)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, pg.stop(context.WithoutCancel(ctx))) }()
		db = database{url: url, engine: "postgres", restart: pg.restart}
	}
	s, err := newSoak(ctx, opts, dir, db)
	if err != nil {
		return err
	}
	rep, err := s.run(ctx)
	rep.print(opts.out)
	if err != nil {
		return err
	}
	if !rep.passed() {
		return errChecksFailed
	}
	return nil
}

// database is where upbuild keeps its state.
type database struct {
	url    string
	engine string
	// restart stops and starts the database server; nil when the soak
	// does not own it.
	restart func(ctx context.Context, down time.Duration) error
}
