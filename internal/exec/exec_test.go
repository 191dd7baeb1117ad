package exec

import (
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/store"
)

func TestNetworkOnlyWhereTheOperatorSaysSo(t *testing.T) {
	e := &Executor{opts: Options{ActionNetwork: []string{"https://gitlab.gnome.org/GNOME/gtk", "https://salsa.debian.org/rpm-team", "https://gitlab.freedesktop.org"}}}
	cases := map[string]bool{
		"https://gitlab.gnome.org|GNOME/gtk":       true,
		"https://gitlab.gnome.org|GNOME/gtk-extra": false,
		"https://gitlab.gnome.org|GNOME/glib":      false,
		"https://salsa.debian.org|rpm-team/rpm":    true,
		"https://salsa.debian.org|rpm-teamx/rpm":   false,
		"https://gitlab.freedesktop.org|mesa/mesa": true,
		"https://gitlab.com|GNOME/gtk":             false,
	}
	for k, want := range cases {
		inst, path, _ := strings.Cut(k, "|")
		if got := e.networkFor(store.Run{Instance: inst, ProjectPath: path}); got != want {
			t.Errorf("%s: network %v, want %v", k, got, want)
		}
	}
}
