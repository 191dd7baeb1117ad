package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/demo"
)

func (a *app) demoCommand() *cobra.Command {
	opts := demo.Options{}
	logLevel := "warn"
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Try upbuild against a local GitLab simulator: open a merge request and watch its statuses",
		Long: "demo starts the GitLab simulator and upbuild on 127.0.0.1, connects the simulator's sample\n" +
			"project demo/hello with a webhook, pushes a branch and opens a merge request, then shows each\n" +
			"commit status upbuild sets and each comment its bot writes, as they happen, with the URLs to\n" +
			"look at. It stops when every status of the merge request is final (or at --timeout) and prints\n" +
			"a summary; --keep leaves both servers running until Ctrl-C.\n\n" +
			"The demo uses none of your configuration (--config, UPBUILD_*): its database lives in a\n" +
			"temporary directory unless --data-dir says otherwise. It needs git.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validLogLevel(logLevel); err != nil {
				return err
			}
			cfg := config.Defaults()
			cfg.LogLevel = logLevel
			opts.Out = a.stdout
			opts.Logger = a.logger(cfg)
			return demo.Run(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.SimAddr, "sim-addr", "127.0.0.1:0", "address of the GitLab simulator; port 0 picks a free one")
	f.StringVar(&opts.Addr, "addr", "127.0.0.1:0", "address of upbuild; port 0 picks a free one")
	f.StringVar(&opts.DataDir, "data-dir", "", "upbuild's data directory (default: a temporary one, removed at the end)")
	f.DurationVar(&opts.Timeout, "timeout", demo.DefaultTimeout, "how long to wait for every status to be final")
	f.BoolVar(&opts.Keep, "keep", false, "keep both servers running after the summary, until Ctrl-C")
	f.StringVar(&logLevel, "log-level", logLevel, "upbuild's own log on stderr: debug, info, warn or error")
	return cmd
}

func validLogLevel(level string) error {
	switch level {
	case "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
}
