package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/access"
	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/hooktoken"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// SelfService is the part of the dashboard where project members help
// themselves instead of asking the operator:
//
//	GET  /tokens/{host}/{path...}  the project's webhook tokens (Maintainer+)
//	POST /tokens/{host}/{path...}  action=issue (signing, connect) or action=revoke (token)
//	GET  /audit/{host}/{path...}   who did what to the project, newest first (Reporter+)
//	POST /jobs/{id}/rerun          a new run of one job (Developer+)
//	POST /jobs/{id}/cancel         stop a job that has not ended (Developer+)
//	POST /runs/{id}/rerun-failed   a new run of a run's failed jobs (Developer+)
//
// It drives more of upbuild than the read-only pages (the token keyring, the
// bot's forge clients, the queue), so it is a type of its own around Pages.
type SelfService struct {
	// Pages renders and guards: Pages.Access is required.
	Pages *Pages
	// Tokens issues and revokes webhook tokens.
	Tokens *hooktoken.Manager
	// Forges create webhooks ("connect project") and look up projects
	// upbuild has not run anything for yet, by normalised instance URL.
	Forges map[string]forge.Forge
	// Enqueue hands re-run jobs to the queue; Cancel stops a job in it
	// (a running job's process is killed); Changed wakes the reporter,
	// which then sends the new commit statuses.
	Enqueue func(ctx context.Context, jobIDs ...int64) error
	Cancel  func(ctx context.Context, jobID int64) error
	Changed func()
}

// auditPerPage is how many audit entries one page shows.
const auditPerPage = 50

// Register adds the routes to mux. It panics when a required part is
// missing: that is a wiring mistake, found at start.
func (s *SelfService) Register(mux *http.ServeMux) {
	if s.Pages == nil || s.Pages.Access == nil || s.Tokens == nil || s.Enqueue == nil || s.Cancel == nil || s.Changed == nil {
		panic("web.SelfService needs Pages with Access, Tokens, Enqueue, Cancel and Changed")
	}
	mux.HandleFunc("GET /tokens/{host}/{path...}", s.tokensPage)
	mux.HandleFunc("POST /tokens/{host}/{path...}", s.tokensPost)
	mux.HandleFunc("GET /audit/{host}/{path...}", s.auditPage)
	s.registerJobActions(mux)
}

// managed is a project as the manage pages see it.
type managed struct {
	store.ProjectRef
	guard access.Project
}

// project finds the project of a /tokens or /audit URL and checks that the
// viewer may do a there. It answers the request itself and returns false
// when the page cannot be shown: 404 when the viewer may not even see the
// project (or it does not exist), 403 with the reason otherwise.
func (s *SelfService) project(w http.ResponseWriter, r *http.Request, a access.Action, what string) (managed, bool) {
	ctx := r.Context()
	host, path := r.PathValue("host"), strings.Trim(r.PathValue("path"), "/")
	ref, err := s.Pages.Store.FindProject(ctx, host, path)
	if errors.Is(err, store.ErrNotFound) {
		// Nothing ran for it yet: a maintainer connecting a new project
		// comes here first. Ask GitLab, as the bot — only for someone
		// signed in, so passers-by cannot spend the bot's API budget.
		if _, signedIn := s.Pages.Access.Viewer(r); !signedIn {
			s.Pages.forbidden(w, r, a, what)
			return managed{}, false
		}
		ref, err = s.forgeProject(ctx, host, path)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, forge.ErrNotFound) {
		notFound(w, "This project")
		return managed{}, false
	}
	if err != nil {
		s.Pages.unavailable(w, "find project", err)
		return managed{}, false
	}
	m := managed{ProjectRef: ref, guard: access.Project{Instance: ref.Instance, ID: ref.ProjectID, Public: ref.Public()}}
	if ok, done := s.allowed(w, r, m.guard, access.SeePrivate); done || !ok {
		if !done {
			notFound(w, "This project")
		}
		return managed{}, false
	}
	if a == access.SeePrivate {
		// The audit log names people: it is for project members even
		// when the project is public.
		m.guard.Public = false
	}
	if ok, done := s.allowed(w, r, m.guard, a); done || !ok {
		if !done {
			s.Pages.forbidden(w, r, a, what)
		}
		return managed{}, false
	}
	return m, true
}

