package command

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// flag is one option of a command, with argparse's behaviour.
type flag struct {
	names   []string // the canonical long name first, then aliases, e.g. "--identifier", "--id", "-i"
	metavar string   // placeholder in the help text; empty for a switch that takes no value
	// set stores the value (empty for a switch) and returns a message for
	// the author when the value is not acceptable.
	set func(c *Command, value string) string
}

func (f flag) isSwitch() bool { return f.metavar == "" }

// packageFlag is --package, Packit's one global option.
func packageFlag() flag {
	return flag{names: []string{"--package"}, metavar: "<name>", set: func(c *Command, v string) string {
		c.Package = v
		return nonEmpty("--package", v)
	}}
}

func commitFlag() flag {
	return flag{names: []string{"--commit"}, metavar: "<branch>", set: func(c *Command, v string) string {
		c.CommitBranch = v
		return nonEmpty("--commit", v)
	}}
}

func releaseFlag() flag {
	return flag{names: []string{"--release"}, metavar: "<tag>", set: func(c *Command, v string) string {
		c.ReleaseTag = v
		return nonEmpty("--release", v)
	}}
}

// flagsFor returns the options a command takes after its name. Every job
// command takes --package; help and approve take nothing.
func flagsFor(n Name) []flag {
	switch n.Canonical() {
	case NameHelp, NameApprove:
		return nil
	case NameCoprBuild:
		return []flag{commitFlag(), releaseFlag(), packageFlag()}
	case NameTest:
		return []flag{
			commitFlag(), releaseFlag(),
			{names: []string{"--identifier", "--id", "-i"}, metavar: "<id>", set: func(c *Command, v string) string {
				c.Identifier = v
				return nonEmpty("--identifier", v)
			}},
			{names: []string{"--labels"}, metavar: "<label,...>", set: func(c *Command, v string) string {
				c.Labels = splitList(v)
				return checkList("--labels", c.Labels)
			}},
			{names: []string{"--env"}, metavar: "<KEY=VALUE>", set: setEnv},
			packageFlag(),
		}
	case NamePullFromUpstream:
		return []flag{
			{names: []string{"--resolve-bug"}, metavar: "<bug,...>", set: func(c *Command, v string) string {
				c.ResolveBugs = splitList(v)
				return checkList("--resolve-bug", c.ResolveBugs)
			}},
			{names: []string{"--with-pr-config"}, set: func(c *Command, _ string) string {
				c.WithPRConfig = true
				return ""
			}},
			{names: []string{"--version"}, metavar: "<version>", set: func(c *Command, v string) string {
				c.Version = v
				return nonEmpty("--version", v)
			}},
			packageFlag(),
		}
	case NameKojiTag:
		return []flag{
			{names: []string{"--all-branches"}, set: func(c *Command, _ string) string {
				c.AllBranches = true
				return ""
			}},
			packageFlag(),
		}
	default:
		return []flag{packageFlag()}
	}
}

// parseArgs parses the words after the prefix. It returns a message for the
// author when they do not form a valid command.
func parseArgs(prefix string, args []string) (Command, string) {
	var c Command
	if len(args) > MaxArgs {
		return c, fmt.Sprintf("too many arguments (at most %d)", MaxArgs)
	}
	for _, a := range args {
		if msg := checkWord(a); msg != "" {
			return c, msg
		}
	}

	// Options before the sub-command belong to the top-level parser.
	i := 0
	for i < len(args) && looksLikeFlag(args[i]) {
		if args[i] == "--" {
			i++
			break
		}
		n, msg := applyFlag(&c, []flag{packageFlag()}, args, i, "before the command")
		if msg != "" {
			return c, msg
		}
		i += n
	}
	if i == len(args) {
		return c, fmt.Sprintf("no command after the options: write %s [--package <name>] <command>; see %s help", prefix, prefix)
	}
	c.Name = Name(args[i])
	if !c.Name.Known() {
		return Command{}, unknownCommand(prefix, args[i])
	}
	i++

	flags := flagsFor(c.Name)
	var positional []string
	optionsEnded := false
	for i < len(args) {
		a := args[i]
		switch {
		case !optionsEnded && a == "--":
			optionsEnded = true
			i++
		case !optionsEnded && looksLikeFlag(a):
			n, msg := applyFlag(&c, flags, args, i, "for "+string(c.Name))
			if msg != "" {
				return c, msg
			}
			i += n
		default:
			positional = append(positional, a)
			i++
		}
	}
	if msg := setPositional(&c, positional); msg != "" {
		return c, msg
	}
	if c.CommitBranch != "" && c.ReleaseTag != "" {
		return c, "--commit and --release cannot be used together"
	}
	return c, ""
}

