package packitcfg_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/packitcfg"
)

// summary is one job view in a compact form: type, trigger, package, then
// identifier, branch, targets (sorted) or dist-git branches when set.
func summary(j packitcfg.Job) string {
	parts := []string{string(j.Type), string(j.Trigger), j.PackageName}
	if j.Identifier != "" {
		parts = append(parts, "id="+j.Identifier)
	}
	if j.Branch != "" {
		parts = append(parts, "branch="+j.Branch)
	}
	if len(j.Targets) > 0 {
		var ts []string
		for t := range j.Targets {
			ts = append(ts, t)
		}
		slices.Sort(ts)
		parts = append(parts, "targets="+strings.Join(ts, ","))
	}
	if len(j.DistGitBranches) > 0 {
		var bs []string
		for _, b := range j.DistGitBranches {
			bs = append(bs, b.Name)
		}
		parts = append(parts, "branches="+strings.Join(bs, ","))
	}
	return strings.Join(parts, " ")
}

func loadCorpus(t *testing.T, file, repo string) *packitcfg.Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "corpus", file))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := packitcfg.Load(file, data, packitcfg.Options{RepoName: repo})
	if err != nil {
		t.Fatalf("Load(%s): %v", file, err)
	}
	return cfg
}

func cmd(args ...string) packitcfg.Command { return args }

