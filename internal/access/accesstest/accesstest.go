// Package accesstest signs a simulator user in to upbuild the way a browser
// does, for other packages' tests: upbuild's /signin, the GitLab
// simulator's sign-in form and consent page, and back to upbuild's
// callback, with the session cookie left in the client's jar.
package accesstest

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// NewBrowser is an HTTP client with a cookie jar that follows redirects,
// as SignIn needs. Go's jar, like browsers, sends Secure cookies to
// http://127.0.0.1 and localhost.
func NewBrowser() (*http.Client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("cookie jar: %w", err)
	}
	return &http.Client{Jar: jar}, nil
}

// SignIn signs username (a simulator user) in to the upbuild service at
// upbuildURL through the simulator at instanceURL, with client's cookie
// jar. It fails unless the browser ends on an upbuild page (200) signed in
// as that user.
func SignIn(ctx context.Context, client *http.Client, upbuildURL, instanceURL, username string) error {
	if client.Jar == nil {
		return errors.New("accesstest: the client needs a cookie jar")
	}
	start := strings.TrimRight(upbuildURL, "/") + "/signin?" + url.Values{"instance": {instanceURL}, "return_to": {"/"}}.Encode()
	page, err := fetch(ctx, client, http.MethodGet, start, nil)
	if err != nil {
		return err
	}
	if f, ok := findForm(page, "new_user"); ok {
		f.values.Set("username", username)
		if page, err = fetch(ctx, client, http.MethodPost, f.action, f.values); err != nil {
			return err
		}
	}
	f, ok := findForm(page, "authorize")
	if !ok {
		return fmt.Errorf("accesstest: expected the simulator's consent page, got HTTP %d at %s: %.300s", page.status, page.url, page.body)
	}
	if !strings.Contains(page.body, "Signed in as @"+html.EscapeString(username)+".") {
		return fmt.Errorf("accesstest: the simulator's browser session is not %s's: %.300s", username, page.body)
	}
	f.values.Set("commit", "Authorize")
	if page, err = fetch(ctx, client, http.MethodPost, f.action, f.values); err != nil {
		return err
	}
	if page.status != http.StatusOK || !strings.HasPrefix(page.url.String(), strings.TrimRight(upbuildURL, "/")+"/") {
		return fmt.Errorf("accesstest: sign-in ended with HTTP %d at %s: %.300s", page.status, page.url, page.body)
	}
	return nil
}

type fetched struct {
	status int
	url    *url.URL
	body   string
}

func fetch(ctx context.Context, client *http.Client, method, target string, form url.Values) (fetched, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fetched{}, fmt.Errorf("accesstest: %w", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		return fetched{}, fmt.Errorf("accesstest: %s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fetched{}, fmt.Errorf("accesstest: read %s: %w", target, err)
	}
	return fetched{status: resp.StatusCode, url: resp.Request.URL, body: string(b)}, nil
}

type form struct {
	action string
	values url.Values
}

var (
	formRe   = regexp.MustCompile(`(?s)<form id="([^"]*)" method="post" action="([^"]*)">(.*?)</form>`)
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// findForm reads the simulator's form with the given id, with its hidden
// fields, and resolves its action against the page's URL.
func findForm(p fetched, id string) (form, bool) {
	for _, m := range formRe.FindAllStringSubmatch(p.body, -1) {
		if m[1] != id {
			continue
		}
		action, err := p.url.Parse(html.UnescapeString(m[2]))
		if err != nil {
			return form{}, false
		}
		values := url.Values{}
		for _, in := range hiddenRe.FindAllStringSubmatch(m[3], -1) {
			values.Add(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
		}
		return form{action: action.String(), values: values}, true
	}
	return form{}, false
}
