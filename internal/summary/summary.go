// Package summary renders the one MR comment that upbuild keeps up to date
// when a project asks for it (summary_comment in .upbuild.yaml): the latest
// run's message and a table of its jobs. It is pure, so the planner and the
// reporter render the same body from the store's current state.
package summary

import (
	"fmt"
	"strings"

	"upbuild.dev/upbuild/internal/store"
)

// Marker starts every summary, so people (and upbuild) recognise it.
const Marker = "**upbuild results**"

// Render builds the comment body for a run and its jobs.
func Render(run store.Run, jobs []store.Job, publicURL string) string {
	var b strings.Builder
	short := run.SHA
	if len(short) > 8 {
		short = short[:8]
	}
	fmt.Fprintf(&b, "%s for commit %s\n\n", Marker, short)
	if run.Message != "" {
		b.WriteString(run.Message)
		b.WriteString("\n\n")
	}
	if len(jobs) == 0 {
		if run.State == store.RunConfigError {
			b.WriteString("No job runs until the configuration is fixed.\n")
		}
		return b.String()
	}
	b.WriteString("| job | state | details |\n|---|---|---|\n")
	for _, j := range jobs {
		state := j.State
		if j.State == store.JobHeld || j.State == store.JobWaiting || j.State == store.JobQueued {
			state = "pending"
		}
		fmt.Fprintf(&b, "| [%s](%s/jobs/%d) | %s | %s |\n", Cell(j.StatusName), publicURL, j.ID, state, Cell(j.Description))
	}
	b.WriteString("\nThis comment is updated in place as the jobs progress.\n")
	return b.String()
}

// Cell makes text from a repository or a user safe inside a Markdown table
// cell: Escape, and no line breaks (they would end the row).
func Cell(s string) string {
	return Escape(strings.NewReplacer("\n", " ", "\r", " ").Replace(s))
}

// Escape makes text from a repository or a user safe in a Markdown comment:
// no markup, no mentions, no column breaks.
func Escape(s string) string {
	r := strings.NewReplacer("\\", "\\\\", "|", "\\|", "`", "\\`", "*", "\\*", "_", "\\_",
		"[", "\\[", "]", "\\]", "<", "&lt;", ">", "&gt;", "@", "@\u200b", "#", "\\#")
	return r.Replace(s)
}
