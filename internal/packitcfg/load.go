// Package packitcfg reads a project's Packit configuration (.packit.yaml)
// and resolves it the way Packit does: YAML 1.1 with anchors and merge
// keys, the top-level `_` key dropped, top-level and package values
// inherited by jobs, default jobs, and Packit's strict schema, where an
// unknown or removed key is an error. Every error names the file, line and
// column. The rules follow Packit's code as of packit 69d783e8 (2026-08-04).
package packitcfg

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Options tune Load. The zero value is usable.
type Options struct {
	// RepoName is the forge repository name (not the namespace). Packit uses
	// it as the default upstream_package_name and downstream_package_name.
	RepoName string
	// RepoFiles lists files of the repository at the ref (paths relative to
	// the root). When specfile_path is not set and cannot be derived from
	// downstream_package_name, Packit takes the first *.spec in the listing.
	RepoFiles []string
	// MaxBytes caps the file size; 0 means 1 MiB.
	MaxBytes int
	// MaxAliasNodes caps how many values aliases and merge keys may expand
	// to in total; 0 means 10,000.
	MaxAliasNodes int
}

const (
	defaultMaxBytes      = 1 << 20
	defaultMaxAliasNodes = 10_000
	// maxJobViews bounds the work a small file can cause: 1,000 packages
	// times 1,000 jobs would otherwise be a million job views. The largest
	// real config in testdata has 22.
	maxJobViews = 1_000
	// maxTargets bounds one job's targets, and maxJobTargets the jobs'
	// targets taken together: each (job, target) becomes a job and a
	// commit status, so a few kilobytes of targets would otherwise plan
	// thousands of builds for anyone who can open a merge request. Real
	// configs name a few dozen (fedora-all expands to about ten).
	maxTargets    = 200
	maxJobTargets = 2_000
)

func (o Options) maxBytes() int {
	if o.MaxBytes > 0 {
		return o.MaxBytes
	}
	return defaultMaxBytes
}

func (o Options) maxAliasNodes() int {
	if o.MaxAliasNodes > 0 {
		return o.MaxAliasNodes
	}
	return defaultMaxAliasNodes
}

// Load parses and resolves the config file called name (used in messages).
// The returned error holds one or more *Error values (see Errors), or wraps
// ErrTooLarge.
func Load(name string, data []byte, opts Options) (*Config, error) {
	if len(data) > opts.maxBytes() {
		return nil, fmt.Errorf("%s: %w: %d bytes, the limit is %d", name, ErrTooLarge, len(data), opts.maxBytes())
	}
	root, err := parseTree(name, data, opts)
	if err != nil {
		return nil, err
	}
	l := &loader{file: name, opts: opts, p: newProblems(name)}
	l.d = &decoder{p: l.p}
	cfg := l.load(root)
	if err := l.p.err(); err != nil {
		return nil, err
	}
	cfg.Warnings = l.p.warnings
	return cfg, nil
}

type loader struct {
	file string
	opts Options
	p    *problems
	d    *decoder
}

// jobEntry is one validated item of `jobs:`.
type jobEntry struct {
	index    int
	at       *node
	jobType  JobType
	triggers []Trigger
	packages []string          // selected packages; nil means all
	override map[string][]pair // per-package overrides (packages given as a mapping)
	pairs    []pair            // the job's keys, metadata merged in
}

