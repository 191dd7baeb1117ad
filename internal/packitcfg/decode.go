package packitcfg

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// decoder turns validated nodes into typed values, recording problems.
type decoder struct {
	p *problems
}

// keyHandler decodes one key into Settings.
type keyHandler func(d *decoder, n *node, s *Settings)

// commonKeys is Packit's CommonConfigSchema: the keys allowed at the top
// level, in a package and in a job.
var commonKeys = map[string]keyHandler{
	"specfile_path":           str(func(s *Settings) *string { return &s.SpecfilePath }),
	"upstream_package_name":   str(func(s *Settings) *string { return &s.UpstreamPackageName }),
	"downstream_package_name": str(func(s *Settings) *string { return &s.DownstreamPackageName }),
	"upstream_project_url":    str(func(s *Settings) *string { return &s.UpstreamProjectURL }),
	"paths":                   strList(func(s *Settings) *[]string { return &s.Paths }),
	"dist_git_base_url":       str(func(s *Settings) *string { return &s.DistGitBaseURL }),
	"dist_git_namespace":      str(func(s *Settings) *string { return &s.DistGitNamespace }),
	"pkg_tool":                str(func(s *Settings) *string { return &s.PkgTool }),
	"sig":                     str(func(s *Settings) *string { return &s.Sig }),
	"config_file_path":        other,

	"actions":                          (*decoder).actions,
	"srpm_build_deps":                  strList(func(s *Settings) *[]string { return &s.SrpmBuildDeps }),
	"upstream_tag_template":            str(func(s *Settings) *string { return &s.UpstreamTagTemplate }),
	"upstream_tag_include":             str(func(s *Settings) *string { return &s.UpstreamTagInclude }),
	"upstream_tag_exclude":             str(func(s *Settings) *string { return &s.UpstreamTagExclude }),
	"archive_root_dir_template":        str(func(s *Settings) *string { return &s.ArchiveRootDirTemplate }),
	"spec_source_id":                   (*decoder).specSourceID,
	"update_release":                   boolean(func(s *Settings) *bool { return &s.UpdateRelease }),
	"release_suffix":                   str(func(s *Settings) *string { return &s.ReleaseSuffix }),
	"version_suffix":                   str(func(s *Settings) *string { return &s.VersionSuffix }),
	"preserve_spec":                    boolean(func(s *Settings) *bool { return &s.PreserveSpec }),
	"merge_pr_in_ci":                   boolean(func(s *Settings) *bool { return &s.MergePRInCI }),
	"parse_time_macros":                otherMap,
	"prerelease_suffix_pattern":        (*decoder).prereleasePattern,
	"prerelease_suffix_macro":          str(func(s *Settings) *string { return &s.PrereleaseSuffixMacro }),
	"sources":                          otherList,
	"upstream_ref":                     otherStr,
	"patch_generation_ignore_paths":    otherList,
	"patch_generation_patch_id_digits": otherInt,

	"files_to_sync":                     (*decoder).filesToSync,
	"copy_upstream_release_description": boolean(func(s *Settings) *bool { return &s.CopyUpstreamReleaseDescription }),
	"sync_changelog":                    boolean(func(s *Settings) *bool { return &s.SyncChangelog }),
	"create_pr":                         boolean(func(s *Settings) *bool { return &s.CreatePR }),
	"create_sync_note":                  boolean(func(s *Settings) *bool { return &s.CreateSyncNote }),
	"upload_sources":                    boolean(func(s *Settings) *bool { return &s.UploadSources }),
	"allowed_gpg_keys":                  strList(func(s *Settings) *[]string { return &s.AllowedGPGKeys }),
	"version_update_mask":               str(func(s *Settings) *string { return &s.VersionUpdateMask }),
	"version_update_specifiers":         str(func(s *Settings) *string { return &s.VersionUpdateSpecifiers }),
	"issue_repository":                  str(func(s *Settings) *string { return &s.IssueRepository }),

	"packit_instances":                   (*decoder).packitInstances,
	"notifications":                      (*decoder).notifications,
	"require":                            (*decoder).require,
	"test_command":                       (*decoder).testCommand,
	"status_name_template":               (*decoder).statusNameTemplate,
	"sync_test_job_statuses_with_builds": boolean(func(s *Settings) *bool { return &s.SyncTestJobStatusesWithBuilds }),
	"identifier":                         str(func(s *Settings) *string { return &s.Identifier }),
	"osh_diff_scan_after_copr_build":     boolean(func(s *Settings) *bool { return &s.OSHDiffScanAfterCoprBuild }),
	"csmock_args":                        otherStr,
	"osh_options":                        otherMap,
	"clone_repos_before_run_condition":   otherBool,
	"skip_missing_branched_composes":     otherBool,
	"use_target_repo_for_fmf_url":        otherBool,

	"targets":                (*decoder).targets,
	"timeout":                (*decoder).timeout,
	"owner":                  str(func(s *Settings) *string { return &s.Owner }),
	"project":                str(func(s *Settings) *string { return &s.Project }),
	"dist_git_branches":      (*decoder).distGitBranches,
	"branch":                 (*decoder).branch,
	"scratch":                boolean(func(s *Settings) *bool { return &s.Scratch }),
	"list_on_homepage":       boolean(func(s *Settings) *bool { return &s.ListOnHomepage }),
	"preserve_project":       boolean(func(s *Settings) *bool { return &s.PreserveProject }),
	"use_internal_tf":        boolean(func(s *Settings) *bool { return &s.UseInternalTF }),
	"additional_packages":    strList(func(s *Settings) *[]string { return &s.AdditionalPackages }),
	"additional_repos":       strList(func(s *Settings) *[]string { return &s.AdditionalRepos }),
	"bootstrap":              (*decoder).bootstrap,
	"fmf_url":                str(func(s *Settings) *string { return &s.FmfURL }),
	"fmf_ref":                str(func(s *Settings) *string { return &s.FmfRef }),
	"fmf_path":               str(func(s *Settings) *string { return &s.FmfPath }),
	"env":                    (*decoder).env,
	"enable_net":             boolean(func(s *Settings) *bool { return &s.EnableNet }),
	"allowed_pr_authors":     strList(func(s *Settings) *[]string { return &s.AllowedPRAuthors }),
	"allowed_committers":     strList(func(s *Settings) *[]string { return &s.AllowedCommitters }),
	"allowed_builders":       strList(func(s *Settings) *[]string { return &s.AllowedBuilders }),
	"tmt_plan":               str(func(s *Settings) *string { return &s.TmtPlan }),
	"tf_post_install_script": str(func(s *Settings) *string { return &s.TFPostInstallScript }),
	"tf_extra_params":        anyMap(func(s *Settings) *map[string]any { return &s.TFExtraParams }),
	"bodhi_extra_params":     anyMap(func(s *Settings) *map[string]any { return &s.BodhiExtraParams }),
	"module_hotfixes":        boolean(func(s *Settings) *bool { return &s.ModuleHotfixes }),
	"image_distribution":     otherStr,
	"image_request":          otherMap,
	"image_customizations":   otherMap,
	"copr_chroot":            otherStr,
}