// validCorpus lists every file SOURCES.md marks valid, with the job views
// read by hand from the file, and checks of inherited and overridden keys.
var validCorpus = []struct {
	file, repo string
	packages   []string
	jobs       []string
	check      func(t *testing.T, c *packitcfg.Config)
}{
	{
		file: "389ds__389-ds-base.packit.yaml", repo: "389-ds-base",
		packages: []string{"389-ds-base"},
		jobs: []string{
			"copr_build pull_request 389-ds-base targets=epel-10-all,fedora-all",
			"copr_build commit 389-ds-base branch=main targets=epel-10-all,fedora-all",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			pr, commit := c.Jobs[0], c.Jobs[1]
			eq(t, "release_suffix inherited", pr.ReleaseSuffix, "{PACKIT_PROJECT_BRANCH}")
			eq(t, "specfile inherited", commit.SpecfilePath, "rpm/389-ds-base.spec")
			eq(t, "preserve_project", commit.PreserveProject, true)
			eq(t, "preserve_project default", pr.PreserveProject, false)
			eq(t, "without_opts", pr.Targets["fedora-all"].WithoutOpts, []string{"bundle_libdb"})
			eq(t, "with_opts", pr.Targets["epel-10-all"].WithOpts, []string{"bundle_libdb"})
			eq(t, "successful_build", pr.Notifications.PullRequestSuccessfulBuild, true)
			eq(t, "allowed_pr_authors", pr.AllowedPRAuthors, []string{"packit", "all_admins"})
			eq(t, "create-archive", pr.Actions[packitcfg.ActionCreateArchive][2], cmd("bash", "-c", "ls -1 dist/sources/389-ds-base*.tar.bz2"))
		},
	},
	{
		file: "CodeLinaro-mirror__le_centos_automotive_src_automotive-image-builder.packit.yaml", repo: "le_centos_automotive_src_automotive-image-builder",
		packages: []string{"automotive-image-builder"},
		jobs: []string{
			"copr_build pull_request automotive-image-builder targets=centos-stream-10-aarch64,centos-stream-10-x86_64,fedora-rawhide-aarch64,fedora-rawhide-x86_64",
			"copr_build commit automotive-image-builder branch=main targets=centos-stream+epel-next-10-aarch64,centos-stream+epel-next-10-x86_64,centos-stream-10-aarch64,centos-stream-10-x86_64,epel-10-aarch64,epel-10-x86_64,fedora-all-aarch64,fedora-all-x86_64,rhel-10-x86_64",
			"copr_build release automotive-image-builder branch=main targets=centos-stream+epel-next-10-aarch64,centos-stream+epel-next-10-x86_64,centos-stream-10-aarch64,centos-stream-10-x86_64,epel-10-aarch64,epel-10-x86_64,fedora-all-aarch64,fedora-all-x86_64,rhel-10-x86_64",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			pr, commit, release := c.Jobs[0], c.Jobs[1], c.Jobs[2]
			eq(t, "owner", commit.Owner, "@centos-automotive-sig")
			eq(t, "commit project", commit.Project, "automotive-image-builder-dev")
			eq(t, "release project", release.Project, "automotive-image-builder")
			eq(t, "update_release inherited", release.UpdateRelease, false)
			eq(t, "pr actions inherited", pr.Actions[packitcfg.ActionPostUpstreamClone][1], cmd("bash", "-c", "build/build-rpm.sh --generate-spec"))
			eq(t, "release action overridden", release.Actions[packitcfg.ActionPostUpstreamClone][1], cmd("bash", "-c", "build/build-rpm.sh --generate-spec --release"))
			eq(t, "release action merged from anchor", release.Actions[packitcfg.ActionGetCurrentVersion], []packitcfg.Command{cmd("python3", "./aib/version.py")})
			eq(t, "failure message", strings.HasPrefix(commit.Notifications.FailureCommentMessage, "automotive-image-builder build failed for merged commit {commit_sha}."), true)
		},
	},
	{
		file: "ComplianceAsCode__content.packit.yaml", repo: "content",
		packages: []string{"scap-security-guide"},
		jobs: []string{
			"copr_build pull_request scap-security-guide targets=centos-stream-10-x86_64,centos-stream-8-x86_64,centos-stream-9-x86_64,fedora-all-x86_64",
			"copr_build commit scap-security-guide branch=gh-readonly-queue/.* targets=centos-stream-10-x86_64,centos-stream-8-x86_64,centos-stream-9-x86_64,fedora-all-x86_64",
			"tests pull_request scap-security-guide id=contest-oscap targets=centos-stream-10,centos-stream-8,centos-stream-9",
			"tests pull_request scap-security-guide id=contest-ansible targets=centos-stream-10,centos-stream-8,centos-stream-9",
			"tests pull_request scap-security-guide id=contest-other targets=centos-stream-10,centos-stream-8,centos-stream-9",
			"tests pull_request scap-security-guide id=fedora-cis targets=fedora-all",
			"propose_downstream release scap-security-guide branches=fedora-all",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "tmt_plan overridden", c.Jobs[3].TmtPlan, "/plans/upstream-parallel/ansible")
			eq(t, "fmf_url from anchor", c.Jobs[3].FmfURL, "https://github.com/RHSecurityCompliance/contest.git")
			eq(t, "fmf_ref from anchor", c.Jobs[4].FmfRef, "main")
			eq(t, "fmf_path", c.Jobs[5].FmfPath, "tests/tmt")
			eq(t, "merge queue branch", packitcfg.BranchMatches(c.Jobs[1].Branch, "gh-readonly-queue/main/pr-1-abc"), true)
		},
	},
	{
		file: "FreeCAD__FreeCAD.packit.yaml", repo: "FreeCAD",
		packages: []string{"freecad"},
		jobs: []string{
			"copr_build pull_request freecad id=pull_request branch=main targets=fedora-stable",
			"tests pull_request freecad id=pull_request branch=main targets=fedora-latest-stable",
			"copr_build commit freecad id=main branch=main",
			"copr_build release freecad id=release targets=fedora-all",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "manual pr", c.Jobs[0].ManualTrigger, true)
			eq(t, "manual commit", c.Jobs[2].ManualTrigger, true)
			eq(t, "not manual release", c.Jobs[3].ManualTrigger, false)
			eq(t, "additional_packages inherited", c.Jobs[3].AdditionalPackages, []string{"python3"})
			eq(t, "successful_build", c.Jobs[0].Notifications.PullRequestSuccessfulBuild, true)
			eq(t, "without_opts", c.Jobs[3].Targets["fedora-all"].WithoutOpts, []string{"tests"})
			eq(t, "echo -n", c.Jobs[1].Actions[packitcfg.ActionCreateArchive][2], cmd("echo", "-n", "freecad-sources.tar.gz"))
			eq(t, "upstream name from repo", c.Jobs[0].UpstreamPackageName, "FreeCAD")
		},
	},
	{
		file: "GNOME__libmks.packit.yaml", repo: "libmks",
		packages: []string{"libmks"},
		jobs: []string{
			"copr_build pull_request libmks targets=fedora-39-aarch64,fedora-39-x86_64,fedora-rawhide-aarch64,fedora-rawhide-x86_64",
			"propose_downstream release libmks branches=fedora-39,fedora-rawhide",
			"koji_build commit libmks branches=fedora-39,fedora-rawhide",
			"bodhi_update commit libmks branches=fedora-branched",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "job srpm_build_deps", c.Jobs[0].SrpmBuildDeps, []string{"wget"})
			eq(t, "no srpm_build_deps elsewhere", c.Jobs[1].SrpmBuildDeps, []string(nil))
			eq(t, "actions inherited", len(c.Jobs[2].Actions[packitcfg.ActionPostUpstreamClone]), 1)
		},
	},
	{
		file: "Katello__katello.packit.yaml", repo: "katello",
		packages: []string{"rubygem-katello"},
		jobs: []string{
			"copr_build pull_request rubygem-katello targets=rhel-10,rhel-9",
			"copr_build commit rubygem-katello branch=master targets=rhel-10,rhel-9",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "additional_modules", c.Jobs[1].Targets["rhel-9"].AdditionalModules, "foreman-devel:el9")
			eq(t, "additional_repos", len(c.Jobs[0].Targets["rhel-10"].AdditionalRepos), 3)
			eq(t, "module_hotfixes", c.Jobs[1].ModuleHotfixes, true)
			eq(t, "owner", c.Jobs[1].Owner, "@theforeman")
			eq(t, "upstream name", c.Jobs[0].UpstreamPackageName, "katello")
			eq(t, "srpm deps after jobs", c.Jobs[0].SrpmBuildDeps, []string{"wget", "rubygems"})
		},
	},
	{
		file: "cockpit-project__cockpit.packit.yaml", repo: "cockpit",
		packages: []string{"cockpit"},
		jobs: []string{
			"tests pull_request cockpit id=self targets=centos-stream-10-x86_64,centos-stream-9-aarch64,centos-stream-9-x86_64,fedora-43,fedora-44,fedora-latest-aarch64,fedora-rawhide",
			"tests pull_request cockpit id=revdeps targets=fedora-latest-stable",
			"copr_build pull_request cockpit targets=centos-stream-10-x86_64,centos-stream-9-aarch64,centos-stream-9-x86_64,fedora-43,fedora-44,fedora-latest-aarch64,fedora-rawhide",
			"copr_build pull_request cockpit targets=fedora-latest-stable-s390x",
			"copr_build commit cockpit branch=^main$",
			"copr_build release cockpit",
			"propose_downstream release cockpit branches=fedora-development,fedora-43,fedora-44",
			"koji_build commit cockpit branches=fedora-development,fedora-43,fedora-44",
			"bodhi_update commit cockpit branches=fedora-branched",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "downstream name from repo", c.Jobs[0].DownstreamPackageName, "cockpit")
			eq(t, "distros", c.Jobs[0].Targets["centos-stream-9-x86_64"].Distros, []string{"centos-stream-9", "CentOS-Stream-9-image-mode"})
			release := c.Jobs[5]
			eq(t, "job actions replace inherited ones", len(release.Actions), 2)
			eq(t, "job post-upstream-clone", release.Actions[packitcfg.ActionPostUpstreamClone], []packitcfg.Command{cmd("cp", "tools/cockpit.spec", ".")})
			eq(t, "inherited actions", len(c.Jobs[2].Actions), 2)
			eq(t, "^main$ matches main", packitcfg.BranchMatches(c.Jobs[4].Branch, "main"), true)
			eq(t, "^main$ rejects main-2", packitcfg.BranchMatches(c.Jobs[4].Branch, "main-2"), false)
			eq(t, "copy description", c.Jobs[6].CopyUpstreamReleaseDescription, true)
		},
	},
	{
		file: "containers__podman.packit.yaml", repo: "podman",
		packages: []string{"podman-fedora", "podman-centos", "podman-eln"},
		jobs: []string{
			"copr_build pull_request podman-fedora id=podman-fedora targets=fedora-all-aarch64,fedora-all-x86_64",
			"copr_build ignore podman-eln id=podman-eln targets=fedora-eln-aarch64,fedora-eln-x86_64",
			"copr_build ignore podman-centos id=podman-centos targets=centos-stream-10-aarch64,centos-stream-10-x86_64,centos-stream-9-aarch64,centos-stream-9-x86_64",
			"copr_build commit podman-fedora id=podman-fedora branch=main",
			"tests pull_request podman-fedora id=podman-fedora targets=fedora-all",
			"tests pull_request podman-fedora id=cockpit-revdeps targets=fedora-development,fedora-latest-stable",
			"tests pull_request podman-fedora id=tmt-revdeps targets=fedora-latest",
			"propose_downstream release podman-fedora id=podman-fedora branches=fedora-rawhide",
			"koji_build commit podman-fedora id=podman-fedora branches=fedora-rawhide",
			"bodhi_update koji_build podman-fedora id=podman-fedora branches=fedora-rawhide",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "monorepo package gets the repo name", c.Packages["podman-eln"].DownstreamPackageName, "podman")
			eq(t, "pkg_tool", c.Packages["podman-centos"].PkgTool, "centpkg")
			eq(t, "merge_pr_in_ci inherited", c.Jobs[0].MergePRInCI, false)
			eq(t, "tag template inherited", c.Jobs[7].UpstreamTagTemplate, "v{version}")
			eq(t, "update_release in job", c.Jobs[7].UpdateRelease, false)
			eq(t, "osh", c.Jobs[0].OSHDiffScanAfterCoprBuild, false)
			eq(t, "osh default", c.Jobs[1].OSHDiffScanAfterCoprBuild, true)
			eq(t, "eln repo", c.Jobs[1].Targets["fedora-eln-aarch64"].AdditionalRepos, []string{"https://kojipkgs.fedoraproject.org/repos/eln-build/latest/aarch64/"})
			eq(t, "anchored notification", strings.HasPrefix(c.Jobs[2].Notifications.FailureCommentMessage, "[NON-BLOCKING]"), true)
			eq(t, "sidetag", c.Jobs[9].SidetagGroup, "podman-releases")
			eq(t, "dependencies", c.Jobs[9].Dependencies, []string{"buildah", "containers-common", "skopeo"})
			eq(t, "files_to_sync", c.Jobs[7].FilesToSync[1], packitcfg.FileToSync{Src: []string{"plans/"}, Dest: "plans/", Delete: true, Mkpath: true})
			eq(t, "files_to_sync string", c.Jobs[7].FilesToSync[4], packitcfg.FileToSync{Src: []string{".packit.yaml"}, Dest: ".packit.yaml"})
			eq(t, "fix-spec-file", c.Jobs[0].Actions[packitcfg.ActionFixSpecFile], []packitcfg.Command{cmd("bash", "contrib/packit-tmt/packit-copr-rpm.sh")})
		},
	},
	{
		file: "fedora-copr__copr.packit.yaml", repo: "copr",
		packages: []string{"python-copr", "python-copr-common", "copr-backend", "copr-dist-git", "copr-keygen",
			"copr-messaging", "copr-rpmbuild", "copr-selinux", "copr-cli", "copr-frontend"},
		jobs: []string{
			"copr_build pull_request copr-backend id=copr-backend targets=fedora-all-x86_64",
			"copr_build pull_request copr-keygen id=copr-keygen targets=fedora-all-x86_64",
			"copr_build pull_request copr-messaging id=copr-messaging targets=fedora-all-x86_64",
			"copr_build pull_request copr-dist-git id=copr-dist-git targets=fedora-all-x86_64",
			"copr_build pull_request copr-frontend id=copr-frontend targets=fedora-all-x86_64",
			"copr_build pull_request copr-selinux id=copr-selinux targets=epel-all-x86_64,fedora-all-aarch64,fedora-all-ppc64le,fedora-all-x86_64",
			"copr_build pull_request python-copr id=python-copr targets=epel-all-x86_64,fedora-all-aarch64,fedora-all-ppc64le,fedora-all-x86_64",
			"copr_build pull_request python-copr-common id=python-copr-common targets=epel-all-x86_64,fedora-all-aarch64,fedora-all-ppc64le,fedora-all-x86_64",
			"copr_build pull_request copr-cli id=copr-cli targets=epel-all-x86_64,fedora-all-aarch64,fedora-all-ppc64le,fedora-all-x86_64",
			"copr_build pull_request copr-rpmbuild id=copr-rpmbuild targets=epel-8-x86_64,epel-9-x86_64,fedora-all-aarch64,fedora-all-ppc64le,fedora-all-x86_64",
			"tests pull_request copr-frontend id=gating targets=fedora-44-x86_64",
			"tests pull_request copr-frontend id=gating-pulp targets=fedora-44-x86_64",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			for _, j := range c.Jobs[:10] {
				eq(t, "manual builds "+j.PackageName, j.ManualTrigger, true)
			}
			eq(t, "gating skip_build", c.Jobs[10].SkipBuild, true)
			eq(t, "spec per package", c.Jobs[6].SpecfilePath, "python-copr.spec")
			eq(t, "upstream name per package", c.Jobs[6].UpstreamPackageName, "copr")
			eq(t, "project url from top level", c.Packages["copr-cli"].UpstreamProjectURL, "https://github.com/fedora-copr/copr.git")
			eq(t, "package actions merged", len(c.Jobs[6].Actions), 3)
			eq(t, "top-level actions", len(c.Jobs[0].Actions), 2)
			eq(t, "merge_pr_in_ci False", c.Jobs[0].MergePRInCI, false)
			eq(t, "tag include", c.Jobs[0].UpstreamTagInclude, "^copr-backend-.*")
			eq(t, "status name", packitcfg.StatusName(&c.Jobs[10], "", "fedora-44-x86_64"), "packit/testing-farm/gating/copr-frontend")
			eq(t, "default status name", packitcfg.StatusName(&c.Jobs[0], "", "fedora-43-x86_64"), "rpm-build:fedora-43-x86_64:copr-backend")
		},
	},
	{
		file: "gnutls__gnutls.packit.yaml", repo: "gnutls",
		packages: []string{"gnutls"},
		jobs:     []string{"propose_downstream release gnutls branches=fedora-all"},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "metadata warning", len(c.Warnings) == 1 && strings.Contains(c.Warnings[0], ":32:7: the metadata key is deprecated"), true)
			eq(t, "four create-archive commands", len(c.Jobs[0].Actions[packitcfg.ActionCreateArchive]), 4)
			eq(t, "project url", c.Jobs[0].UpstreamProjectURL, "https://gitlab.com/gnutls/gnutls")
		},
	},
	{
		file: "osbuild__osbuild.packit.yaml", repo: "osbuild",
		packages: []string{"osbuild"},
		jobs: []string{
			"copr_build pull_request osbuild targets=centos-stream-10-aarch64,centos-stream-10-ppc64le,centos-stream-10-x86_64,centos-stream-9-aarch64,centos-stream-9-pcc64le,centos-stream-9-x86_64,epel-8-aarch64,epel-8-x86_64,epel-9-aarch64,epel-9-x86_64,fedora-all,fedora-all-aarch64,fedora-all-ppc64le,fedora-eln-aarch64,fedora-eln-ppc64le,fedora-eln-s390x,fedora-eln-x86_64,rhel-10-aarch64,rhel-10-x86_64",
			"copr_build commit osbuild branch=main targets=centos-stream-10-aarch64,centos-stream-10-ppc64le,centos-stream-10-x86_64,centos-stream-9-aarch64,centos-stream-9-pcc64le,centos-stream-9-x86_64,epel-8-aarch64,epel-8-x86_64,epel-9-aarch64,epel-9-x86_64,fedora-all,fedora-all-aarch64,fedora-all-ppc64le,fedora-eln-aarch64,fedora-eln-ppc64le,fedora-eln-s390x,fedora-eln-x86_64,rhel-10-aarch64,rhel-10-x86_64",
			"copr_build release osbuild branch=main targets=centos-stream-10-aarch64,centos-stream-10-ppc64le,centos-stream-10-x86_64,centos-stream-9-aarch64,centos-stream-9-pcc64le,centos-stream-9-x86_64,epel-8-aarch64,epel-8-x86_64,epel-9-aarch64,epel-9-x86_64,fedora-all,fedora-all-aarch64,fedora-all-ppc64le,fedora-eln-aarch64,fedora-eln-ppc64le,fedora-eln-s390x,fedora-eln-x86_64,rhel-10-aarch64,rhel-10-x86_64",
			"propose_downstream release osbuild branches=fedora-all",
			"koji_build commit osbuild branches=fedora-all",
			"bodhi_update commit osbuild branches=fedora-branched",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "tag include", c.Jobs[3].UpstreamTagInclude, `v\d+`)
			eq(t, "string action", c.Jobs[0].Actions[packitcfg.ActionGetCurrentVersion], []packitcfg.Command{cmd("bash", "-c", "git describe --tags --abbrev=0 | sed 's|v||'")})
			eq(t, "empty srpm deps", c.Jobs[0].SrpmBuildDeps, []string{})
			chroots, err := packitcfg.ResolveTargets(&c.Jobs[0], packitcfg.DefaultAliasTable())
			eq(t, "resolve error", err, error(nil))
			// "pcc64le" is not an architecture, so Packit appends x86_64, as here.
			eq(t, "typo kept", slices.Contains(chroots, "centos-stream-9-pcc64le-x86_64"), true)
			eq(t, "alias with arch", slices.Contains(chroots, "fedora-rawhide-ppc64le"), true)
		},
	},
	{
		file: "packit__ogr.packit.yaml", repo: "ogr",
		packages: []string{"python-ogr"},
		jobs: []string{
			"propose_downstream release python-ogr branches=fedora-all,epel-10",
			"copr_build pull_request python-ogr targets=epel-10-all,fedora-all,fedora-all-aarch64",
			"tests pull_request python-ogr targets=epel-10-all,fedora-all",
			"upstream_koji_build pull_request python-ogr targets=epel-10,fedora-development",
			"copr_build commit python-ogr branch=main targets=epel-10-all,fedora-all,fedora-all-aarch64",
			"copr_build commit python-ogr branch=stable targets=fedora-stable,fedora-stable-aarch64",
			"copr_build release python-ogr targets=epel-10-all,fedora-all,fedora-all-aarch64",
			"pull_from_upstream release python-ogr branches=fedora-all,epel-10",
			"koji_build commit python-ogr branches=fedora-all,epel-10-all",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "scratch", c.Jobs[3].Scratch, true)
			eq(t, "ff merge", c.Jobs[0].DistGitBranches[1].FastForwardMergeInto, []string{"epel-10-branched"})
			eq(t, "dependents", c.Jobs[8].Dependents, []string{"packit"})
			eq(t, "instances", c.Jobs[8].PackitInstances, []string{"stg"})
			eq(t, "instances inherited", c.Jobs[1].PackitInstances, []string{"prod", "stg"})
			eq(t, "upstream name", c.Jobs[1].UpstreamPackageName, "ogr")
			eq(t, "job repos", c.Jobs[1].AdditionalRepos, []string{"copr://packit/packit-dev"})
		},
	},
	{
		file: "packit__packit.packit.yaml", repo: "packit",
		packages: []string{"packit"},
		jobs: []string{
			"propose_downstream release packit branches=rawhide,epel-10",
			"copr_build pull_request packit targets=epel-10-all,fedora-all,fedora-all-aarch64",
			"tests pull_request packit targets=epel-10-all,fedora-all",
			"copr_build commit packit branch=main targets=epel-10-all,fedora-all,fedora-all-aarch64",
			"copr_build commit packit branch=stable targets=fedora-stable,fedora-stable-aarch64",
			"copr_build release packit targets=epel-10-all,fedora-stable,fedora-stable-aarch64",
			"pull_from_upstream release packit branches=rawhide,epel-10",
			"koji_build commit packit branches=fedora-all,epel-10-all",
			"koji_build koji_build packit branches=fedora-all,epel-10-all",
			"bodhi_update koji_build packit branches=fedora-all,epel-10-all",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "split trigger shares index", c.Jobs[7].Index == c.Jobs[8].Index, true)
			eq(t, "upstream name", c.Jobs[1].UpstreamPackageName, "packitos")
			eq(t, "ff", c.Jobs[0].DistGitBranches[0], packitcfg.DistGitBranch{Name: "rawhide", FastForwardMergeInto: []string{"fedora-branched"}})
			eq(t, "mask", c.Jobs[0].VersionUpdateMask, `\d+\.`)
			eq(t, "gpg", c.Jobs[0].AllowedGPGKeys, []string{"5DE3E0509C47EA3CF04A42D34AEE18F83AFDEB23"})
			eq(t, "allowed_builders", c.Jobs[9].AllowedBuilders, []string{"packit-stg", "packit"})
			eq(t, "list_on_homepage", c.Jobs[3].ListOnHomepage, true)
		},
	},
	{
		file: "packit__specfile.packit.yaml", repo: "specfile",
		packages: []string{"specfile", "specfile-epel8", "specfile-centos-integration-sig"},
		jobs: []string{
			"copr_build pull_request specfile id=specfile targets=epel-10-all,epel-9,fedora-all,fedora-all-aarch64",
			"copr_build pull_request specfile-epel8 id=specfile-epel8 targets=epel-8",
			"copr_build commit specfile id=specfile branch=main targets=epel-10-all,epel-9,fedora-all,fedora-all-aarch64",
			"copr_build commit specfile-epel8 id=specfile-epel8 branch=main targets=epel-8",
			"copr_build commit specfile id=specfile branch=stable targets=fedora-stable,fedora-stable-aarch64",
			"copr_build release specfile id=specfile targets=epel-10-all,epel-9,fedora-all,fedora-all-aarch64",
			"copr_build release specfile-epel8 id=specfile-epel8 targets=epel-8",
			"tests pull_request specfile id=specfile targets=epel-10-all,epel-9,fedora-all",
			"tests pull_request specfile id=performance targets=fedora-rawhide",
			"tests pull_request specfile-epel8 id=specfile-epel8 targets=epel-8-x86_64",
			"propose_downstream release specfile id=specfile branches=rawhide,epel-9,epel-10",
			"propose_downstream release specfile-epel8 id=specfile-epel8 branches=epel-8",
			"propose_downstream release specfile-centos-integration-sig id=specfile-centos-integration-sig branches=c9-sig-integration",
			"pull_from_upstream release specfile id=specfile branches=rawhide,epel-9,epel-10",
			"pull_from_upstream release specfile-epel8 id=specfile-epel8 branches=epel-8",
			"pull_from_upstream release specfile-centos-integration-sig id=specfile-centos-integration-sig branches=c9-sig-integration",
			"koji_build commit specfile id=specfile branches=epel-9",
			"koji_build commit specfile-epel8 id=specfile-epel8 branches=epel-8",
			"koji_build commit specfile-centos-integration-sig id=specfile-centos-integration-sig branches=c9-sig-integration",
			"koji_build commit specfile id=specfile branches=fedora-all,epel-10-all",
			"bodhi_update commit specfile id=specfile branches=epel-9",
			"bodhi_update commit specfile-epel8 id=specfile-epel8 branches=epel-8",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			epel8 := c.Packages["specfile-epel8"]
			eq(t, "merged package keys", epel8.DownstreamPackageName, "python-specfile")
			eq(t, "overridden spec", epel8.SpecfilePath, "epel8/python-specfile.spec")
			eq(t, "action override", epel8.Actions[packitcfg.ActionCreateArchive][0], cmd("python3", "setup.py", "sdist", "--dist-dir", "./epel8/"))
			eq(t, "action from anchor", epel8.Actions[packitcfg.ActionGetCurrentVersion], []packitcfg.Command{cmd("python3", "-m", "setuptools_scm")})
			sig := c.Packages["specfile-centos-integration-sig"]
			eq(t, "pkg_tool", sig.PkgTool, "centpkg-sig")
			eq(t, "namespace", sig.DistGitNamespace, "CentOS/Integration/packit-cbs/rpms")
			eq(t, "prerelease pattern", c.Jobs[0].PrereleaseSuffixPattern, `([.\-_]?)(a(lpha)?|b(eta)?|r?c|pre(view)?)([.\-_]?\d+)?`)
			internal := c.Jobs[9]
			eq(t, "internal tf", internal.UseInternalTF, true)
			eq(t, "distros", internal.Targets["epel-8-x86_64"].Distros, []string{"RHEL-8.10.0-Nightly"})
			eq(t, "tmt_plan", internal.TmtPlan, "smoke|full")
			eq(t, "sidetag", c.Jobs[19].SidetagGroup, "packit-specfile-ogr-releases")
			eq(t, "instances", c.Jobs[21].PackitInstances, []string{"stg"})
		},
	},
	{
		file: "rhinstaller__anaconda.packit.yaml", repo: "anaconda",
		packages: []string{"anaconda-fedora", "anaconda-centos"},
		jobs: []string{
			"propose_downstream release anaconda-fedora id=anaconda-fedora branches=rawhide,f45",
			"tests pull_request anaconda-fedora id=anaconda-fedora targets=fedora-45,fedora-rawhide",
			"copr_build pull_request anaconda-fedora id=anaconda-fedora targets=fedora-45,fedora-eln,fedora-rawhide",
			"copr_build commit anaconda-fedora id=anaconda-fedora branch=main targets=fedora-45,fedora-eln,fedora-rawhide",
			"koji_build commit anaconda-fedora id=anaconda-fedora branches=fedora-development",
			"bodhi_update koji_build anaconda-fedora id=anaconda-fedora branches=fedora-development",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "centpkg", c.Packages["anaconda-centos"].PkgTool, "centpkg")
			eq(t, "tag template inherited", c.Jobs[0].UpstreamTagTemplate, "anaconda-{version}")
			eq(t, "committers", len(c.Jobs[4].AllowedCommitters), 5)
			eq(t, "builders", c.Jobs[5].AllowedBuilders[0], "m4rtink")
		},
	},
	{
		file: "rpm-software-management__dnf5.packit.yaml", repo: "dnf5",
		packages: []string{"dnf5", "dnf5-without-modules"},
		jobs: []string{
			"propose_downstream release dnf5 id=dnf5 branches=fedora-rawhide",
			"koji_build commit dnf5 id=dnf5 branches=fedora-all",
			"bodhi_update commit dnf5 id=dnf5 branches=fedora-all",
			"copr_build pull_request dnf5 id=dnf5 targets=fedora-all,fedora-eln",
			"copr_build pull_request dnf5-without-modules id=WITH_MODULEMD=OFF branch=main targets=fedora-rawhide-x86_64",
			"tests pull_request dnf5 id=dnf5-tests targets=fedora-all,fedora-eln",
			"tests pull_request dnf5 id=createrepo_c-tests targets=fedora-all,fedora-eln",
			"tests pull_request dnf5 id=dnf-tests targets=fedora-all",
			"tests pull_request dnf5 id=dnf5daemon-tests targets=fedora-all,fedora-eln",
			"tests pull_request dnf5 id=ABI-check targets=fedora-rawhide-x86_64",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "actions cleared", len(c.Jobs[0].Actions), 0)
			eq(t, "package actions", len(c.Jobs[3].Actions), 1)
			eq(t, "version suffix", c.Jobs[3].VersionSuffix, "^{PACKIT_PROJECT_SNAPSHOTID}")
			eq(t, "update_release", c.Jobs[3].UpdateRelease, false)
			eq(t, "copy description off", c.Jobs[0].CopyUpstreamReleaseDescription, false)
			eq(t, "job fix-spec-file", len(c.Jobs[4].Actions[packitcfg.ActionFixSpecFile]), 2)
			eq(t, "fmf_ref alias", c.Jobs[7].FmfRef, "main")
			eq(t, "manual", c.Jobs[7].ManualTrigger, true)
			eq(t, "downstream", c.Packages["dnf5-without-modules"].DownstreamPackageName, "dnf5")
		},
	},
	{
		file: "rpm-software-management__mock.packit.yaml", repo: "mock",
		packages: []string{"mock", "mock-core-configs"},
		jobs: []string{
			"copr_build pull_request mock id=mock targets=epel-all,fedora-all",
			"copr_build pull_request mock-core-configs id=mock-core-configs targets=epel-all,fedora-all",
			"copr_build commit mock id=mock branch=main targets=epel-all,fedora-all",
			"copr_build commit mock-core-configs id=mock-core-configs branch=main targets=epel-all,fedora-all",
			"tests pull_request mock id=mock targets=fedora-latest-stable",
			"tests commit mock id=mock targets=fedora-latest-stable",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "require inherited", c.Jobs[4].RequireLabelsAbsent, []string{"no-ci-builds"})
			eq(t, "tag template per package", c.Jobs[1].UpstreamTagTemplate, "mock-core-configs-{version}")
			eq(t, "owner", c.Jobs[2].Owner, "@mock")
			eq(t, "repos from anchor", c.Jobs[3].AdditionalRepos, []string{"copr://@mock/mock-deps"})
			eq(t, "tf_extra_params inherited", c.Jobs[5].TFExtraParams["environments"] != nil, true)
			eq(t, "paths", c.Packages["mock"].Paths, []string{"./mock"})
		},
	},
	{
		file: "systemd__systemd.packit.yaml", repo: "systemd",
		packages: []string{"systemd"},
		jobs: []string{
			"copr_build pull_request systemd targets=fedora-rawhide-aarch64,fedora-rawhide-i386,fedora-rawhide-ppc64le,fedora-rawhide-s390x,fedora-rawhide-x86_64",
			"tests pull_request systemd targets=fedora-rawhide-x86_64",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "package named after the repo", c.Jobs[0].DownstreamPackageName, "systemd")
			eq(t, "gdb", c.Jobs[0].Targets["fedora-rawhide-i386"].AdditionalPackages, []string{"gdb"})
			eq(t, "fmf_ref", c.Jobs[1].FmfRef, "48306418448284f36d4d331b6b1abf54896a3685")
			eq(t, "six clone steps", len(c.Jobs[1].Actions[packitcfg.ActionPostUpstreamClone]), 6)
		},
	},
	{
		file: "teemtee__tmt.packit.yaml", repo: "tmt",
		packages: []string{"tmt"},
		jobs: []string{
			"copr_build release tmt targets=epel-10,epel-9,fedora-all",
			"copr_build commit tmt branch=main targets=epel-10,epel-9,fedora-all",
			"copr_build pull_request tmt targets=epel-10,epel-9,fedora-all",
			"tests pull_request tmt id=core targets=epel-10,fedora-latest-stable",
			"tests pull_request tmt id=full targets=epel-10,epel-9,fedora-all",
			"tests pull_request tmt id=extended-unit-tests targets=fedora-latest-stable",
			"tests pull_request tmt id=provision-bootc targets=fedora-latest-stable",
			"tests pull_request tmt id=provision-container targets=fedora-latest-stable",
			"tests pull_request tmt id=provision-virtual targets=fedora-latest-stable",
			"tests pull_request tmt id=provision-image-mode-virtual targets=fedora-latest-stable",
			"tests pull_request tmt id=internal-plugins targets=fedora-latest-stable",
			"tests pull_request tmt id=internal-wow targets=fedora-latest-stable",
			"tests pull_request tmt id=internal-fusa targets=epel-9",
			"tests pull_request tmt id=sanity targets=fedora-latest-stable",
			"tests pull_request tmt id=downstream targets=fedora-latest-stable",
			// The top-level targets are inherited by every job, downstream ones too.
			"propose_downstream release tmt targets=epel-10,epel-9,fedora-all branches=rawhide",
			"koji_build commit tmt targets=epel-10,epel-9,fedora-all branches=fedora-all,epel-9,epel-10",
			"bodhi_update commit tmt targets=epel-10,epel-9,fedora-all branches=fedora-branched,epel-9,epel-10",
		},
		check: func(t *testing.T, c *packitcfg.Config) {
			eq(t, "owner from nested merge", c.Jobs[0].Owner, "@teemtee")
			eq(t, "no owner for PR copr", c.Jobs[2].Owner, "")
			eq(t, "repos", c.Jobs[2].AdditionalRepos, []string{"copr://@teemtee/stable"})
			eq(t, "release suffix", c.Jobs[1].ReleaseSuffix, "{PACKIT_PROJECT_BRANCH}")
			eq(t, "core absent", c.Jobs[3].RequireLabelsAbsent, []string{"ci | skip"})
			eq(t, "full present", c.Jobs[4].RequireLabelsPresent, []string{"ci | full test"})
			eq(t, "full absent", c.Jobs[4].RequireLabelsAbsent, []string{"status | discuss", "ci | skip"})
			eq(t, "lookaround tmt_plan kept", c.Jobs[4].TmtPlan, "^(?!/plans/features/extended-unit-tests).*$")
			env := func(j packitcfg.Job) map[string]any {
				return j.TFExtraParams["environments"].([]any)[0].(map[string]any)
			}
			// The later merge key wins: image-mode's tf_extra_params over provision's.
			ctx := env(c.Jobs[9])["tmt"].(map[string]any)["context"].(map[string]any)
			eq(t, "image mode context", ctx, map[string]any{"how": "provision", "image_mode": "yes"})
			eq(t, "provision keeps cloud settings", env(c.Jobs[6])["settings"] != nil, true)
			eq(t, "internal tf_extra_params beats test-base", env(c.Jobs[10])["settings"] != nil, true)
			eq(t, "internal", c.Jobs[11].UseInternalTF, true)
			eq(t, "sanity skip_build", c.Jobs[13].SkipBuild, true)
			eq(t, "fmf_path", c.Jobs[14].FmfPath, "packaging")
			eq(t, "committers", c.Jobs[16].AllowedPRAuthors, []string{"packit", "all_committers"})
		},
	},
}