func (l *loader) load(root *node) *Config {
	cfg := &Config{File: l.file, Packages: map[string]*Package{}}
	if root.kind == kindNull {
		root = &node{kind: kindMap, line: root.line, column: root.column}
	}
	if root.kind != kindMap {
		l.p.errorf(root, "the config must be a mapping, found %s", root.describe())
		return cfg
	}

	var top []pair
	var packagesNode, jobsNode *node
	for _, p := range root.pairs {
		switch {
		case p.key == "_": // Packit drops it before validation; it holds anchors
		case p.key == "packages":
			packagesNode = p.val
		case p.key == "jobs":
			jobsNode = p.val
		case slices.Contains(jobOnlyKeys, p.key):
			l.p.errorf(p.pos, "key %q is only allowed inside a job", p.key)
		case commonKeys[p.key] == nil:
			l.d.unknownKey(p, "at the top level")
		default:
			if p.key == "targets" && p.val.kind == kindScalar {
				l.p.errorf(p.val, "targets at the top level must be a list or a mapping, not a string")
				continue
			}
			top = append(top, p)
		}
	}
	l.check(top)

	pkgPairs, names := l.packages(top, packagesNode)
	cfg.PackageNames = names
	for _, name := range names {
		s := defaultSettings()
		l.d.settings(pkgPairs[name], &s)
		decodeOther(pkgPairs[name], &s)
		cfg.Packages[name] = &Package{Name: name, Settings: s}
	}

	entries := l.jobs(jobsNode, names)
	views, jobTargets := 0, 0
	for _, e := range entries {
		selected := e.packages
		if selected == nil {
			selected = names
		}
		views += len(e.triggers) * len(selected)
		if views > maxJobViews {
			l.p.errorf(e.at, "the jobs expand to more than %d job views (job × trigger × package); refusing the file", maxJobViews)
			break
		}
		for _, trig := range e.triggers {
			for _, pkg := range selected {
				eff := overlay(pkgPairs[pkg], e.pairs)
				eff = overlay(eff, e.override[pkg])
				job := Job{Type: e.jobType, Trigger: trig, PackageName: pkg, JobPackages: selected,
					Index: e.index, Line: e.at.line, Column: e.at.column, Settings: defaultSettings()}
				l.jobOnly(e.pairs, &job)
				l.d.settings(eff, &job.Settings)
				decodeOther(eff, &job.Settings)
				if len(names) > 1 && job.Identifier == "" {
					job.Identifier = pkg
				}
				if jobTargets += max(len(job.Targets), 1); jobTargets > maxJobTargets {
					l.p.errorf(e.at, "the jobs name more than %d targets in all (job × trigger × package × target); refusing the file", maxJobTargets)
					return cfg
				}
				if job.SpecfilePath == "" && (job.Type != JobTests || !job.SkipBuild) {
					l.p.errorf(e.at, "job %d (%s) for package %q: specfile_path is not specified and no spec file was found in the repository",
						e.index+1, e.jobType, pkg)
				}
				cfg.Jobs = append(cfg.Jobs, job)
			}
		}
	}
	inheritTestTargets(cfg.Jobs)
	return cfg
}

// check validates one mapping's common keys where they are written, so an
// error points at the file position even if many jobs inherit the value.
func (l *loader) check(pairs []pair) {
	var scratch Settings
	l.d.settings(pairs, &scratch)
}

// packages returns each package's mapping after Packit's defaults and the
// inheritance of top-level keys (§2 of the reference), and the names in order.
func (l *loader) packages(top []pair, packagesNode *node) (map[string][]pair, []string) {
	out := map[string][]pair{}
	if packagesNode == nil {
		pkg := l.setDefaults(top)
		name := stringValue(pkg, "downstream_package_name")
		if name == "" {
			l.p.errorf(nil, "cannot name the package: downstream_package_name is not set and the repository name is unknown")
			return out, nil
		}
		out[name] = pkg
		return out, []string{name}
	}
	if packagesNode.kind != kindMap {
		l.p.errorf(packagesNode, "packages must be a mapping of package names to settings, found %s", packagesNode.describe())
		return out, nil
	}
	var names []string
	urlPair, hasURL := findPair(top, "upstream_project_url")
	for _, p := range packagesNode.pairs {
		if p.val.kind != kindMap && p.val.kind != kindNull {
			l.p.errorf(p.val, "package %q must be a mapping, found %s", p.key, p.val.describe())
			continue
		}
		var own []pair
		for _, kv := range p.val.pairs {
			switch {
			case slices.Contains(jobOnlyKeys, kv.key):
				l.p.errorf(kv.pos, "key %q is only allowed inside a job", kv.key)
			case commonKeys[kv.key] == nil:
				l.d.unknownKey(kv, fmt.Sprintf("in package %q", p.key))
			default:
				own = append(own, kv)
			}
		}
		l.check(own)
		// In a monorepo the top-level upstream_project_url wins over the package's.
		if hasURL {
			own = overlay(own, []pair{urlPair})
		}
		own = l.setDefaults(own)
		pkg := overlay(top, own)
		if stringValue(pkg, "downstream_package_name") == "" {
			pkg = overlay(pkg, []pair{synth("downstream_package_name", p.key)})
		}
		out[p.key] = pkg
		names = append(names, p.key)
	}
	return out, names
}

var specFileRe = regexp.MustCompile(`.+\.spec$`)

