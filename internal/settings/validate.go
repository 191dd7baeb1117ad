package settings

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"upbuild.dev/upbuild/internal/packitcfg"
)

// Limits keep a settings row small and a form reviewable.
const (
	MaxTargets        = 50
	MaxJobOverrides   = 100
	MaxFallbackBytes  = 256 << 10
	maxNameLength     = 100
	maxTemplateLength = 200
)

// FallbackFileName names the fallback config in messages and on runs.
const FallbackFileName = "fallback .packit.yaml (settings page)"

// FieldError is one problem with one setting. Field names the form field
// ("targets", "jobs[2].branch", "fallback_config"); Line and Column point
// into the fallback config (0 elsewhere).
type FieldError struct {
	Field  string
	Line   int
	Column int
	Msg    string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d, column %d: %s", e.Field, e.Line, e.Column, e.Msg)
	}
	return e.Field + ": " + e.Msg
}

// FieldErrors lists the *FieldError values in an error from Validate.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, FieldErrors(e)...)
		}
		return out
	}
	if fe := new(FieldError); errors.As(err, &fe) {
		out = append(out, fe)
	}
	return out
}

// Check says what Validate needs to know about the project.
type Check struct {
	// RepoName is the repository's name (no namespace): Packit's default
	// package name when the fallback config names none.
	RepoName string
	// Aliases are the operator's target aliases.
	Aliases packitcfg.AliasTable
}

// Validate checks every setting and returns all problems at once, joined,
// each a *FieldError.
func Validate(s Settings, c Check) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(s.Targets) > MaxTargets {
		add("targets", "%d targets; at most %d", len(s.Targets), MaxTargets)
	}
	seen := map[string]bool{}
	for _, t := range s.Targets {
		if seen[t] {
			add("targets", "%q is listed twice", t)
			continue
		}
		seen[t] = true
		if err := checkTarget(t, c.Aliases); err != nil {
			add("targets", "%v", err)
		}
	}
	if len(s.Jobs) > MaxJobOverrides {
		add("jobs", "%d job overrides; at most %d", len(s.Jobs), MaxJobOverrides)
	}
	keys := map[string]int{}
	for i, o := range s.Jobs {
		field := fmt.Sprintf("jobs[%d]", i)
		if !knownJobType(o.Type) {
			add(field+".job", "%q is not a Packit job type", o.Type)
		}
		if err := checkName(o.Identifier); err != nil {
			add(field+".identifier", "%v", err)
		}
		key := string(o.Type) + "\x00" + o.Identifier
		if first, ok := keys[key]; ok {
			add(field, "overrides %s %q again (first in jobs[%d]); one override per job type and identifier", o.Type, o.Identifier, first)
		}
		keys[key] = i
		for j, t := range o.Triggers {
			if !slices.Contains(overridable, t) {
				add(field+".triggers", "%q is not a trigger settings can set (pull_request, commit or release)", t)
			} else if slices.Contains(o.Triggers[:j], t) {
				add(field+".triggers", "%q is listed twice", t)
			}
		}
		if o.Branch != "" {
			if _, err := regexp.Compile(o.Branch); err != nil {
				add(field+".branch", "not a regular expression Go's RE2 engine accepts (no lookaround or backreferences): %v", err)
			}
		}
	}
	switch s.ApprovalPolicy {
	case ApprovalInherit, ApprovalOff, ApprovalForks, ApprovalAll:
	default:
		add("approval_policy", "%q is not one of off, forks or all (or empty for the operator's policy)", s.ApprovalPolicy)
	}
	if err := checkStatusTemplate(s.StatusNameTemplate); err != nil {
		add("status_name_template", "%v", err)
	}
	errs = append(errs, checkFallback(s.FallbackConfig, c.RepoName)...)
	return errors.Join(errs...)
}

// checkFallback parses the fallback config the way the planner will,
// turning its errors into field errors with their line and column.
func checkFallback(text, repoName string) []error {
	if text == "" {
		return nil
	}
	if len(text) > MaxFallbackBytes {
		return []error{&FieldError{Field: "fallback_config", Msg: fmt.Sprintf("%d bytes; at most %d", len(text), MaxFallbackBytes)}}
	}
	_, err := packitcfg.Load(FallbackFileName, []byte(text), packitcfg.Options{RepoName: repoName})
	if err == nil {
		return nil
	}
	list := packitcfg.Errors(err)
	if len(list) == 0 {
		return []error{&FieldError{Field: "fallback_config", Msg: err.Error()}}
	}
	out := make([]error, len(list))
	for i, e := range list {
		out[i] = &FieldError{Field: "fallback_config", Line: e.Line, Column: e.Column, Msg: e.Msg}
	}
	return out
}

