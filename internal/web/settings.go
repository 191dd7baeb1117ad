package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/packitcfg"
	"upbuild.dev/upbuild/internal/settings"
	"upbuild.dev/upbuild/internal/store"
)

// The settings page:
//
//	GET  /settings/{host}/{path...}  the project's settings and a preview of the
//	                                 effective config (Reporter+, anyone for a public project)
//	POST /settings/{host}/{path...}  save (Maintainer+, CSRF), or preview=1 to see the
//	                                 merged result of the form without saving

// maxSettingsForm caps a settings POST: the fallback config is the bulk.
const maxSettingsForm = settings.MaxFallbackBytes + 64<<10

// blankJobRows are the empty override rows the form offers for new overrides.
const blankJobRows = 2

// registerSettings adds the per-project settings page.
func (p *Pages) registerSettings(mux *http.ServeMux) {
	mux.HandleFunc("GET /settings/{host}/{path...}", p.settingsPage)
	mux.HandleFunc("POST /settings/{host}/{path...}", p.settingsPost)
}

// settingsView is everything the settings template shows.
type settingsView struct {
	Project store.ProjectRef
	Host    string
	// CanEdit is false for viewers below Maintainer: the form is read-only.
	CanEdit bool
	CSRF    string
	Version int64
	// UpdatedBy and UpdatedAt describe the saved version (empty: never saved).
	UpdatedBy string
	UpdatedAt string
	Form      settingsForm
	Errors    []string
	// Conflict says who saved in between; Theirs lists how the saved
	// settings differ from the form.
	Conflict string
	Theirs   []string
	Saved    bool
	// Previewing is true when the preview shows the form, not what is saved.
	Previewing bool
	Preview    preview
	JobTypes   []string
}

// settingsForm is the settings as the form fields hold them.
type settingsForm struct {
	Targets            string
	ApprovalPolicy     string
	StatusNameTemplate string
	FallbackConfig     string
	Jobs               []jobRow
}

// jobRow is one row of the job overrides table.
type jobRow struct {
	Type       string
	Identifier string
	Off        bool
	Triggers   string
	Branch     string
}

// preview is the effective config for the default branch.
type preview struct {
	// Source says where the jobs come from.
	Source string
	// Problem is why there is no preview (config or settings errors).
	Problem  []string
	Jobs     []previewJob
	Changes  []string
	Warnings []string
	Approval string
}

type previewJob struct {
	Type, Trigger, Package, Identifier, Branch string
	Manual                                     bool
	Targets                                    []string
	StatusNames                                []string
}

// settingsProject finds the project of a /settings URL and says whether the
// viewer may change its settings. It answers the request itself and returns
// false when the page cannot be shown: 404 when the project does not exist
// or the viewer may not see it, 503 when access cannot be checked.
func (p *Pages) settingsProject(w http.ResponseWriter, r *http.Request) (proj store.ProjectRef, canEdit, ok bool) {
	host, projectPath := r.PathValue("host"), strings.Trim(r.PathValue("path"), "/")
	proj, err := p.Store.FindProject(r.Context(), host, projectPath)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w, "This project")
		return store.ProjectRef{}, false, false
	}
	if err != nil {
		p.unavailable(w, "settings page", err)
		return store.ProjectRef{}, false, false
	}
	guarded := access.Project{Instance: proj.Instance, ID: proj.ProjectID, Public: proj.Public()}
	if !p.mayView(w, r, guarded, "This project") {
		return store.ProjectRef{}, false, false
	}
	// Settings are for the project's members even when the project is
	// public: a Guest or a passer-by cannot open them.
	members := guarded
	members.Public = false
	isMember, err := p.Access.Allowed(r.Context(), r, members, access.SeePrivate)
	if err != nil {
		p.accessUnknown(w, err)
		return store.ProjectRef{}, false, false
	}
	if !isMember {
		p.forbidden(w, r, access.SeePrivate, "open its settings (its Maintainers change them)")
		return store.ProjectRef{}, false, false
	}
	canEdit, err = p.Access.Allowed(r.Context(), r, guarded, access.Administer)
	if err != nil {
		p.accessUnknown(w, err)
		return store.ProjectRef{}, false, false
	}
	return proj, canEdit, true
}

