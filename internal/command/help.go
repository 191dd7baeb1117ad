package command

import (
	"fmt"
	"strings"
)

// summary says in a few words what a command does, for the help text.
func summary(n Name) string {
	switch n {
	case NameHelp:
		return "show this help"
	case NameCoprBuild:
		return "build the package(s) again, then run the tests that depend on the builds; --commit or --release selects the jobs of that trigger"
	case NameRebuildFailed:
		return "build again only the targets whose build failed"
	case NameTest:
		return "run the tests again; --identifier and --labels select jobs, --env sets a variable (KEY= unsets it), and a merge request of another project adds its builds"
	case NameRetestFailed:
		return "run again only the tests that failed"
	case NameUpstreamKojiBuild:
		return "scratch-build the package(s) in Koji"
	case NameVMImageBuild:
		return "build a VM image (only started by this comment)"
	case NameProposeDownstream:
		return "open dist-git pull requests for the latest release"
	case NamePullFromUpstream:
		return "pull the latest upstream release into dist-git"
	case NameKojiBuild:
		return "build the package(s) in Koji"
	case NameKojiTag:
		return "tag the Koji build into the side tag"
	case NameCreateUpdate:
		return "create a Bodhi update"
	case NameApprove:
		return "let CI run on this merge request (maintainers only)"
	}
	return ""
}

// usage renders a command's arguments, e.g. "[--commit <branch>] [--release <tag>]".
// --package is left out: the help text explains it once for all commands.
func usage(n Name) string {
	var parts []string
	if n == NameTest {
		parts = append(parts, "[<namespace>/<project>#<merge request>]")
	}
	for _, f := range flagsFor(n) {
		if f.names[0] == "--package" {
			continue
		}
		spelled := strings.Join(f.names, "|")
		if !f.isSwitch() {
			spelled += " " + f.metavar
		}
		if f.names[0] == "--env" {
			spelled += " ..."
		}
		parts = append(parts, "["+spelled+"]")
	}
	return strings.Join(parts, " ")
}

// Help returns Markdown help for `<prefix> help`, listing exactly the
// commands in supported (keyed by Name; an alias counts for its command) in
// a fixed order, each with its arguments.
func Help(prefix string, supported map[Name]bool) string {
	var b strings.Builder
	var jobs int
	for _, n := range knownNames() {
		if n.Canonical() != n {
			continue // listed with its command
		}
		alias := aliasOf(n)
		if !supported[n] && (alias == "" || !supported[alias]) {
			continue
		}
		fmt.Fprintf(&b, "- `%s %s", prefix, n)
		if u := usage(n); u != "" {
			fmt.Fprintf(&b, " %s", u)
		}
		b.WriteString("`")
		if alias != "" {
			fmt.Fprintf(&b, " (or `%s %s`)", prefix, alias)
		}
		fmt.Fprintf(&b, ": %s\n", summary(n))
		if n != NameHelp && n != NameApprove {
			jobs++
		}
	}
	if b.Len() == 0 {
		return "No comment commands are enabled here.\n"
	}
	var out strings.Builder
	fmt.Fprintf(&out, "Write a command at the start of its own line in a merge request or commit comment. "+
		"Only the first command in a comment runs; commands in code blocks and quotes are ignored.\n\n%s", b.String())
	if jobs > 0 {
		fmt.Fprintf(&out, "\nIn a repository with several packages, `%s --package <name> <command>` runs the jobs of one package only.\n", prefix)
	}
	return out.String()
}

// aliasOf returns the other spelling of a command, or "".
func aliasOf(n Name) Name {
	for _, k := range knownNames() {
		if k != n && k.Canonical() == n {
			return k
		}
	}
	return ""
}
