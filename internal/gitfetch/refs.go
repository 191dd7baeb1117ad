package gitfetch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// readRefs returns the branches and tags of a repository that uses git's
// files ref backend (a loose file per ref, plus packed-refs), as
// refname → object name. It reads the files instead of running
// `git for-each-ref`: the cache is upbuild's own repository, so its format
// is known, and a process per checkout is what this saves. A loose ref
// overrides a packed one, as in git; symbolic refs are skipped.
func readRefs(gitDir string) (map[string]string, error) {
	refs := map[string]string{}
	packed, err := os.ReadFile(filepath.Join(gitDir, "packed-refs"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read packed refs: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(packed))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '^' {
			continue // header, or the peeled value of the tag above
		}
		oid, name, ok := strings.Cut(line, " ")
		if ok && fullSHA.MatchString(oid) && wantedRef(name) {
			refs[name] = oid
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read packed refs: %w", err)
	}
	for _, top := range []string{"refs/heads", "refs/tags"} {
		err := filepath.WalkDir(filepath.Join(gitDir, top), func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			content, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(gitDir, path)
			if err != nil {
				return err
			}
			if oid := strings.TrimSpace(string(content)); fullSHA.MatchString(oid) {
				refs[filepath.ToSlash(rel)] = oid
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read refs: %w", err)
		}
	}
	return refs, nil
}

func wantedRef(name string) bool {
	return strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/")
}

// packedRefs is the packed-refs file of a work tree: the cache's branches
// as origin's remote-tracking branches, its tags as tags, and local, the
// work tree's own branches.
func packedRefs(cacheRefs, local map[string]string) []byte {
	all := map[string]string{}
	for name, oid := range cacheRefs {
		if branch, ok := strings.CutPrefix(name, "refs/heads/"); ok {
			all["refs/remotes/origin/"+branch] = oid
		} else {
			all[name] = oid
		}
	}
	for name, oid := range local {
		all[name] = oid
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("# pack-refs with: sorted \n")
	for _, name := range names {
		b.WriteString(all[name] + " " + name + "\n")
	}
	return b.Bytes()
}

// validBranchName is git's check-ref-format for refs/heads/<name>, made
// stricter where it costs nothing: a name it refuses leaves the work tree
// detached, so it must never accept one git would refuse.
func validBranchName(name string) bool {
	if name == "" || name == "@" || strings.HasPrefix(name, "-") || strings.HasSuffix(name, ".") ||
		strings.Contains(name, "..") || strings.Contains(name, "@{") {
		return false
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return false
		}
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return false
		}
	}
	return true
}
