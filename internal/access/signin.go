package access

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// Register adds the sign-in routes to mux:
//
//	GET  /signin?instance=<url>&return_to=<path>  to GitLab's authorize page
//	GET  /signin/callback                         back from GitLab
//	POST /signout                                 (CSRF-checked)
func (g *Guard) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /signin", g.signIn)
	mux.HandleFunc("GET /signin/callback", g.callback)
	mux.HandleFunc("POST /signout", g.signOut)
}

// SignInLink is one "Sign in with <instance>" link.
type SignInLink struct {
	Instance string
	// Label is the instance's host, e.g. gitlab.gnome.org.
	Label string
	URL   string
}

// SignInLinks are the sign-in links for r's page, one per instance with an
// OAuth application, each returning to the page.
func (g *Guard) SignInLinks(r *http.Request) []SignInLink {
	back := safeReturn(r.URL.RequestURI())
	out := make([]SignInLink, 0, len(g.apps))
	for inst := range g.apps {
		label := inst
		if u, err := url.Parse(inst); err == nil {
			label = u.Host + strings.TrimRight(u.Path, "/")
		}
		out = append(out, SignInLink{Instance: inst, Label: label,
			URL: "/signin?" + url.Values{"instance": {inst}, "return_to": {back}}.Encode()})
	}
	slices.SortFunc(out, func(a, b SignInLink) int { return strings.Compare(a.Label, b.Label) })
	return out
}

// safeReturn keeps a return_to only when it is a path on this server;
// anything else (another host, a scheme, "//host", backslashes) is "/".
func safeReturn(raw string) string {
	if raw == "" || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") || strings.ContainsAny(raw, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	// A sign-in that returns to the sign-in would go round in circles.
	if u.Path == "/signin" || strings.HasPrefix(u.Path, "/signin/") || u.Path == "/signout" {
		return "/"
	}
	return raw
}

func (g *Guard) oauthConfig(instance string, app OAuthApp) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     app.ClientID,
		ClientSecret: app.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   instance + "/oauth/authorize",
			TokenURL:  instance + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: strings.TrimRight(g.opts.PublicURL, "/") + "/signin/callback",
		// read_user is enough to learn who signed in; access levels are
		// asked with the bot's token.
		Scopes: []string{"read_user"},
	}
}

// pickInstance is the instance a sign-in asks for, or the only one with
// an OAuth application when it names none.
func (g *Guard) pickInstance(raw string) (string, OAuthApp, bool) {
	if raw == "" {
		if len(g.apps) != 1 {
			return "", OAuthApp{}, false
		}
		for inst, app := range g.apps {
			return inst, app, true
		}
	}
	inst, err := token.NormalizeInstanceURL(raw)
	if err != nil {
		return "", OAuthApp{}, false
	}
	app, ok := g.apps[inst]
	return inst, app, ok
}

func (g *Guard) signIn(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	inst, app, ok := g.pickInstance(q.Get("instance"))
	if !ok {
		noStore(w)
		http.Error(w, "This service offers no sign-in for that GitLab instance. Use a \"Sign in with\" link from a page of this service.", http.StatusNotFound)
		return
	}
	state, err := randomToken()
	if err != nil {
		g.fail(w, "start sign-in", err)
		return
	}
	verifier := oauth2.GenerateVerifier()
	now := g.now()
	ctx := r.Context()
	if err := g.opts.Store.CreateOAuthLogin(ctx, store.OAuthLogin{StateHash: hashHex(state), Instance: inst,
		Verifier: verifier, ReturnTo: safeReturn(q.Get("return_to")), CreatedAt: now}); err != nil {
		g.fail(w, "start sign-in", err)
		return
	}
	// Housekeeping rides along: sign-ins are rare, and the deletes use indexes.
	if _, err := g.opts.Store.PruneSignIns(ctx, now, now.Add(-signInTTL)); err != nil {
		g.log.Warn("prune expired sessions", "err", err)
	}
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: state, Path: "/signin/callback", MaxAge: int(signInTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	noStore(w)
	http.Redirect(w, r, g.oauthConfig(inst, app).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusSeeOther)
}

func (g *Guard) callback(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	q := r.URL.Query()
	// The state cookie is spent whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: "", Path: "/signin/callback", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if e := q.Get("error"); e != "" {
		// Anyone can craft this URL: repeat an OAuth error code, never
		// free text that would read as upbuild's own words.
		msg := "GitLab did not sign you in"
		if oauthErrorCode(e) {
			msg += " (" + e + ")"
		}
		http.Error(w, msg+". Sign in again from any page of this service.", http.StatusForbidden)
		return
	}
	state, code := q.Get("state"), q.Get("code")
	c, err := r.Cookie(signInCookie)
	if state == "" || code == "" || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		http.Error(w, "This sign-in did not start in this browser, or it took too long. Sign in again from any page of this service.", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	login, err := g.opts.Store.TakeOAuthLogin(ctx, hashHex(state), g.now().Add(-signInTTL))
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "This sign-in has expired or was already used. Sign in again from any page of this service.", http.StatusBadRequest)
		return
	}
	if err != nil {
		g.fail(w, "finish sign-in", err)
		return
	}
	app, ok := g.apps[login.Instance]
	if !ok {
		http.Error(w, "Sign-in with this GitLab instance is no longer offered.", http.StatusBadRequest)
		return
	}
	user, err := g.whoSignedIn(ctx, login.Instance, app, code, login.Verifier)
	if err != nil {
		g.log.Warn("sign-in refused by GitLab", "instance", login.Instance, "err", err)
		http.Error(w, "GitLab did not confirm the sign-in. Sign in again from any page of this service.", http.StatusBadGateway)
		return
	}
	sessionValue, err := randomToken()
	if err != nil {
		g.fail(w, "create session", err)
		return
	}
	csrf, err := randomToken()
	if err != nil {
		g.fail(w, "create session", err)
		return
	}
	now := g.now()
	if err := g.opts.Store.CreateWebSession(ctx, store.WebSession{IDHash: hashHex(sessionValue), Instance: login.Instance,
		UserID: user.ID, Username: user.Username, DisplayName: user.Name, CSRFToken: csrf,
		CreatedAt: now, ExpiresAt: now.Add(g.opts.SessionTTL)}); err != nil {
		g.fail(w, "create session", err)
		return
	}
	g.log.Info("signed in", "instance", login.Instance, "user", user.Username, "user_id", user.ID)
	// Secure always: browsers (and Go's cookie jar) treat http://127.0.0.1
	// and localhost as secure contexts, so local use and tests still work.
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: sessionValue, Path: "/", MaxAge: int(g.opts.SessionTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, safeReturn(login.ReturnTo), http.StatusSeeOther)
}