// setDefaults is Packit's set_defaults on one package mapping: specfile_path
// from downstream_package_name or the spec search (always written, so a
// monorepo package does not inherit the top-level value), then the repo
// name as upstream/downstream package name.
func (l *loader) setDefaults(pairs []pair) []pair {
	var add []pair
	if stringValue(pairs, "specfile_path") == "" {
		spec := ""
		if dpn := stringValue(pairs, "downstream_package_name"); dpn != "" {
			spec = dpn + ".spec"
		} else {
			for _, f := range l.opts.RepoFiles {
				if specFileRe.MatchString(f) {
					spec = f
					break
				}
			}
		}
		add = append(add, synth("specfile_path", spec))
	}
	if l.opts.RepoName != "" {
		for _, key := range []string{"upstream_package_name", "downstream_package_name"} {
			if _, ok := findPair(pairs, key); !ok {
				add = append(add, synth(key, l.opts.RepoName))
			}
		}
	}
	return overlay(pairs, add)
}

// defaultJobs are used when `jobs` is absent (`jobs: []` means no jobs).
func defaultJobs() *node {
	job := func(kv ...pair) *node { return &node{kind: kindMap, pairs: kv} }
	list := func(v string) *node {
		return &node{kind: kindSeq, items: []*node{{kind: kindScalar, text: v}}}
	}
	return &node{kind: kindSeq, items: []*node{
		job(synth("job", "copr_build"), synth("trigger", "pull_request"), pair{key: "targets", val: list("fedora-stable")}),
		job(synth("job", "tests"), synth("trigger", "pull_request"), pair{key: "targets", val: list("fedora-stable")}),
		job(synth("job", "propose_downstream"), synth("trigger", "release"), pair{key: "dist_git_branches", val: list("fedora-all")}),
	}}
}

func (l *loader) jobs(jobsNode *node, packages []string) []jobEntry {
	if jobsNode == nil {
		jobsNode = defaultJobs()
	}
	if jobsNode.kind != kindSeq {
		l.p.errorf(jobsNode, "jobs must be a list, found %s", jobsNode.describe())
		return nil
	}
	var out []jobEntry
	for i, item := range jobsNode.items {
		if item.kind != kindMap {
			l.p.errorf(item, "job %d must be a mapping, found %s", i+1, item.describe())
			continue
		}
		if e, ok := l.job(i, item, packages); ok {
			out = append(out, e)
		}
	}
	return out
}

// metadataRenames are the old metadata spellings of dist_git_branches.
var metadataRenames = map[string]string{"dist-git-branch": "dist_git_branches", "dist_git_branch": "dist_git_branches"}

func (l *loader) job(i int, item *node, packages []string) (jobEntry, bool) {
	e := jobEntry{index: i, at: item}
	where := fmt.Sprintf("in job %d", i+1)
	pairs := item.pairs
	if meta, ok := item.get("metadata"); ok {
		l.p.warnf(meta, "the metadata key is deprecated; move its keys into the job")
		pairs = slices.DeleteFunc(slices.Clone(pairs), func(p pair) bool { return p.key == "metadata" })
		if meta.kind == kindMap {
			for _, mp := range meta.pairs {
				if to, ok := metadataRenames[mp.key]; ok {
					mp.key = to
				}
				if _, dup := findPair(pairs, mp.key); dup {
					l.p.errorf(mp.pos, "key %q is set both in metadata and directly in job %d", mp.key, i+1)
					continue
				}
				pairs = append(pairs, mp)
			}
		} else if meta.kind != kindNull {
			l.p.errorf(meta, "metadata must be a mapping, found %s", meta.describe())
		}
	}
	var common []pair
	ok := true
	for _, p := range pairs {
		switch {
		case slices.Contains(jobOnlyKeys, p.key):
		case commonKeys[p.key] == nil:
			l.d.unknownKey(p, where)
			ok = false
		default:
			common = append(common, p)
		}
	}
	l.check(common)
	e.pairs = pairs

	typeNode, hasType := findPair(pairs, "job")
	if !hasType {
		l.p.errorf(item, "job %d has no job key", i+1)
		ok = false
	} else if t, isStr := l.d.asString(typeNode.val); isStr {
		switch {
		case slices.Contains(jobTypes, JobType(t)):
			e.jobType = JobType(t)
		case removedJobTypes[t] != "":
			l.p.errorf(typeNode.val, "job type %q is not accepted: %s", t, removedJobTypes[t])
			ok = false
		default:
			l.p.errorf(typeNode.val, "unknown job type %q (Packit knows: %s)", t, joinNames(jobTypes))
			ok = false
		}
	} else {
		ok = false
	}

	trigNode, hasTrig := findPair(pairs, "trigger")
	if !hasTrig {
		l.p.errorf(item, "job %d has no trigger key", i+1)
		ok = false
	} else if t, isStr := l.d.asString(trigNode.val); isStr {
		// "a | b" is expanded into one job per trigger, in order.
		for _, part := range strings.Split(t, "|") {
			part = strings.TrimSpace(part)
			if !slices.Contains(triggers, Trigger(part)) {
				l.p.errorf(trigNode.val, "unknown trigger %q (Packit knows: %s)", part, joinNames(triggers))
				ok = false
				continue
			}
			e.triggers = append(e.triggers, Trigger(part))
		}
	} else {
		ok = false
	}

	if pk, has := findPair(pairs, "packages"); has {
		e.packages, e.override = l.jobPackages(pk.val, packages)
		if e.packages == nil {
			ok = false
		}
	}
	return e, ok
}