// jobOnlyKeys stay on the job and are never inherited (JobConfigSchema's own
// fields). They are refused at the top level and in packages, as in Packit.
var jobOnlyKeys = []string{"job", "trigger", "skip_build", "manual_trigger", "labels",
	"packages", "package", "sidetag_group", "dependents", "dependencies"}

// removedKeys explains keys that Packit no longer accepts. Packit reports
// them as "Unknown field"; upbuild says what replaced them.
var removedKeys = map[string]string{
	"synced_files":            "it was removed in packit 1.0.0; use files_to_sync",
	"upstream_project_name":   "it was removed in packit 1.0.0; use upstream_package_name",
	"current_version_command": "it was removed; use the get-current-version action",
	"create_tarball_command":  "it was removed; use the create-archive action",
	"follow_fedora_branching": "it is not part of Packit's schema",
	"dist-git-branches":       "it is only accepted inside the deprecated metadata key; use dist_git_branches",
	"dist_git_url":            "Packit no longer processes it and fails to load a config that sets it",
}

func (d *decoder) unknownKey(p pair, where string) {
	if why, ok := removedKeys[p.key]; ok {
		d.p.errorf(p.pos, "key %q is not accepted %s: %s", p.key, where, why)
		return
	}
	d.p.errorf(p.pos, "unknown key %q %s", p.key, where)
}

// settings decodes the pairs of one effective mapping on top of s.
// Keys that are not common keys are skipped: the caller validated them.
func (d *decoder) settings(pairs []pair, s *Settings) {
	for _, p := range pairs {
		if h, ok := commonKeys[p.key]; ok {
			h(d, p.val, s)
		}
	}
}

