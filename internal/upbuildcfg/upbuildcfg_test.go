package upbuildcfg_test

import (
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/upbuildcfg"
)

func TestParse(t *testing.T) {
	s, err := upbuildcfg.Parse([]byte("drafts: true\nsummary_comment: true\ntests:\n  - name: smoke\n    run: ./smoke.sh\n  - run: make check\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Drafts || !s.SummaryComment || len(s.Tests) != 2 || s.Tests[0].Name != "smoke" || s.Tests[1].Run != "make check" {
		t.Fatalf("settings %+v", s)
	}
	if s, err := upbuildcfg.Parse(nil); err != nil || s.Drafts {
		t.Fatalf("empty file: %+v %v", s, err)
	}
	for name, body := range map[string]string{
		"typo":       "draft: true\n",
		"no run":     "tests:\n  - name: x\n",
		"wrong type": "drafts: [1]\n",
		"huge":       strings.Repeat("#", upbuildcfg.MaxBytes+1),
	} {
		if _, err := upbuildcfg.Parse([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
