package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"upbuild.dev/upbuild/internal/jobfs"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/sandbox"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/upbuildcfg"
)

// maxConfigBytes bounds the config files read from the checkout.
const maxConfigBytes = 4 << 20

// jobSettings loads the config from the checked-out tree and returns the
// settings of the job's view (type, position in the file, package).
func jobSettings(files *jobfs.Dir, src string, run store.Run, job store.Job) (packitcfg.Settings, string, error) {
	entries, err := os.ReadDir(src)
	if err != nil {
		return packitcfg.Settings{}, "", fmt.Errorf("read the checkout: %w", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	name, _ := packitcfg.FindConfigFile(names)
	if name == "" {
		return packitcfg.Settings{}, "", fmt.Errorf("no Packit config at this commit")
	}
	data, err := files.ReadFile(filepath.Join(src, name), maxConfigBytes)
	if err != nil {
		return packitcfg.Settings{}, "", fmt.Errorf("read %s: %w", name, err)
	}
	cfg, err := packitcfg.Load(name, data, packitcfg.Options{RepoName: filepath.Base(run.SourceProjectPath), RepoFiles: names})
	if err != nil {
		return packitcfg.Settings{}, "", fmt.Errorf("%s: %w", name, err)
	}
	for _, j := range cfg.Jobs {
		if string(j.Type) == job.JobType && j.Index == job.JobIndex && j.PackageName == job.Package {
			return j.Settings, j.PackageName, nil
		}
	}
	return packitcfg.Settings{}, "", fmt.Errorf("job %s #%d is no longer in %s at this commit", job.JobType, job.JobIndex+1, name)
}

// sandboxFor returns the sandbox of a build environment: the shared one for
// the host, one per operator-supplied root filesystem otherwise.
func (e *Executor) sandboxFor(env BuildEnv) (*sandbox.Sandbox, error) {
	if env.RootFS == "" {
		return e.opts.Sandbox, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if sb, ok := e.envBoxes[env.RootFS]; ok {
		return sb, nil
	}
	sb, err := sandbox.New(sandbox.Config{RootFS: env.RootFS, DefaultLimits: e.opts.Limits})
	if err != nil {
		return nil, err
	}
	e.envBoxes[env.RootFS] = sb
	return sb, nil
}

// rebuild turns the SRPM into RPMs with rpmbuild --rebuild in the target's
// environment. BuildRequires are checked by rpmbuild against the
// environment's RPM database, never installed: there is no network.
func (e *Executor) rebuild(ctx context.Context, jobDir, srpmPath string, env BuildEnv, logf func(string, ...any), logw io.Writer) ([]string, string, string) {
	sb, err := e.sandboxFor(env)
	if err != nil {
		logf("the build environment's sandbox failed: %v", err)
		return nil, store.JobError, "upbuild could not prepare the build environment"
	}
	top := filepath.Join(jobDir, "out", "rebuild")
	files, err := jobfs.Open(jobDir)
	if err != nil {
		logf("%v", err)
		return nil, store.JobError, "upbuild could not prepare the build directory"
	}
	defer files.Close()
	if err := files.MkdirAll(top, 0o755); err != nil {
		logf("%v", err)
		return nil, store.JobError, "upbuild could not prepare the build directory"
	}
	r := &sandboxRunner{sb: sb, jobDir: jobDir, limits: e.opts.Limits}
	args := []string{"rpmbuild", "--rebuild", "--define", "_topdir " + top, "--target", env.Arch, srpmPath}
	logf("$ %s", strings.Join(args, " "))
	var tail tailWriter
	res, err := r.sb.Run(ctx, sandbox.Cmd{Args: mapAll(r, args), WorkDir: jobDir, Limits: e.opts.Limits,
		Output: io.MultiWriter(logw, &tail)})
	if err != nil {
		logf("rpmbuild could not run: %v", err)
		return nil, store.JobError, "upbuild could not run rpmbuild"
	}
	if res.TimedOut {
		return nil, store.JobFailed, "RPM build timed out"
	}
	if res.ExitCode != 0 {
		return nil, store.JobFailed, "RPM build failed: " + tail.reason()
	}
	// Only plain files, listed through the job directory's root: the
	// spec's scripts ran in the sandbox with this directory writable, and
	// may have left symlinks, also in place of the directories.
	var rpms []string
	all, err := files.Regular(filepath.Join(top, "RPMS"))
	for _, p := range all {
		if strings.HasSuffix(p, ".rpm") {
			rpms = append(rpms, p)
		}
	}
	if err != nil || len(rpms) == 0 {
		return nil, store.JobFailed, "RPM build produced no packages"
	}
	slices.Sort(rpms)
	return rpms, "", ""
}

func mapAll(r *sandboxRunner, args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.inside(a)
	}
	return out
}

// test runs the project's test commands from .upbuild.yaml in the sandbox,
// in the checked-out tree, with the built RPMs at hand.
func (e *Executor) test(ctx context.Context, files *jobfs.Dir, src string, env BuildEnv, logf func(string, ...any), logw io.Writer) (string, string) {
	jobDir := files.Path()
	data, err := files.ReadFile(filepath.Join(src, upbuildcfg.FileName), maxConfigBytes)
	if errors.Is(err, fs.ErrNotExist) {
		logf("no %s: there are no test commands to run", upbuildcfg.FileName)
		return store.JobSkipped, "no test commands in " + upbuildcfg.FileName
	}
	if err != nil {
		logf("reading %s: %v", upbuildcfg.FileName, err)
		return store.JobFailed, upbuildcfg.FileName + " could not be read"
	}
	settings, err := upbuildcfg.Parse(data)
	if err != nil {
		logf("%v", err)
		return store.JobFailed, "the test configuration could not be used"
	}
	if len(settings.Tests) == 0 {
		return store.JobSkipped, "no test commands in " + upbuildcfg.FileName
	}
	sb, err := e.sandboxFor(env)
	if err != nil {
		logf("the build environment's sandbox failed: %v", err)
		return store.JobError, "upbuild could not prepare the test environment"
	}
	for i, t := range settings.Tests {
		name := t.Name
		if name == "" {
			name = fmt.Sprintf("test %d", i+1)
		}
		logf("running %s: %s", name, t.Run)
		var tail tailWriter
		res, err := sb.Run(ctx, sandbox.Cmd{Args: []string{"sh", "-c", t.Run}, WorkDir: jobDir, Dir: "src",
			Env: map[string]string{"UPBUILD_RPMS_DIR": "/work/out/rebuild/RPMS"}, Limits: e.opts.Limits,
			Output: io.MultiWriter(logw, &tail)})
		if err != nil {
			logf("%s could not run: %v", name, err)
			return store.JobError, "upbuild could not run the tests"
		}
		if res.TimedOut {
			return store.JobFailed, name + " timed out"
		}
		if res.ExitCode != 0 {
			return store.JobFailed, fmt.Sprintf("%s failed (exit %d): %s", name, res.ExitCode, tail.reason())
		}
	}
	return store.JobSuccess, fmt.Sprintf("%d test command(s) passed", len(settings.Tests))
}

// tailWriter keeps the last lines of output, to say why something failed.
type tailWriter struct{ lines []string }

func (t *tailWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		t.lines = append(t.lines, l)
		if len(t.lines) > 20 {
			t.lines = t.lines[1:]
		}
	}
	return len(p), nil
}

// reason picks the most telling recent line: rpmbuild's "error:" lines first.
func (t *tailWriter) reason() string {
	for i := len(t.lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(t.lines[i]); strings.HasPrefix(l, "error:") || strings.Contains(l, "is needed by") {
			return firstLine(l)
		}
	}
	if len(t.lines) > 0 {
		return firstLine(strings.TrimSpace(t.lines[len(t.lines)-1]))
	}
	return "no output"
}