// looksLikeFlag follows argparse: a word that starts with "-" and is more
// than "-" is an option.
func looksLikeFlag(word string) bool {
	return len(word) > 1 && word[0] == '-'
}

// checkWord enforces the size bound and refuses quoting. Packit splits on
// whitespace and has no quoting, so `--env A="b c"` would reach the tests as
// A=`"b` plus a stray word; refusing says so instead of running the wrong thing.
func checkWord(word string) string {
	if len(word) > MaxArgBytes {
		return fmt.Sprintf("argument %s is too long (at most %d bytes)", show(capRunes(word, 20)), MaxArgBytes)
	}
	_, value, _ := strings.Cut(word, "=")
	if startsWithQuote(word) || startsWithQuote(value) {
		return quotingMsg
	}
	return ""
}

const quotingMsg = "quotes are not supported: values are split on whitespace, as in Packit, so a value cannot contain spaces"

func startsWithQuote(s string) bool {
	return s != "" && strings.ContainsRune(`"'`+"`", rune(s[0]))
}

// applyFlag applies the option at args[i] and returns how many words it used.
func applyFlag(c *Command, flags []flag, args []string, i int, where string) (int, string) {
	word := args[i]
	var (
		typed, value string
		hasValue     bool
	)
	if strings.HasPrefix(word, "--") {
		typed, value, hasValue = strings.Cut(word, "=")
	} else {
		// A short option: -i value, -i=value or -ivalue.
		_, size := utf8.DecodeRuneInString(word[1:])
		typed = word[:1+size]
		if rest := word[1+size:]; rest != "" {
			value, hasValue = strings.TrimPrefix(rest, "="), true
		}
	}
	f, msg := lookupFlag(flags, typed, where)
	if msg != "" {
		return 0, msg
	}
	name := f.names[0]
	used := 1
	switch {
	case f.isSwitch():
		if hasValue {
			return 0, fmt.Sprintf("%s takes no value", name)
		}
	case !hasValue:
		if i+1 == len(args) || looksLikeFlag(args[i+1]) {
			return 0, fmt.Sprintf("%s needs a value", name)
		}
		value, used = args[i+1], 2
	}
	if msg := f.set(c, value); msg != "" {
		return 0, msg
	}
	return used, ""
}

// lookupFlag finds an option by its exact name or, like argparse, by an
// unambiguous abbreviation of a long name.
func lookupFlag(flags []flag, typed, where string) (flag, string) {
	var matches []flag
	for _, f := range flags {
		for _, n := range f.names {
			if n == typed {
				return f, ""
			}
		}
	}
	if len(typed) > len("--") && strings.HasPrefix(typed, "--") {
		for _, f := range flags {
			for _, n := range f.names {
				if strings.HasPrefix(n, typed) {
					matches = append(matches, f)
					break
				}
			}
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], ""
	case 0:
		msg := fmt.Sprintf("unknown flag %s %s", show(typed), where)
		var candidates []string
		for _, f := range flags {
			candidates = append(candidates, f.names...)
		}
		if s, ok := closest(typed, candidates); ok {
			msg += fmt.Sprintf(": did you mean %s?", s)
		}
		return flag{}, msg
	default:
		names := make([]string, len(matches))
		for i, f := range matches {
			names[i] = f.names[0]
		}
		return flag{}, fmt.Sprintf("ambiguous flag %s %s: it could be %s", show(typed), where, strings.Join(names, " or "))
	}
}

func unknownCommand(prefix, word string) string {
	candidates := make([]string, 0, len(knownNames()))
	for _, n := range knownNames() {
		candidates = append(candidates, string(n))
	}
	if s, ok := closest(word, candidates); ok {
		return fmt.Sprintf("unknown command %q: did you mean %q?", capRunes(word, 40), s)
	}
	return fmt.Sprintf("unknown command %q: see %s help for the commands", capRunes(word, 40), prefix)
}