// oauthErrorCode says whether e looks like an OAuth2 error code
// (access_denied, invalid_scope ...).
func oauthErrorCode(e string) bool {
	if len(e) > 64 {
		return false
	}
	for _, c := range e {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// gitlabUser is the part of GET /api/v4/user that names the person.
type gitlabUser struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

// whoSignedIn exchanges the code for the user's token and asks GitLab
// whose it is. The token is then dropped: upbuild never stores it, and asks
// for access levels with the bot's token.
func (g *Guard) whoSignedIn(ctx context.Context, instance string, app OAuthApp, code, verifier string) (gitlabUser, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, g.client)
	tok, err := g.oauthConfig(instance, app).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			// Only GitLab's error code: the body is not ours to repeat.
			return gitlabUser{}, fmt.Errorf("exchange the code: %s (HTTP %d)", re.ErrorCode, re.Response.StatusCode)
		}
		return gitlabUser{}, fmt.Errorf("exchange the code: %w", err)
	}
	// The token has done its one job once GitLab said whose it is: revoke
	// it, so that it is worth nothing even before it expires.
	defer g.revoke(ctx, instance, app, tok.AccessToken)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, instance+"/api/v4/user", nil)
	if err != nil {
		return gitlabUser{}, fmt.Errorf("ask who signed in: %w", err)
	}
	tok.SetAuthHeader(req)
	resp, err := g.client.Do(req)
	if err != nil {
		return gitlabUser{}, fmt.Errorf("ask who signed in: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return gitlabUser{}, fmt.Errorf("ask who signed in: GitLab answered HTTP %d", resp.StatusCode)
	}
	var u gitlabUser
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&u); err != nil {
		return gitlabUser{}, fmt.Errorf("ask who signed in: %w", err)
	}
	if u.ID <= 0 || u.Username == "" {
		return gitlabUser{}, errors.New("ask who signed in: GitLab's answer names no user")
	}
	return u, nil
}

// revoke asks GitLab to revoke the person's token (RFC 7009). A failure is
// logged, not fatal: the token expires at GitLab anyway, and the sign-in
// itself worked.
func (g *Guard) revoke(ctx context.Context, instance string, app OAuthApp, accessToken string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	form := url.Values{"token": {accessToken}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, instance+"/oauth/revoke", strings.NewReader(form.Encode()))
	if err != nil {
		g.log.Warn("revoke the signed-in person's GitLab token", "instance", instance, "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := g.client.Do(req)
	if err != nil {
		g.log.Warn("revoke the signed-in person's GitLab token", "instance", instance, "err", err)
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode != http.StatusOK {
		g.log.Warn("revoke the signed-in person's GitLab token", "instance", instance, "status", resp.StatusCode)
	}
}

func (g *Guard) signOut(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	if err := g.CheckCSRF(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		if err := g.opts.Store.DeleteWebSession(r.Context(), hashHex(c.Value)); err != nil {
			g.fail(w, "sign out", err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (g *Guard) fail(w http.ResponseWriter, what string, err error) {
	g.log.Error(what, "err", err)
	http.Error(w, "upbuild cannot reach its database right now; try again in a minute", http.StatusServiceUnavailable)
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
}
