package srpm

import (
	"archive/tar"
	"archive/zip"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"upbuild.dev/upbuild/internal/jobfs"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/srpm/specedit"
)

// version is Packit's get_current_version: the get-current-version action,
// else the newest matching tag (lastTag, after upstream_tag_include and
// exclude, "" if none), else the spec's Version; sanitised.
func (j *job) version(ctx context.Context, info specInfo, lastTag string) (version string, err error) {
	outs, err := j.action(ctx, packitcfg.ActionGetCurrentVersion, j.baseEnv())
	if err != nil {
		return "", err
	}
	switch {
	case outs != nil:
		if len(outs) > 0 {
			version = strings.TrimSpace(outs[len(outs)-1])
		}
		if version == "" {
			return "", fmt.Errorf("%w: the get-current-version action printed nothing", ErrVersion)
		}
	case lastTag != "":
		re, err := tagPattern(j.s.UpstreamTagTemplate)
		if err != nil {
			return "", err
		}
		m := re.FindStringSubmatch(lastTag)
		if m == nil {
			return "", fmt.Errorf("%w: the last tag %q does not match upstream_tag_template %q",
				ErrVersion, lastTag, j.s.UpstreamTagTemplate)
		}
		version = m[re.SubexpIndex("version")]
	default:
		version = info.Version
	}
	version = sanitizeVersion(version)
	if version == "" {
		return "", fmt.Errorf("%w: no get-current-version action, no tag and no Version in the spec", ErrVersion)
	}
	return version, nil
}

// lastTag is Packit's get_last_tag: the newest tag by creator date that
// passes upstream_tag_include and upstream_tag_exclude.
func (j *job) lastTag(ctx context.Context) (string, error) {
	var include, exclude *regexp.Regexp
	var err error
	if j.s.UpstreamTagInclude != "" {
		if include, err = matchRegex("upstream_tag_include", j.s.UpstreamTagInclude); err != nil {
			return "", err
		}
	}
	if j.s.UpstreamTagExclude != "" {
		if exclude, err = matchRegex("upstream_tag_exclude", j.s.UpstreamTagExclude); err != nil {
			return "", err
		}
	}
	out, err := j.git(ctx, "tag", "--list", "--sort=-creatordate")
	if err != nil {
		return "", err
	}
	last := ""
	for _, tag := range strings.Split(out.Stdout, "\n") {
		tag = strings.TrimSpace(tag)
		if tag == "" {
			continue
		}
		j.tagCount++
		// A tag named like an option ("--output=...") would be one on a
		// git command line; such a tag is never the version's.
		if last != "" || strings.HasPrefix(tag, "-") || (include != nil && !include.MatchString(tag)) || (exclude != nil && exclude.MatchString(tag)) {
			continue
		}
		last = tag
	}
	return last, nil
}

// archive makes the source archive in the spec's directory and returns its
// file name: the create-archive action's, or `git archive` of HEAD.
func (j *job) archive(ctx context.Context, info specInfo, version string) (string, error) {
	dirName := j.packageName(info) + "-" + version
	if !plainFileName.MatchString(dirName) || strings.Contains(dirName, "..") {
		return "", fmt.Errorf("%w: the archive's name %q (the package name, a dash and the version) must be a plain file name", ErrArchive, dirName)
	}
	env := j.baseEnv()
	env["PACKIT_PROJECT_VERSION"] = version
	env["PACKIT_PROJECT_NAME_VERSION"] = dirName
	outs, err := j.action(ctx, packitcfg.ActionCreateArchive, env)
	if err != nil {
		return "", err
	}
	if outs == nil {
		return j.gitArchive(ctx, dirName)
	}
	path, err := j.archiveFromOutput(outs)
	if err != nil {
		return "", err
	}
	name := filepath.Base(path)
	if filepath.Dir(path) != j.specDir {
		dest := filepath.Join(j.specDir, name)
		j.logf("copying %s to %s", path, dest)
		if err := j.tree.CopyFile(path, dest); err != nil {
			return "", fmt.Errorf("copying the archive next to the spec: %w", err)
		}
	}
	return name, nil
}