func (d *decoder) typeError(n *node, want string) {
	d.p.errorf(n, "expected %s, found %s", want, n.describe())
}

// asString accepts a string scalar; null gives "" with ok true.
func (d *decoder) asString(n *node) (string, bool) {
	switch {
	case n.kind == kindNull:
		return "", true
	case n.kind == kindScalar && n.scalar == typeStr:
		return n.text, true
	}
	d.typeError(n, "a string")
	return "", false
}

// asBool follows marshmallow's Boolean field, which Packit uses: besides
// YAML booleans it takes 0/1 and strings such as "yes", "on" or "t".
func (d *decoder) asBool(n *node) (bool, bool) {
	if n.kind == kindScalar {
		switch strings.ToLower(n.text) {
		case "true", "t", "yes", "y", "on", "1":
			if n.scalar != typeFloat || n.text == "1" {
				return true, true
			}
		case "false", "f", "no", "n", "off", "0":
			return false, true
		}
		if n.scalar == typeFloat {
			if f, err := strconv.ParseFloat(n.text, 64); err == nil && (f == 0 || f == 1) {
				return f == 1, true
			}
		}
	}
	d.typeError(n, "a boolean")
	return false, false
}

func (d *decoder) asStringList(n *node) ([]string, bool) {
	if n.kind == kindNull {
		return nil, true
	}
	if n.kind != kindSeq {
		d.typeError(n, "a list of strings")
		return nil, false
	}
	out := make([]string, 0, len(n.items))
	ok := true
	for _, item := range n.items {
		if item.kind == kindScalar && item.scalar == typeStr {
			out = append(out, item.text)
			continue
		}
		d.typeError(item, "a string")
		ok = false
	}
	return out, ok
}

func str(field func(*Settings) *string) keyHandler {
	return func(d *decoder, n *node, s *Settings) {
		if v, ok := d.asString(n); ok {
			*field(s) = v
		}
	}
}

func boolean(field func(*Settings) *bool) keyHandler {
	return func(d *decoder, n *node, s *Settings) {
		if n.kind == kindNull { // null clears an inherited value back to the default
			defaults := defaultSettings()
			*field(s) = *field(&defaults)
			return
		}
		if v, ok := d.asBool(n); ok {
			*field(s) = v
		}
	}
}

func strList(field func(*Settings) *[]string) keyHandler {
	return func(d *decoder, n *node, s *Settings) {
		if v, ok := d.asStringList(n); ok {
			*field(s) = v
		}
	}
}

func anyMap(field func(*Settings) *map[string]any) keyHandler {
	return func(d *decoder, n *node, s *Settings) {
		switch n.kind {
		case kindNull:
			*field(s) = nil
		case kindMap:
			*field(s) = plain(n).(map[string]any)
		default:
			d.typeError(n, "a mapping")
		}
	}
}

// setOther records a key upbuild accepts but does not interpret. It is
// called with the key through the wrappers below.
func setOther(s *Settings, key string, v any) {
	if s.Other == nil {
		s.Other = map[string]any{}
	}
	s.Other[key] = v
}

// other accepts any value.
func other(_ *decoder, _ *node, _ *Settings) {}

// The other* handlers only check the shape; keyed storage happens in
// decodeOther, which knows the key.
func otherStr(d *decoder, n *node, _ *Settings) { d.asString(n) }
func otherBool(d *decoder, n *node, _ *Settings) {
	if n.kind != kindNull {
		d.asBool(n)
	}
}
func otherList(d *decoder, n *node, _ *Settings) {
	if n.kind != kindSeq && n.kind != kindNull {
		d.typeError(n, "a list")
	}
}
func otherMap(d *decoder, n *node, _ *Settings) {
	if n.kind != kindMap && n.kind != kindNull {
		d.typeError(n, "a mapping")
	}
}
func otherInt(d *decoder, n *node, _ *Settings) {
	if n.kind != kindNull {
		d.asInt(n)
	}
}

// uninterpreted lists the keys stored in Settings.Other.
var uninterpreted = []string{"config_file_path", "parse_time_macros", "sources", "upstream_ref",
	"patch_generation_ignore_paths", "patch_generation_patch_id_digits", "csmock_args", "osh_options",
	"clone_repos_before_run_condition", "skip_missing_branched_composes", "use_target_repo_for_fmf_url",
	"image_distribution", "image_request", "image_customizations", "copr_chroot"}

