// Package srpm builds a source RPM from a checked-out upstream repository
// the way Packit does for copr_build and tests jobs: it runs the Packit
// actions of the SRPM path (post-upstream-clone, get-current-version,
// create-archive, fix-spec-file, changelog-entry, post-modifications) or
// Packit's defaults where they are absent (version from the last tag,
// `git archive`, snapshot Version/Release/Source/%setup/%changelog edits),
// then runs `rpmbuild -bs` into a job-local directory and checks the result
// with `rpm -qp`.
//
// Repository-supplied commands (the actions, and rpmspec/rpmbuild, which
// expand the spec's %(...) shell macros) go through Builder.Sandbox;
// upbuild's own git and rpm queries go through Builder.Host.
package srpm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/jobfs"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/srpm/specedit"
)

// Sentinel errors; check them with errors.Is.
var (
	// ErrNoSpec means the package's spec file is missing or outside the
	// repository.
	ErrNoSpec = errors.New("spec file not found")
	// ErrVersion means the version could not be determined.
	ErrVersion = errors.New("cannot determine the version")
	// ErrArchive means create-archive did not name a usable archive.
	ErrArchive = errors.New("cannot find the archive")
	// ErrOutsideRepo means a path from the config or an action points
	// outside the repository work tree.
	ErrOutsideRepo = errors.New("path is outside the repository")
)

// CommandError is a command that exited non-zero: an action's command,
// rpmbuild, or one of upbuild's git calls.
type CommandError struct {
	// Step names what was being done: `action "create-archive"`, "rpmbuild".
	Step     string
	Args     []string
	ExitCode int
	// Output holds the last lines of the command's stderr and stdout.
	Output string
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s failed with exit status %d", e.Step, e.ExitCode)
	// An action's command is the user's own; show it. upbuild's own tool
	// lines (long rpmbuild defines) would only bury the message.
	if strings.HasPrefix(e.Step, "action") {
		msg = fmt.Sprintf("%s failed: %s exited with status %d", e.Step, quoteArgs(e.Args), e.ExitCode)
	}
	if e.Output != "" {
		msg += "; its last output lines:\n" + e.Output
	}
	return msg
}

// errorTailLines is how many lines of each stream a CommandError keeps.
const errorTailLines = 20

func quoteArgs(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		quoted[i] = a
	}
	return strings.Join(quoted, " ")
}

// Builder builds SRPMs. Sandbox and Host are required.
type Builder struct {
	// Sandbox runs the commands the repository controls: its actions and
	// rpmspec/rpmbuild on its spec. In production this is the bubblewrap
	// runner; it must make Request.WorkTree and Request.OutDir writable.
	Sandbox Runner
	// Host runs upbuild's own git and rpm queries.
	Host Runner
	// Log is the job log: every command and its output, line by line.
	Log io.Writer
	// Now gives the time for the snapshot ID and the changelog entry; nil
	// means time.Now.
	Now func() time.Time
	// ChangelogAuthor signs added %changelog entries ("Name <email>");
	// empty means "upbuild <upbuild@localhost>".
	ChangelogAuthor string
}

// Request is one package of one checked-out repository.
type Request struct {
	// WorkTree is the repository checkout, a host directory with .git.
	WorkTree string
	// Package is the package's key in the config (PACKIT_CONFIG_PACKAGE_NAME);
	// empty means Settings.DownstreamPackageName.
	Package string
	// Settings are the package's (or job's) resolved values. The package
	// lives in WorkTree/Paths[0]; SpecfilePath is relative to it.
	Settings packitcfg.Settings
	// OutDir is a job-local directory for rpmbuild's work and the SRPM; it
	// is created if missing.
	OutDir string
	// Branch is the branch name Packit would see (e.g. "pr/12" for a merge
	// request); empty means the checked-out branch, or "HEAD" when detached.
	Branch string
	// Commit is the full commit at HEAD as checked out, when the caller
	// knows it; it saves asking git while no action could have moved HEAD.
	Commit string
}

