package command_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"upbuild.dev/upbuild/internal/command"
)

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases() {
		prefix := ""
		if len(tc.prefixes) > 0 {
			prefix = tc.prefixes[0]
		}
		f.Add(tc.comment, prefix)
	}
	f.Fuzz(func(t *testing.T, comment, prefix string) {
		var prefixes []string
		if prefix != "" {
			prefixes = []string{prefix}
		}
		r := command.Parse(comment, prefixes)
		lines := strings.Count(comment, "\n") + 1
		if n := len(r.Commands) + len(r.Errors); n > 1 {
			t.Fatalf("%d results, want at most one (Packit acts on the first command line)", n)
		}
		for _, c := range r.Commands {
			if !c.Name.Known() {
				t.Errorf("command has unknown name %q", c.Name)
			}
			if c.Line < 1 || c.Line > lines {
				t.Errorf("command line %d outside 1..%d", c.Line, lines)
			}
			if c.Raw == "" || utf8.RuneCountInString(c.Raw) > command.MaxRawRunes {
				t.Errorf("command Raw %q empty or longer than %d runes", c.Raw, command.MaxRawRunes)
			}
			if len(c.Env) > command.MaxEnv || len(c.Labels) > command.MaxListItems {
				t.Errorf("bounds exceeded: %d env, %d labels", len(c.Env), len(c.Labels))
			}
			if c.Prefix != prefix && !(prefix == "" && c.Prefix == command.DefaultPrefix) {
				t.Errorf("command prefix %q, want %q", c.Prefix, prefix)
			}
		}
		for _, e := range r.Errors {
			if e.Msg == "" {
				t.Error("error with empty Msg")
			}
			if e.Line < 1 || e.Line > lines {
				t.Errorf("error line %d outside 1..%d", e.Line, lines)
			}
		}
	})
}

func BenchmarkParseLongComment(b *testing.B) {
	comment := strings.Repeat("Some prose about the change, with `code` and > quotes.\n", 1200) + "/packit test --labels smoke"
	for b.Loop() {
		command.Parse(comment, nil)
	}
}
