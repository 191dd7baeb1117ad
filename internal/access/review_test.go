package access_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/testdb"
)

// GitLab sends the callback back with an OAuth error code when a sign-in
// fails. Anyone can craft that URL and send it to a victim, so the page
// names only codes, never arbitrary text in upbuild's voice.
func TestSignInErrorsEchoOnlyOAuthErrorCodes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		svc := newService(t, dbURL, 0)
		for _, c := range []struct {
			code   string
			shows  string
			hidden string
		}{
			{"access_denied", "(access_denied)", ""},
			{"Your account is locked. Call +1 555 0100 to unlock it", "", "Call"},
			{"<b>x</b>", "", "<b>"},
		} {
			a := get(t, newBrowser(t), svc.url+"/signin/callback?"+url.Values{"error": {c.code}}.Encode())
			if a.status != http.StatusForbidden || !strings.Contains(a.body, "GitLab did not sign you in") {
				t.Errorf("callback with error %q = %d %q", c.code, a.status, a.body)
			}
			if c.shows != "" && !strings.Contains(a.body, c.shows) {
				t.Errorf("callback with error %q does not name it: %q", c.code, a.body)
			}
			if c.hidden != "" && strings.Contains(a.body, c.hidden) {
				t.Errorf("callback with error %q repeats the attacker's text: %q", c.code, a.body)
			}
		}
	})
}
