package token

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ScopeKind says whether a token covers one project or a group.
type ScopeKind string

// The scope kinds a token can have.
const (
	ScopeProject ScopeKind = "project" // exactly one project
	ScopeGroup   ScopeKind = "group"   // every project in the group and its subgroups
)

// ErrBadURL reports an instance or project URL that cannot be used. Its
// messages never repeat the URL, which may carry credentials.
var ErrBadURL = errors.New("token: bad URL")

// ErrBadScope reports a scope that is not valid: an unknown kind, an instance
// that is not normalised, or a malformed path.
var ErrBadScope = errors.New("token: bad scope")

// Scope is what a token grants: webhooks for one project or one group tree on
// one GitLab instance.
type Scope struct {
	Kind     ScopeKind
	Instance string // normalised base URL, as returned by NormalizeInstanceURL
	Path     string // full path of the project or group, e.g. "GNOME/gtk"
}

// String describes the scope for people, e.g. "project https://gitlab.gnome.org/GNOME/gtk".
func (s Scope) String() string {
	return string(s.Kind) + " " + s.Instance + "/" + s.Path
}

// Validate reports whether the scope can be put in a token: a known kind, a
// normalised instance, a well-formed path, and short enough that the token
// stays within MaxTokenLen. Callers can check before storing a token row.
func (s Scope) Validate() error {
	if s.Kind != ScopeProject && s.Kind != ScopeGroup {
		return fmt.Errorf("%w: kind %q is neither %q nor %q", ErrBadScope, s.Kind, ScopeProject, ScopeGroup)
	}
	normalized, err := NormalizeInstanceURL(s.Instance)
	if err != nil {
		return fmt.Errorf("%w: instance: %w", ErrBadScope, err)
	}
	if normalized != s.Instance {
		return fmt.Errorf("%w: instance %q is not normalised (want %q)", ErrBadScope, s.Instance, normalized)
	}
	if err := validatePath(s.Path); err != nil {
		return fmt.Errorf("%w: path: %w", ErrBadScope, err)
	}
	if n := encodedLen(s); n > MaxTokenLen {
		return fmt.Errorf("%w: the token would be %d characters, over the limit of %d; instance and path are too long together",
			ErrTooLong, n, MaxTokenLen)
	}
	return nil
}

// Covers reports whether the scope grants webhooks for the project at
// projectPath on instance. GitLab paths compare case-insensitively; a group
// covers its subgroups but not a sibling whose name merely starts the same
// ("GNOME/gtk" does not cover "GNOME/gtk-foo").
func (s Scope) Covers(instance, projectPath string) bool {
	normalized, err := NormalizeInstanceURL(instance)
	if err != nil || normalized != s.Instance || validatePath(projectPath) != nil {
		return false
	}
	switch s.Kind {
	case ScopeProject:
		return strings.EqualFold(projectPath, s.Path)
	case ScopeGroup:
		if len(projectPath) == len(s.Path) {
			return strings.EqualFold(projectPath, s.Path)
		}
		return len(projectPath) > len(s.Path) &&
			projectPath[len(s.Path)] == '/' &&
			strings.EqualFold(projectPath[:len(s.Path)], s.Path)
	default:
		return false
	}
}

// NormalizeInstanceURL returns the canonical form of a GitLab instance base
// URL: lowercase http or https scheme, lowercase host, the port only when it
// is not the scheme's default, the relative root (if any) without a trailing
// slash. "HTTPS://GitLab.Example.org:443/gitlab/" becomes
// "https://gitlab.example.org/gitlab". Credentials, queries and fragments are
// refused.
func NormalizeInstanceURL(raw string) (string, error) {
	u, err := parseHTTPURL(raw)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("%w: an instance URL has no query or fragment", ErrBadURL)
	}
	root := strings.TrimRight(u.Path, "/")
	if root != "" {
		if err := validatePath(root[1:]); err != nil {
			return "", fmt.Errorf("%w: relative root: %w", ErrBadURL, err)
		}
	}
	return u.Scheme + "://" + u.Host + root, nil
}

// ParseProjectURL splits a project URL as copied from the browser or a clone
// URL into instance and project path: "https://gitlab.gnome.org/GNOME/gtk.git"
// gives ("https://gitlab.gnome.org", "GNOME/gtk"). A trailing ".git" and
// anything from "/-/" on (".../-/merge_requests/1") are dropped. It assumes
// the instance has no relative root; use SplitProjectURL for one that has.
func ParseProjectURL(raw string) (instance, path string, err error) {
	u, err := parseHTTPURL(raw)
	if err != nil {
		return "", "", err
	}
	path, err = projectPathFrom(u.Path)
	if err != nil {
		return "", "", err
	}
	return u.Scheme + "://" + u.Host, path, nil
}

// SplitProjectURL is ParseProjectURL for an instance whose base URL is known,
// which is the only way to handle an instance with a relative root:
// SplitProjectURL("https://example.org/gitlab", "https://example.org/gitlab/group/proj")
// gives ("https://example.org/gitlab", "group/proj").
func SplitProjectURL(instanceBase, raw string) (instance, path string, err error) {
	instance, err = NormalizeInstanceURL(instanceBase)
	if err != nil {
		return "", "", err
	}
	u, err := parseHTTPURL(raw)
	if err != nil {
		return "", "", err
	}
	rest, ok := strings.CutPrefix(u.Scheme+"://"+u.Host+u.Path, instance+"/")
	if !ok {
		return "", "", fmt.Errorf("%w: the project URL is not on instance %s", ErrBadURL, instance)
	}
	path, err = projectPathFrom(rest)
	if err != nil {
		return "", "", err
	}
	return instance, path, nil
}

// parseHTTPURL parses raw as an absolute http or https URL and normalises
// scheme and host (u.Host holds host[:port] with a non-default port only).
func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Error repeats the whole input, which may hold a password.
		return nil, fmt.Errorf("%w: not a valid URL", ErrBadURL)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: the scheme must be http or https", ErrBadURL)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("%w: no host", ErrBadURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: the URL must not contain credentials", ErrBadURL)
	}
	if u.RawPath != "" {
		// "%2F" would decode into a path separator; GitLab paths need no escapes.
		return nil, fmt.Errorf("%w: the path is percent-encoded", ErrBadURL)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return nil, fmt.Errorf("%w: no host", ErrBadURL)
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%w: bad port", ErrBadURL)
		}
		if !(u.Scheme == "https" && n == 443) && !(u.Scheme == "http" && n == 80) {
			host += ":" + strconv.Itoa(n)
		}
	}
	u.Host = host
	return u, nil
}

// projectPathFrom turns the path part of a project URL into a project path.
func projectPathFrom(p string) (string, error) {
	if i := strings.Index(p, "/-/"); i >= 0 {
		p = p[:i]
	}
	p = strings.TrimSuffix(p, "/-")
	p = strings.Trim(p, "/")
	p = strings.TrimSuffix(p, ".git")
	if p == "" {
		return "", fmt.Errorf("%w: the URL has no project path", ErrBadURL)
	}
	if err := validatePath(p); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	return p, nil
}

// validatePath checks a GitLab full path: slash-separated segments made of
// ASCII letters, digits, '_', '-' and '.', none empty, "." or "..".
func validatePath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("path %q has an empty, \".\" or \"..\" segment", p)
		}
		for _, c := range []byte(seg) {
			if !isPathByte(c) {
				return fmt.Errorf("path %q has a character GitLab paths cannot contain", p)
			}
		}
	}
	return nil
}

func isPathByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == '.'
}
