package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// postgres is a throwaway cluster the soak owns, started and stopped with
// the module's scripts/postgres.sh.
type postgres struct {
	dir  string
	port int
}

// script finds scripts/postgres.sh at the root of the module being built.
func (p *postgres) script(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		return "", fmt.Errorf("find scripts/postgres.sh: run the soak inside the upbuild module")
	}
	return filepath.Join(filepath.Dir(gomod), "scripts", "postgres.sh"), nil
}

func (p *postgres) start(ctx context.Context) (string, error) {
	script, err := p.script(ctx)
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, script, "start", p.dir, strconv.Itoa(p.port)).Output()
	if err != nil {
		return "", fmt.Errorf("start PostgreSQL in %s: %w", p.dir, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func (p *postgres) stop(ctx context.Context) error {
	script, err := p.script(ctx)
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, script, "stop", p.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("stop PostgreSQL in %s: %w: %s", p.dir, err, out)
	}
	return nil
}

// restart stops the cluster (fast: clients are cut off), keeps it down for
// a while and starts it again.
func (p *postgres) restart(ctx context.Context, down time.Duration) error {
	if err := p.stop(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-time.After(down):
	}
	_, err := p.start(context.WithoutCancel(ctx))
	return err
}
