package packitcfg

import (
	"fmt"
	"slices"
	"strings"
)

// configFileNames are the names Packit accepts for its config, in the order
// upbuild prefers them.
var configFileNames = []string{".packit.yaml", ".packit.yml", "packit.yaml", "packit.yml"}

// FindConfigFile picks the config file among the top-level file names of a
// repository at a ref. Packit keeps the accepted names in a set and pops an
// arbitrary one when several exist; upbuild picks the first of .packit.yaml,
// .packit.yml, packit.yaml, packit.yml instead and returns a warning naming
// the others, so the project can remove the ambiguity. It returns "" when
// there is none.
func FindConfigFile(names []string) (name string, warning string) {
	var found []string
	for _, candidate := range configFileNames {
		if slices.Contains(names, candidate) {
			found = append(found, candidate)
		}
	}
	switch len(found) {
	case 0:
		return "", ""
	case 1:
		return found[0], ""
	default:
		return found[0], fmt.Sprintf("several Packit config files exist (%s); using %s, while Packit would pick one at random",
			strings.Join(found, ", "), found[0])
	}
}
