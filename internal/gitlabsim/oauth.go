package gitlabsim

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The OAuth2 provider side, as GitLab (Doorkeeper) runs it:
//
//	GET  /oauth/authorize   the consent page, after a sign-in form when the
//	                        browser has no simulator session
//	POST /users/sign_in     the sign-in form: a username, no password (the
//	                        simulator has no passwords; tests pick the user)
//	POST /oauth/authorize   "Authorize": back to redirect_uri with ?code&state
//	POST /oauth/token       authorization_code and refresh_token grants
//	POST /oauth/revoke      token revocation (RFC 7009), client authenticated
//
// Authorization codes are single use and live ten minutes; access tokens
// live two hours (expires_in 7200) and work as "Authorization: Bearer" on
// /api/v4 like a personal access token, within their scopes: a token with
// only read_user reaches GET /user and GET /users, nothing else (403
// insufficient_scope, as GitLab answers). PKCE: S256 and plain, checked at
// the token endpoint when the authorization carried a code_challenge.

const (
	oauthCodeTTL      = 10 * time.Minute
	oauthTokenTTL     = 2 * time.Hour
	simSessionCookie  = "_gitlab_session"
	oauthErrGrantText = "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."
)

// oauthState is the provider's memory. Its zero value is ready; it is
// guarded by Simulator.mu.
type oauthState struct {
	apps     map[string]*oauthApp   // by client ID
	codes    map[string]*oauthGrant // by code
	tokens   map[string]*oauthToken // by access token
	refresh  map[string]*oauthToken // by refresh token
	sessions map[string]int64       // browser session cookie → user ID
}

type oauthApp struct {
	clientID    string
	secret      string
	redirectURI string
	scopes      []string
}

type oauthGrant struct {
	clientID    string
	userID      int64
	redirectURI string
	scopes      []string
	challenge   string
	method      string
	expires     time.Time
}

type oauthToken struct {
	access   string
	refresh  string
	clientID string
	userID   int64
	scopes   []string
	created  time.Time
	expires  time.Time
	revoked  bool
}

func (o *oauthState) init() {
	if o.apps == nil {
		o.apps = map[string]*oauthApp{}
		o.codes = map[string]*oauthGrant{}
		o.tokens = map[string]*oauthToken{}
		o.refresh = map[string]*oauthToken{}
		o.sessions = map[string]int64{}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	return hex.EncodeToString(b)
}

// AddOAuthApp registers an OAuth2 application (Admin → Applications) with
// one redirect URI and its scopes ("read_user", "api" ...), and returns its
// application ID and secret.
func (s *Simulator) AddOAuthApp(redirectURI string, scopes ...string) (clientID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.init()
	app := &oauthApp{clientID: randomHex(32), secret: "gloas-" + randomHex(32), redirectURI: redirectURI, scopes: slices.Clone(scopes)}
	s.oauth.apps[app.clientID] = app
	return app.clientID, app.secret
}

// OAuthTokens lists the access tokens the provider issued and that are
// still valid, for tests that check a client forgot them.
func (s *Simulator) OAuthTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	now := s.now()
	for tok, t := range s.oauth.tokens {
		if !t.revoked && now.Before(t.expires) {
			out = append(out, tok)
		}
	}
	slices.Sort(out)
	return out
}

// IssuedOAuthTokens lists every access token the provider issued, revoked
// and expired ones too, for tests that search for them where they must
// not be.
func (s *Simulator) IssuedOAuthTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.oauth.tokens))
	for tok := range s.oauth.tokens {
		out = append(out, tok)
	}
	slices.Sort(out)
	return out
}