// plainFileName is what an archive's name (package name and version) may
// be made of: one path element, no option, no hidden file.
var plainFileName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+~^-]*$`)

// archiveFromOutput reads the archive path the way Packit does: from the
// last command's output, last line first, the first line naming an
// existing file (relative to the package dir, or absolute). The file must
// be inside the work tree, so an action cannot pull host files into an
// SRPM.
func (j *job) archiveFromOutput(outs []string) (string, error) {
	if len(outs) == 0 || strings.TrimSpace(outs[len(outs)-1]) == "" {
		return "", fmt.Errorf("%w: no output from create-archive action", ErrArchive)
	}
	lines := strings.Split(strings.TrimSpace(outs[len(outs)-1]), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		candidate := strings.TrimSpace(lines[i])
		if candidate == "" {
			continue
		}
		if !filepath.IsAbs(candidate) {
			candidate = filepath.Join(j.pkgDir, candidate)
		}
		// Asked through the work tree, so that nothing outside it is
		// looked at (root could otherwise tell which host files exist).
		f, err := j.tree.Open(candidate)
		if errors.Is(err, jobfs.ErrOutside) {
			return "", fmt.Errorf("%w: create-archive printed %q: %w", ErrArchive, strings.TrimSpace(lines[i]), ErrOutsideRepo)
		}
		if err != nil {
			continue
		}
		if err := f.Close(); err != nil {
			return "", fmt.Errorf("%w: %w", ErrArchive, err)
		}
		resolved, err := inside(j.req.WorkTree, candidate)
		if err != nil {
			return "", fmt.Errorf("%w: create-archive printed %q: %w", ErrArchive, strings.TrimSpace(lines[i]), err)
		}
		return resolved, nil
	}
	return "", fmt.Errorf("%w: no line of the create-archive output names an existing file; its last line is %q",
		ErrArchive, strings.TrimSpace(lines[len(lines)-1]))
}

// gitArchive is Packit's default archive: `git archive --prefix
// <name>-<version>/ HEAD` from the package dir, as <name>-<version>.tar.gz
// in the spec dir. git writes a plain tar and Go compresses it, so that no
// tar.*.command from the repository's git config runs. git on the host
// writes the tar into a directory of upbuild's own, never into the work
// tree, where a committed symlink could send it anywhere; git in the
// sandbox writes it into the job's output dir.
func (j *job) gitArchive(ctx context.Context, dirName string) (string, error) {
	name := dirName + ".tar.gz"
	// Where the tar goes, and how it is read back.
	tarPath, open := "", os.Open
	if j.tainted {
		tarPath, open = filepath.Join(j.req.OutDir, "archive.tar"), j.out.Open
		defer func() { _ = j.out.Remove(tarPath) }()
	} else {
		private, err := os.MkdirTemp("", "upbuild-archive-")
		if err != nil {
			return "", fmt.Errorf("making the archive: %w", err)
		}
		defer os.RemoveAll(private)
		tarPath = filepath.Join(private, "archive.tar")
	}
	if _, err := j.git(ctx, "archive", "--format=tar", "--prefix="+dirName+"/", "--output="+tarPath, "HEAD"); err != nil {
		return "", err
	}
	tar, err := open(tarPath)
	if err != nil {
		return "", fmt.Errorf("reading the archive: %w", err)
	}
	defer tar.Close()
	if err := j.gzipInto(tar, filepath.Join(j.specDir, name)); err != nil {
		return "", fmt.Errorf("compressing the archive: %w", err)
	}
	return name, nil
}

// gzipInto writes src, gzip-compressed, to dest in the work tree.
func (j *job) gzipInto(src io.Reader, dest string) error {
	out, err := j.tree.Create(dest, 0o644)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	if _, err := io.Copy(zw, src); err != nil {
		return errors.Join(err, out.Abort())
	}
	if err := zw.Close(); err != nil {
		return errors.Join(err, out.Abort())
	}
	return out.Commit()
}

