package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/plan"
	"upbuild.dev/upbuild/internal/server"
)

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with a project's Packit configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check [FILE or DIRECTORY]",
		Short: "Validate a .packit.yaml with the service's own parser and show the jobs it defines",
		Long: "check reads a Packit config the way the service does at a commit: the directory's name is the\n" +
			"repository name and its top-level files are the repository's files. Without an argument it\n" +
			"looks in the current directory for .packit.yaml, .packit.yml, packit.yaml or packit.yml.\n" +
			"Errors are printed as FILE:LINE:COLUMN: message and make the command fail. Otherwise it\n" +
			"prints the jobs per trigger with their resolved targets and commit status names. Target\n" +
			"aliases come from the built-in table, or from the operator's table when --config names one.",
		Example: "  upbuild config check\n  upbuild config check path/to/project/.packit.yaml",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			arg := "."
			if len(args) == 1 {
				arg = args[0]
			}
			return a.checkPackitConfig(arg)
		},
	})
	return cmd
}

// checkPackitConfig loads the config at path (a file, or a directory to
// search) and prints the errors or the effective jobs.
func (a *app) checkPackitConfig(path string) error {
	aliases := packitcfg.DefaultAliasTable()
	if a.configPath != "" {
		cfg, err := a.config()
		if err != nil {
			return err
		}
		if aliases, err = server.Aliases(cfg); err != nil {
			return err
		}
	}
	file, err := locatePackitConfig(a.stdout, path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(file)
	names, err := topLevelFiles(dir)
	if err != nil {
		return err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read Packit config: %w", err)
	}
	cfg, err := packitcfg.Load(file, data, packitcfg.Options{RepoName: filepath.Base(absDir), RepoFiles: names})
	if err != nil {
		problems := packitcfg.Errors(err)
		if len(problems) == 0 {
			return fmt.Errorf("%s: %w", file, err)
		}
		for _, p := range problems {
			fmt.Fprintln(a.stdout, p.Error())
		}
		if len(problems) == 1 {
			return fmt.Errorf("%s is not valid: 1 error", file)
		}
		return fmt.Errorf("%s is not valid: %d errors", file, len(problems))
	}
	printJobs(a.stdout, file, cfg, aliases)
	return nil
}

// locatePackitConfig returns path itself when it is a file, or the config
// file the service would pick in the directory path, warning like the
// service does when there are several.
func locatePackitConfig(w io.Writer, path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("find the Packit config: %w", err)
	}
	if !info.IsDir() {
		return path, nil
	}
	names, err := topLevelFiles(path)
	if err != nil {
		return "", err
	}
	name, warning := packitcfg.FindConfigFile(names)
	if warning != "" {
		fmt.Fprintln(w, "warning:", warning)
	}
	if name == "" {
		return "", fmt.Errorf("no Packit config in %s (looked for .packit.yaml, .packit.yml, packit.yaml, packit.yml)", path)
	}
	if path == "." {
		return name, nil
	}
	return filepath.Join(path, name), nil
}

// topLevelFiles lists the names of the files directly in dir, like the
// forge's top-level listing the service uses.
func topLevelFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// jobGroup is the jobs of one trigger (and, for commits, one branch
// filter), in file order.
type jobGroup struct {
	title string
	ref   string // what stands for the branch or tag in status names
	jobs  []*packitcfg.Job
}

// triggerOrder is the order groups are printed in.
var triggerOrder = []packitcfg.Trigger{packitcfg.TriggerPullRequest, packitcfg.TriggerCommit,
	packitcfg.TriggerRelease, packitcfg.TriggerKojiBuild, packitcfg.TriggerIgnore}

// groupJobs sorts job views into groups by trigger and, for commit jobs,
// branch filter.
func groupJobs(cfg *packitcfg.Config) []*jobGroup {
	var groups []*jobGroup
	byKey := map[string]*jobGroup{}
	for _, trigger := range triggerOrder {
		for i := range cfg.Jobs {
			job := &cfg.Jobs[i]
			if job.Trigger != trigger {
				continue
			}
			key, g := string(trigger), &jobGroup{title: string(trigger)}
			switch trigger {
			case packitcfg.TriggerCommit:
				key += "\x00" + job.Branch
				g.title, g.ref = "commit (default branch)", "<default-branch>"
				if job.Branch != "" {
					g.title, g.ref = "commit (branch "+job.Branch+")", branchForStatus(job.Branch)
				}
			case packitcfg.TriggerRelease:
				g.ref = "<tag>"
			case packitcfg.TriggerIgnore:
				g.title = "ignore (never triggered)"
			}
			if existing, ok := byKey[key]; ok {
				g = existing
			} else {
				byKey[key] = g
				groups = append(groups, g)
			}
			g.jobs = append(g.jobs, job)
		}
	}
	return groups
}

