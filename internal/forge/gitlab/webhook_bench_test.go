package gitlab_test

import (
	"path/filepath"
	"sort"
	"testing"

	"upbuild.dev/upbuild/internal/forge/gitlab"
)

// BenchmarkNormalizeEveryFixture measures Normalize on every client fixture
// with the header GitLab sends it with, plus the acted-on variants that the
// fixtures themselves do not reach (an opened merge request into the hook's
// own project).
func BenchmarkNormalizeEveryFixture(b *testing.B) {
	files, err := filepath.Glob(filepath.Join("testdata", "webhooks", "*.json"))
	if err != nil {
		b.Fatal(err)
	}
	sort.Strings(files)
	type benchCase struct {
		name, header string
		body         []byte
	}
	var cases []benchCase
	for _, path := range files {
		name := filepath.Base(path)
		cases = append(cases, benchCase{name: name, header: fixtureHeaders[name], body: readFixture(b, name)})
	}
	cases = append(cases,
		benchCase{name: "merge_request_opened", header: "Merge Request Hook", body: forkMergeRequest(b, nil)},
		benchCase{name: "merge_request_update", header: "Merge Request Hook", body: forkMergeRequest(b, func(p map[string]any) {
			attrs := object(b, p, "object_attributes")
			attrs["action"] = "update"
			attrs["oldrev"] = "95790bf891e76fee5e1747ab589903a6a1f80f22"
		})},
	)
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := gitlab.Normalize(tc.header, tc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
