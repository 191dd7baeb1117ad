package packitcfg

// JobType is a Packit job type, spelled as in the `job:` key.
type JobType string

// The job types in Packit's schema. `build` and `production_build` were
// removed in packit 1.0.0 and are refused.
const (
	JobCoprBuild          JobType = "copr_build"
	JobTests              JobType = "tests"
	JobUpstreamKojiBuild  JobType = "upstream_koji_build"
	JobVMImageBuild       JobType = "vm_image_build"
	JobProposeDownstream  JobType = "propose_downstream"
	JobPullFromUpstream   JobType = "pull_from_upstream"
	JobKojiBuild          JobType = "koji_build"
	JobBodhiUpdate        JobType = "bodhi_update"
	JobSyncFromDownstream JobType = "sync_from_downstream"
	JobKojiBuildTag       JobType = "koji_build_tag"
)

var jobTypes = []JobType{JobCoprBuild, JobTests, JobUpstreamKojiBuild, JobVMImageBuild,
	JobProposeDownstream, JobPullFromUpstream, JobKojiBuild, JobBodhiUpdate,
	JobSyncFromDownstream, JobKojiBuildTag}

// removedJobTypes says what replaced each removed job type.
var removedJobTypes = map[string]string{
	"build":            "it was removed in packit 1.0.0; use copr_build",
	"production_build": "it was removed in packit 1.0.0; use upstream_koji_build",
}

// Trigger is a Packit job trigger, spelled as in the `trigger:` key.
type Trigger string

// The triggers in Packit's schema. There are no aliases: a push is `commit`.
const (
	TriggerPullRequest Trigger = "pull_request"
	TriggerCommit      Trigger = "commit"
	TriggerRelease     Trigger = "release"
	TriggerKojiBuild   Trigger = "koji_build"
	TriggerIgnore      Trigger = "ignore"
)

var triggers = []Trigger{TriggerPullRequest, TriggerCommit, TriggerRelease, TriggerKojiBuild, TriggerIgnore}

// Config is a loaded and resolved .packit.yaml.
type Config struct {
	File string
	// Packages holds each package's values after the top-level keys are
	// inherited; PackageNames lists the same packages in file order. A
	// single-package file has one package named after downstream_package_name.
	Packages     map[string]*Package
	PackageNames []string
	// Jobs holds one entry per job, trigger and package (Packit's "job
	// views"): a `trigger: a | b` job becomes two jobs, and a job that
	// applies to several packages of a monorepo becomes one job per package.
	// Entries from the same `jobs:` item share Index.
	Jobs     []Job
	Warnings []string
}

// Package is one package of the config with its effective values.
type Package struct {
	Name string
	Settings
}

// Job is one job view: a job from the file, for one trigger and one package,
// with the package's values overridden by the job's own.
type Job struct {
	Type    JobType
	Trigger Trigger
	// PackageName is the package this view applies to; JobPackages lists all
	// packages the `jobs:` item selects.
	PackageName string
	JobPackages []string
	// Index is the position of the item in `jobs:` (0-based); Line and Column
	// point at it. Default jobs (no `jobs:` key) have Line 0.
	Index  int
	Line   int
	Column int

	// Job-only keys, which are never inherited.
	ManualTrigger bool
	SkipBuild     bool
	Labels        []string
	SidetagGroup  string
	Dependents    []string
	Dependencies  []string

	// Settings are the effective values: top level, then package, then job,
	// then the job's per-package override. Merging is shallow, as in Packit.
	Settings
}

