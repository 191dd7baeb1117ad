package exec

import (
	"context"
	"fmt"
	"io"
	"strings"

	"upbuild.dev/upbuild/internal/sandbox"
	"upbuild.dev/upbuild/internal/srpm"
)

// sandboxRunner runs srpm's repository commands in the bubblewrap sandbox.
// The job directory on the host appears at /work inside, so host paths in
// the working directory, the arguments and the environment are rewritten.
type sandboxRunner struct {
	sb      *sandbox.Sandbox
	jobDir  string // host path bound at /work
	network bool
	limits  sandbox.Limits
	binds   []sandbox.Bind
}

// inside maps a host path under the job directory to its path in the sandbox.
func (r *sandboxRunner) inside(s string) string {
	return strings.ReplaceAll(s, r.jobDir, "/work")
}

func (r *sandboxRunner) Run(ctx context.Context, c srpm.Command) (srpm.Output, error) {
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = r.inside(a)
	}
	env := make(map[string]string, len(c.Env))
	for k, v := range c.Env {
		env[k] = r.inside(v)
	}
	dir := ""
	if c.Dir != "" {
		rel, ok := strings.CutPrefix(c.Dir, r.jobDir)
		if !ok {
			return srpm.Output{}, fmt.Errorf("sandbox runner: directory %s is outside the job directory", c.Dir)
		}
		dir = strings.TrimPrefix(rel, "/")
	}
	var out strings.Builder
	w := io.Writer(&out)
	if c.Log != nil {
		w = io.MultiWriter(&out, c.Log)
	}
	res, err := r.sb.Run(ctx, sandbox.Cmd{Args: args, WorkDir: r.jobDir, Dir: dir, Env: env, Network: r.network,
		Limits: r.limits, ReadOnlyBinds: r.binds, Output: w})
	if err != nil {
		return srpm.Output{}, err
	}
	if res.TimedOut {
		return srpm.Output{Stdout: out.String(), ExitCode: -1}, fmt.Errorf("%s: timed out after %s", args[0], res.Duration.Round(1e9))
	}
	// The sandbox combines stdout and stderr; srpm reads what it needs
	// (a version, an archive path, rpmbuild's "Wrote:" lines) from them, as
	// Packit does, so paths inside the sandbox are mapped back to the host.
	return srpm.Output{Stdout: strings.ReplaceAll(out.String(), "/work/", r.jobDir+"/"), ExitCode: res.ExitCode}, nil
}
