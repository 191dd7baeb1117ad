package srpm

import (
	"context"
	"fmt"
	"strings"

	"upbuild.dev/upbuild/internal/packitcfg"
)

// history is what Packit reads from HEAD's history: the commit, `git
// describe`'s "commits since the tag" and short hash, and the commits since
// the last tag for the changelog.
type history struct {
	commit string
	// describeSuffix is "<commits since tag>.g<short hash>" from `git
	// describe --tags --long`, "" when no tag is reachable.
	describeSuffix string
	// changes are the "- subject (author)" lines of the non-merge commits
	// since the last tag, newest first, when changesRead is set.
	changes     []string
	changesRead bool
}

// repoAsCheckedOut says no repository action ran before the spec edits, so
// HEAD is still Request.Commit and the tags are those listed at the start.
func (j *job) repoAsCheckedOut() bool {
	for _, name := range []packitcfg.ActionName{packitcfg.ActionPostUpstreamClone,
		packitcfg.ActionGetCurrentVersion, packitcfg.ActionCreateArchive} {
		if _, defined := j.s.Actions[name]; defined {
			return false
		}
	}
	return true
}

// history reads HEAD's history with as few git commands as it can: each
// costs milliseconds. With a last tag, one `git log` of the commits since it
// gives the commit, the changelog and, when the history allows, what `git
// describe` would say; otherwise describe and rev-parse answer.
func (j *job) history(ctx context.Context, lastTag string) (history, error) {
	var h history
	if lastTag != "" {
		since, ok, err := j.commitsSince(ctx, lastTag)
		if err != nil {
			return h, err
		}
		if ok {
			h.changes, h.changesRead = since.changes(), true
			if tip, ok := since.tip(); ok {
				h.commit = tip.commit
				if since.describable(lastTag) {
					h.describeSuffix = fmt.Sprintf("%d.g%s", len(since.commits), tip.short)
				}
			}
		}
	}
	if h.commit == "" {
		commit, err := j.headCommit(ctx)
		if err != nil {
			return h, err
		}
		h.commit = commit
	}
	if h.describeSuffix == "" && (j.tagCount > 0 || !j.repoAsCheckedOut()) {
		suffix, err := j.describe(ctx)
		if err != nil {
			return h, err
		}
		h.describeSuffix = suffix
	}
	return h, nil
}

// headCommit is `git rev-parse HEAD`, or Request.Commit while nothing could
// have moved HEAD.
func (j *job) headCommit(ctx context.Context) (string, error) {
	if j.req.Commit != "" && j.repoAsCheckedOut() {
		return j.req.Commit, nil
	}
	return j.gitLine(ctx, "rev-parse", "HEAD")
}

// describe is the "<count>.g<hash>" end of `git describe --tags --long`
// against any tag, "" when no tag is reachable.
func (j *job) describe(ctx context.Context) (string, error) {
	out, err := j.gitRun(ctx, "describe", "--tags", "--long", "--match", "*")
	if err != nil {
		return "", fmt.Errorf("git describe: %w", err)
	}
	desc := strings.TrimSpace(out.Stdout)
	if out.ExitCode != 0 || desc == "" {
		return "", nil // no tags: no suffix
	}
	parts := strings.Split(desc, "-")
	if len(parts) < 3 {
		return "", fmt.Errorf("git describe printed %q, want <tag>-<count>-g<hash>", desc)
	}
	return strings.Join(parts[len(parts)-2:], "."), nil
}

// logCommit is one commit of `git log --boundary <tag>..HEAD`.
type logCommit struct {
	// boundary marks a commit outside the range whose child is inside.
	boundary      bool
	commit, short string
	parents       []string
	// decorations are the commit's tag decorations ("tag: v1.0").
	decorations []string
	// change is the commit's changelog line, "- subject (author)".
	change string
}

// rangeLog is the commits since a tag, and the boundary commits below them.
type rangeLog struct {
	commits, boundary []logCommit
}

// logFormat prints one commit a line, its fields split by NUL bytes (no
// subject, name or ref name holds one).
const logFormat = "%m%x00%H%x00%h%x00%P%x00%D%x00- %s (%an)"

// commitsSince lists the commits of tag..HEAD. ok is false when the
// output could not be used (too long to have been kept whole, or not in
// the expected form); the caller then asks git the old way.
func (j *job) commitsSince(ctx context.Context, tag string) (rangeLog, bool, error) {
	c := j.gitCommand([]string{"log", "--no-show-signature", "--boundary", "--decorate-refs=refs/tags/", "--format=" + logFormat,
		"refs/tags/" + tag + "..HEAD"})
	// The job log shows the command and a summary, not the raw fields.
	j.logf("git log: $ %s", quoteArgs(c.Args))
	out, err := j.gitRunner().Run(ctx, c)
	if err != nil {
		return rangeLog{}, false, fmt.Errorf("git log: %w", err)
	}
	// A failure here (a tag an action deleted) is left to the git commands
	// that follow, which report it as before.
	if out.ExitCode != 0 || len(out.Stdout) >= maxCaptured {
		return rangeLog{}, false, nil
	}
	var rl rangeLog
	for line := range strings.Lines(out.Stdout) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			continue
		}
		f := strings.Split(line, "\x00")
		if len(f) != 6 || (f[0] != ">" && f[0] != "-") {
			return rangeLog{}, false, nil
		}
		c := logCommit{boundary: f[0] == "-", commit: f[1], short: f[2], parents: strings.Fields(f[3]), change: f[5]}
		if f[4] != "" {
			c.decorations = strings.Split(f[4], ", ")
		}
		if c.boundary {
			rl.boundary = append(rl.boundary, c)
		} else {
			rl.commits = append(rl.commits, c)
		}
	}
	j.logf("%d commits since %s", len(rl.commits), tag)
	return rl, true, nil
}

// changes are the changelog lines of the range's non-merge commits, in
// git log's order, as `git log --no-merges` would print them.
func (rl rangeLog) changes() []string {
	var lines []string
	for _, c := range rl.commits {
		if len(c.parents) <= 1 {
			lines = append(lines, c.change)
		}
	}
	return lines
}

// tip is HEAD: the one commit of the range that is no other's parent.
func (rl rangeLog) tip() (logCommit, bool) {
	parents := map[string]bool{}
	for _, c := range rl.commits {
		for _, p := range c.parents {
			parents[p] = true
		}
	}
	var tips []logCommit
	for _, c := range rl.commits {
		if !parents[c.commit] {
			tips = append(tips, c)
		}
	}
	if len(tips) != 1 {
		return logCommit{}, false
	}
	return tips[0], true
}

// describable says `git describe --tags` is certain to name tag, with the
// range's length as its count: no commit of the range is tagged, tag is
// the only tag on its commit, and that commit is the range's only
// boundary. Then describe's walk meets no other tag before it and no
// commit below it early, whatever the commit dates. In other histories
// (a merged branch that forked below the tag, commits with equal dates)
// describe may count differently or pick another tag, so it is asked.
func (rl rangeLog) describable(tag string) bool {
	for _, c := range rl.commits {
		if len(c.decorations) > 0 {
			return false
		}
	}
	return len(rl.commits) > 0 && len(rl.boundary) == 1 &&
		len(rl.boundary[0].decorations) == 1 && rl.boundary[0].decorations[0] == "tag: "+tag
}

// changelogFromLog is the changelog body from the commits since the tag.
func changelogFromLog(lines []string) string {
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
