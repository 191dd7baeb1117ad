package specedit_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/srpm/specedit"
)

func readSpec(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// changedLines returns the lines of after that differ from before (same
// line count expected).
func changedLines(t *testing.T, before, after string) []string {
	t.Helper()
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	if len(a) != len(b) {
		t.Fatalf("line count changed from %d to %d", len(b), len(a))
	}
	var out []string
	for i := range a {
		if a[i] != b[i] {
			out = append(out, a[i])
		}
	}
	return out
}

func TestSetVersionAndRelease(t *testing.T) {
	tests := []struct {
		spec, release string
		wantVersion   string
		wantRelease   string
	}{
		{"hello.spec", "1.20240102030405000006.main.3.gabc1234", "Version:        9.9", "Release:        1.20240102030405000006.main.3.gabc1234%{?dist}"},
		{"libwidget.spec", "0.5", "Version:\t9.9", "Release:\t0.5%{?dist}"},
		{"python-requests-lite.spec", "2", "Version:        9.9", "Release:        2%{?dist}"},
		{"tiny-crlf.spec", "2%{?dist}", "Version: 9.9\r", "Release: 2%{?dist}\r"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			text := readSpec(t, tc.spec)
			out, err := specedit.SetVersion(text, "9.9")
			if err != nil {
				t.Fatal(err)
			}
			out, err = specedit.SetRelease(out, tc.release)
			if err != nil {
				t.Fatal(err)
			}
			got := changedLines(t, text, out)
			want := []string{tc.wantVersion, tc.wantRelease}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("changed lines %q, want %q", got, want)
			}
		})
	}
}

