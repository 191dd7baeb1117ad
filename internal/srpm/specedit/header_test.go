package specedit_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/srpm/specedit"
)

// rpmspecHeader is what the SRPM step would ask rpm: the main package's
// name, epoch, version and release with an empty dist.
func rpmspecHeader(t *testing.T, text string) (specedit.Header, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.spec")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), "rpmspec", "-q", "--srpm", "--define", "dist %{nil}",
		"--qf", "%{NAME}\\n%{EPOCH}\\n%{VERSION}\\n%{RELEASE}\\n", path).Output()
	if err != nil {
		return specedit.Header{}, false
	}
	f := strings.Split(string(out), "\n")
	if len(f) < 4 {
		t.Fatalf("rpmspec printed %q", out)
	}
	h := specedit.Header{Name: f[0], Epoch: f[1], Version: f[2], Release: f[3]}
	if h.Epoch == "(none)" {
		h.Epoch = ""
	}
	return h, true
}

const plainSpec = `Name:           hello
Version:        1.0.0
Release:        1%{?dist}
Summary:        Prints a greeting
License:        MIT
URL:            https://example.org/hello
Source0:        %{url}/archive/v%{version}/%{name}-%{version}.tar.gz

%description
Hello.

%prep
%setup -q

%files
`

// TestLiteralHeaderAgreesWithRpmspec checks every spec LiteralHeader reads
// against rpmspec itself: where it answers, the answer is rpm's; where rpm
// could answer differently (macros, conditionals, definitions), it does not
// answer, and the SRPM step asks rpmspec.
func TestLiteralHeaderAgreesWithRpmspec(t *testing.T) {
	if _, err := exec.LookPath("rpmspec"); err != nil {
		t.Fatal("rpmspec is needed (Debian package rpm; scripts/test installs it)")
	}
	replace := func(old, new string) string {
		if !strings.Contains(plainSpec, old) {
			t.Fatalf("%q is not in the spec", old)
		}
		return strings.Replace(plainSpec, old, new, 1)
	}
	tests := []struct {
		name     string
		text     string
		literal  bool
		wantName string // when literal
	}{
		{"plain", plainSpec, true, "hello"},
		{"epoch and tilde", replace("Version:        1.0.0", "Epoch: 2\nVersion: 3.0~rc2"), true, "hello"},
		{"dist inside release", replace("1%{?dist}", "0.4%{?dist}.1"), true, "hello"},
		{"lower-case tags", replace("Name:           hello", "name: hello-world"), true, "hello-world"},
		{"percent sign", replace("Summary:        Prints a greeting", "Summary: 100%% greeting"), true, "hello"},
		{"comment", "# a comment with no macro\n" + plainSpec, true, "hello"},
		{"name tag in a later section", plainSpec + "%package x\nSummary: x\nVersion: 9\n%description x\nx\n", true, "hello"},

		{"global", "%global ver 2.0\n" + replace("1.0.0", "%{ver}"), false, ""},
		{"conditional", replace("Version:        1.0.0", "%if 0\nVersion: 1.0.0\n%else\nVersion: 2.0\n%endif"), false, ""},
		{"macro in a comment", "# %(echo hi)\n" + plainSpec, false, ""},
		{"system macro", replace("Source0:", "BuildRequires: %{py3_dist foo}\nSource0:"), false, ""},
		{"release from a macro", replace("1%{?dist}", "%{?fedora}1"), false, ""},
		{"Windows line endings", strings.ReplaceAll(plainSpec, "\n", "\r\n"), false, ""},
		{"continued line", replace("Summary:        Prints a greeting", "Summary: Prints \\\n a greeting"), false, ""},
		{"serial", replace("Name:", "Serial: 3\nName:"), false, ""},
		{"two versions", replace("Version:        1.0.0", "Version: 1.0.0\nVersion: 2.0"), false, ""},
		{"no version", replace("Version:        1.0.0\n", ""), false, ""},
		{"version with a space", replace("1.0.0", "1.0 beta"), false, ""},
		{"empty epoch", replace("Name:", "Epoch:\nName:"), false, ""},
		{"epoch with a leading zero", replace("Name:", "Epoch: 02\nName:"), true, "hello"},
		{"epoch too large", replace("Name:", "Epoch: 4294967296\nName:"), false, ""},
		{"indented tag", replace("Version:        1.0.0", " Version: 1.0.0"), false, ""},
		{"dots in a version", replace("1.0.0", "1..0"), false, ""},
		{"lua in a tag", replace("Summary:        Prints a greeting", "Summary: %{lua: print('x')}"), false, ""},
		{"longer macro name", replace("%{version}.tar.gz", "%versionx.tar.gz"), false, ""},
	}
	for _, name := range []string{"hello.spec", "libwidget.spec", "python-requests-lite.spec", "tiny-crlf.spec"} {
		text := readSpec(t, name)
		_, literal := specedit.LiteralHeader(text)
		tests = append(tests, struct {
			name     string
			text     string
			literal  bool
			wantName string
		}{"testdata/" + name, text, literal, ""})
	}
	accepted := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := specedit.LiteralHeader(tc.text)
			if ok != tc.literal {
				t.Fatalf("LiteralHeader ok = %v, want %v (%+v)", ok, tc.literal, got)
			}
			if !ok {
				return
			}
			accepted++
			if tc.wantName != "" && got.Name != tc.wantName {
				t.Errorf("name %q, want %q", got.Name, tc.wantName)
			}
			want, parsed := rpmspecHeader(t, tc.text)
			if !parsed {
				t.Fatalf("LiteralHeader read %+v from a spec rpmspec rejects", got)
			}
			if got != want {
				t.Errorf("LiteralHeader %+v, rpmspec %+v", got, want)
			}
		})
	}
	if accepted < 8 {
		t.Errorf("only %d specs were read without rpmspec; the fast path is not being exercised", accepted)
	}
}