// rootDir is the archive's single top-level directory, "" if it has none
// or cannot be read. Entries without a directory entry of their own
// (tar --transform style) count.
func (j *job) rootDir(path string) string {
	names, err := j.archiveNames(path)
	if err != nil {
		return ""
	}
	root, nested := "", false
	for _, n := range names {
		n = strings.TrimPrefix(n, "./")
		first, rest, _ := strings.Cut(n, "/")
		if first == "" || first == "." || first == "pax_global_header" {
			continue
		}
		if root != "" && first != root {
			return ""
		}
		root = first
		nested = nested || rest != "" || strings.HasSuffix(n, "/")
	}
	if !nested {
		return ""
	}
	return root
}

// maxArchiveEntries bounds how many names rootDir reads.
const maxArchiveEntries = 100_000

func (j *job) archiveNames(path string) ([]string, error) {
	f, err := j.tree.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.HasSuffix(path, ".zip") {
		info, err := f.Stat()
		if err != nil {
			return nil, err
		}
		zr, err := zip.NewReader(f, info.Size())
		if err != nil {
			return nil, err
		}
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		return names, nil
	}
	var r io.Reader = f
	switch {
	case strings.HasSuffix(path, ".tar.gz"), strings.HasSuffix(path, ".tgz"):
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer gz.Close()
		r = gz
	case strings.HasSuffix(path, ".tar.bz2"), strings.HasSuffix(path, ".tbz2"):
		r = bzip2.NewReader(f)
	case strings.HasSuffix(path, ".tar"):
	default:
		return nil, fmt.Errorf("%s: unsupported archive format", path)
	}
	tr := tar.NewReader(r)
	var names []string
	for len(names) < maxArchiveEntries {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		names = append(names, h.Name)
	}
	return names, nil
}

// fixSpec runs fix-spec-file, or makes Packit's default edits.
func (j *job) fixSpec(ctx context.Context, info specInfo, version, lastTag, archive string, hist history) error {
	s := j.s
	env := j.baseEnv()
	branch, err := j.branch(ctx)
	if err != nil {
		return err
	}
	commit := hist.commit
	snapshot := j.snapshotID(branch, hist.describeSuffix)
	env["PACKIT_PROJECT_VERSION"] = version
	env["PACKIT_PROJECT_SNAPSHOTID"] = snapshot
	env["PACKIT_PROJECT_COMMIT"] = commit
	env["PACKIT_PROJECT_ARCHIVE"] = archive
	env["PACKIT_PROJECT_BRANCH"] = sanitizeVersion(branch)
	orig := releaseHead(info.Release)
	env["PACKIT_RPMSPEC_RELEASE"] = orig + "." + snapshot
	rpmVersion := version
	if s.VersionSuffix != "" {
		suffix, err := pyFormat(s.VersionSuffix, env)
		if err != nil {
			return fmt.Errorf("version_suffix: %w", err)
		}
		rpmVersion += suffix
	}
	env["PACKIT_RPMSPEC_VERSION"] = rpmVersion
	release, err := specRelease(orig, s.ReleaseSuffix, env)
	if err != nil {
		return err
	}
	env["PACKIT_RPMSPEC_RELEASE"] = release

	outs, err := j.action(ctx, packitcfg.ActionFixSpecFile, env)
	if err != nil {
		return err
	}
	if outs != nil {
		return nil // the action replaces every default edit
	}
	return j.editSpec(ctx, info, edits{
		version: rpmVersion, release: release, archive: archive, lastTag: lastTag, commit: commit,
		dirName: j.packageName(info) + "-" + version, history: hist,
	})
}

// specRelease is Packit's get_spec_release for a non-empty release_suffix:
// a suffix naming one of the env variables is the whole new Release,
// formatted; another non-empty suffix follows the original release.
func specRelease(orig, suffix string, env map[string]string) (string, error) {
	if suffix == "" {
		return env["PACKIT_RPMSPEC_RELEASE"], nil
	}
	for name := range env {
		if strings.Contains(suffix, name) {
			r, err := pyFormat(suffix, env)
			if err != nil {
				return "", fmt.Errorf("release_suffix: %w", err)
			}
			return r, nil
		}
	}
	return orig + "." + suffix, nil
}

