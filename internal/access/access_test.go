package access_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/access/accesstest"
	"upbuild.dev/upbuild/internal/gitlabsim"
	"upbuild.dev/upbuild/internal/testdb"
)

func TestSignInWithGitLab(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		svc := newService(t, dbURL, time.Minute)
		ctx := context.Background()
		browser, err := accesstest.NewBrowser()
		if err != nil {
			t.Fatal(err)
		}
		if err := accesstest.SignIn(ctx, browser, svc.url, svc.a.url, "rita"); err != nil {
			t.Fatal(err)
		}
		home := get(t, browser, svc.url+"/")
		if !strings.HasPrefix(home.body, "signed in as @rita at "+svc.a.url+"; csrf=") || strings.HasSuffix(home.body, "csrf=") {
			t.Fatalf("home = %q, want rita signed in with a CSRF token", home.body)
		}

		// The cookie: Secure, HttpOnly, SameSite=Lax, the whole site.
		c := <-svc.cookies
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != int((24*time.Hour).Seconds()) || len(c.Value) < 43 {
			t.Fatalf("session cookie = %+v", c)
		}

		// The user's GitLab token did its one job and was revoked at GitLab.
		tokens := svc.a.sim.IssuedOAuthTokens()
		if len(tokens) != 1 {
			t.Fatalf("tokens GitLab issued = %d, want 1", len(tokens))
		}
		if valid := svc.a.sim.OAuthTokens(); len(valid) != 0 {
			t.Errorf("%d GitLab tokens still valid after sign-in, want the one revoked", len(valid))
		}
		// Neither the user's GitLab token nor the cookie value is in the
		// database or the log.
		db := dump(t, svc.store)
		for what, secret := range map[string]string{"GitLab token": tokens[0], "session cookie": c.Value, "client secret": "gloas-"} {
			if strings.Contains(db, secret) {
				t.Errorf("the database holds the %s", what)
			}
			if strings.Contains(svc.logs.String(), secret) {
				t.Errorf("the log holds the %s", what)
			}
		}
		if !strings.Contains(svc.logs.String(), "signed in") {
			t.Errorf("log = %q, want the sign-in recorded", svc.logs.String())
		}
	})
}

func TestSignInRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		svc := newService(t, dbURL, time.Minute)

		t.Run("wrong state", func(t *testing.T) {
			c := newBrowser(t)
			cb, err := url.Parse(startSignIn(t, c, svc, svc.a, "rita", "/"))
			if err != nil {
				t.Fatal(err)
			}
			q := cb.Query()
			q.Set("state", strings.Repeat("A", 43))
			cb.RawQuery = q.Encode()
			if a := get(t, c, cb.String()); a.status != http.StatusBadRequest {
				t.Fatalf("callback with a wrong state = %d %q, want 400", a.status, a.body)
			}
			if home := get(t, c, svc.url+"/"); home.body != "anonymous" {
				t.Fatalf("home = %q, want anonymous", home.body)
			}
		})

		t.Run("callback in another browser", func(t *testing.T) {
			cb := startSignIn(t, newBrowser(t), svc, svc.a, "rita", "/")
			other := newBrowser(t)
			if a := get(t, other, cb); a.status != http.StatusBadRequest {
				t.Fatalf("someone else's callback URL = %d %q, want 400", a.status, a.body)
			}
			if home := get(t, other, svc.url+"/"); home.body != "anonymous" {
				t.Fatalf("home = %q, want anonymous", home.body)
			}
		})

		t.Run("replayed callback", func(t *testing.T) {
			c := newBrowser(t)
			cb := startSignIn(t, c, svc, svc.a, "rita", "/")
			// Keep the sign-in cookie to replay it along with the URL.
			u, err := url.Parse(svc.url + "/signin/callback")
			if err != nil {
				t.Fatal(err)
			}
			saved := c.Jar.Cookies(u)
			if a := get(t, c, cb); a.status != http.StatusSeeOther {
				t.Fatalf("first callback = %d %q", a.status, a.body)
			}
			replay := newBrowser(t)
			replay.Jar.SetCookies(u, saved)
			if a := get(t, replay, cb); a.status != http.StatusBadRequest || !strings.Contains(a.body, "already used") {
				t.Fatalf("replayed callback = %d %q, want 400", a.status, a.body)
			}
		})

		t.Run("code with another sign-in's verifier", func(t *testing.T) {
			// An attacker's code, delivered with the victim's own state,
			// meets the victim's PKCE verifier: GitLab refuses it.
			attacker := newBrowser(t)
			stolen, err := url.Parse(startSignIn(t, attacker, svc, svc.a, "olga", "/"))
			if err != nil {
				t.Fatal(err)
			}
			victim := newBrowser(t)
			mine, err := url.Parse(startSignIn(t, victim, svc, svc.a, "rita", "/"))
			if err != nil {
				t.Fatal(err)
			}
			q := mine.Query()
			q.Set("code", stolen.Query().Get("code"))
			mine.RawQuery = q.Encode()
			if a := get(t, victim, mine.String()); a.status != http.StatusBadGateway {
				t.Fatalf("callback with a code for another verifier = %d %q, want 502", a.status, a.body)
			}
			if home := get(t, victim, svc.url+"/"); home.body != "anonymous" {
				t.Fatalf("home = %q, want anonymous", home.body)
			}
		})

		t.Run("sign-in older than ten minutes", func(t *testing.T) {
			c := newBrowser(t)
			cb := startSignIn(t, c, svc, svc.a, "rita", "/")
			svc.clock.Advance(11 * time.Minute)
			if a := get(t, c, cb); a.status != http.StatusBadRequest {
				t.Fatalf("late callback = %d %q, want 400", a.status, a.body)
			}
		})

		t.Run("denied at GitLab", func(t *testing.T) {
			c := newBrowser(t)
			if a := get(t, c, svc.url+"/signin/callback?error=access_denied&state=x"); a.status != http.StatusForbidden ||
				!strings.Contains(a.body, "GitLab did not sign you in") {
				t.Fatalf("denied callback = %d %q", a.status, a.body)
			}
		})

		t.Run("instance without sign-in", func(t *testing.T) {
			a := get(t, newBrowser(t), svc.url+"/signin?instance="+url.QueryEscape("https://gitlab.invalid"))
			if a.status != http.StatusNotFound || a.location != "" {
				t.Fatalf("sign-in at an unknown instance = %d to %q, want 404", a.status, a.location)
			}
		})

		t.Run("expired session", func(t *testing.T) {
			c := signIn(t, svc, svc.a, "rita")
			svc.clock.Advance(24*time.Hour + time.Second)
			if home := get(t, c, svc.url+"/"); home.body != "anonymous" {
				t.Fatalf("home a day later = %q, want anonymous", home.body)
			}
		})
	})
}

func TestReturnToStaysOnThisSite(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		svc := newService(t, dbURL, time.Minute)
		for _, tc := range []struct{ returnTo, want string }{
			{"/elsewhere?x=1", "/elsewhere?x=1"},
			{"https://evil.example/", "/"},
			{"//evil.example/", "/"},
			{"/\\evil.example", "/"},
			{"evil.example", "/"},
			{"javascript:alert(1)", "/"},
			{"/signin?instance=x", "/"},
			{"", "/"},
		} {
			c := newBrowser(t)
			a := get(t, c, startSignIn(t, c, svc, svc.a, "rita", tc.returnTo))
			if a.status != http.StatusSeeOther || a.location != tc.want {
				t.Errorf("return_to %q: callback = %d to %q, want %q", tc.returnTo, a.status, a.location, tc.want)
			}
		}
	})
}

