package token_test

import (
	"errors"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/token"
)

func TestNormalizeInstanceURL(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"https://gitlab.gnome.org", "https://gitlab.gnome.org"},
		{"https://gitlab.gnome.org/", "https://gitlab.gnome.org"},
		{"HTTPS://GitLab.GNOME.org//", "https://gitlab.gnome.org"},
		{"  https://gitlab.com\n", "https://gitlab.com"},
		{"https://gitlab.com:443", "https://gitlab.com"},
		{"http://gitlab.example:80/", "http://gitlab.example"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"https://gitlab.example:8443/", "https://gitlab.example:8443"},
		{"http://[::1]:3000", "http://[::1]:3000"},
		{"https://example.org/gitlab/", "https://example.org/gitlab"},
		{"https://Example.org/GitLab", "https://example.org/GitLab"},
	}
	for _, tt := range tests {
		got, err := token.NormalizeInstanceURL(tt.raw)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeInstanceURL(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
}

func TestNormalizeInstanceURLRefuses(t *testing.T) {
	for _, raw := range []string{
		"",
		"gitlab.gnome.org",
		"ftp://gitlab.gnome.org",
		"ssh://git@gitlab.gnome.org",
		"https://",
		"https:gitlab.com",
		"https://gitlab.com?x=1",
		"https://gitlab.com#top",
		"https://gitlab.com:0",
		"https://gitlab.com:70000",
		"https://gitlab.com/a/../b",
		"https://gitlab.com/a b",
		"https://gitlab.com/git%6Cab",
		"https://user:hunter2secret@gitlab.com",
		"https://gitlab.com:hunter2secret",
	} {
		got, err := token.NormalizeInstanceURL(raw)
		if !errors.Is(err, token.ErrBadURL) {
			t.Errorf("NormalizeInstanceURL(%q) = %q, %v; want ErrBadURL", raw, got, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("NormalizeInstanceURL(%q) error %q repeats the credentials", raw, err)
		}
	}
}

func TestParseProjectURL(t *testing.T) {
	tests := []struct {
		raw, instance, path string
	}{
		{"https://gitlab.gnome.org/GNOME/gtk", "https://gitlab.gnome.org", "GNOME/gtk"},
		{"https://gitlab.gnome.org/GNOME/gtk/", "https://gitlab.gnome.org", "GNOME/gtk"},
		{"https://gitlab.gnome.org/GNOME/gtk.git", "https://gitlab.gnome.org", "GNOME/gtk"},
		{"https://gitlab.gnome.org/GNOME/gtk/-/merge_requests/42", "https://gitlab.gnome.org", "GNOME/gtk"},
		{"https://gitlab.gnome.org/GNOME/gtk/-/tree/main?ref_type=heads", "https://gitlab.gnome.org", "GNOME/gtk"},
		{"https://gitlab.gnome.org/GNOME/gtk/-", "https://gitlab.gnome.org", "GNOME/gtk"},
		{"HTTPS://GITLAB.com:443/a/b/c.d_e-f", "https://gitlab.com", "a/b/c.d_e-f"},
		{"https://gitlab.com/group/sub/project#readme", "https://gitlab.com", "group/sub/project"},
		{"http://127.0.0.1:8080/upbuild/demo", "http://127.0.0.1:8080", "upbuild/demo"},
	}
	for _, tt := range tests {
		instance, path, err := token.ParseProjectURL(tt.raw)
		if err != nil || instance != tt.instance || path != tt.path {
			t.Errorf("ParseProjectURL(%q) = %q, %q, %v; want %q, %q", tt.raw, instance, path, err, tt.instance, tt.path)
		}
	}
}

func TestParseProjectURLRefuses(t *testing.T) {
	for _, raw := range []string{
		"https://gitlab.gnome.org",
		"https://gitlab.gnome.org/",
		"https://gitlab.gnome.org/.git",
		"https://gitlab.gnome.org/-/explore",
		"https://gitlab.gnome.org/GNOME//gtk",
		"https://gitlab.gnome.org/GNOME/../gtk",
		"https://gitlab.gnome.org/GNOME/gt%20k",
		"https://gitlab.gnome.org/GNOME%2Fgtk",
		"https://gitlab.gnome.org/GNOME/gt%6B",
		"git@gitlab.gnome.org:GNOME/gtk.git",
		"https://oauth2:glpat-hunter2secret@gitlab.gnome.org/GNOME/gtk.git",
	} {
		instance, path, err := token.ParseProjectURL(raw)
		if !errors.Is(err, token.ErrBadURL) {
			t.Errorf("ParseProjectURL(%q) = %q, %q, %v; want ErrBadURL", raw, instance, path, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseProjectURL(%q) error %q repeats the credentials", raw, err)
		}
	}
}

func TestSplitProjectURL(t *testing.T) {
	tests := []struct {
		base, raw, instance, path string
	}{
		{"https://example.org/gitlab/", "https://example.org/gitlab/group/proj", "https://example.org/gitlab", "group/proj"},
		{"https://example.org/gitlab", "https://EXAMPLE.org:443/gitlab/group/sub/proj.git", "https://example.org/gitlab", "group/sub/proj"},
		{"https://example.org/gitlab", "https://example.org/gitlab/group/proj/-/issues", "https://example.org/gitlab", "group/proj"},
		{"https://gitlab.gnome.org", "https://gitlab.gnome.org/GNOME/gtk", "https://gitlab.gnome.org", "GNOME/gtk"},
	}
	for _, tt := range tests {
		instance, path, err := token.SplitProjectURL(tt.base, tt.raw)
		if err != nil || instance != tt.instance || path != tt.path {
			t.Errorf("SplitProjectURL(%q, %q) = %q, %q, %v; want %q, %q", tt.base, tt.raw, instance, path, err, tt.instance, tt.path)
		}
	}

	for _, tt := range []struct{ base, raw string }{
		{"https://example.org/gitlab", "https://example.org/gitlabx/group/proj"}, // not under the root
		{"https://example.org/gitlab", "https://example.org/group/proj"},
		{"https://example.org/gitlab", "http://example.org/gitlab/group/proj"}, // other scheme
		{"https://example.org/gitlab", "https://other.org/gitlab/group/proj"},
		{"https://example.org/gitlab", "https://example.org/gitlab/"},
		{"example.org", "https://example.org/group/proj"},
	} {
		instance, path, err := token.SplitProjectURL(tt.base, tt.raw)
		if !errors.Is(err, token.ErrBadURL) {
			t.Errorf("SplitProjectURL(%q, %q) = %q, %q, %v; want ErrBadURL", tt.base, tt.raw, instance, path, err)
		}
	}
}

func TestCovers(t *testing.T) {
	gnome := "https://gitlab.gnome.org"
	project := token.Scope{Kind: token.ScopeProject, Instance: gnome, Path: "GNOME/gtk"}
	group := token.Scope{Kind: token.ScopeGroup, Instance: gnome, Path: "GNOME/gtk"}
	tests := []struct {
		scope    token.Scope
		instance string
		path     string
		want     bool
	}{
		{project, gnome, "GNOME/gtk", true},
		{project, gnome, "gnome/GTK", true},                           // GitLab paths ignore case
		{project, "https://GITLAB.gnome.org:443/", "GNOME/gtk", true}, // the header is normalised
		{project, gnome, "GNOME/glib", false},                         // another project
		{project, gnome, "GNOME/gtk/sub", false},                      // a project scope covers no subpaths
		{project, gnome, "GNOME", false},
		{project, "https://gitlab.com", "GNOME/gtk", false},      // same path, other instance
		{project, "http://gitlab.gnome.org", "GNOME/gtk", false}, // other scheme
		{project, "https://gitlab.gnome.org:8443", "GNOME/gtk", false},
		{project, "not a url", "GNOME/gtk", false},
		{project, gnome, "GNOME/gtk/", false},
		{project, gnome, "", false},

		{group, gnome, "GNOME/gtk/gtk4", true},
		{group, gnome, "GNOME/gtk/sub/deeper/project", true},
		{group, gnome, "gnome/Gtk/gtk4", true},
		{group, gnome, "GNOME/gtk", true},
		{group, gnome, "GNOME/gtk-foo", false}, // shares a prefix, is not inside
		{group, gnome, "GNOME/gtkx/y", false},
		{group, gnome, "GNOME/glib", false},
		{group, gnome, "GNOME", false},
		{group, gnome, "GNOME/gtk//x", false},
		{group, "https://gitlab.com", "GNOME/gtk/gtk4", false},

		{token.Scope{Kind: "team", Instance: gnome, Path: "GNOME"}, gnome, "GNOME/gtk", false},
	}
	for _, tt := range tests {
		if got := tt.scope.Covers(tt.instance, tt.path); got != tt.want {
			t.Errorf("%v.Covers(%q, %q) = %v, want %v", tt.scope, tt.instance, tt.path, got, tt.want)
		}
	}
}

func TestScopeValidate(t *testing.T) {
	good := token.Scope{Kind: token.ScopeGroup, Instance: "https://example.org/gitlab", Path: "a/b.c/d_e-f"}
	if err := good.Validate(); err != nil {
		t.Fatalf("%v.Validate() = %v", good, err)
	}
	for _, s := range []token.Scope{
		{Kind: "", Instance: "https://gitlab.com", Path: "a/b"},
		{Kind: "Project", Instance: "https://gitlab.com", Path: "a/b"},
		{Kind: token.ScopeProject, Instance: "https://GitLab.com", Path: "a/b"}, // not normalised
		{Kind: token.ScopeProject, Instance: "https://gitlab.com/", Path: "a/b"},
		{Kind: token.ScopeProject, Instance: "gitlab.com", Path: "a/b"},
		{Kind: token.ScopeProject, Instance: "https://gitlab.com", Path: ""},
		{Kind: token.ScopeProject, Instance: "https://gitlab.com", Path: "/a/b"},
		{Kind: token.ScopeProject, Instance: "https://gitlab.com", Path: "a/b/"},
		{Kind: token.ScopeProject, Instance: "https://gitlab.com", Path: "a/../b"},
		{Kind: token.ScopeProject, Instance: "https://gitlab.com", Path: "a/b c"},
		{Kind: token.ScopeProject, Instance: "https://gitlab.com", Path: "a/bé"},
	} {
		if err := s.Validate(); !errors.Is(err, token.ErrBadScope) {
			t.Errorf("%+v.Validate() = %v, want ErrBadScope", s, err)
		}
	}
}