func (j *job) branch(ctx context.Context) (string, error) {
	if j.req.Branch != "" {
		return j.req.Branch, nil
	}
	out, err := j.gitRun(ctx, "symbolic-ref", "--short", "-q", "HEAD")
	if err != nil {
		return "", fmt.Errorf("git symbolic-ref: %w", err)
	}
	if b := strings.TrimSpace(out.Stdout); out.ExitCode == 0 && b != "" {
		return b, nil
	}
	return "HEAD", nil // detached
}

// snapshotID is Packit's get_snapshotid:
// {%Y%m%d%H%M%S%f}.{branch}[.{commits since tag}.g{short hash}], where
// the suffix is what `git describe` against any tag says.
func (j *job) snapshotID(branch, describeSuffix string) string {
	now := j.now()
	id := fmt.Sprintf("%s%06d.%s", now.Format("20060102150405"), now.Nanosecond()/1000, sanitizeVersion(branch))
	if describeSuffix == "" {
		return id // no tags: no suffix
	}
	return id + "." + describeSuffix
}

// edits are the values of Packit's default spec edits.
type edits struct {
	version, release, archive, lastTag, commit, dirName string
	history                                             history
}

// editSpec makes Packit's default edits (fix_spec plus the changelog):
// Source, %setup -n, Version, Release and a %changelog entry.
func (j *job) editSpec(ctx context.Context, info specInfo, e edits) error {
	s := j.s
	raw, err := j.tree.ReadFile(j.specPath, maxSpecBytes)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoSpec, err)
	}
	text := string(raw)
	sourceNum, err := specedit.ParseSourceID(s.SpecSourceID)
	if err != nil {
		return err
	}
	if text, err = specedit.SetSource(text, sourceNum, e.archive); err != nil {
		return fmt.Errorf("%s: %w", j.s.SpecfilePath, err)
	}
	dir := j.rootDir(filepath.Join(j.specDir, e.archive))
	if dir == "" {
		if dir, err = pyFormat(s.ArchiveRootDirTemplate, map[string]string{
			"upstream_pkg_name": j.packageName(info), "version": e.version,
		}); err != nil {
			return fmt.Errorf("archive_root_dir_template: %w", err)
		}
	}
	edited, err := specedit.SetSetupDir(text, dir)
	switch {
	case errors.Is(err, specedit.ErrNoSetup):
		j.warn("%s: %v, so the archive's directory %q is not set", s.SpecfilePath, err, dir)
	case err != nil:
		return fmt.Errorf("%s: %w", s.SpecfilePath, err)
	default:
		text = edited
	}
	if text, err = specedit.SetVersion(text, e.version); err != nil {
		return fmt.Errorf("%s: %w", s.SpecfilePath, err)
	}
	entry, err := j.changelogText(ctx, e)
	if err != nil {
		return err
	}
	release := info.Release
	if s.UpdateRelease {
		if text, err = specedit.SetRelease(text, e.release); err != nil {
			return fmt.Errorf("%s: %w", s.SpecfilePath, err)
		}
		release = e.release
	}
	if entry != "" {
		evr := e.version + "-" + strings.TrimSuffix(release, "%{?dist}")
		if info.Epoch != "" {
			evr = info.Epoch + ":" + evr
		}
		edited, err := specedit.AddChangelogEntry(text, specedit.ChangelogEntry{
			Date: j.now().UTC(), Author: j.author(), EVR: evr, Text: entry,
		})
		switch {
		case errors.Is(err, specedit.ErrNoChangelog), errors.Is(err, specedit.ErrAutochangelog):
			j.logf("no changelog entry added: %v", err)
		case err != nil:
			return fmt.Errorf("%s: %w", s.SpecfilePath, err)
		default:
			text = edited
		}
	}
	if err := j.tree.WriteFile(j.specPath, []byte(text), 0o644); err != nil {
		return fmt.Errorf("writing the spec: %w", err)
	}
	return nil
}

func (j *job) author() string {
	if j.b.ChangelogAuthor != "" {
		return j.b.ChangelogAuthor
	}
	return "upbuild <upbuild@localhost>"
}

