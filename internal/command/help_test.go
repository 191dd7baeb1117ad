package command_test

import (
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/command"
)

var canonicalNames = []command.Name{
	command.NameHelp, command.NameCoprBuild, command.NameRebuildFailed, command.NameTest,
	command.NameRetestFailed, command.NameUpstreamKojiBuild, command.NameVMImageBuild,
	command.NameProposeDownstream, command.NamePullFromUpstream, command.NameKojiBuild,
	command.NameKojiTag, command.NameCreateUpdate, command.NameApprove,
}

// listed reports whether the help text shows `<prefix> <name>` as a command.
func listed(help, prefix string, n command.Name) bool {
	cmd := "`" + prefix + " " + string(n)
	return strings.Contains(help, cmd+" ") || strings.Contains(help, cmd+"`")
}

func TestHelpListsExactlyTheSupportedCommands(t *testing.T) {
	all := map[command.Name]bool{}
	for _, n := range canonicalNames {
		all[n] = true
	}
	tests := []struct {
		name        string
		prefix      string
		supported   map[command.Name]bool
		wantListed  []command.Name
		wantPackage bool
	}{
		{name: "all", prefix: "/packit", supported: all, wantListed: append([]command.Name{command.NameBuild}, canonicalNames...), wantPackage: true},
		{name: "upstream CI", prefix: "/packit",
			supported:   map[command.Name]bool{command.NameHelp: true, command.NameCoprBuild: true, command.NameTest: true, command.NameRetestFailed: true, command.NameKojiBuild: false},
			wantListed:  []command.Name{command.NameHelp, command.NameCoprBuild, command.NameBuild, command.NameTest, command.NameRetestFailed},
			wantPackage: true},
		{name: "alias key counts for its command", prefix: "/upbuild",
			supported:   map[command.Name]bool{command.NameBuild: true},
			wantListed:  []command.Name{command.NameCoprBuild, command.NameBuild},
			wantPackage: true},
		{name: "no job commands, no --package note", prefix: "/packit",
			supported:  map[command.Name]bool{command.NameHelp: true, command.NameApprove: true},
			wantListed: []command.Name{command.NameHelp, command.NameApprove}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			help := command.Help(tc.prefix, tc.supported)
			for _, n := range append([]command.Name{command.NameBuild}, canonicalNames...) {
				want := false
				for _, w := range tc.wantListed {
					want = want || w == n
				}
				if got := listed(help, tc.prefix, n); got != want {
					t.Errorf("%s listed = %v, want %v; help:\n%s", n, got, want, help)
				}
			}
			if got := strings.Contains(help, tc.prefix+" --package <name> <command>"); got != tc.wantPackage {
				t.Errorf("--package note shown = %v, want %v; help:\n%s", got, tc.wantPackage, help)
			}
		})
	}
}

func TestHelpShowsArguments(t *testing.T) {
	help := command.Help("/packit", map[command.Name]bool{
		command.NameCoprBuild: true, command.NameTest: true, command.NamePullFromUpstream: true, command.NameKojiTag: true,
	})
	for _, want := range []string{
		"- `/packit copr-build [--commit <branch>] [--release <tag>]` (or `/packit build`): ",
		"- `/packit test [<namespace>/<project>#<merge request>] [--commit <branch>] [--release <tag>] " +
			"[--identifier|--id|-i <id>] [--labels <label,...>] [--env <KEY=VALUE> ...]`: ",
		"- `/packit pull-from-upstream [--resolve-bug <bug,...>] [--with-pr-config] [--version <version>]`: ",
		"- `/packit koji-tag [--all-branches]`: ",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q; help:\n%s", want, help)
		}
	}
}

func TestHelpWithNothingSupported(t *testing.T) {
	if got, want := command.Help("/packit", nil), "No comment commands are enabled here.\n"; got != want {
		t.Errorf("Help(nil) = %q, want %q", got, want)
	}
}