// Result describes the SRPM that was built.
type Result struct {
	// SRPM is the path of the .src.rpm in Request.OutDir.
	SRPM string
	// Name, Version and Release are read from the SRPM's header.
	Name, Version, Release string
	// SpecFile is the (edited) spec, Archive the source archive beside it.
	SpecFile, Archive string
	// Warnings are things Packit only warns about (no %setup to adjust,
	// no %changelog to add to).
	Warnings []string
}

// job carries one Build's state.
type job struct {
	b        *Builder
	req      Request
	s        *packitcfg.Settings
	pkgDir   string // the package's directory: Packit's working dir
	specPath string
	specDir  string
	warnings []string
	// tagCount is how many tags the repository had when the last tag was
	// looked up.
	tagCount int
	// tree and out are WorkTree and OutDir, for every file upbuild itself
	// reads or writes there: the repository's content and the code it runs
	// decide what they hold, symlinks to host files included.
	tree, out *jobfs.Dir
	// tainted is set once anything from the repository ran in the
	// sandbox: from then on the work tree, its .git included, is the
	// job's, so upbuild's own git runs in the sandbox too. On the host, git
	// would take orders from that .git/config (a promisor remote of
	// `ext::` runs any command as soon as git misses an object).
	tainted bool
}

// Build makes the SRPM for one package. A monorepo's caller calls it once
// per package, each with its own OutDir.
func (b *Builder) Build(ctx context.Context, req Request) (*Result, error) {
	if b.Sandbox == nil || b.Host == nil {
		return nil, errors.New("srpm: Builder needs both a Sandbox and a Host runner")
	}
	j, err := b.newJob(req)
	if err != nil {
		return nil, err
	}
	defer j.tree.Close()
	defer j.out.Close()
	return j.run(ctx)
}

func (b *Builder) newJob(req Request) (*job, error) {
	root, err := filepath.Abs(req.WorkTree)
	if err != nil {
		return nil, fmt.Errorf("work tree: %w", err)
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		return nil, fmt.Errorf("work tree: %w", err)
	}
	req.WorkTree = root
	if req.OutDir, err = filepath.Abs(req.OutDir); err != nil {
		return nil, fmt.Errorf("output dir: %w", err)
	}
	s := req.Settings
	if req.Package == "" {
		req.Package = s.DownstreamPackageName
	}
	sub := "./"
	if len(s.Paths) > 0 {
		sub = s.Paths[0]
	}
	pkgDir, err := inside(root, filepath.Join(root, sub))
	if err != nil {
		return nil, fmt.Errorf("package path %q: %w", sub, err)
	}
	if s.SpecfilePath == "" {
		return nil, fmt.Errorf("package %q: %w: specfile_path is not set and no .spec file was found", req.Package, ErrNoSpec)
	}
	specPath, err := inside(root, filepath.Join(pkgDir, s.SpecfilePath))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("package %q: %w: %s (specfile_path %q, relative to %q)", req.Package, ErrNoSpec,
			filepath.Join(pkgDir, s.SpecfilePath), s.SpecfilePath, sub)
	}
	if err != nil {
		return nil, fmt.Errorf("specfile_path %q: %w", s.SpecfilePath, err)
	}
	if err := os.MkdirAll(req.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("output dir: %w", err)
	}
	tree, err := jobfs.Open(root)
	if err != nil {
		return nil, fmt.Errorf("work tree: %w", err)
	}
	out, err := jobfs.Open(req.OutDir)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("output dir: %w", err), tree.Close())
	}
	return &job{b: b, req: req, s: &req.Settings, pkgDir: pkgDir, specPath: specPath, specDir: filepath.Dir(specPath),
		tree: tree, out: out}, nil
}

// inside resolves path (which must exist) and checks that it stays in root.
func inside(root, path string) (string, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, resolved)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s: %w", path, ErrOutsideRepo)
	}
	return resolved, nil
}

func (j *job) now() time.Time {
	if j.b.Now != nil {
		return j.b.Now()
	}
	return time.Now()
}

