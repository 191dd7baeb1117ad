// Command gitlabsim runs the GitLab simulator with a seed project, for
// poking at it by hand (curl, git clone, the GitLab client).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gitlabsim:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8929", "address to listen on")
	dir := flag.String("dir", "", "directory for the bare repositories (default: a new temporary directory)")
	hookURL := flag.String("hook", "", "webhook URL to add to the seed project (all events)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *dir == "" {
		tmp, err := os.MkdirTemp("", "gitlabsim-")
		if err != nil {
			return fmt.Errorf("temporary directory: %w", err)
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		*dir = tmp
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sim := gitlabsim.New(gitlabsim.Options{Dir: *dir, Logger: logger})
	base, err := sim.Start(ctx, *addr)
	if err != nil {
		return err
	}
	seed, err := gitlabsim.Seed(ctx, sim)
	if err != nil {
		return err
	}
	if *hookURL != "" {
		if _, err := sim.AddHook(seed.Project.ID, gitlabsim.HookSpec{
			URL: *hookURL, TagPushEvents: true, MergeRequestsEvents: true, NoteEvents: true, ReleasesEvents: true,
		}); err != nil {
			return err
		}
	}
	// The tokens are printed on purpose: this is a local toy instance and the
	// person who started it needs them to log in.
	fmt.Printf("GitLab simulator at %s (repositories in %s)\n", base, *dir)
	fmt.Printf("project %s (id %d), clone %s\n", seed.Project.PathWithNamespace, seed.Project.ID, seed.Project.HTTPURLToRepo)
	fmt.Printf("maintainer %s token %s\n", seed.Maintainer.Username, seed.Maintainer.Token)
	fmt.Printf("bot %s token %s\n", seed.Bot.Username, seed.Bot.Token)
	<-ctx.Done()
	return nil
}
