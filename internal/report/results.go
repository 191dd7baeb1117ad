package report

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/store"
)

// showInResultsComment is the fallback for a status the bot may not set
// (typically on a fork it is no member of): the status is marked sent, and
// the MR's results comment, rebuilt from every status of the SHA, shows it
// instead. The mr_comments loop creates or edits the note.
func (r *Reporter) showInResultsComment(ctx context.Context, f forge.Forge, row store.StatusRow, cause error) error {
	mr := store.MRRef{Instance: row.Instance, ProjectID: row.TargetProjectID, IID: row.MRIID}
	// Rebuilds of one MR's comment run one at a time, each reading the
	// store after the previous one wrote: a slower rebuild that read older
	// rows can never overwrite a newer body.
	unlock, err := r.locks.lock(ctx, "results\x00"+mr.Instance+"\x00"+strconv.FormatInt(mr.ProjectID, 10)+"\x00"+strconv.FormatInt(mr.IID, 10))
	if err != nil {
		return err
	}
	defer unlock()
	rows, err := r.store.StatusesOf(ctx, row.Instance, row.ProjectID, row.SHA)
	if err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	body := resultsBody(rows, row, r.botUsername(ctx, f), r.publicURL, r.absoluteURL)
	if err := r.store.SetMRComment(ctx, mr, store.CommentResults, body); err != nil {
		return fmt.Errorf("reporter: %w", err)
	}
	r.log.Debug("reporter: status shown in the results comment instead", "instance", row.Instance, "project", row.ProjectID,
		"sha", row.SHA, "name", row.Name, "state", row.State, "mr_project", mr.ProjectID, "mr", mr.IID, "cause", cause)
	note := fmt.Sprintf("shown in the results comment on merge request !%d (project %d): %v", mr.IID, mr.ProjectID, cause)
	return r.markStatus(ctx, row, note)
}

// botUsername is the bot's username for the access instructions, or ""
// when the forge cannot say right now.
func (r *Reporter) botUsername(ctx context.Context, f forge.Forge) string {
	u, err := f.CurrentUser(ctx)
	if err != nil {
		r.log.Warn("reporter: cannot look up the bot's username for the results comment", "err", err)
		return ""
	}
	return u.Username
}

// stateLabel is how a state reads in the table.
func stateLabel(state string) string {
	switch state {
	case "pending":
		return "⏳ pending"
	case "running":
		return "🔄 running"
	case "success":
		return "✅ success"
	case "failed":
		return "❌ failed"
	case "canceled":
		return "🚫 canceled"
	case "skipped":
		return "⏭️ skipped"
	}
	return state
}

// resultsBody is the Markdown of the results comment: a table of the
// statuses of one SHA and how to let the bot set them as statuses instead.
func resultsBody(rows []store.StatusRow, of store.StatusRow, bot, publicURL string, absolute func(string) string) string {
	var b strings.Builder
	short := of.SHA
	if len(short) > 12 {
		short = short[:12]
	}
	fmt.Fprintf(&b, "### upbuild results for %s\n\n", short)
	b.WriteString("| Check | State | Description | Details |\n|---|---|---|---|\n")
	for _, st := range rows {
		link := ""
		if u := absolute(st.TargetURL); isWebURL(u) {
			link = "[details](" + strings.ReplaceAll(u, ")", "%29") + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(st.Name), cell(stateLabel(st.State)), cell(st.Description), link)
	}
	where := "this project"
	if of.ProjectID != of.TargetProjectID {
		where = "the fork this merge request comes from"
	}
	who := "the upbuild bot account"
	if bot != "" {
		who = "@" + bot
	}
	fmt.Fprintf(&b, "\nupbuild may not set commit statuses on %s, so the results are shown here and kept up to date. "+
		"To see them as commit statuses in the merge request's pipeline instead, give the bot Developer access "+
		"there: in %s, open **Project → Manage → Members**, choose **Invite members**, and invite %s as **Developer**.\n",
		where, where, who)
	if isWebURL(publicURL) {
		fmt.Fprintf(&b, "\n<sub>Reported by [upbuild](%s).</sub>\n", strings.ReplaceAll(publicURL, ")", "%29"))
	}
	return b.String()
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, `\`, `\\`)
	return strings.ReplaceAll(s, "|", `\|`)
}

// isWebURL admits only http(s) links into comments.
func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