// apiUserLocked is the user a /api/v4 token belongs to: a personal access
// token, or an OAuth2 access token that has not expired and whose scopes
// cover the call. A nil user with a nil error means no such token (401).
func (s *Simulator) apiUserLocked(token, method string, segs []string) (*User, *apiError) {
	if u := s.userByTokenLocked(token); u != nil {
		return u, nil
	}
	t, ok := s.oauth.tokens[token]
	if !ok || t.revoked || !s.now().Before(t.expires) {
		return nil, nil
	}
	u := s.users[t.userID]
	if u == nil {
		return nil, nil
	}
	readUserOnly := method == http.MethodGet && len(segs) == 1 && (segs[0] == "user" || segs[0] == "users")
	switch {
	case slices.Contains(t.scopes, "api"):
	case slices.Contains(t.scopes, "read_api") && method == http.MethodGet:
	case slices.Contains(t.scopes, "read_user") && readUserOnly:
	default:
		return nil, &apiError{http.StatusForbidden, map[string]any{
			"error":             "insufficient_scope",
			"error_description": "The request requires higher privileges than provided by the access token.",
			"scope":             "api read_api",
		}}
	}
	return u, nil
}

func (s *Simulator) serveOAuth(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/oauth/authorize" && r.Method == http.MethodGet:
		s.authorizePage(w, r)
	case r.URL.Path == "/oauth/authorize" && r.Method == http.MethodPost:
		s.authorizeDecision(w, r)
	case r.URL.Path == "/users/sign_in" && r.Method == http.MethodPost:
		s.signInForm(w, r)
	case r.URL.Path == "/oauth/token" && r.Method == http.MethodPost:
		s.issueToken(w, r)
	case r.URL.Path == "/oauth/revoke" && r.Method == http.MethodPost:
		s.revokeToken(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	}
}

// authRequest is an authorization request, checked.
type authRequest struct {
	app       *oauthApp
	scopes    []string
	state     string
	challenge string
	method    string
}

// checkAuthRequest validates the parameters of an authorization request.
// A bad client or redirect URI is an error page (GitLab never redirects to
// a URI it does not trust); any other problem goes back to the client as
// ?error=..&state=.. in the redirect URI, which the first result carries.
func (s *Simulator) checkAuthRequest(params url.Values) (authRequest, string, *apiError) {
	s.mu.Lock()
	s.oauth.init()
	app := s.oauth.apps[params.Get("client_id")]
	s.mu.Unlock()
	if app == nil {
		return authRequest{}, "", &apiError{http.StatusUnauthorized, "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."}
	}
	if params.Get("redirect_uri") != app.redirectURI {
		return authRequest{}, "", &apiError{http.StatusBadRequest, "The redirect URI included is not valid."}
	}
	req := authRequest{app: app, state: params.Get("state"),
		challenge: params.Get("code_challenge"), method: params.Get("code_challenge_method")}
	back := func(code, description string) (authRequest, string, *apiError) {
		v := url.Values{"error": {code}, "error_description": {description}}
		if req.state != "" {
			v.Set("state", req.state)
		}
		return authRequest{}, withQuery(app.redirectURI, v), nil
	}
	if params.Get("response_type") != "code" {
		return back("unsupported_response_type", "The authorization server does not support this response type.")
	}
	req.scopes = strings.Fields(params.Get("scope"))
	if len(req.scopes) == 0 {
		req.scopes = app.scopes
	}
	for _, sc := range req.scopes {
		if !slices.Contains(app.scopes, sc) {
			return back("invalid_scope", "The requested scope is invalid, unknown, or malformed.")
		}
	}
	if req.challenge != "" {
		if req.method == "" {
			req.method = "plain"
		}
		if req.method != "S256" && req.method != "plain" {
			return back("invalid_request", "The code challenge method must be plain or S256.")
		}
	}
	return req, "", nil
}

func withQuery(base string, v url.Values) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + v.Encode()
}

// browserUser is the user signed in to the simulator in this browser.
func (s *Simulator) browserUser(r *http.Request) *User {
	c, err := r.Cookie(simSessionCookie)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.init()
	id, ok := s.oauth.sessions[c.Value]
	if !ok {
		return nil
	}
	return s.users[id]
}

