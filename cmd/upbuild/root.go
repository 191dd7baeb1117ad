package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"upbuild.dev/upbuild/internal/config"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/server"
	"upbuild.dev/upbuild/internal/token"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type app struct {
	getenv     func(string) string
	stdout     io.Writer
	stderr     io.Writer
	configPath string
}

func newRootCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	a := &app{getenv: getenv, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "upbuild",
		Short:         "Packit-style package CI for GitLab",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&a.configPath, "config", getenv("UPBUILD_CONFIG"),
		"YAML configuration file (default: none, embedded defaults; env UPBUILD_CONFIG)")
	root.AddCommand(a.serveCommand(), a.workerCommand(), a.migrateCommand(), a.versionCommand(), a.tokenCommand(), a.keyCommand())
	root.AddCommand(a.demoCommand(), a.configCommand())
	return root
}

func (a *app) config() (config.Config, error) {
	return config.Load(a.configPath, a.getenv)
}

func (a *app) logger(cfg config.Config) *slog.Logger {
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[cfg.LogLevel]
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := a.stderr.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(a.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(a.stderr, opts))
}

func (a *app) serveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the service: webhook intake, API and dashboard",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			log := a.logger(cfg)
			srv, err := server.New(cmd.Context(), cfg, log, a.getenv)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
			}
			if addr := a.getenv("UPBUILD_PPROF_ADDR"); addr != "" {
				// Profiling for operators and benchmarks, on a separate
				// listener (keep it on loopback).
				mux := http.NewServeMux()
				mux.HandleFunc("/debug/pprof/", pprof.Index)
				mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
				go func() { _ = http.ListenAndServe(addr, mux) }() //nolint:gosec // loopback debug listener
			}
			return srv.Serve(cmd.Context(), ln)
		},
	}
}

func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or update the database schema and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			st, err := server.OpenStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintf(a.stdout, "database %s at %s is up to date\n", st.Dialect(), st.Location())
			return nil
		},
	}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			v := version
			if info, ok := debug.ReadBuildInfo(); ok && v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
				v = info.Main.Version
			}
			fmt.Fprintf(a.stdout, "upbuild %s\n", v)
		},
	}
}

// tokenManager opens what token commands need.
func (a *app) tokenManager(ctx context.Context) (*hooktoken.Manager, func(), error) {
	cfg, err := a.config()
	if err != nil {
		return nil, nil, err
	}
	ring, err := server.LoadKeyring(cfg, a.logger(cfg))
	if err != nil {
		return nil, nil, err
	}
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	instances, err := server.NormalizedInstanceURLs(cfg)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return &hooktoken.Manager{Store: st, Keyring: ring, PublicURL: cfg.PublicURL, Instances: instances},
		func() { st.Close() }, nil
}

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Issue, revoke and list webhook tokens"}
	var group, signing bool
	issue := &cobra.Command{
		Use:   "issue <project or group URL>",
		Short: "Issue a webhook token for a project (or, with --group, a group and its subgroups)",
		Example: "  upbuild token issue https://gitlab.gnome.org/GNOME/gtk\n" +
			"  upbuild token issue --group https://gitlab.freedesktop.org/mesa",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, closeFn, err := a.tokenManager(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			scope, err := m.Scope(args[0], group)
			if err != nil {
				return err
			}
			out, err := m.Issue(cmd.Context(), scope, signing, "cli")
			if err != nil {
				return err
			}
			what := "project " + scope.Path
			if group {
				what = "group " + scope.Path + " and every subgroup and project below it"
			}
			settings := scope.Instance + "/" + scope.Path + "/-/hooks"
			if group {
				settings = "each project's Settings > Webhooks"
			}
			fmt.Fprintf(a.stdout, "Webhook token for %s on %s\n\n", what, scope.Instance)
			fmt.Fprintf(a.stdout, "In GitLab, open %s and add a webhook:\n", settings)
			fmt.Fprintf(a.stdout, "  URL:           %s\n", out.WebhookURL)
			fmt.Fprintf(a.stdout, "  Secret token:  %s\n", out.Token)
			if out.SigningSecret != "" {
				fmt.Fprintf(a.stdout, "  Signing token: %s\n", out.SigningSecret)
				fmt.Fprintf(a.stdout, "  (deliveries without a valid signature are now refused)\n")
			}
			fmt.Fprintf(a.stdout, "  Trigger:       %s\n", strings.Join(hooktoken.Events, ", "))
			fmt.Fprintf(a.stdout, "  SSL verification: enabled\n\n")
			fmt.Fprintf(a.stdout, "The token is shown only now; upbuild keeps no copy. Revoke it with:\n  upbuild token revoke %s\n", args[0])
			return nil
		},
	}
	issue.Flags().BoolVar(&group, "group", false, "the URL is a group; the token covers every project and subgroup in it")
	issue.Flags().BoolVar(&signing, "signing", false, "also issue a signing token (whsec_...) and require signed deliveries")
	var revokeGroup bool
	revoke := &cobra.Command{
		Use:   "revoke <project or group URL>",
		Short: "Invalidate every token issued so far for a project or group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, closeFn, err := a.tokenManager(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			scope, err := m.Scope(args[0], revokeGroup)
			if err != nil {
				return err
			}
			n, err := m.Revoke(cmd.Context(), scope)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "revoked %d token(s) for %s on %s\n", n, scope.Path, scope.Instance)
			return nil
		},
	}
	revoke.Flags().BoolVar(&revokeGroup, "group", false, "the URL is a group")
	list := &cobra.Command{
		Use:   "list",
		Short: "List issued tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, closeFn, err := a.tokenManager(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			recs, err := m.Store.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tINSTANCE\tSCOPE\tPATH\tSIGNED\tKEY\tISSUED\tSTATE\tPROJECT IDS")
			for _, r := range recs {
				state := "active"
				if r.RevokedAt != nil {
					state = "revoked " + r.RevokedAt.Format(time.RFC3339)
				}
				ids := make([]string, len(r.ProjectIDs))
				for i, id := range r.ProjectIDs {
					ids[i] = fmt.Sprint(id)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%v\t%s\t%s\t%s\t%s\n", r.ID, r.Instance, r.ScopeKind, r.ScopePath,
					r.Signing, r.KeyID, r.CreatedAt.Format(time.RFC3339), state, strings.Join(ids, ","))
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(issue, revoke, list)
	return cmd
}

func (a *app) keyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage the service signing keys"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Make a new primary key; the old primary stays valid as the previous key",
		Long: "Rotation keeps two keys: tokens issued with either still verify. Restart the service to load\n" +
			"the new key, re-issue tokens at leisure, and rotate once more to retire the old key.",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if err := server.PrepareDataDir(cfg.DataDir); err != nil {
				return err
			}
			k, err := token.RotateKeyringFile(cfg.KeyFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "new primary key %s in %s; restart upbuild to use it\n", k.ID, cfg.KeyFile)
			return nil
		},
	})
	return cmd
}
