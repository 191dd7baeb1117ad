package srpm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
)

// Command is one process to run.
type Command struct {
	Args []string
	// Dir is the working directory, a path on the host. A sandboxing
	// runner maps it (and the path-valued PACKIT_* variables) into the
	// sandbox.
	Dir string
	// Env holds the variables to set on top of the runner's own minimal
	// environment.
	Env map[string]string
	// Log receives the command's stdout and stderr, a whole line at a time,
	// while it runs. Nil discards them.
	Log io.Writer
}

// Output is what a finished command left behind.
type Output struct {
	Stdout string
	Stderr string
	// ExitCode is the process's exit status; a command that exits non-zero
	// is not an error of Run.
	ExitCode int
}

// Runner runs a command to completion. It returns an error only when the
// command could not be run or waited for (not found, context ended); a
// non-zero exit is reported in Output.ExitCode.
type Runner interface {
	Run(ctx context.Context, c Command) (Output, error)
}

// maxCaptured bounds how much of each stream a HostRunner keeps in Output;
// beyond it the start is dropped, because Packit reads the end (the archive
// path is on the last line) and errors show the last lines.
const maxCaptured = 1 << 20

// HostRunner runs commands directly on this machine with a minimal
// environment (PATH, HOME, TMPDIR and LC_ALL=C.UTF-8, plus Command.Env), so
// upbuild's own secrets are not passed on.
//
// It is for tests and for upbuild's own trusted tools (git, rpm -q).
// Commands supplied by a repository (Packit actions) and rpmbuild/rpmspec
// on a repository's spec (whose %(...) macros run shell code) must go
// through the sandboxing runner in production, never through HostRunner.
type HostRunner struct{}

// Run implements Runner.
func (HostRunner) Run(ctx context.Context, c Command) (Output, error) {
	if len(c.Args) == 0 {
		return Output{}, errors.New("run: empty command")
	}
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = hostEnv(c.Env)
	log := newLineWriter(c.Log)
	stdout, stderr := &tailBuffer{max: maxCaptured}, &tailBuffer{max: maxCaptured}
	cmd.Stdout = io.MultiWriter(stdout, log.stream())
	cmd.Stderr = io.MultiWriter(stderr, log.stream())
	err := cmd.Run()
	log.flush()
	out := Output{Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return out, fmt.Errorf("run %s: %w", c.Args[0], ctx.Err())
	case errors.As(err, &exitErr):
		out.ExitCode = exitErr.ExitCode()
	default:
		return out, fmt.Errorf("run %s: %w", c.Args[0], err)
	}
	return out, nil
}

func hostEnv(extra map[string]string) []string {
	env := map[string]string{"LC_ALL": "C.UTF-8"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf.Reset()
		p = p[len(p)-t.max:]
	} else if over := t.buf.Len() + len(p) - t.max; over > 0 {
		t.buf.Next(over)
	}
	t.buf.Write(p)
	return n, nil
}

func (t *tailBuffer) String() string { return t.buf.String() }

// lineWriter forwards whole lines from one or more streams to a log,
// one Write per line, so lines of stdout and stderr never interleave
// mid-line.
type lineWriter struct {
	mu  sync.Mutex
	out io.Writer
	// partial holds each stream's unfinished line.
	partial []*bytes.Buffer
}

func newLineWriter(out io.Writer) *lineWriter {
	if out == nil {
		out = io.Discard
	}
	return &lineWriter{out: out}
}

// stream returns a writer for one stream (stdout or stderr).
func (l *lineWriter) stream() io.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := &bytes.Buffer{}
	l.partial = append(l.partial, b)
	return streamWriter{l: l, partial: b}
}

type streamWriter struct {
	l       *lineWriter
	partial *bytes.Buffer
}

func (s streamWriter) Write(p []byte) (int, error) {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	s.partial.Write(p)
	for {
		i := bytes.IndexByte(s.partial.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		// A log that fails must not fail the build; the output is still
		// captured in Output.
		_, _ = s.l.out.Write(s.partial.Next(i + 1))
	}
}

// flush writes unfinished last lines, with a line break added.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.partial {
		if b.Len() > 0 {
			_, _ = l.out.Write(append(b.Bytes(), '\n'))
			b.Reset()
		}
	}
}

// lastLines returns at most n final non-empty lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