func (j *job) logf(format string, args ...any) {
	if j.b.Log != nil {
		fmt.Fprintf(j.b.Log, "upbuild: "+format+"\n", args...)
	}
}

func (j *job) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	j.warnings = append(j.warnings, msg)
	j.logf("warning: %s", msg)
}

func (j *job) run(ctx context.Context) (*Result, error) {
	s := j.s
	if _, err := j.action(ctx, packitcfg.ActionPostUpstreamClone, j.commonEnv("")); err != nil {
		return nil, err
	}
	// What git says of the repository is asked before rpmspec may run
	// the spec's macros in the sandbox: until something from the
	// repository has run, git can run on the host, which costs no sandbox.
	lastTag, err := j.lastTag(ctx)
	if err != nil {
		return nil, err
	}
	var hist history
	if !s.PreserveSpec {
		if hist, err = j.history(ctx, lastTag); err != nil {
			return nil, err
		}
	}
	specInfo, err := j.readSpecHeader(ctx)
	if err != nil {
		return nil, err
	}
	version, err := j.version(ctx, specInfo, lastTag)
	if err != nil {
		return nil, err
	}
	j.logf("version %s", version)
	archive, err := j.archive(ctx, specInfo, version)
	if err != nil {
		return nil, err
	}
	j.logf("archive %s", archive)
	if !s.PreserveSpec {
		if err := j.fixSpec(ctx, specInfo, version, lastTag, archive, hist); err != nil {
			return nil, err
		}
	}
	if _, err := j.action(ctx, packitcfg.ActionPostModifications, j.commonEnv("")); err != nil {
		return nil, err
	}
	res, err := j.rpmbuild(ctx)
	if err != nil {
		return nil, err
	}
	res.SpecFile = j.specPath
	res.Archive = filepath.Join(j.specDir, archive)
	res.Warnings = j.warnings
	return res, nil
}

// baseEnv is Packit's get_base_env.
func (j *job) baseEnv() map[string]string {
	return map[string]string{
		"PACKIT_CONFIG_PACKAGE_NAME":     j.req.Package,
		"PACKIT_UPSTREAM_PACKAGE_NAME":   j.s.UpstreamPackageName,
		"PACKIT_DOWNSTREAM_PACKAGE_NAME": j.s.DownstreamPackageName,
		"PACKIT_SPECFILE_PATH":           j.s.SpecfilePath,
	}
}

// commonEnv is Packit's common_env: the base env, the upstream dir and,
// when known, the version.
func (j *job) commonEnv(version string) map[string]string {
	env := j.baseEnv()
	env["PACKIT_UPSTREAM_REPO"] = j.pkgDir
	env["PACKIT_PWD"] = j.pkgDir
	if version != "" {
		env["PACKIT_PROJECT_VERSION"] = version
	}
	return env
}

// action runs the commands of a defined action in order and returns each
// command's stdout; stdouts is nil when the action is not defined.
func (j *job) action(ctx context.Context, name packitcfg.ActionName, env map[string]string) (stdouts []string, err error) {
	cmds, defined := j.s.Actions[name]
	if !defined {
		return nil, nil
	}
	stdouts = []string{}
	for _, c := range cmds {
		out, err := j.sandboxed(ctx, fmt.Sprintf("action %q", name), Command{Args: c, Dir: j.pkgDir, Env: env})
		if err != nil {
			return nil, err
		}
		stdouts = append(stdouts, out.Stdout)
	}
	return stdouts, nil
}

// sandboxed runs a command that comes from the repository (or runs what
// the repository wrote, such as rpmspec on its spec) in the sandbox. From
// then on the work tree is the job's: see job.tainted.
func (j *job) sandboxed(ctx context.Context, step string, c Command, shown ...[]string) (Output, error) {
	j.tainted = true
	if len(shown) == 0 {
		shown = [][]string{c.Args}
	}
	return j.runShown(ctx, j.b.Sandbox, step, c, shown...)
}