// literalBranch matches a branch pattern that names one branch (once an
// anchoring ^ and $ are removed).
var literalBranch = regexp.MustCompile(`^[A-Za-z0-9_./-]+$`)

// branchForStatus is the branch a commit job's status names show: the
// branch itself when the pattern names one, a placeholder otherwise.
func branchForStatus(pattern string) string {
	name := strings.TrimSuffix(strings.TrimPrefix(pattern, "^"), "$")
	if literalBranch.MatchString(name) {
		return name
	}
	return "<branch>"
}

func printJobs(w io.Writer, file string, cfg *packitcfg.Config, aliases packitcfg.AliasTable) {
	noun := "jobs"
	if len(cfg.Jobs) == 1 {
		noun = "job"
	}
	fmt.Fprintf(w, "%s is valid: %d %s\n", file, len(cfg.Jobs), noun)
	width := 0
	for _, j := range cfg.Jobs {
		width = max(width, len(j.Type))
	}
	var warnings []string
	for _, g := range groupJobs(cfg) {
		fmt.Fprintf(w, "%s:\n", g.title)
		for _, job := range g.jobs {
			if warning := printJob(w, job, g.ref, width, aliases); warning != "" {
				warnings = append(warnings, warning)
			}
		}
	}
	for _, warning := range append(cfg.Warnings, warnings...) {
		fmt.Fprintln(w, "warning:", warning)
	}
}

// printJob prints one job view and returns a warning when its targets
// cannot be resolved.
func printJob(w io.Writer, job *packitcfg.Job, ref string, width int, aliases packitcfg.AliasTable) string {
	head := fmt.Sprintf("  %-*s  package=%s", width, job.Type, job.PackageName)
	if job.Identifier != "" {
		head += "  identifier=" + job.Identifier
	}
	if !plan.Supported(job.Type) {
		fmt.Fprintln(w, head+"  (not supported by this service)")
		return ""
	}
	indent := strings.Repeat(" ", width+4)
	targets, err := packitcfg.ResolveTargets(job, aliases)
	if err != nil {
		fmt.Fprintln(w, head+"  targets: cannot be resolved")
		return fmt.Sprintf("%s job at line %d: %v", job.Type, job.Line, err)
	}
	if oneLine := head + "  targets: " + strings.Join(targets, ", "); len(oneLine) <= lineWidth {
		fmt.Fprintln(w, oneLine)
	} else {
		fmt.Fprintln(w, head)
		writeList(w, indent+"targets:  ", indent+"          ", targets)
	}
	var notes []string
	if job.ManualTrigger {
		notes = append(notes, "manual: runs only on a /packit command")
	}
	if job.SkipBuild {
		notes = append(notes, "skip_build: tests without a Copr build")
	}
	if len(job.RequireLabelsPresent) > 0 {
		notes = append(notes, "needs labels: "+strings.Join(job.RequireLabelsPresent, ", "))
	}
	if len(job.RequireLabelsAbsent) > 0 {
		notes = append(notes, "skipped with labels: "+strings.Join(job.RequireLabelsAbsent, ", "))
	}
	for _, n := range notes {
		fmt.Fprintln(w, indent+n)
	}
	statuses := make([]string, len(targets))
	for i, t := range targets {
		statuses[i] = packitcfg.StatusName(job, ref, t)
	}
	writeList(w, indent+"statuses: ", indent+"          ", statuses)
	return ""
}

// lineWidth is where writeList breaks long lists.
const lineWidth = 100

// writeList prints items after first, separated by commas, continuing on
// lines that start with indent once a line would pass lineWidth.
func writeList(w io.Writer, first, indent string, items []string) {
	line := first
	for i, item := range items {
		if i > 0 {
			line += ","
			if len(line)+1+len(item) > lineWidth {
				fmt.Fprintln(w, line)
				line = indent
			} else {
				line += " "
			}
		}
		line += item
	}
	fmt.Fprintln(w, line)
}