// setPositional handles the words that are not options: only test takes one,
// the merge request whose builds to test.
func setPositional(c *Command, words []string) string {
	if len(words) == 0 {
		return ""
	}
	if c.Name != NameTest {
		return fmt.Sprintf("unexpected argument %s: %s takes none", show(capRunes(words[0], 40)), c.Name)
	}
	if len(words) > 1 {
		return fmt.Sprintf("unexpected argument %s: test takes at most one merge request", show(capRunes(words[1], 40)))
	}
	ref, msg := parseMergeRequestRef(words[0])
	if msg != "" {
		return msg
	}
	c.BuildsFrom = ref
	return ""
}

// parseMergeRequestRef reads group/project#12, group/project!12 or a merge
// request URL (https://host/group/project/-/merge_requests/12).
func parseMergeRequestRef(word string) (*MergeRequestRef, string) {
	bad := fmt.Sprintf("%s is not a merge request: write <namespace>/<project>#<number> or the merge request's URL", show(capRunes(word, 60)))
	var ref MergeRequestRef
	var number string
	if strings.HasPrefix(word, "https://") || strings.HasPrefix(word, "http://") {
		u, err := url.Parse(word)
		if err != nil || u.Host == "" || u.User != nil {
			return nil, bad
		}
		project, rest, ok := strings.Cut(u.Path, "/-/merge_requests/")
		if !ok {
			return nil, bad
		}
		number, _, _ = strings.Cut(rest, "/")
		ref.Host, ref.Project = u.Host, strings.Trim(project, "/")
	} else {
		i := strings.LastIndexAny(word, "#!")
		if i < 0 {
			if strings.Contains(word, "@") {
				return nil, "testing with another project's commit (namespace/project@commit) is not supported; name its merge request instead: <namespace>/<project>#<number>"
			}
			return nil, bad
		}
		// Packit's own tests write namespace/repo/#1234.
		ref.Project, number = strings.TrimSuffix(word[:i], "/"), word[i+1:]
	}
	iid, err := strconv.ParseInt(number, 10, 64)
	if err != nil || iid <= 0 || !validProjectPath(ref.Project) {
		return nil, bad
	}
	ref.IID = iid
	return &ref, ""
}

// validProjectPath accepts a GitLab path with namespace: two or more segments
// of letters, digits, '_', '-' and '.'.
func validProjectPath(path string) bool {
	segments := strings.Split(path, "/")
	if len(segments) < 2 {
		return false
	}
	for _, s := range segments {
		if s == "" || strings.Trim(s, ".") == "" {
			return false
		}
		for _, r := range s {
			if !isWordRune(r) && r != '.' && r != '-' {
				return false
			}
		}
	}
	return true
}

// setEnv stores one --env KEY=VALUE. KEY= (empty value) is kept: for Packit
// it unsets the variable.
func setEnv(c *Command, v string) string {
	key, value, ok := strings.Cut(v, "=")
	if !ok || key == "" {
		return "--env needs KEY=VALUE"
	}
	if !validEnvKey(key) {
		return fmt.Sprintf("--env %s is not a valid variable name: use letters, digits and _, not starting with a digit", show(capRunes(key, 40)))
	}
	if startsWithQuote(value) {
		return quotingMsg
	}
	if _, seen := c.Env[key]; !seen && len(c.Env) == MaxEnv {
		return fmt.Sprintf("too many --env variables (at most %d)", MaxEnv)
	}
	if c.Env == nil {
		c.Env = make(map[string]string)
	}
	c.Env[key] = value
	return ""
}

func validEnvKey(key string) bool {
	for i, r := range key {
		if !isWordRune(r) || (i == 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func isWordRune(r rune) bool {
	return r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
}

// splitList splits a comma-separated value, dropping empty items.
func splitList(v string) []string {
	var items []string
	for item := range strings.SplitSeq(v, ",") {
		if item != "" {
			items = append(items, item)
		}
	}
	return items
}

func checkList(name string, items []string) string {
	switch {
	case len(items) == 0:
		return name + " needs a value"
	case len(items) > MaxListItems:
		return fmt.Sprintf("%s has too many items (at most %d)", name, MaxListItems)
	}
	return ""
}

func nonEmpty(name, v string) string {
	if v == "" {
		return name + " needs a value"
	}
	return ""
}

// show prints a word from the comment as is when it is plain (letters,
// digits, -, _, .), and quoted with escapes otherwise, so that a reply never
// carries Markdown or control characters the author did not see.
func show(word string) string {
	for _, r := range word {
		if !isWordRune(r) && r != '-' && r != '.' {
			return strconv.Quote(word)
		}
	}
	return word
}
