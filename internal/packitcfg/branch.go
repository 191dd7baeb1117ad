package packitcfg

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
)

// BranchMatches reports whether branch matches a job's `branch` value the
// way packit-service checks it: Python's re.match, which is anchored at the
// start only, so "main" also matches "main-v2" and "^main$" is needed for
// an exact match.
//
// Go's RE2 engine differs from Python's re: it has no backreferences (\1),
// no lookahead or lookbehind ((?=…), (?!…), (?<=…), (?<!…)), and no
// possessive quantifiers or atomic groups. Load refuses a branch pattern that
// RE2 cannot compile, with its position; here such a pattern matches nothing.
func BranchMatches(pattern, branch string) bool {
	re, err := compileBranch(pattern)
	if err != nil {
		return false
	}
	return re.MatchString(branch)
}

func compileBranch(pattern string) (*regexp.Regexp, error) {
	// Compile the pattern alone first: "a)|(b" must not turn into a valid
	// expression once wrapped.
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + pattern + `)`)
}

// checkBranchPattern explains why a pattern cannot be used.
func checkBranchPattern(pattern string) error {
	_, err := compileBranch(pattern)
	if err == nil {
		return nil
	}
	var se *syntax.Error
	if errors.As(err, &se) {
		switch se.Code {
		case syntax.ErrInvalidPerlOp:
			return fmt.Errorf("uses a construct Go's regexp engine (RE2) lacks, such as lookahead or lookbehind: %w", err)
		case syntax.ErrInvalidEscape:
			return fmt.Errorf("uses an escape Go's regexp engine (RE2) lacks, such as a backreference: %w", err)
		}
	}
	return fmt.Errorf("not a valid regular expression: %w", err)
}
