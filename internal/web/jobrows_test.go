package web

import (
	"bytes"
	"html/template"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/joblog"
	"upbuild.dev/upbuild/internal/store"
)

// rangedJobRows is how the run page wrote its rows before jobRows:
// html/template's escaping is the reference.
var rangedJobRows = template.Must(template.New("rows").Funcs(funcs).Parse(`<table>{{range .}}<tr><td><a href="/jobs/{{.ID}}">{{.StatusName}}</a></td><td>{{.Target}}{{if .Package}} ({{.Package}}){{end}}</td>
<td><span class="state {{.State}}">{{.State}}</span> <span class="muted">{{.Description}}</span></td><td>{{whenp .StartedAt}}</td><td>{{took .StartedAt .FinishedAt}}</td></tr>{{end}}</table>`))

func TestJobRowsAreWhatTheTemplateWrites(t *testing.T) {
	hostile := `<img src=x onerror=alert(1)>"'&` + "\x00"
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	end := start.Add(95 * time.Second)
	jobs := []store.Job{
		{ID: 7, StatusName: "rpm-build:" + hostile, Target: hostile, Package: hostile, State: "failed", Description: hostile,
			StartedAt: &start, FinishedAt: &end},
		{ID: 8, StatusName: "testing-farm:fedora-rawhide-x86_64", Target: "fedora-rawhide-x86_64", State: "queued"},
	}
	var want bytes.Buffer
	if err := rangedJobRows.Execute(&want, jobs); err != nil {
		t.Fatal(err)
	}
	got := "<table>" + string(jobRows(jobs)) + "</table>"
	if got != want.String() {
		t.Fatalf("jobRows wrote\n%s\nhtml/template writes\n%s", got, want.String())
	}
}

func BenchmarkJobRows(b *testing.B) {
	start := time.Now()
	jobs := make([]store.Job, 1000)
	for i := range jobs {
		jobs[i] = store.Job{ID: int64(i + 1), StatusName: "rpm-build:fedora-rawhide-x86_64", Target: "fedora-rawhide-x86_64",
			Package: "pkg", State: "success", Description: "RPMs built", StartedAt: &start, FinishedAt: &start}
	}
	b.Run("template", func(b *testing.B) {
		for b.Loop() {
			if err := rangedJobRows.Execute(&bytes.Buffer{}, jobs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			_ = jobRows(jobs)
		}
	})
}

var rangedLog = template.Must(template.New("log").Parse(`<pre>{{range .}}{{.Text}}
{{end}}</pre>`))

func TestLogTextIsWhatTheTemplateWrites(t *testing.T) {
	lines := []joblog.Line{{Seq: 1, Text: "+ rpmbuild -bs hello.spec"}, {Seq: 2, Text: `</pre><script>alert("x'+1")</script>&` + "\x00"},
		{Seq: 3, Text: ""}, {Seq: 4, Text: "50%\r100%"}}
	var want bytes.Buffer
	if err := rangedLog.Execute(&want, lines); err != nil {
		t.Fatal(err)
	}
	if got := "<pre>" + string(logText(lines)) + "</pre>"; got != want.String() {
		t.Fatalf("logText wrote\n%q\nhtml/template writes\n%q", got, want.String())
	}
}