func (p *Pages) settingsPage(w http.ResponseWriter, r *http.Request) {
	proj, canEdit, ok := p.settingsProject(w, r)
	if !ok {
		return
	}
	row, _, err := p.Store.ProjectSettings(r.Context(), proj.Instance, proj.ProjectID)
	if err != nil {
		p.unavailable(w, "project settings", err)
		return
	}
	view := p.newSettingsView(r, proj, canEdit, row)
	saved, err := settings.Decode(row.Data)
	if err != nil {
		view.Errors = append(view.Errors, "The saved settings cannot be read: "+err.Error())
	}
	view.Saved = r.URL.Query().Get("saved") == "1"
	if !p.fillPreview(w, r, &view, saved) {
		return
	}
	view.Form = formOf(saved, view.Preview.Jobs)
	p.render(w, r, "settings", map[string]any{"S": view, "CSRF": view.CSRF})
}

func (p *Pages) newSettingsView(r *http.Request, proj store.ProjectRef, canEdit bool, row store.ProjectSettings) settingsView {
	v := settingsView{Project: proj, Host: hostOf(proj.Instance), CanEdit: canEdit, CSRF: p.Access.CSRFToken(r),
		Version: row.Version, UpdatedBy: row.UpdatedBy}
	for _, t := range settings.JobTypes() {
		v.JobTypes = append(v.JobTypes, string(t))
	}
	if row.Version > 0 {
		v.UpdatedAt = row.UpdatedAt.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return v
}

func (p *Pages) settingsPost(w http.ResponseWriter, r *http.Request) {
	// The cap goes on before anything reads the body: CheckCSRF reads the
	// form too, and would read it with Go's 10 MB default.
	r.Body = http.MaxBytesReader(w, r.Body, maxSettingsForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "The form could not be read: it is malformed or larger than "+strconv.Itoa(maxSettingsForm)+" bytes.", http.StatusBadRequest)
		return
	}
	if err := p.Access.CheckCSRF(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	proj, canEdit, ok := p.settingsProject(w, r)
	if !ok {
		return
	}
	if !canEdit {
		http.Error(w, "Changing a project's settings needs the Maintainer role or higher on it in GitLab. "+
			"You can see them, but not change them.", http.StatusForbidden)
		return
	}
	ctx := r.Context()
	row, _, err := p.Store.ProjectSettings(ctx, proj.Instance, proj.ProjectID)
	if err != nil {
		p.unavailable(w, "project settings", err)
		return
	}
	view := p.newSettingsView(r, proj, true, row)
	form, submitted, formErrs := parseSettingsForm(r.PostForm)
	view.Form, view.Previewing = form, true
	expected, err := strconv.ParseInt(r.PostForm.Get("version"), 10, 64)
	if err != nil || expected < 0 {
		http.Error(w, "The form has no valid version field; reload the page.", http.StatusBadRequest)
		return
	}
	view.Version = expected
	check := settings.Check{RepoName: path.Base(proj.Path), Aliases: p.aliases()}
	if err := errors.Join(append(formErrs, settings.Validate(submitted, check))...); err != nil {
		for _, fe := range settings.FieldErrors(err) {
			view.Errors = append(view.Errors, fe.Error())
		}
		view.Preview.Problem = []string{"The preview shows once the settings above are valid."}
		p.renderSettings(w, r, view, http.StatusUnprocessableEntity)
		return
	}
	if r.PostForm.Get("preview") == "1" {
		if p.fillPreview(w, r, &view, submitted) {
			p.renderSettings(w, r, view, http.StatusOK)
		}
		return
	}
	current, err := settings.Decode(row.Data)
	if err != nil && row.Version == expected {
		// A maintainer saving over unreadable settings replaces them.
		current = settings.Settings{}
	}
	changes := settings.Diff(current, submitted)
	if row.Version == expected && len(changes) == 0 {
		http.Redirect(w, r, settingsURL(proj), http.StatusSeeOther)
		return
	}
	data, err := settings.Encode(submitted)
	if err != nil {
		p.unavailable(w, "encode settings", err)
		return
	}
	viewer, signedIn := p.Access.Viewer(r)
	if !signedIn {
		// Administer was allowed, so someone is signed in; never save anonymously.
		http.Error(w, "Sign in to change settings.", http.StatusForbidden)
		return
	}
	_, err = p.Store.SaveProjectSettings(ctx, store.SettingsChange{Instance: proj.Instance, ProjectID: proj.ProjectID,
		Data: data, Actor: viewer.Actor(), Detail: strings.Join(changes, "; "), ExpectedVersion: expected})
	var conflict *store.SettingsConflictError
	if errors.As(err, &conflict) {
		// Keep what this maintainer typed, say who saved meanwhile and
		// what differs; saving again (now from the current version)
		// replaces their change knowingly.
		view.Conflict, view.Version = conflict.Error(), conflict.Current.Version
		if theirs, err := settings.Decode(conflict.Current.Data); err != nil {
			view.Theirs = []string{"their settings cannot be read: " + err.Error()}
		} else {
			view.Theirs = settings.Diff(theirs, submitted)
		}
		if p.fillPreview(w, r, &view, submitted) {
			p.renderSettings(w, r, view, http.StatusConflict)
		}
		return
	}
	if err != nil {
		p.unavailable(w, "save settings", err)
		return
	}
	http.Redirect(w, r, settingsURL(proj)+"?saved=1", http.StatusSeeOther)
}

func (p *Pages) renderSettings(w http.ResponseWriter, r *http.Request, view settingsView, status int) {
	if status != http.StatusOK {
		// render sets its headers and writes once; the status goes out with
		// the first write.
		w = &statusWriter{ResponseWriter: w, status: status}
	}
	p.render(w, r, "settings", map[string]any{"S": view, "CSRF": view.CSRF})
}

// statusWriter answers with status instead of 200, unless the handler
// chose a status itself (render's 500).
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	s.wrote = true
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(s.status)
	}
	return s.ResponseWriter.Write(b)
}

