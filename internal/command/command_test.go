package command_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/command"
)

type parseCase struct {
	name     string
	comment  string
	prefixes []string // nil: the default
	want     command.Result
}

// found is the Result for one command; Prefix defaults to "/packit".
func found(c command.Command) command.Result {
	if c.Prefix == "" {
		c.Prefix = "/packit"
	}
	return command.Result{Commands: []command.Command{c}}
}

func failed(line int, raw, msg string) command.Result {
	return command.Result{Errors: []*command.Error{{Line: line, Raw: raw, Msg: msg}}}
}

var none = command.Result{}

// capped is an ASCII command line as Raw shows it when it is too long: trimmed,
// 199 bytes and an ellipsis.
func capped(line string) string {
	return strings.TrimSpace(line)[:command.MaxRawRunes-1] + "…"
}

func parseCases() []parseCase {
	prose := strings.Repeat("Some words about the change, nothing to run here.\n", 1400) // ~70 KiB
	longID := strings.Repeat("id", 150)
	manyLabels := strings.Repeat("a,", 150) + "z"
	manyEnv := "/packit test"
	for i := range 33 {
		manyEnv += fmt.Sprintf(" --env=V%d=x", i)
	}
	return []parseCase{
		// Every command.
		{name: "build", comment: "/packit build",
			want: found(command.Command{Name: command.NameBuild, Line: 1, Raw: "/packit build"})},
		{name: "copr-build", comment: "/packit copr-build",
			want: found(command.Command{Name: command.NameCoprBuild, Line: 1, Raw: "/packit copr-build"})},
		{name: "rebuild-failed", comment: "/packit rebuild-failed",
			want: found(command.Command{Name: command.NameRebuildFailed, Line: 1, Raw: "/packit rebuild-failed"})},
		{name: "test", comment: "/packit test",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test"})},
		{name: "retest-failed", comment: "/packit retest-failed",
			want: found(command.Command{Name: command.NameRetestFailed, Line: 1, Raw: "/packit retest-failed"})},
		{name: "help", comment: "/packit help",
			want: found(command.Command{Name: command.NameHelp, Line: 1, Raw: "/packit help"})},
		{name: "approve", comment: "/packit approve",
			want: found(command.Command{Name: command.NameApprove, Line: 1, Raw: "/packit approve"})},
		{name: "upstream-koji-build", comment: "/packit upstream-koji-build",
			want: found(command.Command{Name: command.NameUpstreamKojiBuild, Line: 1, Raw: "/packit upstream-koji-build"})},
		{name: "vm-image-build", comment: "/packit vm-image-build",
			want: found(command.Command{Name: command.NameVMImageBuild, Line: 1, Raw: "/packit vm-image-build"})},
		{name: "propose-downstream", comment: "/packit propose-downstream",
			want: found(command.Command{Name: command.NameProposeDownstream, Line: 1, Raw: "/packit propose-downstream"})},
		{name: "koji-build", comment: "/packit koji-build",
			want: found(command.Command{Name: command.NameKojiBuild, Line: 1, Raw: "/packit koji-build"})},
		{name: "create-update", comment: "/packit create-update",
			want: found(command.Command{Name: command.NameCreateUpdate, Line: 1, Raw: "/packit create-update"})},
		{name: "koji-tag --all-branches", comment: "/packit koji-tag --all-branches",
			want: found(command.Command{Name: command.NameKojiTag, Line: 1, Raw: "/packit koji-tag --all-branches", AllBranches: true})},
		{name: "pull-from-upstream with every flag",
			comment: "/packit pull-from-upstream --resolve-bug rhbz#1,rhbz#2 --with-pr-config --version 1.2.3",
			want: found(command.Command{Name: command.NamePullFromUpstream, Line: 1,
				Raw:         "/packit pull-from-upstream --resolve-bug rhbz#1,rhbz#2 --with-pr-config --version 1.2.3",
				ResolveBugs: []string{"rhbz#1", "rhbz#2"}, WithPRConfig: true, Version: "1.2.3"})},

		// copr-build flags.
		{name: "build --commit", comment: "/packit build --commit some-branch",
			want: found(command.Command{Name: command.NameBuild, Line: 1, Raw: "/packit build --commit some-branch", CommitBranch: "some-branch"})},
		{name: "build --release=tag", comment: "/packit copr-build --release=v1.0",
			want: found(command.Command{Name: command.NameCoprBuild, Line: 1, Raw: "/packit copr-build --release=v1.0", ReleaseTag: "v1.0"})},
		{name: "build flag abbreviated as argparse allows", comment: "/packit build --rel v2",
			want: found(command.Command{Name: command.NameBuild, Line: 1, Raw: "/packit build --rel v2", ReleaseTag: "v2"})},
		{name: "--commit with --release", comment: "/packit build --commit main --release v1",
			want: failed(1, "/packit build --commit main --release v1", "--commit and --release cannot be used together")},
		{name: "--commit missing value", comment: "/packit build --commit",
			want: failed(1, "/packit build --commit", "--commit needs a value")},
		{name: "build takes no positional", comment: "/packit build now",
			want: failed(1, "/packit build now", "unexpected argument now: build takes none")},

		// test flags.
		{name: "test --identifier", comment: "/packit test --identifier e2e",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test --identifier e2e", Identifier: "e2e"})},
		{name: "test --id", comment: "/packit test --id e2e",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test --id e2e", Identifier: "e2e"})},
		{name: "test -i", comment: "/packit test -i e2e",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test -i e2e", Identifier: "e2e"})},
		{name: "test -ivalue and -i=value, last wins", comment: "/packit test -ifirst -i=second",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test -ifirst -i=second", Identifier: "second"})},
		{name: "test --labels drops empty items", comment: "/packit test --labels smoke,,full",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test --labels smoke,,full", Labels: []string{"smoke", "full"}})},
		{name: "test --labels missing value", comment: "/packit test --labels",
			want: failed(1, "/packit test --labels", "--labels needs a value")},
		{name: "test --labels= empty", comment: "/packit test --labels=",
			want: failed(1, "/packit test --labels=", "--labels needs a value")},
		{name: "value that looks like a flag", comment: "/packit test --id --labels x",
			want: failed(1, "/packit test --id --labels x", "--identifier needs a value")},
		{name: "test --env repeated, KEY= unsets, last wins",
			comment: "/packit test --env A=1 --env B= --env A=2 --env URL=http://x/?q=1",
			want: found(command.Command{Name: command.NameTest, Line: 1,
				Raw: "/packit test --env A=1 --env B= --env A=2 --env URL=http://x/?q=1",
				Env: map[string]string{"A": "2", "B": "", "URL": "http://x/?q=1"}})},
		{name: "test --env without =", comment: "/packit test --env FOO",
			want: failed(1, "/packit test --env FOO", "--env needs KEY=VALUE")},
		{name: "test --env bad name", comment: "/packit test --env 1X=y",
			want: failed(1, "/packit test --env 1X=y", "--env 1X is not a valid variable name: use letters, digits and _, not starting with a digit")},
		{name: "test --env quoted value", comment: `/packit test --env "A=b c"`,
			want: failed(1, `/packit test --env "A=b c"`, "quotes are not supported: values are split on whitespace, as in Packit, so a value cannot contain spaces")},
		{name: "test --env quote after =", comment: `/packit test --env=A="b c"`,
			want: failed(1, `/packit test --env=A="b c"`, "quotes are not supported: values are split on whitespace, as in Packit, so a value cannot contain spaces")},
		{name: "test too many --env", comment: manyEnv,
			want: failed(1, capped(manyEnv), "too many --env variables (at most 32)")},
		{name: "test with another project's merge request", comment: "/packit test group/sub/lib#12",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test group/sub/lib#12",
				BuildsFrom: &command.MergeRequestRef{Project: "group/sub/lib", IID: 12}})},
		{name: "test with Packit's namespace/repo/#n form", comment: "/packit test namespace/some-repo/#1234",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test namespace/some-repo/#1234",
				BuildsFrom: &command.MergeRequestRef{Project: "namespace/some-repo", IID: 1234}})},
		{name: "test with GitLab's ! reference", comment: "/packit test --id e2e group/lib!7",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test --id e2e group/lib!7", Identifier: "e2e",
				BuildsFrom: &command.MergeRequestRef{Project: "group/lib", IID: 7}})},
		{name: "test with a merge request URL", comment: "/packit test https://gitlab.example.com/group/lib/-/merge_requests/5/diffs",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test https://gitlab.example.com/group/lib/-/merge_requests/5/diffs",
				BuildsFrom: &command.MergeRequestRef{Host: "gitlab.example.com", Project: "group/lib", IID: 5}})},
		{name: "-- ends the options", comment: "/packit test -- group/lib#3",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test -- group/lib#3",
				BuildsFrom: &command.MergeRequestRef{Project: "group/lib", IID: 3}})},
		{name: "test with project@commit is refused", comment: "/packit test group/lib@abc123",
			want: failed(1, "/packit test group/lib@abc123", "testing with another project's commit (namespace/project@commit) is not supported; name its merge request instead: <namespace>/<project>#<number>")},
		{name: "test with a word that is no merge request", comment: "/packit test please",
			want: failed(1, "/packit test please", "please is not a merge request: write <namespace>/<project>#<number> or the merge request's URL")},
		{name: "test with two merge requests", comment: "/packit test a/b#1 c/d#2",
			want: failed(1, "/packit test a/b#1 c/d#2", `unexpected argument "c/d#2": test takes at most one merge request`)},
		{name: "unknown flag", comment: "/packit test --foo",
			want: failed(1, "/packit test --foo", "unknown flag --foo for test")},
		{name: "unknown flag with suggestion", comment: "/packit test --lables smoke",
			want: failed(1, "/packit test --lables smoke", "unknown flag --lables for test: did you mean --labels?")},
		{name: "switch given a value", comment: "/packit pull-from-upstream --with-pr-config=yes",
			want: failed(1, "/packit pull-from-upstream --with-pr-config=yes", "--with-pr-config takes no value")},
		{name: "help takes no flags", comment: "/packit help --package x",
			want: failed(1, "/packit help --package x", "unknown flag --package for help")},
		{name: "help takes no arguments", comment: "/packit help me",
			want: failed(1, "/packit help me", "unexpected argument me: help takes none")},

		// --package, before the command (Packit) or after it (upbuild).
		{name: "--package before the command", comment: "/packit --package python-foo build",
			want: found(command.Command{Name: command.NameBuild, Line: 1, Raw: "/packit --package python-foo build", Package: "python-foo"})},
		{name: "--package after the command", comment: "/packit test --package=python-foo --labels smoke",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test --package=python-foo --labels smoke", Package: "python-foo", Labels: []string{"smoke"}})},
		{name: "--package on a dist-git command", comment: "/packit koji-build --package foo",
			want: found(command.Command{Name: command.NameKojiBuild, Line: 1, Raw: "/packit koji-build --package foo", Package: "foo"})},
		{name: "--package without value", comment: "/packit --package",
			want: failed(1, "/packit --package", "--package needs a value")},
		{name: "--package without command", comment: "/packit --package foo",
			want: failed(1, "/packit --package foo", "no command after the options: write /packit [--package <name>] <command>; see /packit help")},
		{name: "-- before the command", comment: "/packit -- build",
			want: found(command.Command{Name: command.NameBuild, Line: 1, Raw: "/packit -- build"})},
		{name: "bare --= is no abbreviation", comment: "/packit test --=x",
			want: failed(1, "/packit test --=x", "unknown flag -- for test")},
		{name: "unknown short flag with a non-ASCII letter", comment: "/packit test -ŭx",
			want: failed(1, "/packit test -ŭx", `unknown flag "-ŭ" for test`)},
		{name: "unknown flag before the command", comment: "/packit --verbose build",
			want: failed(1, "/packit --verbose build", "unknown flag --verbose before the command")},

		// Unknown commands and case.
		{name: "unknown command with suggestion", comment: "/packit biuld",
			want: failed(1, "/packit biuld", `unknown command "biuld": did you mean "build"?`)},
		{name: "swapped letters in a short command", comment: "/packit tset",
			want: failed(1, "/packit tset", `unknown command "tset": did you mean "test"?`)},
		{name: "unknown command, nothing close", comment: "/packit frobnicate",
			want: failed(1, "/packit frobnicate", `unknown command "frobnicate": see /packit help for the commands`)},
		{name: "commands are case-sensitive", comment: "/packit Test",
			want: failed(1, "/packit Test", `unknown command "Test": did you mean "test"?`)},
		{name: "the prefix is case-sensitive", comment: "/Packit build", want: none},

		// Where a command may stand.
		{name: "empty comment", comment: "", want: none},
		{name: "only whitespace", comment: " \n\t\r\n ", want: none},
		{name: "prefix alone does not count", comment: "/packit", want: none},
		{name: "prefix alone is skipped like Packit", comment: "/packit\n/packit build",
			want: found(command.Command{Name: command.NameBuild, Line: 2, Raw: "/packit build"})},
		{name: "prefix glued to a word", comment: "/packitbuild", want: none},
		{name: "command amid prose", comment: "Thanks for the fix!\n\n  /packit test --labels smoke  \n\nCheers",
			want: found(command.Command{Name: command.NameTest, Line: 3, Raw: "/packit test --labels smoke", Labels: []string{"smoke"}})},
		{name: "mention inside a sentence", comment: "Could someone run /packit build please?", want: none},
		{name: "inline code", comment: "`/packit build`", want: none},
		{name: "only the first command counts", comment: "/packit build\n/packit test",
			want: found(command.Command{Name: command.NameBuild, Line: 1, Raw: "/packit build"})},
		{name: "a bad first command hides later ones", comment: "/packit biuld\n/packit build",
			want: failed(1, "/packit biuld", `unknown command "biuld": did you mean "build"?`)},
		{name: "fenced code block", comment: "Run this:\n```\n/packit build\n```", want: none},
		{name: "command after a closed fence", comment: "```sh\n/packit build\n```\n/packit test",
			want: found(command.Command{Name: command.NameTest, Line: 4, Raw: "/packit test"})},
		{name: "a shorter fence does not close", comment: "~~~~\n/packit build\n~~~\n/packit test\n~~~~", want: none},
		{name: "unclosed fence runs to the end", comment: "```\n/packit build", want: none},
		{name: "indented fence inside a list", comment: "- step\n   ```\n   /packit build\n   ```", want: none},
		{name: "inline triple backticks are no fence", comment: "```x```\n/packit build",
			want: found(command.Command{Name: command.NameBuild, Line: 2, Raw: "/packit build"})},
		{name: "quoted reply", comment: "> /packit build\n\nDone, see above.", want: none},
		{name: "nested quote", comment: ">> /packit test", want: none},
		{name: "command after a quote", comment: "> /packit build\n/packit test",
			want: found(command.Command{Name: command.NameTest, Line: 2, Raw: "/packit test"})},
		{name: "GitLab multi-line quote", comment: ">>>\n/packit build\n>>>\n/packit test",
			want: found(command.Command{Name: command.NameTest, Line: 4, Raw: "/packit test"})},

		// Whitespace and encodings.
		{name: "Windows line endings", comment: "Hi\r\n/packit build --commit main\r\n",
			want: found(command.Command{Name: command.NameBuild, Line: 2, Raw: "/packit build --commit main", CommitBranch: "main"})},
		{name: "tabs", comment: "\t/packit\ttest\t--id\tx",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit\ttest\t--id\tx", Identifier: "x"})},
		{name: "no-break space splits words, as in Python", comment: "/packit\u00a0build",
			want: found(command.Command{Name: command.NameBuild, Line: 1, Raw: "/packit\u00a0build"})},
		{name: "unicode value", comment: "/packit test --env GREETING=čau",
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: "/packit test --env GREETING=čau", Env: map[string]string{"GREETING": "čau"}})},
		{name: "unicode command", comment: "/packit bŭild",
			want: failed(1, "/packit bŭild", `unknown command "bŭild": did you mean "build"?`)},
		{name: "control character in a command is escaped", comment: "/packit te\x1bst",
			want: failed(1, "/packit te\x1bst", `unknown command "te\x1bst": did you mean "test"?`)},

		// Prefixes.
		{name: "custom prefix", comment: "/upbuild build", prefixes: []string{"/upbuild"},
			want: found(command.Command{Name: command.NameBuild, Prefix: "/upbuild", Line: 1, Raw: "/upbuild build"})},
		{name: "custom prefix ignores /packit", comment: "/packit build", prefixes: []string{"/upbuild"}, want: none},
		{name: "custom prefix in messages", comment: "/upbuild zzz", prefixes: []string{"/upbuild"},
			want: failed(1, "/upbuild zzz", `unknown command "zzz": see /upbuild help for the commands`)},
		{name: "staging prefix among several", comment: "/packit-stg test", prefixes: []string{"/packit", "/packit-stg"},
			want: found(command.Command{Name: command.NameTest, Prefix: "/packit-stg", Line: 1, Raw: "/packit-stg test"})},

		// Bounds.
		{name: "command past 64 KiB is not read", comment: prose + "/packit build", want: none},
		{name: "command before a huge tail", comment: "/packit build\n" + prose,
			want: found(command.Command{Name: command.NameBuild, Line: 1, Raw: "/packit build"})},
		{name: "command line cut at 64 KiB is dropped",
			comment: strings.Repeat("x", command.MaxCommentBytes-20) + "\n/packit test --labels " + strings.Repeat("y", 40), want: none},
		{name: "too many arguments", comment: "/packit test" + strings.Repeat(" -- ", 64),
			want: failed(1, capped("/packit test"+strings.Repeat(" -- ", 64)), "too many arguments (at most 64)")},
		{name: "argument too long", comment: "/packit test --id " + strings.Repeat("x", 513),
			want: failed(1, capped("/packit test --id "+strings.Repeat("x", 513)),
				`argument "`+strings.Repeat("x", 19)+`…" is too long (at most 512 bytes)`)},
		{name: "raw text capped at 200 runes", comment: "/packit test --id " + longID,
			want: found(command.Command{Name: command.NameTest, Line: 1, Raw: capped("/packit test --id " + longID), Identifier: longID})},
		{name: "too many labels", comment: "/packit test --labels " + manyLabels,
			want: failed(1, capped("/packit test --labels "+manyLabels), "--labels has too many items (at most 32)")},
	}
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := command.Parse(tc.comment, tc.prefixes)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse(%q)\n got: %s\nwant: %s", capForLog(tc.comment), describe(got), describe(tc.want))
			}
		})
	}
}

func capForLog(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

func describe(r command.Result) string {
	var b strings.Builder
	for _, c := range r.Commands {
		ref := "<nil>"
		if c.BuildsFrom != nil {
			ref = fmt.Sprintf("%+v", *c.BuildsFrom)
		}
		fmt.Fprintf(&b, "command %+v (BuildsFrom %s); ", c, ref)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "error %+v; ", *e)
	}
	if b.Len() == 0 {
		return "nothing"
	}
	return b.String()
}

func TestCanonical(t *testing.T) {
	if got := command.NameBuild.Canonical(); got != command.NameCoprBuild {
		t.Errorf("build.Canonical() = %q, want copr-build", got)
	}
	if got := command.NameTest.Canonical(); got != command.NameTest {
		t.Errorf("test.Canonical() = %q, want test", got)
	}
	if command.Name("scratch-build").Known() {
		t.Error("scratch-build (a /packit-ci command) is Known")
	}
}

func TestErrorString(t *testing.T) {
	r := command.Parse("hello\n/packit biuld", nil)
	if len(r.Errors) != 1 {
		t.Fatalf("got %s, want one error", describe(r))
	}
	want := `line 2: unknown command "biuld": did you mean "build"?`
	if got := r.Errors[0].Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