func decodeOther(pairs []pair, s *Settings) {
	for _, p := range pairs {
		if slices.Contains(uninterpreted, p.key) {
			setOther(s, p.key, plain(p.val))
		}
	}
}

// asInt follows marshmallow's non-strict Integer: integers and numeric strings.
func (d *decoder) asInt(n *node) (int, bool) {
	if n.kind == kindScalar && (n.scalar == typeInt || n.scalar == typeStr) {
		if v, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(n.text, "_", ""))); err == nil {
			return v, true
		}
	}
	d.typeError(n, "an integer")
	return 0, false
}

func (d *decoder) timeout(n *node, s *Settings) {
	if n.kind == kindNull {
		s.Timeout = defaultSettings().Timeout
		return
	}
	if v, ok := d.asInt(n); ok {
		s.Timeout = v
	}
}

// specSourceID: an integer N means SourceN.
func (d *decoder) specSourceID(n *node, s *Settings) {
	switch {
	case n.kind == kindNull:
		s.SpecSourceID = defaultSettings().SpecSourceID
	case n.kind == kindScalar && n.scalar == typeInt:
		if v, ok := d.asInt(n); ok {
			s.SpecSourceID = "Source" + strconv.Itoa(v)
		}
	default:
		if v, ok := d.asString(n); ok {
			s.SpecSourceID = v
		}
	}
}

func (d *decoder) prereleasePattern(n *node, s *Settings) {
	if v, ok := d.asString(n); ok {
		s.PrereleaseSuffixPattern = v
	}
}

func (d *decoder) packitInstances(n *node, s *Settings) {
	v, ok := d.asStringList(n)
	if !ok {
		return
	}
	for i, inst := range v {
		if inst != "prod" && inst != "stg" && inst != "dev" {
			d.p.errorf(n.items[i], "packit_instances: %q is not one of prod, stg, dev", inst)
			return
		}
	}
	s.PackitInstances = v
}

func (d *decoder) bootstrap(n *node, s *Settings) {
	v, ok := d.asString(n)
	if !ok {
		return
	}
	if v == "" {
		v = "default"
	}
	if !slices.Contains([]string{"default", "on", "off", "image"}, v) {
		d.p.errorf(n, "bootstrap: %q is not one of default, on, off, image", v)
		return
	}
	s.Bootstrap = v
}

func (d *decoder) env(n *node, s *Settings) {
	switch n.kind {
	case kindNull:
		s.Env = nil
		return
	case kindMap:
	default:
		d.typeError(n, "a mapping of variable names to values")
		return
	}
	env := map[string]string{}
	for _, p := range n.pairs {
		switch {
		case p.val.kind == kindNull:
			env[p.key] = ""
		case p.val.kind == kindScalar:
			env[p.key] = p.val.text
		default:
			d.typeError(p.val, "a scalar value")
		}
	}
	s.Env = env
}

// mapFields walks a nested mapping with a fixed set of keys, refusing
// others as the nested marshmallow schemas do.
func (d *decoder) mapFields(n *node, what string, fields map[string]func(*node)) {
	if n.kind == kindNull {
		return
	}
	if n.kind != kindMap {
		d.typeError(n, "a mapping")
		return
	}
	for _, p := range n.pairs {
		f, ok := fields[p.key]
		if !ok {
			d.p.errorf(p.pos, "unknown key %q in %s", p.key, what)
			continue
		}
		f(p.val)
	}
}

func (d *decoder) notifications(n *node, s *Settings) {
	out := defaultSettings().Notifications
	d.mapFields(n, "notifications", map[string]func(*node){
		"pull_request": func(v *node) {
			d.mapFields(v, "notifications.pull_request", map[string]func(*node){
				"successful_build": func(b *node) {
					if b.kind != kindNull {
						out.PullRequestSuccessfulBuild, _ = d.asBool(b)
					}
				},
			})
		},
		"failure_comment": func(v *node) {
			d.mapFields(v, "notifications.failure_comment", map[string]func(*node){
				"message": func(m *node) { out.FailureCommentMessage, _ = d.asString(m) },
			})
		},
		"failure_issue": func(v *node) {
			d.mapFields(v, "notifications.failure_issue", map[string]func(*node){
				"create": func(b *node) {
					if b.kind != kindNull {
						out.FailureIssueCreate, _ = d.asBool(b)
					}
				},
			})
		},
	})
	s.Notifications = out
}