func TestCorpusValid(t *testing.T) {
	for _, tc := range validCorpus {
		t.Run(tc.file, func(t *testing.T) {
			c := loadCorpus(t, tc.file, tc.repo)
			eq(t, "packages", c.PackageNames, tc.packages)
			var got []string
			for _, j := range c.Jobs {
				got = append(got, summary(j))
			}
			if !slices.Equal(got, tc.jobs) {
				t.Errorf("jobs:\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.jobs, "\n  "))
				return
			}
			tc.check(t, c)
		})
	}
}

func TestCorpusInvalid(t *testing.T) {
	cases := []struct {
		file string
		want []string // "line:col: fragment"
	}{
		{"packit__ogr.cb4bade5-2019.packit.yaml", []string{
			`3:1: key "synced_files"`, `5:1: key "upstream_project_name"`,
			`8:1: key "create_tarball_command"`, `9:1: key "current_version_command"`}},
		{"junaruga__simde.packit.yaml", []string{`5:1: key "current_version_command"`}},
		{"packit-public-repos-bot__abrt-java-connector.packit.yaml", []string{`2:1: key "synced_files"`}},
		{"packit__hello-world.packit.yaml", []string{`3:1: key "synced_files"`}},
		{"packit__hello-world.1c46a6a8-2022.packit.yaml", []string{
			`4:1: key "synced_files"`, `12:8: job type "production_build"`, `18:8: job type "build"`}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "corpus", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = packitcfg.Load(tc.file, data, packitcfg.Options{RepoName: "repo"})
			errs := packitcfg.Errors(err)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d: %v", len(errs), len(tc.want), err)
			}
			for i, e := range errs {
				if e.File != tc.file || !strings.HasPrefix(strings.TrimPrefix(e.Error(), tc.file+":"), tc.want[i]) {
					t.Errorf("error %d = %q, want %s:%s...", i, e.Error(), tc.file, tc.want[i])
				}
			}
		})
	}
}

// TestCorpusCoversSources makes sure every config in testdata is tested.
func TestCorpusCoversSources(t *testing.T) {
	files, err := filepath.Glob("testdata/corpus/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 24 {
		t.Fatalf("found %d corpus files, want 24", len(files))
	}
	if len(validCorpus) != 19 {
		t.Errorf("validCorpus has %d files, SOURCES.md marks 19 valid", len(validCorpus))
	}
}
