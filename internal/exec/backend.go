package exec

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Backend turns an SRPM into RPMs for a target. The local backend rebuilds
// in an operator-defined build environment inside the sandbox; a remote
// backend (Copr) can be added to Options.Backends without changing any
// caller.
type Backend interface {
	// Name is shown in logs ("local", "copr").
	Name() string
	// Accepts reports whether the backend can build for the target.
	Accepts(target string) bool
	// Build rebuilds the SRPM for the target. A result with an empty State
	// is a success with RPMs; otherwise State and Description are the job's
	// outcome (failed for the project's fault, error for upbuild's).
	Build(ctx context.Context, req BuildRequest) BuildResult
}

// BuildRequest is one SRPM to build for one target.
type BuildRequest struct {
	JobDir string // the job's directory (the sandbox's /work)
	SRPM   string // host path of the SRPM, inside JobDir
	Target string
	Log    io.Writer
}

// BuildResult is what a backend produced.
type BuildResult struct {
	RPMs        []string // host paths
	State       string
	Description string
}

// localBackend rebuilds with rpmbuild --rebuild in the target's build
// environment: the host (host-<arch>) or an operator's root filesystem.
type localBackend struct{ e *Executor }

func (b localBackend) Name() string { return "local" }

func (b localBackend) Accepts(target string) bool {
	_, ok := b.e.env(target)
	return ok
}

func (b localBackend) Build(ctx context.Context, req BuildRequest) BuildResult {
	env, _ := b.e.env(req.Target)
	logf := func(format string, args ...any) {
		fmt.Fprintf(req.Log, "upbuild: "+strings.TrimSuffix(format, "\n")+"\n", args...)
	}
	rpms, state, desc := b.e.rebuild(ctx, req.JobDir, req.SRPM, env, logf, req.Log)
	return BuildResult{RPMs: rpms, State: state, Description: desc}
}

// backendFor picks the first backend that builds for the target.
func (e *Executor) backendFor(target string) (Backend, bool) {
	for _, b := range e.backends {
		if b.Accepts(target) {
			return b, true
		}
	}
	return nil, false
}