func (d *decoder) require(n *node, s *Settings) {
	var present, absent []string
	d.mapFields(n, "require", map[string]func(*node){
		"label": func(v *node) {
			d.mapFields(v, "require.label", map[string]func(*node){
				"present": func(l *node) { present, _ = d.asStringList(l) },
				"absent":  func(l *node) { absent, _ = d.asStringList(l) },
			})
		},
	})
	s.RequireLabelsPresent, s.RequireLabelsAbsent = present, absent
}

func (d *decoder) testCommand(n *node, s *Settings) {
	var labels []string
	var identifier string
	d.mapFields(n, "test_command", map[string]func(*node){
		"default_labels":     func(l *node) { labels, _ = d.asStringList(l) },
		"default_identifier": func(v *node) { identifier, _ = d.asString(v) },
	})
	s.TestCommandDefaultLabels, s.TestCommandDefaultIdentifier = labels, identifier
}

func (d *decoder) actions(n *node, s *Settings) {
	switch n.kind {
	case kindNull:
		s.Actions = nil
		return
	case kindMap:
	default:
		d.typeError(n, "a mapping of action names to commands")
		return
	}
	out := map[ActionName][]Command{}
	for _, p := range n.pairs {
		name := ActionName(p.key)
		if !slices.Contains(actionNames, name) {
			d.p.errorf(p.pos, "unknown action %q (Packit knows: %s)", p.key, joinNames(actionNames))
			continue
		}
		if cmds, ok := d.commands(p.val); ok {
			out[name] = cmds
		}
	}
	s.Actions = out
}

// commands decodes one action: a string, or a list whose items are strings
// (split like shlex.split) or argv lists.
func (d *decoder) commands(n *node) ([]Command, bool) {
	one := func(item *node) (Command, bool) {
		switch {
		case item.kind == kindScalar && item.scalar == typeStr:
			argv, err := shellSplit(item.text)
			if err != nil {
				d.p.errorf(item, "cannot split the command: %v", err)
				return nil, false
			}
			return argv, true
		case item.kind == kindSeq:
			argv, ok := d.asStringList(item)
			return argv, ok
		}
		d.typeError(item, "a command string or a list of arguments")
		return nil, false
	}
	switch n.kind {
	case kindNull:
		return nil, true
	case kindSeq:
		out := make([]Command, 0, len(n.items))
		okAll := true
		for _, item := range n.items {
			c, ok := one(item)
			okAll = okAll && ok
			out = append(out, c)
		}
		return out, okAll
	default:
		c, ok := one(n)
		return []Command{c}, ok
	}
}

func (d *decoder) filesToSync(n *node, s *Settings) {
	if n.kind == kindNull {
		s.FilesToSync = nil
		return
	}
	if n.kind != kindSeq {
		d.typeError(n, "a list")
		return
	}
	out := make([]FileToSync, 0, len(n.items))
	for _, item := range n.items {
		if item.kind == kindScalar && item.scalar == typeStr {
			out = append(out, FileToSync{Src: []string{item.text}, Dest: item.text})
			continue
		}
		if item.kind != kindMap {
			d.typeError(item, "a path or a mapping with src and dest")
			continue
		}
		var f FileToSync
		d.mapFields(item, "files_to_sync", map[string]func(*node){
			"src": func(v *node) {
				if v.kind == kindSeq {
					f.Src, _ = d.asStringList(v)
				} else if src, ok := d.asString(v); ok {
					f.Src = []string{src}
				}
			},
			"dest":    func(v *node) { f.Dest, _ = d.asString(v) },
			"mkpath":  func(v *node) { f.Mkpath, _ = d.asBool(v) },
			"delete":  func(v *node) { f.Delete, _ = d.asBool(v) },
			"filters": func(v *node) { f.Filters, _ = d.asStringList(v) },
		})
		if len(f.Src) == 0 || f.Dest == "" {
			d.p.errorf(item, "a files_to_sync entry needs both src and dest")
		}
		out = append(out, f)
	}
	s.FilesToSync = out
}