// gitRunner runs upbuild's own git commands: on the host while nothing
// from the repository has run, in the sandbox afterwards.
func (j *job) gitRunner() Runner {
	if j.tainted {
		return j.b.Sandbox
	}
	return j.b.Host
}

// runChecked runs a command with the job log attached and turns a
// non-zero exit into a *CommandError.
func (j *job) runChecked(ctx context.Context, r Runner, step string, c Command) (Output, error) {
	return j.runShown(ctx, r, step, c, c.Args)
}

// runShown is runChecked for a command that runs others (a shell script):
// the job log shows those, each on its own line, as the user would have
// typed them.
func (j *job) runShown(ctx context.Context, r Runner, step string, c Command, shown ...[]string) (Output, error) {
	if len(c.Args) == 0 {
		return Output{}, fmt.Errorf("%s: empty command", step)
	}
	for _, args := range shown {
		j.logf("%s: $ %s", step, quoteArgs(args))
	}
	c.Log = j.b.Log
	out, err := r.Run(ctx, c)
	if err != nil {
		return out, fmt.Errorf("%s: %w", step, err)
	}
	if out.ExitCode != 0 {
		return out, &CommandError{Step: step, Args: c.Args, ExitCode: out.ExitCode, Output: outputTail(out)}
	}
	return out, nil
}

func outputTail(out Output) string {
	var parts []string
	if strings.TrimSpace(out.Stderr) != "" {
		parts = append(parts, lastLines(out.Stderr, errorTailLines))
	}
	if strings.TrimSpace(out.Stdout) != "" {
		parts = append(parts, lastLines(out.Stdout, errorTailLines))
	}
	return strings.Join(parts, "\n")
}

// gitCommand is one of upbuild's git commands in the package dir. The
// repository is named, not discovered: a directory of the checkout holding
// HEAD, config, objects and refs would otherwise be taken for a bare
// repository, config included. No transport is allowed (everything these
// commands read is in the work tree; a promisor remote would otherwise run
// whatever its URL names), and the -c options keep the repository's config
// from starting programs.
func (j *job) gitCommand(args []string) Command {
	full := append([]string{"git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null",
		"-c", "protocol.allow=never", "-c", "safe.bareRepository=explicit"}, args...)
	return Command{Args: full, Dir: j.pkgDir, Env: map[string]string{
		"GIT_DIR":                filepath.Join(j.req.WorkTree, ".git"),
		"GIT_WORK_TREE":          j.req.WorkTree,
		"GIT_CONFIG_NOSYSTEM":    "1",
		"GIT_CONFIG_GLOBAL":      "/dev/null",
		"GIT_NO_REPLACE_OBJECTS": "1",
		"GIT_TERMINAL_PROMPT":    "0",
	}}
}

// git runs a git command that must succeed.
func (j *job) git(ctx context.Context, args ...string) (Output, error) {
	return j.runChecked(ctx, j.gitRunner(), "git "+args[0], j.gitCommand(args))
}

// gitRun runs a git command whose exit status the caller interprets.
func (j *job) gitRun(ctx context.Context, args ...string) (Output, error) {
	c := j.gitCommand(args)
	c.Log = j.b.Log
	out, err := j.gitRunner().Run(ctx, c)
	if err != nil {
		return out, fmt.Errorf("git %s: %w", args[0], err)
	}
	return out, nil
}

func (j *job) gitLine(ctx context.Context, args ...string) (string, error) {
	out, err := j.git(ctx, args...)
	return strings.TrimSpace(out.Stdout), err
}

// specInfo is what rpmspec says of the spec (macros expanded, no dist).
type specInfo = specedit.Header

// literalSpecLimit bounds the spec text read for specedit.LiteralHeader; a
// larger spec is left to rpmspec.
const literalSpecLimit = 1 << 20

// maxSpecBytes bounds the spec that Packit's default edits read and write
// back; real specs are well under a megabyte.
const maxSpecBytes = 16 << 20