// fillPreview merges s over the config the planner last read on the
// project's default branch. It returns false after answering the request
// itself (the database failed).
func (p *Pages) fillPreview(w http.ResponseWriter, r *http.Request, view *settingsView, s settings.Settings) bool {
	proj := view.Project
	recorded, found, err := p.Store.ProjectConfig(r.Context(), proj.Instance, proj.ProjectID)
	if err != nil {
		p.unavailable(w, "project config", err)
		return false
	}
	pv := &view.Preview
	var repo *packitcfg.Config
	repoName := path.Base(proj.Path)
	if found {
		pv.Source = fmt.Sprintf("%s at %s %s, as upbuild last read it (%s), with the settings merged over it",
			recorded.File, recorded.Ref, shortSHA(recorded.SHA), recorded.SeenAt.UTC().Format("2006-01-02 15:04 UTC"))
		repo, err = packitcfg.Load(recorded.File, recorded.Content, packitcfg.Options{RepoName: repoName, RepoFiles: recorded.RepoFiles})
		if err != nil {
			pv.Problem = configProblems(recorded.File, err)
			return true
		}
	}
	eff, err := settings.Apply(repo, s, settings.Project{RepoName: repoName, RepoFiles: recorded.RepoFiles,
		OperatorApprovalPolicy: p.operatorApprovalPolicy()})
	if err != nil {
		pv.Problem = configProblems(settings.FallbackFileName, err)
		return true
	}
	switch {
	case eff.FromFallback && found:
		pv.Source = "the fallback config below: the default branch has no .packit.yaml"
	case eff.FromFallback:
		pv.Source = "the fallback config below (upbuild has not read the default branch's .packit.yaml yet: it does on the next push to it)"
	case !found:
		pv.Source = "nothing yet: upbuild reads the default branch's .packit.yaml on the next push to it, and there is no fallback config"
	}
	pv.Approval, pv.Changes = eff.ApprovalPolicy, eff.Changes
	if eff.Config == nil {
		return true
	}
	pv.Warnings = eff.Config.Warnings
	ref := recorded.Ref
	for i := range eff.Config.Jobs {
		j := &eff.Config.Jobs[i]
		pj := previewJob{Type: string(j.Type), Trigger: string(j.Trigger), Package: j.PackageName, Identifier: j.Identifier,
			Branch: j.Branch, Manual: j.ManualTrigger}
		if settings.BuildTestType(j.Type) {
			targets, err := packitcfg.ResolveTargets(j, p.aliases())
			if err != nil {
				pv.Warnings = append(pv.Warnings, err.Error())
			}
			pj.Targets = targets
		} else {
			for _, b := range j.DistGitBranches {
				pj.Targets = append(pj.Targets, b.Name)
			}
		}
		for _, tg := range pj.Targets {
			pj.StatusNames = append(pj.StatusNames, packitcfg.StatusName(j, ref, tg))
		}
		if len(pj.Targets) == 0 {
			pj.StatusNames = []string{packitcfg.StatusName(j, ref, "")}
		}
		pv.Jobs = append(pv.Jobs, pj)
	}
	return true
}

func configProblems(file string, err error) []string {
	list := packitcfg.Errors(err)
	if len(list) == 0 {
		return []string{err.Error()}
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = fmt.Sprintf("%s line %d, column %d: %s", file, e.Line, e.Column, e.Msg)
	}
	return out
}