var oauthPages = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · GitLab simulator</title></head><body>
<h1>Sign in to the GitLab simulator</h1>
<p>The simulator has no passwords: any existing username signs in.</p>
{{if .Error}}<p class="flash-alert">{{.Error}}</p>{{end}}
<form id="new_user" method="post" action="/users/sign_in">
{{range $k, $vs := .Params}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<label for="user_login">Username</label> <input type="text" id="user_login" name="username" autofocus>
<button type="submit" name="commit" value="Sign in">Sign in</button>
</form>
</body></html>
{{define "consent"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize · GitLab simulator</title></head><body>
<h1>Authorize application</h1>
<p>Signed in as @{{.Username}}. An application wants to use your account with the scopes: {{.Scopes}}.</p>
<form id="authorize" method="post" action="/oauth/authorize">
{{range $k, $vs := .Params}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<button type="submit" name="commit" value="Authorize">Authorize</button>
<button type="submit" name="commit" value="Deny">Deny</button>
</form>
</body></html>
{{end}}
{{define "error"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error · GitLab simulator</title></head><body>
<h1>An error has occurred</h1><p>{{.}}</p></body></html>
{{end}}`))

func renderOAuthPage(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = oauthPages.ExecuteTemplate(w, name, data) // a failed write means the browser left
}

// authorizeParams are the parameters of an authorization request that the
// forms carry from page to page.
var authorizeParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method"}

func pickParams(from url.Values) url.Values {
	out := url.Values{}
	for _, k := range authorizeParams {
		if v, ok := from[k]; ok {
			out[k] = v
		}
	}
	return out
}

// signedInAuthRequest checks an authorization request and who is signed in
// to the simulator in this browser. When ok is false it has answered
// already: with an error page, a redirect back to the client, or the
// sign-in form that carries params on.
func (s *Simulator) signedInAuthRequest(w http.ResponseWriter, r *http.Request, params url.Values) (req authRequest, u *User, ok bool) {
	req, redirect, apiErr := s.checkAuthRequest(params)
	switch {
	case apiErr != nil:
		renderOAuthPage(w, apiErr.status, "error", apiErr.body)
		return req, nil, false
	case redirect != "":
		http.Redirect(w, r, redirect, http.StatusFound)
		return req, nil, false
	}
	u = s.browserUser(r)
	if u == nil {
		renderOAuthPage(w, http.StatusOK, "signin", map[string]any{"Params": params})
		return req, nil, false
	}
	return req, u, true
}

func (s *Simulator) authorizePage(w http.ResponseWriter, r *http.Request) {
	params := pickParams(r.URL.Query())
	req, u, ok := s.signedInAuthRequest(w, r, params)
	if !ok {
		return
	}
	renderOAuthPage(w, http.StatusOK, "consent", map[string]any{
		"Username": u.Username, "Scopes": strings.Join(req.scopes, " "), "Params": params,
	})
}

func (s *Simulator) signInForm(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderOAuthPage(w, http.StatusBadRequest, "error", "The form could not be read.")
		return
	}
	params := pickParams(r.PostForm)
	s.mu.Lock()
	s.oauth.init()
	u := s.userByUsernameLocked(r.PostForm.Get("username"))
	var session string
	if u != nil {
		session = randomHex(32)
		s.oauth.sessions[session] = u.ID
	}
	s.mu.Unlock()
	if u == nil {
		renderOAuthPage(w, http.StatusUnauthorized, "signin", map[string]any{"Params": params, "Error": "Invalid login or password."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: simSessionCookie, Value: session, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/oauth/authorize?"+params.Encode(), http.StatusFound)
}

func (s *Simulator) authorizeDecision(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderOAuthPage(w, http.StatusBadRequest, "error", "The form could not be read.")
		return
	}
	req, u, ok := s.signedInAuthRequest(w, r, pickParams(r.PostForm))
	if !ok {
		return
	}
	back := url.Values{}
	if req.state != "" {
		back.Set("state", req.state)
	}
	if r.PostForm.Get("commit") != "Authorize" {
		back.Set("error", "access_denied")
		back.Set("error_description", "The resource owner or authorization server denied the request.")
		http.Redirect(w, r, withQuery(req.app.redirectURI, back), http.StatusFound)
		return
	}
	code := randomHex(32)
	s.mu.Lock()
	now := s.now()
	s.oauth.codes[code] = &oauthGrant{clientID: req.app.clientID, userID: u.ID, redirectURI: req.app.redirectURI,
		scopes: req.scopes, challenge: req.challenge, method: req.method, expires: now.Add(oauthCodeTTL)}
	s.mu.Unlock()
	back.Set("code", code)
	http.Redirect(w, r, withQuery(req.app.redirectURI, back), http.StatusFound)
}

func oauthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="Doorkeeper", error="`+code+`"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// clientCredentials reads the client's ID and secret from HTTP Basic auth
// or from the form, both of which Doorkeeper accepts.
func clientCredentials(r *http.Request) (string, string) {
	if id, secret, ok := r.BasicAuth(); ok {
		return id, secret
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
}

func pkceMatches(method, challenge, verifier string) bool {
	if verifier == "" {
		return false
	}
	want := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// authenticateClientLocked reads a token endpoint's form and checks the
// client's credentials, answering the request itself when either fails.
func (s *Simulator) authenticateClientLocked(w http.ResponseWriter, r *http.Request) (*oauthApp, bool) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.")
		return nil, false
	}
	clientID, secret := clientCredentials(r)
	s.oauth.init()
	app := s.oauth.apps[clientID]
	if app == nil || subtle.ConstantTimeCompare([]byte(secret), []byte(app.secret)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.")
		return nil, false
	}
	return app, true
}

// revokeToken is RFC 7009 token revocation as GitLab does it: the client
// authenticates; a token that is unknown or another client's is answered
// 200 like a revoked one, and left alone.
func (s *Simulator) revokeToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.authenticateClientLocked(w, r)
	if !ok {
		return
	}
	tok := r.PostForm.Get("token")
	t, ok := s.oauth.tokens[tok]
	if !ok {
		t, ok = s.oauth.refresh[tok]
	}
	if ok && t.clientID == app.clientID {
		t.revoked = true
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Simulator) issueToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.authenticateClientLocked(w, r)
	if !ok {
		return
	}
	now := s.now()
	var userID int64
	var scopes []string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		g, ok := s.oauth.codes[code]
		// A code is spent by its first exchange, whatever the outcome.
		delete(s.oauth.codes, code)
		if !ok || g.clientID != app.clientID || !now.Before(g.expires) || r.PostForm.Get("redirect_uri") != g.redirectURI {
			oauthError(w, http.StatusBadRequest, "invalid_grant", oauthErrGrantText)
			return
		}
		if g.challenge != "" && !pkceMatches(g.method, g.challenge, r.PostForm.Get("code_verifier")) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", oauthErrGrantText)
			return
		}
		userID, scopes = g.userID, g.scopes
	case "refresh_token":
		old, ok := s.oauth.refresh[r.PostForm.Get("refresh_token")]
		if !ok || old.revoked || old.clientID != app.clientID {
			oauthError(w, http.StatusBadRequest, "invalid_grant", oauthErrGrantText)
			return
		}
		old.revoked = true
		delete(s.oauth.refresh, old.refresh)
		userID, scopes = old.userID, old.scopes
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
		return
	}
	t := &oauthToken{access: randomHex(32), refresh: randomHex(32), clientID: app.clientID, userID: userID,
		scopes: scopes, created: now, expires: now.Add(oauthTokenTTL)}
	s.oauth.tokens[t.access] = t
	s.oauth.refresh[t.refresh] = t
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": t.access, "token_type": "Bearer", "expires_in": int(oauthTokenTTL / time.Second),
		"refresh_token": t.refresh, "scope": strings.Join(scopes, " "), "created_at": now.Unix(),
	})
}
