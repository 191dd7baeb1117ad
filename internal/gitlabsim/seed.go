package gitlabsim

import (
	"context"
	"fmt"
	"strings"
)

// Seeded is what Seed created.
type Seeded struct {
	Group      Group
	Maintainer User
	Bot        User
	Project    Project
}

// seedPackit is a minimal .packit.yaml for the seed project.
const seedPackit = `specfile_path: hello.spec
upstream_package_name: hello
downstream_package_name: hello
jobs:
  - job: copr_build
    trigger: pull_request
    targets: [fedora-all]
`

// HelloFiles are the files of a tiny noarch package, hello, that installs
// a shell script, with packitYAML as its .packit.yaml: what the seed
// project holds, and a ready project for tests and benchmarks.
func HelloFiles(packitYAML string) map[string]string {
	return map[string]string{".packit.yaml": packitYAML, "hello.spec": helloSpec, "hello.sh": "#!/bin/sh\necho hello\n"}
}

const helloSpec = `Name:           hello
Version:        1.0
Release:        1%{?dist}
Summary:        Says hello
License:        MIT
Source0:        hello.sh
BuildArch:      noarch

%description
A tiny package for trying out upbuild.

%prep

%build

%install
install -D -m 0755 %{SOURCE0} %{buildroot}%{_bindir}/hello

%files
%{_bindir}/hello

%changelog
* Mon Jan 01 2024 Alice <alice@example.com> - 1.0-1
- First release
`

// HelloArchiveSpec is the same hello package at version, built the way
// Packit builds by default: its Source0 is the archive Packit makes of the
// repository (git archive --prefix hello-<version>/), so the repository
// must hold hello.sh at its root.
func HelloArchiveSpec(version string) string {
	return strings.NewReplacer("@VERSION@", version).Replace(helloArchiveSpec)
}

const helloArchiveSpec = `Name:           hello
Version:        @VERSION@
Release:        1%{?dist}
Summary:        Says hello
License:        MIT
Source0:        hello-%{version}.tar.gz
BuildArch:      noarch

%description
A tiny package for trying out upbuild.

%prep
%setup -q

%build

%install
install -D -m 0755 hello.sh %{buildroot}%{_bindir}/hello

%files
%{_bindir}/hello

%changelog
* Mon Jan 01 2024 Alice <alice@example.com> - @VERSION@-1
- First release
`

// Seed creates group "demo", maintainer "alice", a bot user "upbuild-bot"
// with Developer on the group, and the public project demo/hello holding a
// .packit.yaml and a spec file on main.
func Seed(ctx context.Context, sim *Simulator) (Seeded, error) {
	var out Seeded
	var err error
	if out.Group, err = sim.AddGroup(GroupSpec{Path: "demo", Name: "Demo"}); err != nil {
		return out, fmt.Errorf("seed group: %w", err)
	}
	if out.Maintainer, err = sim.AddUser(UserSpec{Username: "alice", Name: "Alice Maintainer"}); err != nil {
		return out, fmt.Errorf("seed maintainer: %w", err)
	}
	if out.Bot, err = sim.AddUser(UserSpec{Username: "upbuild-bot", Name: "upbuild", Bot: true}); err != nil {
		return out, fmt.Errorf("seed bot: %w", err)
	}
	if err := sim.AddGroupMember(out.Group.ID, out.Maintainer.ID, Maintainer); err != nil {
		return out, fmt.Errorf("seed membership: %w", err)
	}
	if err := sim.AddGroupMember(out.Group.ID, out.Bot.ID, Developer); err != nil {
		return out, fmt.Errorf("seed membership: %w", err)
	}
	out.Project, err = sim.AddProject(ctx, ProjectSpec{
		Namespace: "demo", Path: "hello", Name: "hello", Visibility: Public,
		Description: "A tiny package for trying out upbuild",
		Files:       HelloFiles(seedPackit),
	})
	if err != nil {
		return out, fmt.Errorf("seed project: %w", err)
	}
	return out, nil
}