// owns says whether t is the project's own token. A project token that has
// authenticated deliveries belongs to the project IDs it did so for (the
// intake holds it to them, across renames), whatever its path; one never
// used yet belongs to the project at its path.
func (m managed) owns(t store.TokenRecord) bool {
	if t.Instance != m.Instance || t.ScopeKind != string(token.ScopeProject) {
		return false
	}
	if len(t.ProjectIDs) > 0 {
		return slices.Contains(t.ProjectIDs, m.ProjectID)
	}
	return strings.EqualFold(t.ScopePath, m.Path)
}

// forgeProject looks a project up on the instance with this host.
func (s *SelfService) forgeProject(ctx context.Context, host, path string) (store.ProjectRef, error) {
	for instance, f := range s.Forges {
		if u, err := url.Parse(instance); err != nil || u.Host != host {
			continue
		}
		info, err := f.Project(ctx, path)
		if err != nil {
			return store.ProjectRef{}, err
		}
		return store.ProjectRef{Instance: instance, ProjectID: info.ID, Path: info.PathWithNamespace, Visibility: info.Visibility}, nil
	}
	return store.ProjectRef{}, store.ErrNotFound
}

// allowed asks the guard. When GitLab could not be asked, it answers 503
// itself (never guessing) and returns done.
func (s *SelfService) allowed(w http.ResponseWriter, r *http.Request, p access.Project, a access.Action) (ok, done bool) {
	ok, err := s.Pages.Access.Allowed(r.Context(), r, p, a)
	if err != nil {
		s.Pages.accessUnknown(w, err)
		return false, true
	}
	return ok, false
}

// checkCSRF refuses a form that did not come from one of our pages.
func (s *SelfService) checkCSRF(w http.ResponseWriter, r *http.Request) bool {
	if err := s.Pages.Access.CheckCSRF(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return false
	}
	return true
}

// actor names the viewer in the audit log.
func (s *SelfService) actor(r *http.Request) string {
	v, _ := s.Pages.Access.Viewer(r)
	return v.Actor()
}

// tokenRow is one token on the tokens page.
type tokenRow struct {
	store.TokenRecord
	// Own is false for a group's token, which this page does not revoke.
	Own bool
}

// issuedToken is what the page shows once, right after issuing.
type issuedToken struct {
	hooktoken.Issued
	// Connected is the ID of the webhook upbuild created (0: none).
	Connected int64
	// ConnectError says, in a sentence, why upbuild could not create it.
	ConnectError string
	HooksURL     string
}

func (s *SelfService) tokensPage(w http.ResponseWriter, r *http.Request) {
	m, ok := s.project(w, r, access.Administer, "manage its webhook tokens")
	if !ok {
		return
	}
	s.renderTokens(w, r, m, nil)
}

func (s *SelfService) renderTokens(w http.ResponseWriter, r *http.Request, m managed, issued *issuedToken) {
	list, err := s.Pages.Store.ProjectTokens(r.Context(), m.Instance, m.Path, m.ProjectID)
	if err != nil {
		s.Pages.unavailable(w, "list tokens", err)
		return
	}
	rows := make([]tokenRow, 0, len(list))
	for _, t := range list {
		own := m.owns(t)
		if t.ScopeKind == string(token.ScopeProject) && !own {
			// Another project's, by ID, that once had this path.
			continue
		}
		rows = append(rows, tokenRow{TokenRecord: t, Own: own})
	}
	_, canConnect := s.Forges[m.Instance]
	s.Pages.render(w, r, "tokens", map[string]any{
		"Project": m.ProjectRef, "Tokens": rows, "Issued": issued, "CSRF": s.Pages.Access.CSRFToken(r),
		"WebhookURL": s.Pages.webhookURL(r), "Events": hooktoken.Events,
		"CanConnect": canConnect,
	})
}

func (s *SelfService) tokensPost(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(w, r) {
		return
	}
	m, ok := s.project(w, r, access.Administer, "manage its webhook tokens")
	if !ok {
		return
	}
	switch r.PostFormValue("action") {
	case "issue":
		s.issue(w, r, m)
	case "revoke":
		s.revoke(w, r, m)
	default:
		http.Error(w, "the form must say action=issue or action=revoke", http.StatusBadRequest)
	}
}

