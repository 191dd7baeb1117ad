// Package access signs people in to the dashboard with GitLab OAuth2
// (authorization code with PKCE, one OAuth application per configured
// instance) and answers what a signed-in person may do on a project, from
// GitLab's effective access level, cached briefly:
//
//	see a public project's runs     anyone, no sign-in
//	see a private project's pages   Reporter or higher   (SeePrivate)
//	re-run, cancel, approve         Developer or higher  (Trigger)
//	change settings, manage tokens  Maintainer or higher (Administer)
//
// The operator's admin token ("Authorization: Bearer <token>") may do
// everything. Sessions live in the database (web_sessions), so any web node
// can serve any request; the cookie is Secure, HttpOnly and SameSite=Lax, and
// every state-changing form carries a per-session CSRF token.
package access

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/store"
)

// Action is something a person wants to do on a project.
type Action int

// The actions the dashboard guards.
const (
	// SeePrivate is reading the pages, logs and artifacts of a project
	// that is not public.
	SeePrivate Action = iota
	// Trigger is re-running, cancelling or approving jobs.
	Trigger
	// Administer is changing settings and issuing or revoking tokens.
	Administer
)

// Needs is the lowest GitLab access level that may do a.
func (a Action) Needs() forge.AccessLevel {
	switch a {
	case Trigger:
		return forge.Developer
	case Administer:
		return forge.Maintainer
	default:
		return forge.Reporter
	}
}

// Viewer is who made a request.
type Viewer struct {
	// Instance is the GitLab base URL the person signed in at; a GitLab
	// account only means something on its own instance.
	Instance string
	UserID   int64
	Username string
	Name     string
	// Operator is true for the admin token: it may do everything.
	Operator bool
}

// Actor names the viewer in the audit log.
func (v Viewer) Actor() string {
	if v.Operator {
		return "operator"
	}
	return v.Username
}

// Project is what an access decision is about.
type Project struct {
	Instance string
	ID       int64
	// Public projects' pages are open to everyone; everything else about
	// them still needs the level the action needs.
	Public bool
}

// OAuthApp is the OAuth2 application registered on one GitLab instance
// (Admin → Applications, scope read_user, redirect URI
// <public URL>/signin/callback).
type OAuthApp struct {
	ClientID     string
	ClientSecret string
}

// Options configure a Guard.
type Options struct {
	Store *store.Store
	// Forges answer the access-level question, by instance base URL.
	Forges map[string]forge.Forge
	// Apps are the OAuth2 applications, by instance base URL. An instance
	// without one offers no sign-in.
	Apps map[string]OAuthApp
	// PublicURL is this service's base URL, for the OAuth2 redirect URI.
	PublicURL  string
	AdminToken string
	// LevelTTL is how long an access level is trusted before GitLab is
	// asked again; 0 means one minute.
	LevelTTL time.Duration
	// SessionTTL is how long a sign-in lasts; 0 means 7 days.
	SessionTTL time.Duration
	Logger     *slog.Logger
}

// ErrCSRF is returned by CheckCSRF for a form that did not come from a
// page of this service.
var ErrCSRF = errors.New("the form's CSRF token is missing or wrong; reload the page and try again")

// Guard signs people in and decides what they may do.
type Guard struct {
	opts Options
}

// New builds a Guard.
func New(opts Options) (*Guard, error) {
	if opts.Store == nil {
		return nil, errors.New("access: a store is required")
	}
	return &Guard{opts: opts}, nil
}

// Register adds the sign-in routes to mux:
//
//	GET  /signin?instance=<url>&return_to=<path>  to GitLab's authorize page
//	GET  /signin/callback                         back from GitLab
//	POST /signout                                 (CSRF-checked)
func (g *Guard) Register(mux *http.ServeMux) {}

// Viewer is who made r: the admin token, a valid session, or nobody.
func (g *Guard) Viewer(r *http.Request) (Viewer, bool) {
	if g.operator(r) {
		return Viewer{Operator: true}, true
	}
	return Viewer{}, false
}

func (g *Guard) operator(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && g.opts.AdminToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(g.opts.AdminToken)) == 1
}

// Allowed says whether r's viewer may do a on p. Anyone may SeePrivate a
// public project. A viewer signed in at another instance may do nothing
// beyond that. A forge error is returned, not guessed at.
func (g *Guard) Allowed(ctx context.Context, r *http.Request, p Project, a Action) (bool, error) {
	if g.operator(r) {
		return true, nil
	}
	return p.Public && a == SeePrivate, nil
}

// CSRFToken is the token to put into a form's "csrf" field; empty when
// nobody is signed in.
func (g *Guard) CSRFToken(r *http.Request) string { return "" }

// CheckCSRF verifies a POSTed form's "csrf" field against r's session.
// Requests with the admin token need none: they carry no cookie.
func (g *Guard) CheckCSRF(r *http.Request) error {
	if g.operator(r) {
		return nil
	}
	return ErrCSRF
}