// Settings holds the keys that may appear at the top level, in a package
// and in a job. Unset strings are empty; defaults from Packit are applied.
type Settings struct {
	SpecfilePath          string
	UpstreamPackageName   string
	DownstreamPackageName string
	UpstreamProjectURL    string
	Paths                 []string
	DistGitBaseURL        string
	DistGitNamespace      string
	PkgTool               string
	Sig                   string

	Actions                 map[ActionName][]Command
	SrpmBuildDeps           []string
	UpstreamTagTemplate     string
	UpstreamTagInclude      string
	UpstreamTagExclude      string
	ArchiveRootDirTemplate  string
	SpecSourceID            string
	UpdateRelease           bool
	ReleaseSuffix           string
	VersionSuffix           string
	PreserveSpec            bool
	MergePRInCI             bool
	PrereleaseSuffixPattern string // empty when set to null (pre-release handling off)
	PrereleaseSuffixMacro   string

	FilesToSync                    []FileToSync
	CopyUpstreamReleaseDescription bool
	SyncChangelog                  bool
	CreatePR                       bool
	CreateSyncNote                 bool
	UploadSources                  bool
	AllowedGPGKeys                 []string
	VersionUpdateMask              string
	VersionUpdateSpecifiers        string
	IssueRepository                string

	PackitInstances               []string
	Notifications                 Notifications
	RequireLabelsPresent          []string
	RequireLabelsAbsent           []string
	StatusNameTemplate            string
	SyncTestJobStatusesWithBuilds bool
	Identifier                    string
	OSHDiffScanAfterCoprBuild     bool
	TestCommandDefaultLabels      []string
	TestCommandDefaultIdentifier  string

	// Targets maps each target as written (a chroot or an alias such as
	// fedora-all-aarch64) to its options. Use ResolveTargets for chroots.
	Targets             map[string]TargetOptions
	DistGitBranches     []DistGitBranch
	Timeout             int
	Owner               string
	Project             string
	Branch              string // a Python regex; see BranchMatches
	Scratch             bool
	ListOnHomepage      bool
	PreserveProject     bool
	UseInternalTF       bool
	AdditionalPackages  []string
	AdditionalRepos     []string
	Bootstrap           string
	FmfURL              string
	FmfRef              string
	FmfPath             string
	TmtPlan             string
	Env                 map[string]string
	EnableNet           bool
	AllowedPRAuthors    []string
	AllowedCommitters   []string
	AllowedBuilders     []string
	TFPostInstallScript string
	TFExtraParams       map[string]any
	BodhiExtraParams    map[string]any
	ModuleHotfixes      bool

	// Other accepted keys that upbuild does not interpret, decoded as plain
	// values (maps, lists, strings, int64, float64, bool, nil), by key.
	Other map[string]any
}

// defaultSettings are Packit's defaults (CommonPackageConfig.__init__ and
// the job config defaults).
func defaultSettings() Settings {
	return Settings{
		Paths:                         []string{"./"},
		UpstreamTagTemplate:           "{version}",
		ArchiveRootDirTemplate:        "{upstream_pkg_name}-{version}",
		SpecSourceID:                  "Source0",
		UpdateRelease:                 true,
		MergePRInCI:                   true,
		PrereleaseSuffixPattern:       `([.\-_~^]?)(alpha|beta|rc|pre(view)?)([.\-_]?\d+)?`,
		CreatePR:                      true,
		CreateSyncNote:                true,
		UploadSources:                 true,
		PackitInstances:               []string{"prod"},
		Notifications:                 Notifications{FailureIssueCreate: true},
		SyncTestJobStatusesWithBuilds: true,
		OSHDiffScanAfterCoprBuild:     true,
		Timeout:                       7200,
		Bootstrap:                     "default",
		AllowedPRAuthors:              []string{"packit"},
		AllowedBuilders:               []string{"packit"},
	}
}

// ActionName is a Packit action (a key of `actions:`).
type ActionName string

// The actions Packit knows. Any other name is refused, as in Packit.
const (
	ActionPostUpstreamClone ActionName = "post-upstream-clone"
	ActionGetCurrentVersion ActionName = "get-current-version"
	ActionCreateArchive     ActionName = "create-archive"
	ActionFixSpecFile       ActionName = "fix-spec-file"
	ActionChangelogEntry    ActionName = "changelog-entry"
	ActionPostModifications ActionName = "post-modifications"
	ActionCreatePatches     ActionName = "create-patches"
	ActionPreSync           ActionName = "pre-sync"
	ActionPrepareFiles      ActionName = "prepare-files"
	ActionCommitMessage     ActionName = "commit-message"
	ActionRunCondition      ActionName = "run-condition"
)

var actionNames = []ActionName{ActionPostUpstreamClone, ActionGetCurrentVersion, ActionCreateArchive,
	ActionFixSpecFile, ActionChangelogEntry, ActionPostModifications, ActionCreatePatches,
	ActionPreSync, ActionPrepareFiles, ActionCommitMessage, ActionRunCondition}

// Command is one command of an action, as an argv. Packit runs it without
// a shell; a string command is split the way Python's shlex.split does.
type Command []string

// FileToSync is one `files_to_sync` entry.
type FileToSync struct {
	Src     []string
	Dest    string
	Mkpath  bool
	Delete  bool
	Filters []string
}

// Notifications is the `notifications` key.
type Notifications struct {
	PullRequestSuccessfulBuild bool
	FailureCommentMessage      string
	FailureIssueCreate         bool
}

// TargetOptions are the per-target options of a `targets:` mapping.
type TargetOptions struct {
	Distros            []string
	AdditionalPackages []string
	AdditionalRepos    []string
	AdditionalModules  string
	WithOpts           []string
	WithoutOpts        []string
}

// DistGitBranch is one `dist_git_branches` entry (a branch or an alias).
type DistGitBranch struct {
	Name                 string
	FastForwardMergeInto []string
}