// issue issues a project token and shows it once, in this response: it is
// never put into a URL, stored or logged.
func (s *SelfService) issue(w http.ResponseWriter, r *http.Request, m managed) {
	ctx := r.Context()
	actor := s.actor(r)
	signing := r.PostFormValue("signing") == "on"
	scope := token.Scope{Kind: token.ScopeProject, Instance: m.Instance, Path: m.Path}
	out, err := s.Tokens.Issue(ctx, scope, signing, actor)
	if err != nil {
		s.Pages.unavailable(w, "issue token", err)
		return
	}
	detail := "issued project token #" + strconv.FormatInt(out.Record.ID, 10)
	if signing {
		detail += " with a signing token"
	}
	if !s.audit(w, r, m, "token.issue", detail) {
		return
	}
	shown := &issuedToken{Issued: out, HooksURL: m.Instance + "/" + m.Path + "/-/hooks"}
	if r.PostFormValue("connect") == "on" {
		shown.Connected, shown.ConnectError = s.connect(ctx, m, out)
		if shown.Connected != 0 && !s.audit(w, r, m, "project.connect",
			"created GitLab webhook "+strconv.FormatInt(shown.Connected, 10)+" with token #"+strconv.FormatInt(out.Record.ID, 10)) {
			return
		}
	}
	s.renderTokens(w, r, m, shown)
}

// connect creates the project's webhook as the bot. It returns the hook's
// ID, or a sentence saying why there is none.
func (s *SelfService) connect(ctx context.Context, m managed, out hooktoken.Issued) (int64, string) {
	f, ok := s.Forges[m.Instance]
	if !ok {
		return 0, "upbuild has no bot account on " + m.Instance + ", so it cannot create the webhook; add it by hand with the settings below."
	}
	id, err := f.CreateProjectHook(ctx, m.ProjectID, forge.HookOptions{URL: out.WebhookURL, Token: out.Token,
		SigningToken: out.SigningSecret, TagPushEvents: true, MergeRequestEvents: true, NoteEvents: true, ReleaseEvents: true})
	switch {
	case err == nil:
		return id, ""
	case errors.Is(err, forge.ErrForbidden):
		return 0, "GitLab refused to let upbuild's bot account create the webhook: only a Maintainer of the project may add webhooks. " +
			"Give the bot the Maintainer role and issue a new token, or add the webhook by hand with the settings below."
	case errors.Is(err, forge.ErrNotFound):
		return 0, "upbuild's bot account cannot see this project on GitLab, so it could not create the webhook; add it by hand with the settings below."
	default:
		s.Pages.Logger.Warn("create project hook", "project", m.ProjectID, "instance", m.Instance, "err", err)
		return 0, "GitLab did not create the webhook (it may be unreachable right now); add it by hand with the settings below."
	}
}

func (s *SelfService) revoke(w http.ResponseWriter, r *http.Request, m managed) {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PostFormValue("token"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "the form must name the token to revoke", http.StatusBadRequest)
		return
	}
	rec, err := s.Pages.Store.Token(ctx, id)
	// Only this project's own tokens: a group's token, or another
	// project's, is not this page's to revoke.
	if errors.Is(err, store.ErrNotFound) || (err == nil && !m.owns(rec)) {
		http.Error(w, "This project has no such token.", http.StatusNotFound)
		return
	}
	if err != nil {
		s.Pages.unavailable(w, "load token", err)
		return
	}
	revoked, err := s.Pages.Store.RevokeToken(ctx, id, time.Now())
	if err != nil {
		s.Pages.unavailable(w, "revoke token", err)
		return
	}
	if revoked && !s.audit(w, r, m, "token.revoke", "revoked project token #"+strconv.FormatInt(id, 10)) {
		return
	}
	http.Redirect(w, r, r.URL.Path, http.StatusSeeOther)
}

// audit records an entry, answering 503 itself when it cannot.
func (s *SelfService) audit(w http.ResponseWriter, r *http.Request, m managed, action, detail string) bool {
	if _, err := s.Pages.Store.AppendAudit(r.Context(), store.AuditEntry{Instance: m.Instance, ProjectID: m.ProjectID,
		Actor: s.actor(r), Action: action, Detail: detail}); err != nil {
		s.Pages.unavailable(w, "audit log", err)
		return false
	}
	return true
}

func (s *SelfService) auditPage(w http.ResponseWriter, r *http.Request) {
	m, ok := s.project(w, r, access.SeePrivate, "read its audit log")
	if !ok {
		return
	}
	entries, err := s.Pages.Store.AuditLog(r.Context(), m.Instance, m.ProjectID, before(r), auditPerPage+1)
	if err != nil {
		s.Pages.unavailable(w, "audit log", err)
		return
	}
	next := ""
	if len(entries) > auditPerPage {
		entries = entries[:auditPerPage]
		next = "?before=" + strconv.FormatInt(entries[auditPerPage-1].ID, 10)
	}
	s.Pages.render(w, r, "audit", map[string]any{"Project": m.ProjectRef, "Entries": entries, "Next": next})
}