// readSpecHeader is the spec's expanded Name, Epoch, Version and Release
// without dist, as Packit's "release without dist" needs them: read from
// the text when rpm could not say otherwise (specedit.LiteralHeader), else
// asked of rpmspec in the sandbox.
func (j *job) readSpecHeader(ctx context.Context) (specInfo, error) {
	if text, err := j.tree.ReadFile(j.specPath, literalSpecLimit); err == nil {
		if info, ok := specedit.LiteralHeader(string(text)); ok {
			j.logf("reading the spec file: Name %s, Version %s, Release %s are plain text, so rpmspec is not asked",
				info.Name, info.Version, info.Release)
			return info, nil
		}
	}
	args := []string{"rpmspec", "-q", "--srpm", "--define", "dist %{nil}",
		"--qf", "%{NAME}\\n%{EPOCH}\\n%{VERSION}\\n%{RELEASE}\\n", j.specPath}
	out, err := j.sandboxed(ctx, "reading the spec file", Command{Args: args, Dir: j.specDir})
	if err != nil {
		return specInfo{}, err
	}
	f := strings.Split(out.Stdout, "\n")
	if len(f) < 4 {
		return specInfo{}, fmt.Errorf("reading the spec file: rpmspec printed %q, want name, epoch, version and release", out.Stdout)
	}
	info := specInfo{Name: f[0], Epoch: f[1], Version: f[2], Release: f[3]}
	if info.Epoch == "(none)" {
		info.Epoch = ""
	}
	return info, nil
}

// packageName is the name used for the archive and its top directory.
func (j *job) packageName(info specInfo) string {
	switch {
	case j.s.UpstreamPackageName != "":
		return j.s.UpstreamPackageName
	case j.s.DownstreamPackageName != "":
		return j.s.DownstreamPackageName
	}
	return info.Name
}

// releaseHead is Packit's "original release": the expanded Release without
// dist, up to its first dot.
func releaseHead(release string) string {
	head, _, _ := strings.Cut(release, ".")
	return head
}

// versionChars are the characters Packit's sanitize_version removes.
const versionChars = "!@#$%&*()={[}]|\\'\":;<,>/?` "

// sanitizeVersion is Packit's sanitize_version: drop shell and rpm special
// characters, turn '-' into '.'.
func sanitizeVersion(v string) string {
	v = strings.Map(func(r rune) rune {
		if strings.ContainsRune(versionChars, r) {
			return -1
		}
		return r
	}, v)
	return strings.ReplaceAll(v, "-", ".")
}

// pyFormat fills {NAME} fields from values as Python's str.format does for
// the plain-field templates Packit uses; {{ and }} are literal braces.
func pyFormat(tmpl string, values map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		switch {
		case c == '{' && strings.HasPrefix(tmpl[i:], "{{"), c == '}' && strings.HasPrefix(tmpl[i:], "}}"):
			b.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("template %q: single '{'", tmpl)
			}
			name := tmpl[i+1 : i+end]
			v, ok := values[name]
			if !ok {
				return "", fmt.Errorf("template %q: unknown field {%s}", tmpl, name)
			}
			b.WriteString(v)
			i += end
		case c == '}':
			return "", fmt.Errorf("template %q: single '}'", tmpl)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

var templateField = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// tagPattern turns upstream_tag_template into Packit's regex: each {name}
// becomes a named group matching anything; the rest is used as a regex
// as is; the match is anchored at the start only (Python's re.match).
func tagPattern(template string) (*regexp.Regexp, error) {
	if !strings.Contains(template, "{version}") {
		return nil, fmt.Errorf("upstream_tag_template %q has no {version}", template)
	}
	re, err := regexp.Compile("^(?:" + templateField.ReplaceAllString(template, "(?P<$1>.*)") + ")")
	if err != nil {
		return nil, fmt.Errorf("upstream_tag_template %q: %w", template, err)
	}
	return re, nil
}

func matchRegex(kind, pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + pattern + ")")
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, pattern, err)
	}
	return re, nil
}
