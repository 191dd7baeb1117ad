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
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"upbuild.dev/upbuild/internal/forge"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
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
	// Forges answer the access-level question, by normalised instance base
	// URL (as runs store it).
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
	// HTTPClient talks to GitLab's /oauth/token and /api/v4/user during
	// sign-in; nil means a client with a 30-second timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now. Tests move it to expire
	// sessions and sign-ins.
	Now func() time.Time
}

// ErrCSRF is returned by CheckCSRF for a form that did not come from a
// page of this service.
var ErrCSRF = errors.New("the form's CSRF token is missing or wrong; reload the page and try again")

// ErrUnavailable is returned by Allowed when GitLab could not be asked for
// the viewer's access level. Nothing is allowed on a guess: answer 503.
var ErrUnavailable = errors.New("GitLab could not tell upbuild your access level right now; try again in a minute")

const (
	// SessionCookie holds the session's random value; the database has
	// only its SHA-256.
	SessionCookie = "upbuild_session"
	// signInCookie binds a sign-in in progress to the browser that
	// started it, so a callback URL sent to someone else signs nobody in.
	signInCookie = "upbuild_signin"
	// signInTTL is how long a sign-in may stay at GitLab.
	signInTTL = 10 * time.Minute
)

// Guard signs people in and decides what they may do.
type Guard struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	client *http.Client
	// apps and forges are keyed by normalised instance URL.
	apps      map[string]OAuthApp
	forges    map[string]forge.Forge
	crossSite *http.CrossOriginProtection
	levels    *ttlCache[levelKey, forge.AccessLevel]
	public    *ttlCache[projectKey, bool]
}

// New builds a Guard.
func New(opts Options) (*Guard, error) {
	if opts.Store == nil {
		return nil, errors.New("access: a store is required")
	}
	if opts.LevelTTL <= 0 {
		opts.LevelTTL = time.Minute
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 7 * 24 * time.Hour
	}
	g := &Guard{opts: opts, log: opts.Logger, now: opts.Now, client: opts.HTTPClient,
		apps: map[string]OAuthApp{}, forges: map[string]forge.Forge{}, crossSite: http.NewCrossOriginProtection()}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.client == nil {
		g.client = &http.Client{Timeout: 30 * time.Second}
	}
	g.levels = newTTLCache[levelKey, forge.AccessLevel](opts.LevelTTL, g.now)
	g.public = newTTLCache[projectKey, bool](opts.LevelTTL, g.now)
	for raw, app := range opts.Apps {
		key, err := token.NormalizeInstanceURL(raw)
		if err != nil {
			return nil, fmt.Errorf("access: OAuth app for %q: %w", raw, err)
		}
		if app.ClientID == "" || app.ClientSecret == "" {
			return nil, fmt.Errorf("access: the OAuth app for %s needs a client ID and a secret", key)
		}
		if opts.PublicURL == "" {
			return nil, errors.New("access: sign-in needs the public URL for its redirect URI")
		}
		g.apps[key] = app
	}
	for raw, f := range opts.Forges {
		key, err := token.NormalizeInstanceURL(raw)
		if err != nil {
			return nil, fmt.Errorf("access: forge for %q: %w", raw, err)
		}
		g.forges[key] = f
	}
	return g, nil
}

// Viewer is who made r: the admin token, a valid session, or nobody.
func (g *Guard) Viewer(r *http.Request) (Viewer, bool) {
	if g.operator(r) {
		return Viewer{Operator: true}, true
	}
	s, ok := g.session(r)
	if !ok {
		return Viewer{}, false
	}
	return Viewer{Instance: s.Instance, UserID: s.UserID, Username: s.Username, Name: s.DisplayName}, true
}

// session is r's signed-in session, if its cookie names a live one.
// sessionMemoKey marks a request's sessionMemo in its context.
type sessionMemoKey struct{}

// sessionMemo is a request's session, read once.
type sessionMemo struct {
	once    sync.Once
	session store.WebSession
	found   bool
}

// Remember wraps h so that a request's session is read from the database
// at most once, however many times its handler asks who is signed in, what
// they may do and which CSRF token their forms carry.
func (g *Guard) Remember(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionMemoKey{}, &sessionMemo{})))
	})
}

func (g *Guard) session(r *http.Request) (store.WebSession, bool) {
	if m, ok := r.Context().Value(sessionMemoKey{}).(*sessionMemo); ok {
		m.once.Do(func() { m.session, m.found = g.readSession(r) })
		return m.session, m.found
	}
	return g.readSession(r)
}

func (g *Guard) readSession(r *http.Request) (store.WebSession, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return store.WebSession{}, false
	}
	s, err := g.opts.Store.WebSession(r.Context(), hashHex(c.Value), g.now())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			g.log.Warn("read session", "err", err)
		}
		return store.WebSession{}, false
	}
	return s, true
}

