// Package command parses the `/packit ...` commands that maintainers write in
// merge request and commit comments to re-trigger work, with Packit's syntax.
//
// The rules follow packit-service (packit_service/utils.py,
// get_packit_commands_from_comment and get_comment_parser):
//
//   - The command is the first line whose first whitespace-separated word is
//     the prefix and that has at least one more word. Every later line is
//     ignored, even if it holds another command: one comment, one command.
//   - The prefix and the sub-command are case-sensitive.
//   - Words are split on whitespace only; Packit has no shell quoting, so a
//     value cannot contain a space. A value that starts with a quote is
//     refused instead of being taken literally with its quote characters.
//   - Options follow Python's argparse: `--flag value` or `--flag=value`,
//     unambiguous abbreviations (`--lab` for `--labels`), `-i value` or
//     `-ivalue`, a repeated option keeps its last value (`--env` adds up),
//     and `--` ends the options.
//
// Parse is pure: it never blocks and needs no context.
package command

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// DefaultPrefix is the prefix Parse uses when it is given none. Packit's
// production instance answers to it; its staging instance uses "/packit-stg".
const DefaultPrefix = "/packit"

// Bounds on what Parse reads, so that a hostile comment costs little.
const (
	MaxCommentBytes = 64 << 10 // only the first 64 KiB of a comment are read
	MaxArgs         = 64       // words after the prefix on the command line
	MaxArgBytes     = 512      // bytes in one word
	MaxEnv          = 32       // distinct --env variables
	MaxListItems    = 32       // items in --labels or --resolve-bug
	MaxRawRunes     = 200      // runes kept in Command.Raw and Error.Raw
)

// Name is a sub-command, as written after the prefix.
type Name string

// The sub-commands Parse recognises: Packit's (so that a service that does not
// run a job can answer "not supported" rather than "unknown") and upbuild's
// own approve.
const (
	NameHelp              Name = "help"
	NameCoprBuild         Name = "copr-build"
	NameBuild             Name = "build" // Packit's alias of copr-build
	NameRebuildFailed     Name = "rebuild-failed"
	NameTest              Name = "test"
	NameRetestFailed      Name = "retest-failed"
	NameUpstreamKojiBuild Name = "upstream-koji-build"
	NameVMImageBuild      Name = "vm-image-build"
	NameProposeDownstream Name = "propose-downstream"
	NamePullFromUpstream  Name = "pull-from-upstream"
	NameKojiBuild         Name = "koji-build"
	NameKojiTag           Name = "koji-tag"
	NameCreateUpdate      Name = "create-update"
	// NameApprove is not a Packit command: it is upbuild's, for a maintainer
	// to let CI run on a merge request from an untrusted author.
	NameApprove Name = "approve"
)

// knownNames lists every recognised name, canonical names in the order the
// help text shows them, each alias after its command.
func knownNames() []Name {
	return []Name{
		NameHelp, NameCoprBuild, NameBuild, NameRebuildFailed, NameTest, NameRetestFailed,
		NameUpstreamKojiBuild, NameVMImageBuild, NameProposeDownstream, NamePullFromUpstream,
		NameKojiBuild, NameKojiTag, NameCreateUpdate, NameApprove,
	}
}

// Known reports whether n is a recognised sub-command or alias.
func (n Name) Known() bool {
	for _, k := range knownNames() {
		if n == k {
			return true
		}
	}
	return false
}

// Canonical returns the command an alias stands for (copr-build for build),
// and n itself otherwise.
func (n Name) Canonical() Name {
	if n == NameBuild {
		return NameCoprBuild
	}
	return n
}

// Command is a parsed comment command. Fields a command does not take stay
// zero.
type Command struct {
	Name   Name   // as written; see Name.Canonical for aliases
	Prefix string // the prefix it was written with, e.g. "/packit"
	Line   int    // 1-based line of the comment where it was found
	Raw    string // the command line as written: trimmed, at most MaxRawRunes runes

	// Package is --package, for monorepos. Packit takes it only before the
	// sub-command (`/packit --package foo build`); upbuild also takes it after
	// a job command (`/packit build --package foo`).
	Package string

	// CommitBranch is --commit <branch> (copr-build, test): run the jobs
	// configured with the commit trigger, for that branch.
	CommitBranch string
	// ReleaseTag is --release <tag> (copr-build, test): run the jobs configured
	// with the release trigger, for that tag.
	ReleaseTag string

	Identifier string            // test: --identifier, --id or -i
	Labels     []string          // test: --labels a,b
	Env        map[string]string // test: --env KEY=VALUE; an empty value unsets KEY, as in Packit
	// BuildsFrom is the positional argument of test: the merge request of
	// another project whose builds the tests install.
	BuildsFrom *MergeRequestRef

	ResolveBugs  []string // pull-from-upstream: --resolve-bug rhbz#1,rhbz#2
	WithPRConfig bool     // pull-from-upstream: --with-pr-config
	Version      string   // pull-from-upstream: --version
	AllBranches  bool     // koji-tag: --all-branches
}