// architectures are the chroot suffixes Packit recognises.
var architectures = []string{"aarch64", "armhfp", "i386", "ppc64le", "s390x", "x86_64"}

// rollingVersions are chroot versions that are not numbers.
var rollingVersions = []string{"rawhide", "eln", "cauldron", "tumbleweed"}

var (
	targetChars  = regexp.MustCompile(`^[a-z0-9][a-z0-9+._-]*$`)
	numericLabel = regexp.MustCompile(`^[0-9][0-9.]*$`)
)

// checkTarget accepts an alias of the table (optionally with an
// architecture, fedora-all-aarch64) or a chroot written distro-version or
// distro-version-arch, where the version is a number or a rolling release
// (rawhide, eln, cauldron, tumbleweed). Anything else is most likely a typo
// that would make every job fail.
func checkTarget(t string, aliases packitcfg.AliasTable) error {
	if len(t) > maxNameLength || !targetChars.MatchString(t) {
		return fmt.Errorf("%q is not a target name (lower-case letters, digits, '+', '.', '_' and '-')", t)
	}
	base := t
	if i := strings.LastIndex(t, "-"); i > 0 && slices.Contains(architectures, t[i+1:]) {
		base = t[:i]
	}
	if _, ok := aliases[base]; ok {
		return nil
	}
	i := strings.LastIndex(base, "-")
	if i > 0 {
		version := base[i+1:]
		if numericLabel.MatchString(version) || slices.Contains(rollingVersions, version) {
			return nil
		}
	}
	known := make([]string, 0, len(aliases))
	for a := range aliases {
		known = append(known, a)
	}
	slices.Sort(known)
	return fmt.Errorf("%q is neither a chroot (distro-version[-arch], such as fedora-rawhide-x86_64) nor a known alias (%s)",
		t, strings.Join(known, ", "))
}

func checkName(s string) error {
	if len(s) > maxNameLength {
		return fmt.Errorf("longer than %d characters", maxNameLength)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 || strings.ContainsAny(s, " \t") {
		return errors.New("must not contain spaces or control characters")
	}
	return nil
}

var jobTypes = []packitcfg.JobType{packitcfg.JobCoprBuild, packitcfg.JobTests, packitcfg.JobUpstreamKojiBuild,
	packitcfg.JobVMImageBuild, packitcfg.JobProposeDownstream, packitcfg.JobPullFromUpstream, packitcfg.JobKojiBuild,
	packitcfg.JobBodhiUpdate, packitcfg.JobSyncFromDownstream, packitcfg.JobKojiBuildTag}

func knownJobType(t packitcfg.JobType) bool { return slices.Contains(jobTypes, t) }

// JobTypes lists the Packit job types an override may name.
func JobTypes() []packitcfg.JobType { return slices.Clone(jobTypes) }

// statusFields are the fields packitcfg.StatusName fills in.
var statusFields = []string{"job_name", "chroot", "event", "identifier", "package"}

// checkStatusTemplate accepts what packitcfg.StatusName renders: literal
// text, "{{" and "}}" for braces, and the {field} names above. Packit falls
// back to its default names for anything else; here the maintainer is told.
func checkStatusTemplate(s string) error {
	if len(s) > maxTemplateLength {
		return fmt.Errorf("longer than %d characters", maxTemplateLength)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return errors.New("must not contain control characters")
	}
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "{{") || strings.HasPrefix(s[i:], "}}"):
			i++
		case s[i] == '}':
			return fmt.Errorf("a single '}' at character %d; write '}}' for a brace", i+1)
		case s[i] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return fmt.Errorf("the '{' at character %d is not closed", i+1)
			}
			if field := s[i+1 : i+end]; !slices.Contains(statusFields, field) {
				return fmt.Errorf("unknown placeholder {%s}; use {%s}", field, strings.Join(statusFields, "}, {"))
			}
			i += end
		}
	}
	return nil
}