func (g *Guard) operator(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && g.opts.AdminToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(g.opts.AdminToken)) == 1
}

// Allowed says whether r's viewer may do a on p. Anyone may SeePrivate a
// public project. A viewer signed in at another instance may do nothing
// beyond that. A forge error is returned, not guessed at: it matches
// ErrUnavailable.
func (g *Guard) Allowed(ctx context.Context, r *http.Request, p Project, a Action) (bool, error) {
	if g.operator(r) {
		return true, nil
	}
	if p.Public && a == SeePrivate && g.stillPublic(ctx, p) {
		return true, nil
	}
	v, ok := g.Viewer(r)
	if !ok {
		return false, nil
	}
	instance, err := token.NormalizeInstanceURL(p.Instance)
	if err != nil || instance != v.Instance {
		return false, nil
	}
	level, err := g.level(ctx, instance, p.ID, v.UserID)
	if err != nil {
		return false, err
	}
	return level >= a.Needs(), nil
}

// StillPublicRuns keeps the runs of projects that are still public: GitLab
// sends no webhook when a project goes private, and a list of public runs
// must not keep showing such a project's titles to anyone. Each project is
// asked once (and cached as stillPublic does).
func (g *Guard) StillPublicRuns(ctx context.Context, runs []store.Run) []store.Run {
	type key struct {
		instance string
		id       int64
	}
	public := map[key]bool{}
	kept := make([]store.Run, 0, len(runs))
	for _, run := range runs {
		k := key{run.Instance, run.ProjectID}
		ok, seen := public[k]
		if !seen {
			ok = g.stillPublic(ctx, Project{Instance: run.Instance, ID: run.ProjectID, Public: true})
			public[k] = ok
		}
		if ok {
			kept = append(kept, run)
		}
	}
	return kept
}

// stillPublic checks with GitLab, at most once per LevelTTL and project,
// that a project upbuild last saw public still is: one that went private
// stops being shown to everyone then, not at its next webhook delivery.
// When GitLab cannot be asked, or upbuild has no bot token for the
// instance, what upbuild last saw stands; a project the bot can no longer
// see at all is no longer public.
func (g *Guard) stillPublic(ctx context.Context, p Project) bool {
	instance, err := token.NormalizeInstanceURL(p.Instance)
	if err != nil {
		return true
	}
	key := projectKey{instance: instance, projectID: p.ID}
	if public, ok := g.public.get(key); ok {
		return public
	}
	f, ok := g.forges[instance]
	if !ok {
		return true
	}
	info, err := f.Project(ctx, strconv.FormatInt(p.ID, 10))
	switch {
	case errors.Is(err, forge.ErrNotFound):
		g.public.put(key, false)
		return false
	case err != nil:
		g.log.Warn("ask GitLab whether a project is still public", "instance", instance, "project_id", p.ID, "err", err)
		return true
	}
	public := info.Visibility == "" || info.Visibility == "public"
	g.public.put(key, public)
	return public
}

// level is the user's access level on the project, from the cache or
// from GitLab with the bot's token.
func (g *Guard) level(ctx context.Context, instance string, projectID, userID int64) (forge.AccessLevel, error) {
	key := levelKey{instance: instance, projectID: projectID, userID: userID}
	if l, ok := g.levels.get(key); ok {
		return l, nil
	}
	f, ok := g.forges[instance]
	if !ok {
		return forge.NoAccess, fmt.Errorf("%w (upbuild has no bot token for %s)", ErrUnavailable, instance)
	}
	l, err := f.AccessLevel(ctx, projectID, userID)
	if err != nil {
		g.log.Warn("ask GitLab for an access level", "instance", instance, "project_id", projectID, "user_id", userID, "err", err)
		return forge.NoAccess, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	g.levels.put(key, l)
	return l, nil
}

// CSRFToken is the token to put into a form's "csrf" field; empty when
// nobody is signed in.
func (g *Guard) CSRFToken(r *http.Request) string {
	s, ok := g.session(r)
	if !ok {
		return ""
	}
	return s.CSRFToken
}

// CheckCSRF verifies a POSTed form's "csrf" field (or an X-CSRF-Token
// header) against r's session, and refuses requests a browser marks as
// cross-origin (Sec-Fetch-Site, Origin). Requests with the admin token need
// none: they carry no cookie.
func (g *Guard) CheckCSRF(r *http.Request) error {
	if g.operator(r) {
		return nil
	}
	if err := g.crossSite.Check(r); err != nil {
		return ErrCSRF
	}
	s, ok := g.session(r)
	if !ok {
		return ErrCSRF
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRFToken)) != 1 {
		return ErrCSRF
	}
	return nil
}

// hashHex is the SHA-256 of a secret, as stored.
func hashHex(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