// targets: a list (or, inside a job, a single string) of names, or a
// mapping from name to options.
func (d *decoder) targets(n *node, s *Settings) {
	out := map[string]TargetOptions{}
	switch n.kind {
	case kindNull:
		s.Targets = nil
		return
	case kindScalar:
		name, ok := d.asString(n)
		if !ok {
			return
		}
		out[name] = TargetOptions{}
	case kindSeq:
		if len(n.items) > maxTargets {
			d.p.errorf(n, "targets: %d names, more than the %d this service builds for one job", len(n.items), maxTargets)
			return
		}
		names, ok := d.asStringList(n)
		if !ok {
			return
		}
		for _, name := range names {
			out[name] = TargetOptions{}
		}
	case kindMap:
		if len(n.pairs) > maxTargets {
			d.p.errorf(n, "targets: %d names, more than the %d this service builds for one job", len(n.pairs), maxTargets)
			return
		}
		for _, p := range n.pairs {
			var o TargetOptions
			d.mapFields(p.val, fmt.Sprintf("the options of target %q", p.key), map[string]func(*node){
				"distros":             func(v *node) { o.Distros, _ = d.asStringList(v) },
				"additional_packages": func(v *node) { o.AdditionalPackages, _ = d.asStringList(v) },
				"additional_repos":    func(v *node) { o.AdditionalRepos, _ = d.asStringList(v) },
				"additional_modules":  func(v *node) { o.AdditionalModules, _ = d.asString(v) },
				"with_opts":           func(v *node) { o.WithOpts, _ = d.asStringList(v) },
				"without_opts":        func(v *node) { o.WithoutOpts, _ = d.asStringList(v) },
			})
			out[p.key] = o
		}
	}
	s.Targets = out
}

// distGitBranches: a string, a list, or a mapping of branch to
// {fast_forward_merge_into: [...]}.
func (d *decoder) distGitBranches(n *node, s *Settings) {
	var out []DistGitBranch
	switch n.kind {
	case kindNull:
	case kindScalar:
		if name, ok := d.asString(n); ok {
			out = append(out, DistGitBranch{Name: name})
		}
	case kindSeq:
		names, ok := d.asStringList(n)
		if !ok {
			return
		}
		for _, name := range names {
			out = append(out, DistGitBranch{Name: name})
		}
	case kindMap:
		for _, p := range n.pairs {
			b := DistGitBranch{Name: p.key}
			d.mapFields(p.val, fmt.Sprintf("dist_git_branches entry %q", p.key), map[string]func(*node){
				"fast_forward_merge_into": func(v *node) { b.FastForwardMergeInto, _ = d.asStringList(v) },
			})
			out = append(out, b)
		}
	}
	s.DistGitBranches = out
}

func (d *decoder) branch(n *node, s *Settings) {
	v, ok := d.asString(n)
	if !ok {
		return
	}
	if err := checkBranchPattern(v); err != nil {
		d.p.errorf(n, "branch %q: %v", v, err)
		return
	}
	s.Branch = v
}

func (d *decoder) statusNameTemplate(n *node, s *Settings) {
	v, ok := d.asString(n)
	if !ok {
		return
	}
	if _, err := parseStatusTemplate(v); err != nil {
		d.p.warnf(n, "status_name_template %q: %v; Packit falls back to the default status names, and so does upbuild", v, err)
	}
	s.StatusNameTemplate = v
}

// plain converts a node into plain Go values.
func plain(n *node) any {
	switch n.kind {
	case kindNull:
		return nil
	case kindSeq:
		out := make([]any, len(n.items))
		for i, item := range n.items {
			out[i] = plain(item)
		}
		return out
	case kindMap:
		out := make(map[string]any, len(n.pairs))
		for _, p := range n.pairs {
			out[p.key] = plain(p.val)
		}
		return out
	}
	switch n.scalar {
	case typeInt:
		if v, err := strconv.ParseInt(strings.ReplaceAll(n.text, "_", ""), 0, 64); err == nil {
			return v
		}
	case typeFloat:
		if v, err := strconv.ParseFloat(strings.ReplaceAll(n.text, "_", ""), 64); err == nil {
			return v
		}
	case typeBool:
		switch strings.ToLower(n.text) {
		case "true", "yes", "on":
			return true
		default:
			return false
		}
	}
	return n.text
}

func joinNames[T ~string](names []T) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = string(n)
	}
	return strings.Join(parts, ", ")
}
