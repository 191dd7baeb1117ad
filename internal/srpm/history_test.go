package srpm_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/srpm"
)

// describeSuffix is what Packit appends to a snapshot Release: `git
// describe --tags --long --match '*'`'s count and hash, "<n>.g<hash>".
func describeSuffix(r *repo) string {
	r.t.Helper()
	parts := strings.Split(r.git("describe", "--tags", "--long", "--match", "*"), "-")
	return strings.Join(parts[len(parts)-2:], ".")
}

// mergeRequest merges the branch into main the way upbuild checks a merge
// request out: a merge commit on main with the branch as second parent.
func mergeRequest(r *repo, branch string) {
	r.t.Helper()
	r.git("checkout", "-q", "main")
	r.git("merge", "-q", "--no-ff", "--no-edit", "-m", "Merge "+branch, branch)
}

func TestReleaseCountsCommitsSinceTheTagAsGitDescribeDoes(t *testing.T) {
	tests := []struct {
		name string
		// history builds on the testdata's first commit and leaves HEAD
		// where the build runs.
		history func(r *repo)
	}{
		{"merge request on the tagged commit", func(r *repo) {
			r.git("tag", "v1.0.0")
			r.git("checkout", "-q", "-b", "feature")
			r.change("hello.c", "Add a feature")
			mergeRequest(r, "feature")
		}},
		{"branch forked below the tag, merged with the same commit dates", func(r *repo) {
			// describe's walk follows commit dates; equal dates are the hard
			// case: it meets the commit below v1.0.0 before v1.0.0 itself.
			r.frozen = true
			r.change("hello.c", "Base work")
			r.git("tag", "-a", "v0.9.0", "-m", "0.9.0")
			r.git("checkout", "-q", "-b", "side")
			r.change("Makefile", "Side work")
			r.git("checkout", "-q", "main")
			r.change("hello.c", "Tagged work")
			commitDate := r.date
			r.date = r.date.Add(time.Hour) // v1.0.0 is the newer tag, so Packit's last tag
			r.git("tag", "-a", "v1.0.0", "-m", "1.0.0")
			r.date = commitDate
			r.change("hello.c", "After the tag")
			r.git("checkout", "-q", "side")
			r.git("merge", "-q", "--no-edit", "-m", "Merge main", "main")
		}},
		{"a tag after the last tag on the way to HEAD", func(r *repo) {
			r.git("tag", "v1.0.0")
			r.change("hello.c", "Backport")
			// Annotated with an old date: v1.0.0 stays Packit's last tag,
			// but describe names the nearer v0.9.9.
			now := r.date
			r.date = r.date.Add(-24 * time.Hour)
			r.git("tag", "-a", "v0.9.9", "-m", "0.9.9")
			r.date = now
			r.change("hello.c", "Later fix")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t, "hello")
			tc.history(r)
			res, log, err := build(t, r, "hello")
			if err != nil {
				t.Fatalf("build: %v\nlog:\n%s", err, log)
			}
			branch := r.git("symbolic-ref", "--short", "HEAD")
			if want := "." + snapshotStamp + "." + branch + "." + describeSuffix(r); !strings.HasSuffix(res.Release, want) {
				t.Errorf("Release %q, want it to end in %q", res.Release, want)
			}
			// Packit's entry: the non-merge commits since the last tag.
			changes := r.git("log", "--no-merges", "--pretty=format:- %s (%an)", "v"+res.Version+"..HEAD")
			if changes == "" {
				t.Fatal("no commits since the tag")
			}
			if spec := readFile(t, res.SpecFile); !strings.Contains(spec, "-"+res.Release+"\n"+changes+"\n\n") {
				t.Errorf("changelog entry is not\n%s\nspec:\n%s", changes, spec)
			}
		})
	}
}

func TestTaggedBuildAsksGitThreeTimes(t *testing.T) {
	r := newRepo(t, "hello")
	r.git("tag", "v1.2.0")
	r.change("hello.c", "Say hello louder")
	r.change("hello.c", "Fix a typo")
	_, log, err := build(t, r, "hello")
	if err != nil {
		t.Fatalf("build: %v\nlog:\n%s", err, log)
	}
	// The tag list, the archive, and one log for the commit, the changelog
	// and describe's count.
	if n := strings.Count(log, "$ git -c core.fsmonitor=false"); n != 3 {
		t.Errorf("the job log shows %d git commands, want 3:\n%s", n, log)
	}
	if !strings.Contains(log, "upbuild: 2 commits since v1.2.0\n") {
		t.Errorf("the job log does not say how many commits follow the tag:\n%s", log)
	}
}

func TestKnownCommitStandsInForHeadUntilAnActionRuns(t *testing.T) {
	t.Run("no actions: the commit is not asked for", func(t *testing.T) {
		r := newRepo(t, "hello")
		head := r.git("rev-parse", "HEAD")
		log := &syncBuffer{}
		cfg := r.config()
		res, err := newBuilder(log).Build(context.Background(), srpm.Request{
			WorkTree: r.dir, Settings: cfg.Packages["hello"].Settings, OutDir: t.TempDir(), Commit: head,
		})
		if err != nil {
			t.Fatalf("build: %v\nlog:\n%s", err, log)
		}
		if spec := readFile(t, res.SpecFile); !strings.Contains(spec, "- Development snapshot ("+head+")\n") {
			t.Errorf("no development snapshot entry for %s:\n%s", head, spec)
		}
		// No tags: nothing for describe to find either.
		if strings.Contains(log.String(), "rev-parse") || strings.Contains(log.String(), "describe") {
			t.Errorf("git was asked what the request already said:\n%s", log)
		}
	})
	t.Run("an action moved HEAD", func(t *testing.T) {
		r := newRepo(t, "hello")
		checkedOut := r.git("rev-parse", "HEAD")
		cfg := r.config()
		s := cfg.Packages["hello"].Settings
		s.Actions = map[packitcfg.ActionName][]packitcfg.Command{packitcfg.ActionPostUpstreamClone: {{"bash", "-c",
			"git -c user.name=CI -c user.email=ci@example.org commit -q --allow-empty -m Generated && git tag v2.0.0"}}}
		log := &syncBuffer{}
		res, err := newBuilder(log).Build(context.Background(), srpm.Request{
			WorkTree: r.dir, Settings: s, OutDir: filepath.Join(t.TempDir(), "out"), Commit: checkedOut,
		})
		if err != nil {
			t.Fatalf("build: %v\nlog:\n%s", err, log)
		}
		head := r.git("rev-parse", "HEAD")
		if head == checkedOut {
			t.Fatal("the action did not commit")
		}
		if spec := readFile(t, res.SpecFile); !strings.Contains(spec, "- Development snapshot ("+head+")\n") {
			t.Errorf("the changelog does not name the new HEAD %s:\n%s", head, spec)
		}
		if want := "." + describeSuffix(r); !strings.HasSuffix(res.Release, want) {
			t.Errorf("Release %q, want it to end in %q", res.Release, want)
		}
	})
}
