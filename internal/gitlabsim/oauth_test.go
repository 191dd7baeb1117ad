package gitlabsim_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

const redirectURI = "http://127.0.0.1:9/signin/callback"

// browser is an HTTP client with cookies that does not follow redirects,
// so each step of the flow can be looked at.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

type page struct {
	status   int
	body     string
	location string
}

func do(t *testing.T, c *http.Client, method, u string, form url.Values) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
}

// authorize signs username in at the simulator and authorizes the app,
// returning the query GitLab redirected back with.
func authorize(t *testing.T, w *world, c *http.Client, params url.Values, username string) url.Values {
	t.Helper()
	signIn := do(t, c, http.MethodGet, w.url+"/oauth/authorize?"+params.Encode(), nil)
	if signIn.status != http.StatusOK || !strings.Contains(signIn.body, `action="/users/sign_in"`) {
		t.Fatalf("authorize without a session = %d %q, want the sign-in form", signIn.status, signIn.body)
	}
	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	form.Set("username", username)
	signedIn := do(t, c, http.MethodPost, w.url+"/users/sign_in", form)
	if signedIn.status != http.StatusFound {
		t.Fatalf("sign-in form = %d %q, want a redirect back to authorize", signedIn.status, signedIn.body)
	}
	consent := do(t, c, http.MethodGet, w.url+signedIn.location, nil)
	if consent.status != http.StatusOK || !strings.Contains(consent.body, "Signed in as @"+username) || !strings.Contains(consent.body, `value="Authorize"`) {
		t.Fatalf("consent page = %d %q", consent.status, consent.body)
	}
	form.Del("username")
	form.Set("commit", "Authorize")
	back := do(t, c, http.MethodPost, w.url+"/oauth/authorize", form)
	if back.status != http.StatusFound || !strings.HasPrefix(back.location, redirectURI+"?") {
		t.Fatalf("authorize = %d to %q, want a redirect to %s", back.status, back.location, redirectURI)
	}
	u, err := url.Parse(back.location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func authParams(clientID, challenge string) url.Values {
	return url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"state": {"st-1"}, "scope": {"read_user"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
}

func exchange(t *testing.T, w *world, form url.Values) (int, map[string]any) {
	t.Helper()
	p := do(t, http.DefaultClient, http.MethodPost, w.url+"/oauth/token", form)
	var out map[string]any
	if err := json.Unmarshal([]byte(p.body), &out); err != nil {
		t.Fatalf("token answer %d %q is not JSON: %v", p.status, p.body, err)
	}
	return p.status, out
}

func TestOAuthAuthorizationCodeWithPKCE(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	clientID, secret := w.sim.AddOAuthApp(redirectURI, "read_user")
	verifier := strings.Repeat("v", 50)
	got := authorize(t, w, browser(t), authParams(clientID, s256(verifier)), "rita")
	if got.Get("state") != "st-1" || got.Get("code") == "" {
		t.Fatalf("redirect query = %v, want a code and state st-1", got)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {got.Get("code")}, "redirect_uri": {redirectURI},
		"client_id": {clientID}, "client_secret": {secret}, "code_verifier": {verifier}}
	status, tok := exchange(t, w, form)
	if status != http.StatusOK || tok["token_type"] != "Bearer" || tok["expires_in"] != float64(7200) ||
		tok["scope"] != "read_user" || tok["access_token"] == "" || tok["refresh_token"] == "" || tok["created_at"] == nil {
		t.Fatalf("token answer = %d %v", status, tok)
	}
	access := tok["access_token"].(string)

	// The token is a Bearer token on /api/v4/user, within read_user only.
	req, _ := http.NewRequest(http.MethodGet, w.url+"/api/v4/user", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var user map[string]any
	err = json.NewDecoder(resp.Body).Decode(&user)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || user["username"] != "rita" || user["id"] != float64(w.reporter.ID) {
		t.Fatalf("GET /user with the OAuth token = %d %v %v", resp.StatusCode, user, err)
	}
	req, _ = http.NewRequest(http.MethodGet, w.url+"/api/v4/projects/"+strconv.FormatInt(w.project.ID, 10), nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /projects/:id with a read_user token = %d, want 403 insufficient_scope", resp.StatusCode)
	}

	// The code is spent.
	if status, body := exchange(t, w, form); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("replayed code = %d %v, want 400 invalid_grant", status, body)
	}

	// Two hours later the token no longer works.
	w.clock.Advance(2*time.Hour + time.Second)
	if tokens := w.sim.OAuthTokens(); len(tokens) != 0 {
		t.Fatalf("valid tokens after two hours = %d, want 0", len(tokens))
	}
	req, _ = http.NewRequest(http.MethodGet, w.url+"/api/v4/user", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired token on /user = %d, want 401", resp.StatusCode)
	}
}

func TestOAuthTokenRefusals(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	clientID, secret := w.sim.AddOAuthApp(redirectURI, "read_user")
	verifier := strings.Repeat("k", 43)
	for _, tc := range []struct {
		name   string
		change func(url.Values)
		wait   time.Duration
		status int
		errStr string
	}{
		{"wrong verifier", func(f url.Values) { f.Set("code_verifier", strings.Repeat("x", 43)) }, 0, 400, "invalid_grant"},
		{"no verifier", func(f url.Values) { f.Del("code_verifier") }, 0, 400, "invalid_grant"},
		{"other redirect URI", func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:9/elsewhere") }, 0, 400, "invalid_grant"},
		{"wrong secret", func(f url.Values) { f.Set("client_secret", "nope") }, 0, 401, "invalid_client"},
		{"unknown code", func(f url.Values) { f.Set("code", "made-up") }, 0, 400, "invalid_grant"},
		{"other grant type", func(f url.Values) { f.Set("grant_type", "password") }, 0, 400, "unsupported_grant_type"},
		{"code older than ten minutes", func(url.Values) {}, 10*time.Minute + time.Second, 400, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := authorize(t, w, browser(t), authParams(clientID, s256(verifier)), "alice")
			w.clock.Advance(tc.wait)
			form := url.Values{"grant_type": {"authorization_code"}, "code": {got.Get("code")}, "redirect_uri": {redirectURI},
				"client_id": {clientID}, "client_secret": {secret}, "code_verifier": {verifier}}
			tc.change(form)
			status, body := exchange(t, w, form)
			if status != tc.status || body["error"] != tc.errStr || body["error_description"] == "" {
				t.Fatalf("token answer = %d %v, want %d %s", status, body, tc.status, tc.errStr)
			}
		})
	}
}

func TestOAuthAuthorizeRefusals(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	clientID, _ := w.sim.AddOAuthApp(redirectURI, "read_user")
	c := browser(t)

	bad := authParams(clientID, s256("x"))
	bad.Set("redirect_uri", "https://evil.example/cb")
	if p := do(t, c, http.MethodGet, w.url+"/oauth/authorize?"+bad.Encode(), nil); p.status != http.StatusBadRequest ||
		p.location != "" || !strings.Contains(p.body, "The redirect URI included is not valid.") {
		t.Fatalf("unregistered redirect URI = %d to %q %q, want an error page and no redirect", p.status, p.location, p.body)
	}
	bad = authParams("unknown", s256("x"))
	if p := do(t, c, http.MethodGet, w.url+"/oauth/authorize?"+bad.Encode(), nil); p.status != http.StatusUnauthorized || p.location != "" {
		t.Fatalf("unknown client = %d to %q, want an error page", p.status, p.location)
	}
	bad = authParams(clientID, s256("x"))
	bad.Set("scope", "api")
	p := do(t, c, http.MethodGet, w.url+"/oauth/authorize?"+bad.Encode(), nil)
	if p.status != http.StatusFound || !strings.Contains(p.location, "error=invalid_scope") || !strings.Contains(p.location, "state=st-1") {
		t.Fatalf("scope beyond the app's = %d to %q, want a redirect with error=invalid_scope", p.status, p.location)
	}

	// Deny goes back with access_denied and no code.
	params := authParams(clientID, s256("x"))
	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	form.Set("username", "alice")
	do(t, c, http.MethodPost, w.url+"/users/sign_in", form)
	form.Del("username")
	form.Set("commit", "Deny")
	p = do(t, c, http.MethodPost, w.url+"/oauth/authorize", form)
	if p.status != http.StatusFound || !strings.Contains(p.location, "error=access_denied") || strings.Contains(p.location, "code=") {
		t.Fatalf("deny = %d to %q, want access_denied", p.status, p.location)
	}

	// Unknown usernames do not sign in.
	form.Set("username", "nobody")
	if p := do(t, browser(t), http.MethodPost, w.url+"/users/sign_in", form); p.status != http.StatusUnauthorized ||
		!strings.Contains(p.body, "Invalid login or password.") {
		t.Fatalf("unknown user = %d %q", p.status, p.body)
	}
}

func TestOAuthRevokeWorksOnlyForTheClientsOwnTokens(t *testing.T) {
	w := newWorld(t, gitlabsim.Options{})
	clientID, secret := w.sim.AddOAuthApp(redirectURI, "read_user")
	otherID, otherSecret := w.sim.AddOAuthApp(redirectURI, "read_user")
	verifier := strings.Repeat("r", 43)
	got := authorize(t, w, browser(t), authParams(clientID, s256(verifier)), "rita")
	status, tok := exchange(t, w, url.Values{"grant_type": {"authorization_code"}, "code": {got.Get("code")},
		"redirect_uri": {redirectURI}, "client_id": {clientID}, "client_secret": {secret}, "code_verifier": {verifier}})
	if status != http.StatusOK {
		t.Fatalf("token answer = %d %v", status, tok)
	}
	access := tok["access_token"].(string)
	userStatus := func() int {
		req, _ := http.NewRequest(http.MethodGet, w.url+"/api/v4/user", nil)
		req.Header.Set("Authorization", "Bearer "+access)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	revoke := func(id, sec string) page {
		return do(t, http.DefaultClient, http.MethodPost, w.url+"/oauth/revoke",
			url.Values{"token": {access}, "client_id": {id}, "client_secret": {sec}})
	}
	if p := revoke(clientID, "wrong"); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "invalid_client") {
		t.Fatalf("revoke with a wrong secret = %d %s, want 401 invalid_client", p.status, p.body)
	}
	// Another client is answered like a success, and the token lives on.
	if p := revoke(otherID, otherSecret); p.status != http.StatusOK || userStatus() != http.StatusOK {
		t.Fatalf("revoke by another client = %d, then GET /user = %d; want 200 and the token still working", p.status, userStatus())
	}
	if p := revoke(clientID, secret); p.status != http.StatusOK || p.body != "{}" {
		t.Fatalf("revoke = %d %q, want 200 {}", p.status, p.body)
	}
	if s := userStatus(); s != http.StatusUnauthorized {
		t.Fatalf("GET /user with the revoked token = %d, want 401", s)
	}
	if valid := w.sim.OAuthTokens(); len(valid) != 0 {
		t.Fatalf("valid tokens after revocation: %d, want 0", len(valid))
	}
}