func TestAccessLevels(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		svc := newService(t, dbURL, time.Minute)
		want := map[string]map[string]string{
			"gina": {"see": "false", "trigger": "false", "administer": "false"},
			"rita": {"see": "true", "trigger": "false", "administer": "false"},
			"dev":  {"see": "true", "trigger": "true", "administer": "false"},
			"mona": {"see": "true", "trigger": "true", "administer": "true"},
			"olga": {"see": "false", "trigger": "false", "administer": "false"},
		}
		for user, byAction := range want {
			c := signIn(t, svc, svc.a, user)
			for action, w := range byAction {
				if got := svc.check(t, c, svc.a, svc.a.project, action); got != w {
					t.Errorf("%s may %s the private project: %s, want %s", user, action, got, w)
				}
			}
			// The public project is open to read, and no more for a Guest.
			if got := svc.check(t, c, svc.a, svc.a.public, "see"); got != "true" {
				t.Errorf("%s may see the public project: %s, want true", user, got)
			}
		}

		anonymous := newBrowser(t)
		for action, w := range map[string]string{"see": "true", "trigger": "false", "administer": "false"} {
			if got := svc.check(t, anonymous, svc.a, svc.a.public, action); got != w {
				t.Errorf("anyone may %s the public project: %s, want %s", action, got, w)
			}
			if got := svc.check(t, anonymous, svc.a, svc.a.project, action); got != "false" {
				t.Errorf("anyone may %s the private project: %s, want false", action, got)
			}
		}

		// Signed in at B as a user with the same ID as A's Maintainer:
		// nothing on A's private project.
		atB := signIn(t, svc, svc.b, "mona")
		for _, action := range []string{"see", "trigger", "administer"} {
			if got := svc.check(t, atB, svc.a, svc.a.project, action); got != "false" {
				t.Errorf("mona@B may %s A's private project: %s, want false", action, got)
			}
		}
		if got := svc.check(t, atB, svc.b, svc.b.project, "administer"); got != "true" {
			t.Errorf("mona@B may administer B's project: %s, want true", got)
		}

		// The admin token may do everything, without a session.
		req := http.Header{"Authorization": {"Bearer admin-secret"}}
		q := url.Values{"instance": {svc.a.url}, "project": {"1"}, "action": {"administer"}}
		if a := send(t, newBrowser(t), http.MethodGet, svc.url+"/check?"+q.Encode(), nil, req); a.body != "true" {
			t.Errorf("the admin token may administer: %q, want true", a.body)
		}
	})
}

func TestLevelCacheLastsAtMostLevelTTL(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		svc := newService(t, dbURL, 30*time.Second)
		c := signIn(t, svc, svc.a, "mona")
		if got := svc.check(t, c, svc.a, svc.a.project, "administer"); got != "true" {
			t.Fatalf("maintainer administers: %s", got)
		}
		if got := svc.check(t, c, svc.a, svc.a.project, "trigger"); got != "true" || svc.a.levelQueries.Load() != 1 {
			t.Fatalf("second check = %s after %d questions to GitLab, want true after 1", got, svc.a.levelQueries.Load())
		}
		if err := svc.a.sim.AddProjectMember(svc.a.project.ID, svc.a.users["mona"].ID, gitlabsim.Guest); err != nil {
			t.Fatal(err)
		}
		svc.clock.Advance(29 * time.Second)
		if got := svc.check(t, c, svc.a, svc.a.project, "administer"); got != "true" || svc.a.levelQueries.Load() != 1 {
			t.Fatalf("within the TTL = %s after %d questions, want the cached level (true, 1)", got, svc.a.levelQueries.Load())
		}
		svc.clock.Advance(time.Second)
		if got := svc.check(t, c, svc.a, svc.a.project, "see"); got != "false" || svc.a.levelQueries.Load() != 2 {
			t.Fatalf("after the TTL = %s after %d questions, want the demotion seen (false, 2)", got, svc.a.levelQueries.Load())
		}
	})
}