func TestSetReleaseKeepsTheDistForm(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"1%{?dist}", "5%{?dist}"},
		{"1%{dist}", "5%{dist}"},
		{"1%dist", "5%dist"},
		{"1%{?dist}.2", "5%{?dist}"},
		{"1", "5%{?dist}"},
		{"%autorelease", "5%{?dist}"},
	}
	for _, tc := range tests {
		text := "Name: x\nVersion: 1\nRelease: " + tc.raw + "\n"
		out, err := specedit.SetRelease(text, "5")
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := specedit.Tag(out, "Release"); got != tc.want {
			t.Errorf("raw %q: Release %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestSetSource(t *testing.T) {
	tests := []struct {
		spec string
		n    int
		want string
	}{
		{"hello.spec", 0, "Source0:        hello-1.3.tar.gz"},
		{"python-requests-lite.spec", 0, "Source:         hello-1.3.tar.gz"},
		{"libwidget.spec", 10, "Source10:\thello-1.3.tar.gz"},
		{"libwidget.spec", 20, "Source20:\thello-1.3.tar.gz"}, // in a subpackage preamble
	}
	for _, tc := range tests {
		text := readSpec(t, tc.spec)
		out, err := specedit.SetSource(text, tc.n, "hello-1.3.tar.gz")
		if err != nil {
			t.Fatalf("%s Source%d: %v", tc.spec, tc.n, err)
		}
		if got := changedLines(t, text, out); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s Source%d: changed %q, want %q", tc.spec, tc.n, got, tc.want)
		}
	}
	_, err := specedit.SetSource(readSpec(t, "hello.spec"), 3, "x.tar.gz")
	if !errors.Is(err, specedit.ErrNoSource) {
		t.Errorf("missing Source3: err %v, want ErrNoSource", err)
	}
}

func TestParseSourceID(t *testing.T) {
	for id, want := range map[string]int{"Source0": 0, "Source": 0, "source2": 2, "7": 7} {
		got, err := specedit.ParseSourceID(id)
		if err != nil || got != want {
			t.Errorf("ParseSourceID(%q) = %d, %v; want %d", id, got, err, want)
		}
	}
	if _, err := specedit.ParseSourceID("Patch1"); err == nil {
		t.Error("ParseSourceID(Patch1) succeeded")
	}
}

func TestSetSetupDir(t *testing.T) {
	tests := []struct{ line, want string }{
		{"%setup -q", "%setup -n new-1.0 -q"},
		{"%setup -q -n old", "%setup -q -n new-1.0"},
		{"%setup -qn old -a 1", "%setup -qn new-1.0 -a 1"},
		{"%setup -nold", "%setup -nnew-1.0"},
		{"%setup -a 1 -q", "%setup -n new-1.0 -a 1 -q"},
		{"%setup -a", "%setup -n new-1.0 -a"},
		{`%autosetup -p1 -n "old dir"`, "%autosetup -p1 -n new-1.0"},
		{"%autosetup -S git", "%autosetup -n new-1.0 -S git"},
		{"%{setup} -T -D", "%{setup} -n new-1.0 -T -D"},
	}
	for _, tc := range tests {
		text := "Name: x\n%description\nx\n%prep\n" + tc.line + "\n%build\n"
		out, err := specedit.SetSetupDir(text, "new-1.0")
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if got := changedLines(t, text, out); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%q: changed %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestSetSetupDirPrefersSetupAndOnlyInPrep(t *testing.T) {
	text := "Name: x\n%description\n%setup mentioned here\n%prep\n%autosetup -N\n%setup -q -T -D -a 1\n%build\n"
	out, err := specedit.SetSetupDir(text, "d")
	if err != nil {
		t.Fatal(err)
	}
	if got := changedLines(t, text, out); len(got) != 1 || got[0] != "%setup -n d -q -T -D -a 1" {
		t.Errorf("changed %q", got)
	}
	_, err = specedit.SetSetupDir("Name: x\n%prep\ncp a b\n%build\n", "d")
	if !errors.Is(err, specedit.ErrNoSetup) {
		t.Errorf("no setup: err %v, want ErrNoSetup", err)
	}
}

func TestSetSetupDirQuotesSpaces(t *testing.T) {
	out, err := specedit.SetSetupDir("%prep\n%setup -q\n", "my dir")
	if err != nil {
		t.Fatal(err)
	}
	if want := "%prep\n%setup -n \"my dir\" -q\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestAddChangelogEntry(t *testing.T) {
	entry := specedit.ChangelogEntry{
		Date:   time.Date(2024, 5, 7, 10, 0, 0, 0, time.UTC),
		Author: "upbuild <upbuild@example.org>",
		EVR:    "1.3-1.20240507",
		Text:   "- Use %{name} in 100% of places   \n* not a new entry",
	}
	out, err := specedit.AddChangelogEntry(readSpec(t, "hello.spec"), entry)
	if err != nil {
		t.Fatal(err)
	}
	want := "%changelog\n" +
		"* Tue May 07 2024 upbuild <upbuild@example.org> - 1.3-1.20240507\n" +
		"- Use %%{name} in 100% of places\n" +
		" * not a new entry\n" +
		"\n" +
		"* Mon Jan 08 2024 Jane Doe"
	if !strings.Contains(out, want) {
		t.Errorf("entry not at the top of %%changelog:\n%s", out[strings.Index(out, "%changelog"):])
	}

	for spec, wantErr := range map[string]error{
		"python-requests-lite.spec": specedit.ErrAutochangelog,
	} {
		text := readSpec(t, spec)
		got, err := specedit.AddChangelogEntry(text, entry)
		if !errors.Is(err, wantErr) || got != text {
			t.Errorf("%s: err %v, want %v and the text unchanged", spec, err, wantErr)
		}
	}
	if _, err := specedit.AddChangelogEntry("Name: x\n%files\n", entry); !errors.Is(err, specedit.ErrNoChangelog) {
		t.Errorf("no %%changelog: err %v, want ErrNoChangelog", err)
	}
}

func TestAddChangelogEntryKeepsCRLF(t *testing.T) {
	entry := specedit.ChangelogEntry{Date: time.Date(2024, 5, 7, 0, 0, 0, 0, time.UTC), Author: "A <a@b>", EVR: "0.1-2", Text: "- x"}
	out, err := specedit.AddChangelogEntry(readSpec(t, "tiny-crlf.spec"), entry)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out, "%changelog\r\n* Tue May 07 2024 A <a@b> - 0.1-2\r\n- x\r\n\r\n") {
		t.Errorf("got tail %q", out[strings.Index(out, "%changelog"):])
	}
}

func TestValuesThatWouldBreakLinesAreRefused(t *testing.T) {
	text := readSpec(t, "hello.spec")
	checks := map[string]func() error{
		"version":  func() error { _, err := specedit.SetVersion(text, "1.0\n%prep"); return err },
		"release":  func() error { _, err := specedit.SetRelease(text, ""); return err },
		"source":   func() error { _, err := specedit.SetSource(text, 0, "a\rb"); return err },
		"setupdir": func() error { _, err := specedit.SetSetupDir(text, `a"b`); return err },
	}
	for name, check := range checks {
		if err := check(); !errors.Is(err, specedit.ErrBadValue) {
			t.Errorf("%s: err %v, want ErrBadValue", name, err)
		}
	}
	if _, err := specedit.SetVersion("Name: x\n%description\nVersion: 1\n", "2"); !errors.Is(err, specedit.ErrNoTag) {
		t.Errorf("Version only in %%description: err %v, want ErrNoTag", err)
	}
}
