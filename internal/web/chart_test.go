package web

import (
	"bytes"
	"html/template"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/store"
)

// rangedMarks is how the "chart" template wrote the bars before it used
// {{.Marks}}: html/template's escaping is the reference for Marks.
var rangedMarks = template.Must(template.New("marks").Parse(`<svg>{{range .Bars}}<rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Title}}</title></rect>
{{end}}{{if .Line}}<polyline class="rate" points="{{.Line}}"/>{{end}}</svg>`))

// The marks written in Go are byte for byte what html/template writes by
// ranging over the bars, hostile titles included, and the page shows them.
func TestChartMarksAreWhatTheTemplateWrites(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hostile := `<script>alert("x'+1")</script>&` + "\x00"
	days := []store.JobDay{
		{StatusName: hostile, Day: now.AddDate(0, 0, -3).Truncate(24 * time.Hour), Finished: 4, Passed: 3, Timed: 4, TotalRun: 8 * time.Minute},
		{StatusName: hostile, Day: now.Truncate(24 * time.Hour), Finished: 2, Passed: 0},
		{StatusName: "upbuild:tests:fedora-rawhide-x86_64", Day: now.Truncate(24 * time.Hour), Finished: 1, Passed: 1, Timed: 1, TotalRun: time.Minute},
	}
	charts := append(jobCharts(days, now), deliveryChart([]store.DeliveryDay{{Day: now.Truncate(24 * time.Hour), Accepted: 5, Ignored: 2}}, now))
	for _, c := range charts {
		c.Bars[0].Title += " " + hostile
		c.Bars[0].Class += hostile
		var reference, page bytes.Buffer
		if err := rangedMarks.Execute(&reference, c); err != nil {
			t.Fatal(err)
		}
		marks := string(c.Marks())
		if want := strings.TrimSuffix(strings.TrimPrefix(reference.String(), "<svg>"), "</svg>"); marks != want {
			t.Errorf("chart %q: html/template writes\n%s\nbut Marks wrote\n%s", c.Title, want, marks)
		}
		if err := pages["project"].ExecuteTemplate(&page, "chart", c); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(page.String(), marks) {
			t.Errorf("chart %q: the page's chart lacks the marks:\n%s", c.Title, page.String())
		}
		if strings.Contains(marks, "<script>") || strings.Contains(marks, "\x00") {
			t.Errorf("chart %q: marks are not escaped:\n%s", c.Title, marks)
		}
		if n := strings.Count(marks, "<rect "); n != len(c.Bars) {
			t.Errorf("chart %q: %d rects for %d bars", c.Title, n, len(c.Bars))
		}
	}
}

// BenchmarkChartMarks compares drawing a project page's 13 charts of 90
// days through the template's range with writing their marks in Go.
func BenchmarkChartMarks(b *testing.B) {
	now := time.Now()
	var days []store.JobDay
	for name := range 12 {
		for d := range 90 {
			days = append(days, store.JobDay{StatusName: "upbuild:copr_build:target-" + string(rune('a'+name)),
				Day: windowStart(now).AddDate(0, 0, d), Finished: 40, Passed: 35, Timed: 40, TotalRun: 40 * 7 * time.Minute})
		}
	}
	charts := jobCharts(days, now)
	b.Run("template", func(b *testing.B) {
		for b.Loop() {
			for _, c := range charts {
				if err := rangedMarks.Execute(&bytes.Buffer{}, c); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("marks", func(b *testing.B) {
		for b.Loop() {
			for _, c := range charts {
				_ = c.Marks()
			}
		}
	})
}