// jobPackages reads a job's `packages`: a list of names, or a mapping of
// names to per-package overrides.
func (l *loader) jobPackages(n *node, defined []string) ([]string, map[string][]pair) {
	var names []string
	override := map[string][]pair{}
	var refs []*node
	switch n.kind {
	case kindSeq:
		list, ok := l.d.asStringList(n)
		if !ok {
			return nil, nil
		}
		names, refs = list, n.items
	case kindMap:
		for _, p := range n.pairs {
			names = append(names, p.key)
			refs = append(refs, p.pos)
			if p.val.kind == kindNull {
				continue
			}
			if p.val.kind != kindMap {
				l.p.errorf(p.val, "the override for package %q must be a mapping", p.key)
				return nil, nil
			}
			for _, kv := range p.val.pairs {
				if commonKeys[kv.key] == nil {
					l.d.unknownKey(kv, fmt.Sprintf("in the override for package %q", p.key))
				}
			}
			l.check(p.val.pairs)
			override[p.key] = p.val.pairs
		}
	default:
		l.p.errorf(n, "packages must be a list of package names or a mapping, found %s", n.describe())
		return nil, nil
	}
	for i, name := range names {
		if !slices.Contains(defined, name) {
			l.p.errorf(refs[i], "undefined package %q referenced (defined: %s)", name, strings.Join(defined, ", "))
			return nil, nil
		}
	}
	return names, override
}

// jobOnly decodes the keys that stay on the job.
func (l *loader) jobOnly(pairs []pair, job *Job) {
	for _, p := range pairs {
		switch p.key {
		case "manual_trigger":
			if p.val.kind != kindNull {
				job.ManualTrigger, _ = l.d.asBool(p.val)
			}
		case "skip_build":
			if p.val.kind != kindNull {
				job.SkipBuild, _ = l.d.asBool(p.val)
			}
		case "labels":
			job.Labels, _ = l.d.asStringList(p.val)
		case "sidetag_group":
			job.SidetagGroup, _ = l.d.asString(p.val)
		case "dependents":
			job.Dependents, _ = l.d.asStringList(p.val)
		case "dependencies":
			job.Dependencies, _ = l.d.asStringList(p.val)
		case "package":
			l.d.asString(p.val)
		}
	}
}

// inheritTestTargets gives a tests job without targets the targets of the
// copr_build job it depends on (same trigger and package), as packit-service
// does; with skip_build or no such build, ResolveTargets uses the default.
func inheritTestTargets(jobs []Job) {
	for i := range jobs {
		t := &jobs[i]
		if t.Type != JobTests || t.SkipBuild || len(t.Targets) > 0 {
			continue
		}
		for _, b := range jobs {
			if b.Type == JobCoprBuild && b.Trigger == t.Trigger && b.PackageName == t.PackageName {
				t.Targets = b.Targets
				break
			}
		}
	}
}

// overlay returns base with the pairs of over replacing or adding keys
// (Python's `base | over`).
func overlay(base, over []pair) []pair {
	out := slices.Clone(base)
	for _, p := range over {
		replaced := false
		for i := range out {
			if out[i].key == p.key {
				out[i] = p
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, p)
		}
	}
	return out
}

func findPair(pairs []pair, key string) (pair, bool) {
	for _, p := range pairs {
		if p.key == key {
			return p, true
		}
	}
	return pair{}, false
}

// stringValue is the value of key when it is a non-empty string.
func stringValue(pairs []pair, key string) string {
	p, ok := findPair(pairs, key)
	if !ok || p.val.kind != kindScalar || p.val.scalar != typeStr {
		return ""
	}
	return p.val.text
}

// synth makes a pair for a value Packit fills in; it has no position.
func synth(key, value string) pair {
	v := &node{kind: kindScalar, text: value}
	if value == "" {
		v.kind, v.scalar = kindNull, typeNull
	}
	return pair{key: key, pos: v, val: v}
}
