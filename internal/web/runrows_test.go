package web

import (
	"bytes"
	"html/template"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/store"
)

// rangedRunRows is the "runrow" template the run tables used before
// runRowsHTML: html/template's escaping is the reference.
var rangedRunRows = template.Must(template.New("rows").Funcs(funcs).Parse(`<table>{{range .}}<tr>
<td><a href="/runs/{{.Run.ID}}">#{{.Run.ID}}</a></td>
<td><a href="{{projectURL .Run}}">{{.Run.ProjectPath}}</a></td>
<td>{{.Run.Trigger}}</td>
<td>{{if .Run.MRIID}}<a href="{{.Run.Instance}}/{{.Run.ProjectPath}}/-/merge_requests/{{.Run.MRIID}}" rel="noreferrer">!{{.Run.MRIID}}</a> {{.Run.Title}}{{else}}{{.Run.Ref}}{{end}}</td>
<td><code>{{short .Run.SHA}}</code></td>
<td><span class="state {{.Glance.Class}}">{{.Glance.Class}}</span> <span class="muted">{{.Glance.Detail}}</span></td>
<td title="{{when .Run.CreatedAt}}">{{age .Run.CreatedAt}}</td>
</tr>{{end}}</table>`))

func TestRunRowsAreWhatTheTemplateWrites(t *testing.T) {
	hostile := `<img src=x onerror=alert(1)>"'&+ %41%zz?#ü` + "\x00\x7f"
	created := time.Now().Add(-72 * time.Hour)
	rows := []runRow{
		{Run: store.Run{ID: 1, Instance: "https://gitlab.example", ProjectPath: "group/sub/" + hostile, Trigger: "pull_request",
			MRIID: 7, Title: hostile, SHA: "0123456789abcdef0123", CreatedAt: created}, Glance: glance{Class: "failed" + hostile, Detail: hostile}},
		{Run: store.Run{ID: 2, Instance: "http://127.0.0.1:8080", ProjectPath: "demo/hello", Trigger: "commit", Ref: hostile,
			SHA: hostile, CreatedAt: created}, Glance: glance{Class: "success", Detail: "2 of 2 passed"}},
		// An instance URL with a scheme a browser would run: both write
		// html/template's harmless placeholder.
		{Run: store.Run{ID: 3, Instance: "javascript:alert(1)//", ProjectPath: "x/y", Trigger: "pull_request", MRIID: 1,
			Title: "t", SHA: "abc", CreatedAt: created}, Glance: glance{Class: "running"}},
		{Run: store.Run{ID: 4, Instance: "JAVASCRIPT:alert(1)", ProjectPath: "a:b/c", MRIID: 2, CreatedAt: created}},
		{Run: store.Run{ID: 5, Instance: "https://h", ProjectPath: "p/%4", MRIID: 3, CreatedAt: created}},
		{Run: store.Run{ID: 6, Instance: "https://h", ProjectPath: "p/%4g%", MRIID: 4, CreatedAt: created}},
		{Run: store.Run{ID: 7, Instance: "https://h", ProjectPath: "%E2%9C%93/%", MRIID: 5, CreatedAt: created}},
	}
	var want bytes.Buffer
	if err := rangedRunRows.Execute(&want, rows); err != nil {
		t.Fatal(err)
	}
	if got := "<table>" + string(runRowsHTML(rows)) + "</table>"; got != want.String() {
		t.Fatalf("runRowsHTML wrote\n%s\nhtml/template writes\n%s", got, want.String())
	}
}

func BenchmarkRunRows(b *testing.B) {
	rows := make([]runRow, runsPerPage)
	for i := range rows {
		rows[i] = runRow{Run: store.Run{ID: int64(i + 1), Instance: "https://gitlab.example", ProjectPath: "group/project",
			Trigger: "pull_request", MRIID: 12, Title: "Fix the build", SHA: "0123456789abcdef", CreatedAt: time.Now()},
			Glance: glance{Class: "success", Detail: "4 of 4 passed"}}
	}
	b.Run("template", func(b *testing.B) {
		for b.Loop() {
			if err := rangedRunRows.Execute(&bytes.Buffer{}, rows); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			_ = runRowsHTML(rows)
		}
	})
}