// MergeRequestRef names a merge request, written `group/project#12`
// (Packit's form), `group/project!12` (GitLab's reference form) or as the
// merge request's URL.
type MergeRequestRef struct {
	Host    string // only when given as a URL, e.g. "gitlab.example.com"
	Project string // path with namespace, e.g. "group/sub/project"
	IID     int64  // the merge request's number within the project
}

// Error is a command line that could not be parsed. Msg is written for the
// comment's author and is safe to quote back in a reply.
type Error struct {
	Line int    // 1-based line of the comment
	Raw  string // the command line as written: trimmed, at most MaxRawRunes runes
	Msg  string
}

// Error formats e as "line N: message", for logs.
func (e *Error) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// Result is what Parse found. Like Packit, Parse acts on the first command
// line only, so Commands and Errors hold at most one entry between them.
type Result struct {
	Commands []Command
	Errors   []*Error
}

// Parse finds the command in a comment. prefixes are the words that start a
// command (DefaultPrefix when empty).
//
// Unlike Packit, lines inside fenced code blocks (``` or ~~~), quoted lines
// (starting with >) and GitLab's >>> multi-line quotes never trigger. This is
// a deliberate safety choice: a reply that quotes an earlier command, or
// documentation that shows one, must not start work.
func Parse(comment string, prefixes []string) Result {
	if len(prefixes) == 0 {
		prefixes = []string{DefaultPrefix}
	}
	var md markdown
	lineNo := 0
	for line := range strings.Lines(capComment(comment)) {
		lineNo++
		trimmed := strings.TrimSpace(line)
		if md.skip(trimmed) {
			continue
		}
		prefix, args, ok := commandWords(trimmed, prefixes)
		if !ok {
			continue
		}
		raw := capRunes(trimmed, MaxRawRunes)
		cmd, msg := parseArgs(prefix, args)
		if msg != "" {
			return Result{Errors: []*Error{{Line: lineNo, Raw: raw, Msg: msg}}}
		}
		cmd.Prefix, cmd.Line, cmd.Raw = prefix, lineNo, raw
		return Result{Commands: []Command{cmd}}
	}
	return Result{}
}

// capComment cuts a comment to MaxCommentBytes, dropping the last line if it
// was cut: half a command line must not run with half its arguments.
func capComment(comment string) string {
	if len(comment) <= MaxCommentBytes {
		return comment
	}
	cut := comment[:MaxCommentBytes]
	return cut[:strings.LastIndexByte(cut, '\n')+1]
}

// commandWords splits a trimmed line into words and reports whether it is a
// command line: its first word is one of the prefixes and at least one word
// follows. It reads at most MaxArgs+1 words after the prefix, enough for
// parseArgs to see that there were too many.
func commandWords(line string, prefixes []string) (prefix string, args []string, ok bool) {
	if !hasPrefixWord(line, prefixes) {
		return "", nil, false
	}
	for word := range strings.FieldsSeq(line) {
		if prefix == "" {
			if !isOneOf(word, prefixes) {
				return "", nil, false
			}
			prefix = word
			continue
		}
		args = append(args, word)
		if len(args) > MaxArgs {
			break
		}
	}
	return prefix, args, len(args) > 0
}

// hasPrefixWord is a cheap pre-check that spares splitting most lines: a line
// whose first word is a prefix starts with that prefix.
func hasPrefixWord(line string, prefixes []string) bool {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

func isOneOf(word string, set []string) bool {
	for _, s := range set {
		if word == s {
			return true
		}
	}
	return false
}

// capRunes cuts s to at most n runes, ending with "…" when it was cut.
func capRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i = range s {
		if count == n-1 {
			break
		}
		count++
	}
	return s[:i] + "…"
}