func TestAProjectThatWentPrivateStopsBeingPublicWithinLevelTTL(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		svc := newService(t, dbURL, 30*time.Second)
		anonymous := newBrowser(t)
		if got := svc.check(t, anonymous, svc.a, svc.a.public, "see"); got != "true" {
			t.Fatalf("anyone sees the public project: %s", got)
		}
		// Its maintainers make it private; GitLab sends no webhook for that.
		if err := svc.a.sim.SetProjectVisibility(svc.a.public.ID, gitlabsim.Private); err != nil {
			t.Fatal(err)
		}
		svc.clock.Advance(29 * time.Second)
		if got := svc.check(t, anonymous, svc.a, svc.a.public, "see"); got != "true" {
			t.Fatalf("within the TTL, what GitLab said last stands: %s, want true", got)
		}
		svc.clock.Advance(time.Second)
		if got := svc.check(t, anonymous, svc.a, svc.a.public, "see"); got != "false" {
			t.Fatalf("after the TTL, anyone still sees the project that went private: %s", got)
		}
		// Its members still do.
		if err := svc.a.sim.AddProjectMember(svc.a.public.ID, svc.a.users["rita"].ID, gitlabsim.Reporter); err != nil {
			t.Fatal(err)
		}
		if got := svc.check(t, signIn(t, svc, svc.a, "rita"), svc.a, svc.a.public, "see"); got != "true" {
			t.Fatalf("a member of the project that went private: %s, want true", got)
		}
	})
}

func TestARequestReadsItsSessionOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		svc := newService(t, dbURL, time.Minute)
		c := signIn(t, svc, svc.a, "rita")
		if got := get(t, c, svc.url+"/twice"); got.body != "@rita then @rita" {
			t.Fatalf("a request that asks twice, its session deleted in between: %q", got.body)
		}
		// The next request reads the database again, and finds no session.
		if got := get(t, c, svc.url+"/twice"); got.body != "@ then @" {
			t.Fatalf("the request after the sessions were deleted: %q", got.body)
		}
	})
}

func TestForgeErrorDenies(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		svc := newService(t, dbURL, time.Minute)
		c := signIn(t, svc, svc.a, "mona")
		svc.a.sim.InjectFault(gitlabsim.Fault{PathPrefix: "/api/v4/projects/", Kind: gitlabsim.FaultError, Status: http.StatusInternalServerError})
		got := svc.check(t, c, svc.a, svc.a.project, "see")
		if !strings.HasPrefix(got, "503 GitLab could not tell upbuild your access level") {
			t.Fatalf("check while GitLab fails = %q, want a 503 with a clear sentence", got)
		}
		svc.a.sim.ClearFaults()
		if got := svc.check(t, c, svc.a, svc.a.project, "see"); got != "true" {
			t.Fatalf("check after GitLab recovered = %q, want true (errors are not cached)", got)
		}
	})
}

func TestSignOutNeedsCSRF(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		svc := newService(t, dbURL, time.Minute)
		c := signIn(t, svc, svc.a, "rita")
		_, csrf, _ := strings.Cut(get(t, c, svc.url+"/").body, "csrf=")
		for name, tc := range map[string]struct {
			form   url.Values
			header http.Header
		}{
			"missing":    {url.Values{}, nil},
			"wrong":      {url.Values{"csrf": {strings.Repeat("x", len(csrf))}}, nil},
			"cross-site": {url.Values{"csrf": {csrf}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		} {
			if a := send(t, c, http.MethodPost, svc.url+"/signout", tc.form, tc.header); a.status != http.StatusForbidden ||
				!strings.Contains(a.body, "CSRF token") {
				t.Errorf("sign-out with a %s token = %d %q, want 403", name, a.status, a.body)
			}
		}
		if home := get(t, c, svc.url+"/"); !strings.HasPrefix(home.body, "signed in as @rita") {
			t.Fatalf("home after refused sign-outs = %q, want still signed in", home.body)
		}
		// The old cookie is worth nothing once signed out, even replayed.
		u, err := url.Parse(svc.url)
		if err != nil {
			t.Fatal(err)
		}
		old := c.Jar.Cookies(u)
		if a := send(t, c, http.MethodPost, svc.url+"/signout", url.Values{"csrf": {csrf}}, nil); a.status != http.StatusSeeOther || a.location != "/" {
			t.Fatalf("sign-out = %d to %q", a.status, a.location)
		}
		replay := newBrowser(t)
		replay.Jar.SetCookies(u, old)
		if home := get(t, replay, svc.url+"/"); home.body != "anonymous" {
			t.Fatalf("home with the signed-out cookie = %q, want anonymous", home.body)
		}
	})
}
