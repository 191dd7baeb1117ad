package main

import (
	"github.com/spf13/cobra"

	"upbuild.dev/upbuild/internal/server"
)

func (a *app) workerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run job workers only, for extra machines sharing a PostgreSQL database",
		Long: "worker executes queued jobs and records their outcome; it serves no HTTP. Run `upbuild serve`\n" +
			"somewhere with the same database: it plans runs and reports to GitLab. On SIGTERM the worker\n" +
			"stops taking jobs, gives running ones 20 s, then hands them back to the queue.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			return server.RunWorker(cmd.Context(), cfg, a.logger(cfg))
		},
	}
}
