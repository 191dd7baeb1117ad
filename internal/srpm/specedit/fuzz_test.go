package specedit_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/srpm/specedit"
)

// FuzzSpecEdit checks, for any spec text and values, that the edits never
// panic and that:
//   - each of SetVersion, SetRelease, SetSource and SetSetupDir keeps the
//     number of lines and is idempotent (applying it to its own result
//     changes nothing);
//   - the Version and Release written can be read back with Tag;
//   - SanitizeChangelog is idempotent, and AddChangelogEntry adds exactly
//     the header, the sanitised body and one blank line.
func FuzzSpecEdit(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.spec"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed specs: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "1.2.0", "1.20240102030405000006.main.3.gabc1234", "hello-1.2.0", "- Fix %{name}\n* x")
	}
	f.Add("%prep\n%setup -a\n", "1", "1%{dist}", "a b", "")
	f.Fuzz(func(t *testing.T, text, version, release, dir, body string) {
		lines := strings.Count(text, "\n")
		edits := map[string]func(string) (string, error){
			"SetVersion":  func(s string) (string, error) { return specedit.SetVersion(s, version) },
			"SetRelease":  func(s string) (string, error) { return specedit.SetRelease(s, release) },
			"SetSource":   func(s string) (string, error) { return specedit.SetSource(s, 0, dir) },
			"SetSetupDir": func(s string) (string, error) { return specedit.SetSetupDir(s, dir) },
		}
		for name, edit := range edits {
			once, err := edit(text)
			if err != nil {
				continue
			}
			if n := strings.Count(once, "\n"); n != lines {
				t.Fatalf("%s: %d line breaks, had %d", name, n, lines)
			}
			twice, err := edit(once)
			if err != nil {
				t.Fatalf("%s: second edit failed: %v", name, err)
			}
			if twice != once {
				t.Fatalf("%s is not idempotent:\nonce:  %q\ntwice: %q", name, once, twice)
			}
		}

		if out, err := specedit.SetVersion(text, version); err == nil && version == strings.TrimSpace(version) {
			if got, _ := specedit.Tag(out, "Version"); got != version {
				t.Fatalf("Version reads back as %q, want %q", got, version)
			}
		}
		if raw, ok := specedit.Tag(text, "Release"); ok {
			if out, err := specedit.SetRelease(text, release); err == nil && release == strings.TrimSpace(release) {
				want := specedit.WithDist(raw, release)
				if got, _ := specedit.Tag(out, "Release"); got != want {
					t.Fatalf("Release reads back as %q, want %q", got, want)
				}
			}
		}

		clean := specedit.SanitizeChangelog(body)
		if again := specedit.SanitizeChangelog(clean); again != clean {
			t.Fatalf("SanitizeChangelog is not idempotent: %q then %q", clean, again)
		}
		entry := specedit.ChangelogEntry{Date: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), Author: "A <a@b>", EVR: "1-1", Text: body}
		if out, err := specedit.AddChangelogEntry(text, entry); err == nil {
			added := strings.Count(out, "\n") - lines
			if want := strings.Count(clean, "\n") + 3; added != want {
				t.Fatalf("AddChangelogEntry added %d line breaks, want %d", added, want)
			}
		}
	})
}
