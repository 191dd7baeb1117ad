package packitcfg

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// AliasTable maps a target alias (fedora-stable, epel-10-all, ...) to the
// chroot bases it stands for, without the architecture: "fedora-44",
// "fedora-rawhide", "rhel+epel-10".
type AliasTable map[string][]string

//go:embed aliases.yaml
var defaultAliases []byte

// DefaultAliasTable returns the alias table shipped with upbuild (see
// aliases.yaml for the date it describes). Each call returns a fresh copy.
func DefaultAliasTable() AliasTable {
	table, err := ParseAliasTable(defaultAliases)
	if err != nil {
		panic(fmt.Sprintf("packitcfg: the embedded alias table is invalid: %v", err)) // a build defect, caught by tests
	}
	return table
}

// ParseAliasTable reads an operator's alias table: a YAML mapping from
// alias to a list of chroot bases.
func ParseAliasTable(data []byte) (AliasTable, error) {
	var table AliasTable
	if err := yaml.Unmarshal(data, &table); err != nil {
		return nil, fmt.Errorf("alias table: %w", err)
	}
	for alias, bases := range table {
		if len(bases) == 0 {
			return nil, fmt.Errorf("alias table: alias %q lists no chroots", alias)
		}
	}
	return table, nil
}

// Architectures Packit recognises as a target suffix; any other target
// gets -x86_64 appended.
var architectures = []string{"aarch64", "armhfp", "i386", "ppc64le", "s390x", "x86_64"}

// DefaultTarget is what a job without targets builds for.
const DefaultTarget = "fedora-stable"

// ResolveTargetOptions expands a job's targets into chroots
// (name-version-arch), each with the options of the entry it came from.
// Aliases take an architecture suffix too (fedora-all-aarch64); without one
// the architecture is x86_64. A job without targets gets DefaultTarget.
func ResolveTargetOptions(job *Job, table AliasTable) (map[string]TargetOptions, error) {
	targets := job.Targets
	if len(targets) == 0 {
		targets = map[string]TargetOptions{DefaultTarget: {}}
	}
	names := make([]string, 0, len(targets))
	for name := range targets {
		names = append(names, name)
	}
	slices.Sort(names) // a deterministic winner when two entries name one chroot
	out := map[string]TargetOptions{}
	for _, name := range names {
		base, arch := name, "x86_64"
		if i := strings.LastIndex(name, "-"); i > 0 && slices.Contains(architectures, name[i+1:]) {
			base, arch = name[:i], name[i+1:]
		}
		bases := []string{base}
		if expanded, ok := table[base]; ok {
			if len(expanded) == 0 {
				return nil, fmt.Errorf("target %q: alias %q lists no chroots in the alias table", name, base)
			}
			bases = expanded
		}
		for _, b := range bases {
			out[b+"-"+arch] = targets[name]
		}
	}
	return out, nil
}

// ResolveTargets returns the sorted chroots a job builds or tests on.
func ResolveTargets(job *Job, table AliasTable) ([]string, error) {
	resolved, err := ResolveTargetOptions(job, table)
	if err != nil {
		return nil, err
	}
	chroots := make([]string, 0, len(resolved))
	for c := range resolved {
		chroots = append(chroots, c)
	}
	slices.Sort(chroots)
	return chroots, nil
}