// changelogText is the new entry's body: the changelog-entry action's
// output, else (with update_release) the commits since the last tag, else
// a development snapshot line. "" means no entry.
func (j *job) changelogText(ctx context.Context, e edits) (string, error) {
	env := j.baseEnv()
	env["PACKIT_PROJECT_VERSION"] = e.version
	env["PACKIT_RESOLVED_BUGS"] = ""
	env["PACKIT_PROJECT_UPSTREAM_TAG"] = ""
	env["PACKIT_PROJECT_PREVIOUS_VERSION"] = ""
	outs, err := j.action(ctx, packitcfg.ActionChangelogEntry, env)
	if err != nil {
		return "", err
	}
	if outs != nil {
		lines := make([]string, len(outs))
		for i, o := range outs {
			lines[i] = strings.TrimRight(o, " \t\r\n")
		}
		return strings.Join(lines, "\n"), nil
	}
	if !j.s.UpdateRelease {
		return "", nil
	}
	if e.lastTag != "" {
		log := changelogFromLog(e.history.changes)
		if !e.history.changesRead {
			var err error
			if log, err = j.gitLine(ctx, "log", "--no-show-signature", "--no-merges", "--pretty=format:- %s (%an)", "refs/tags/"+e.lastTag+"..HEAD"); err != nil {
				return "", err
			}
		}
		if log != "" {
			return log, nil
		}
	}
	return fmt.Sprintf("- Development snapshot (%s)", e.commit), nil
}

var wroteSRPM = regexp.MustCompile(`: (\S+\.src\.rpm)`)

// nvrMark starts the line where the rpmbuild step's spec query prints the
// name, version and release the SRPM must have.
const nvrMark = "upbuild-spec-nvr:"

// specQueryFormat is rpmspec's --qf for the rpmbuild step: the name,
// version and release the SRPM must have, on a line of their own.
const specQueryFormat = nvrMark + ` %{NAME} %{VERSION} %{RELEASE}\n`

// rpmbuildScript asks rpmspec what the edited spec expands to, then runs
// rpmbuild -bs, in one sandboxed shell: each sandbox costs milliseconds,
// and both read the same spec. Its arguments are the spec, then the
// rpmbuild command.
const rpmbuildScript = `spec=$1
shift
rpmspec -q --srpm --qf '` + specQueryFormat + `' "$spec" || exit
exec "$@"`

