// Package upbuildcfg reads .upbuild.yaml: the upbuild-only settings that
// live beside .packit.yaml, where Packit would reject them.
//
//	drafts: true            # run pull_request jobs for draft merge requests too
//	summary_comment: true   # one MR comment kept up to date instead of a comment per event
//	tests:                  # what `tests` jobs run (local backend), in order
//	  - name: smoke
//	    run: ./tests/smoke.sh
//	  - run: make check
//
// Each test command runs with sh -c in the sandbox, in the checked-out
// tree, with the built RPMs in $UPBUILD_RPMS_DIR; a non-zero exit fails the job.
package upbuildcfg

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// FileName is where the settings live, beside .packit.yaml.
const FileName = ".upbuild.yaml"

// Settings are the contents of .upbuild.yaml.
type Settings struct {
	Drafts         bool   `yaml:"drafts"`
	SummaryComment bool   `yaml:"summary_comment"`
	Tests          []Test `yaml:"tests"`
}

// Test is one test command.
type Test struct {
	Name string `yaml:"name"`
	Run  string `yaml:"run"`
}

// MaxBytes caps the file.
const MaxBytes = 64 << 10

// Parse reads the settings strictly: an unknown key is an error with its
// line, so a typo does not silently change behaviour.
func Parse(data []byte) (Settings, error) {
	var s Settings
	if len(data) > MaxBytes {
		return s, fmt.Errorf("%s is larger than %d bytes", FileName, MaxBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return Settings{}, fmt.Errorf("%s: %w", FileName, err)
	}
	for i, t := range s.Tests {
		if t.Run == "" {
			return Settings{}, fmt.Errorf("%s: tests[%d] has no run command", FileName, i)
		}
	}
	return s, nil
}