// formOf fills the form from saved settings: one row per override, one
// per other job of the preview (as configured), and blank rows to add more.
func formOf(s settings.Settings, jobs []previewJob) settingsForm {
	f := settingsForm{Targets: strings.Join(s.Targets, " "), ApprovalPolicy: s.ApprovalPolicy,
		StatusNameTemplate: s.StatusNameTemplate, FallbackConfig: s.FallbackConfig}
	listed := map[string]bool{}
	for _, o := range s.Jobs {
		triggers := make([]string, len(o.Triggers))
		for i, t := range o.Triggers {
			triggers[i] = string(t)
		}
		f.Jobs = append(f.Jobs, jobRow{Type: string(o.Type), Identifier: o.Identifier, Off: o.Disabled,
			Triggers: strings.Join(triggers, " "), Branch: o.Branch})
		listed[string(o.Type)+"\x00"+o.Identifier] = true
	}
	for _, j := range jobs {
		key := j.Type + "\x00" + j.Identifier
		if !listed[key] {
			listed[key] = true
			f.Jobs = append(f.Jobs, jobRow{Type: j.Type, Identifier: j.Identifier})
		}
	}
	for range blankJobRows {
		f.Jobs = append(f.Jobs, jobRow{})
	}
	return f
}

// parseSettingsForm reads the posted form. Job rows left as configured (or
// blank) are no override.
func parseSettingsForm(v url.Values) (settingsForm, settings.Settings, []error) {
	f := settingsForm{Targets: v.Get("targets"), ApprovalPolicy: v.Get("approval_policy"),
		StatusNameTemplate: strings.TrimSpace(v.Get("status_name_template")),
		// Browsers send a textarea's lines with CRLF.
		FallbackConfig: strings.ReplaceAll(v.Get("fallback_config"), "\r\n", "\n")}
	s := settings.Settings{Targets: strings.Fields(strings.ReplaceAll(f.Targets, ",", " ")), ApprovalPolicy: f.ApprovalPolicy,
		StatusNameTemplate: f.StatusNameTemplate}
	if strings.TrimSpace(f.FallbackConfig) != "" {
		s.FallbackConfig = f.FallbackConfig
	}
	types, idents, states, triggers, branches := v["job_type"], v["job_identifier"], v["job_state"], v["job_triggers"], v["job_branch"]
	n := len(types)
	if len(idents) != n || len(states) != n || len(triggers) != n || len(branches) != n {
		return f, s, []error{&settings.FieldError{Field: "jobs", Msg: "the rows of the job table are incomplete; reload the page"}}
	}
	var errs []error
	for i := range n {
		row := jobRow{Type: strings.TrimSpace(types[i]), Identifier: strings.TrimSpace(idents[i]), Off: states[i] == "off",
			Triggers: triggers[i], Branch: strings.TrimSpace(branches[i])}
		f.Jobs = append(f.Jobs, row)
		if states[i] != "" && states[i] != "off" {
			errs = append(errs, &settings.FieldError{Field: fmt.Sprintf("jobs[%d].state", i), Msg: "must be as configured or off"})
		}
		o := settings.JobOverride{Type: packitcfg.JobType(row.Type), Identifier: row.Identifier, Disabled: row.Off, Branch: row.Branch}
		for _, t := range strings.Fields(strings.ReplaceAll(row.Triggers, ",", " ")) {
			o.Triggers = append(o.Triggers, packitcfg.Trigger(t))
		}
		if row.Type == "" || (!o.Disabled && len(o.Triggers) == 0 && o.Branch == "") {
			continue
		}
		s.Jobs = append(s.Jobs, o)
	}
	return f, s, errs
}

func settingsURL(proj store.ProjectRef) string {
	return "/settings/" + url.PathEscape(hostOf(proj.Instance)) + "/" + proj.Path
}

// hostOf is the host part of an instance URL, as /p/ and /settings/ URLs use it.
func hostOf(instance string) string {
	if u, err := url.Parse(instance); err == nil && u.Host != "" {
		return u.Host
	}
	return instance
}

func shortSHA(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

// aliases is the operator's target alias table, or Packit's default.
func (p *Pages) aliases() packitcfg.AliasTable {
	if p.Aliases != nil {
		return p.Aliases
	}
	return packitcfg.DefaultAliasTable()
}

// operatorApprovalPolicy is the instance-wide policy the planner applies
// under the project's own; "forks" when the operator set none, as in plan.
func (p *Pages) operatorApprovalPolicy() string {
	if p.ApprovalPolicy != "" {
		return p.ApprovalPolicy
	}
	return "forks"
}