// rpmbuild runs `rpmbuild -bs` with every rpmbuild directory in the spec
// dir (sources) or the job's OutDir, then reads the SRPM's header.
func (j *job) rpmbuild(ctx context.Context) (*Result, error) {
	top := filepath.Join(j.req.OutDir, "rpmbuild")
	if err := j.out.MkdirAll(top, 0o755); err != nil {
		return nil, fmt.Errorf("output dir: %w", err)
	}
	query := []string{"rpmspec", "-q", "--srpm", "--qf", specQueryFormat, j.specPath}
	build := []string{"rpmbuild", "-bs"}
	for _, d := range [][2]string{
		{"_topdir", top}, {"_sourcedir", j.specDir}, {"_srcdir", j.specDir}, {"_specdir", j.specDir},
		{"_builddir", filepath.Join(top, "BUILD")}, {"_buildrootdir", filepath.Join(top, "BUILDROOT")},
		{"_rpmdir", filepath.Join(top, "RPMS")}, {"_srcrpmdir", j.req.OutDir},
	} {
		build = append(build, "--define", d[0]+" "+d[1])
	}
	build = append(build, j.specPath)
	// The SRPM must have the edited spec's name, version and release. When
	// the spec states them plainly, its text says so (the release followed
	// by the build environment's dist, which the spec cannot change);
	// otherwise rpmspec says, in the same sandbox as rpmbuild.
	var header specedit.Header
	literal := false
	if text, err := j.tree.ReadFile(j.specPath, literalSpecLimit); err == nil {
		header, literal = specedit.LiteralHeader(string(text))
		// The dist tag must end the release for the check below to know
		// where it goes ("0.4%{?dist}.1" is 0.4.fc41.1 in a Fedora root).
		raw, _ := specedit.Tag(string(text), "Release")
		literal = literal && !strings.Contains(strings.TrimSuffix(raw, "%{?dist}"), "%{?dist}")
	}
	var want [3]string
	var out Output
	var err error
	if literal {
		if out, err = j.sandboxed(ctx, "rpmbuild", Command{Args: build, Dir: j.specDir}); err != nil {
			return nil, err
		}
		want = [3]string{header.Name, header.Version, header.Release}
	} else {
		args := append([]string{"sh", "-c", rpmbuildScript, "rpmbuild", j.specPath}, build...)
		if out, err = j.sandboxed(ctx, "rpmbuild", Command{Args: args, Dir: j.specDir}, query, build); err != nil {
			return nil, err
		}
		if want, err = specNVR(out.Stdout); err != nil {
			return nil, err
		}
	}
	m := wroteSRPM.FindStringSubmatch(out.Stdout)
	if m == nil {
		return nil, fmt.Errorf("rpmbuild succeeded but did not say where it wrote the SRPM; its output:\n%s", lastLines(out.Stdout, errorTailLines))
	}
	path := m[1]
	if !filepath.IsAbs(path) {
		path = filepath.Join(j.specDir, path)
	}
	if _, err := inside(j.req.OutDir, path); err != nil {
		return nil, fmt.Errorf("rpmbuild wrote %s, not into the job's output dir: %w", path, err)
	}
	// rpm on the host reads it next: it must be a plain file of the job's
	// own (nothing of the job is still running to swap it).
	if f, err := j.out.Open(path); err != nil {
		return nil, fmt.Errorf("the SRPM %s: %w", path, err)
	} else if err := f.Close(); err != nil {
		return nil, fmt.Errorf("the SRPM %s: %w", path, err)
	}
	// The SRPM was built a moment ago and is not signed: checking its
	// signature and digests would only open the keyring and rpmdb, half of
	// rpm's time here.
	q, err := j.runChecked(ctx, j.b.Host, "rpm -qp", Command{
		Args: []string{"rpm", "-qp", "--nosignature", "--nodigest", "--qf", "%{NAME}\\n%{VERSION}\\n%{RELEASE}\\n", path}, Dir: j.req.OutDir,
	})
	if err != nil {
		return nil, err
	}
	f := strings.Split(q.Stdout, "\n")
	if len(f) < 3 {
		return nil, fmt.Errorf("rpm -qp printed %q, want name, version and release", q.Stdout)
	}
	res := &Result{SRPM: path, Name: f[0], Version: f[1], Release: f[2]}
	releaseOK := res.Release == want[2]
	if literal {
		releaseOK = releaseWithDist(res.Release, want[2])
	}
	if res.Name != want[0] || res.Version != want[1] || !releaseOK {
		return nil, fmt.Errorf("the SRPM %s is %s-%s-%s, but the spec says %s-%s-%s",
			path, res.Name, res.Version, res.Release, want[0], want[1], want[2])
	}
	j.logf("wrote %s (%s %s %s)", path, res.Name, res.Version, res.Release)
	return res, nil
}

// releaseWithDist reports whether release is want followed by a dist tag
// (".fc41", ".el10_0", or nothing on a machine without one).
func releaseWithDist(release, want string) bool {
	dist, ok := strings.CutPrefix(release, want)
	return ok && (dist == "" || strings.HasPrefix(dist, ".") && !strings.ContainsAny(dist, " -"))
}

// specNVR reads the name, version and release rpmbuildScript's spec query
// printed.
func specNVR(output string) ([3]string, error) {
	for line := range strings.Lines(output) {
		rest, ok := strings.CutPrefix(line, nvrMark)
		if !ok {
			continue
		}
		if f := strings.Fields(rest); len(f) == 3 {
			return [3]string{f[0], f[1], f[2]}, nil
		}
	}
	return [3]string{}, fmt.Errorf("rpmbuild succeeded but rpmspec did not say which name, version and release to expect; the output:\n%s",
		lastLines(output, errorTailLines))
}
