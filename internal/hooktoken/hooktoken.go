// Package hooktoken issues, revokes and lists the webhook tokens that
// maintainers paste into GitLab. It joins the pure token package with the
// store: the store keeps a record per token (never the token itself), the
// keyring derives the token from the record's ID.
package hooktoken

import (
	"context"
	"errors"
	"fmt"
	"time"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/token"
)

// Events are the webhook triggers a maintainer ticks in GitLab.
var Events = []string{"Push events", "Tag push events", "Comments", "Merge request events", "Releases events"}

// Issued is a freshly issued token, shown once.
type Issued struct {
	Record        store.TokenRecord
	Token         string
	SigningSecret string // "" unless signing was asked for
	WebhookURL    string
}

// Manager issues and revokes tokens.
type Manager struct {
	Store     *store.Store
	Keyring   *token.Keyring
	PublicURL string
	// Instances are the served instances' base URLs, normalised.
	Instances []string
	Now       func() time.Time
}

// ErrInstanceNotServed means the URL's instance is not in the configuration.
var ErrInstanceNotServed = errors.New("instance is not served by this upbuild")

// Scope turns a project or group URL into a scope on a served instance. An
// instance with a relative URL root is matched by prefix.
func (m *Manager) Scope(rawURL string, group bool) (token.Scope, error) {
	kind := token.ScopeProject
	if group {
		kind = token.ScopeGroup
	}
	for _, inst := range m.Instances {
		if instance, path, err := token.SplitProjectURL(inst, rawURL); err == nil {
			return token.Scope{Kind: kind, Instance: instance, Path: path}, nil
		}
	}
	instance, _, err := token.ParseProjectURL(rawURL)
	if err != nil {
		return token.Scope{}, fmt.Errorf("project URL: %w", err)
	}
	return token.Scope{}, fmt.Errorf("%s: %w; add it to the configuration's instances", instance, ErrInstanceNotServed)
}

// Issue creates a token for a scope.
func (m *Manager) Issue(ctx context.Context, scope token.Scope, signing bool, by string) (Issued, error) {
	if err := scope.Validate(); err != nil {
		return Issued{}, err
	}
	now := m.now()
	rec := store.TokenRecord{Instance: scope.Instance, ScopeKind: string(scope.Kind), ScopePath: scope.Path,
		KeyID: m.Keyring.KeyIDs()[0], Signing: signing, CreatedAt: now, CreatedBy: by}
	id, err := m.Store.CreateToken(ctx, rec)
	if err != nil {
		return Issued{}, err
	}
	rec.ID = id
	tok, err := m.Keyring.Issue(id, scope)
	if err != nil {
		return Issued{}, fmt.Errorf("issue token: %w", err)
	}
	out := Issued{Record: rec, Token: tok, WebhookURL: m.PublicURL + "/api/webhooks/gitlab"}
	if signing {
		claims, err := m.Keyring.Verify(tok)
		if err != nil {
			return Issued{}, fmt.Errorf("issue signing token: %w", err)
		}
		if out.SigningSecret, err = m.Keyring.SigningSecret(claims); err != nil {
			return Issued{}, fmt.Errorf("issue signing token: %w", err)
		}
	}
	return out, nil
}

// Revoke invalidates every token issued so far for exactly this scope.
func (m *Manager) Revoke(ctx context.Context, scope token.Scope) (int64, error) {
	return m.Store.RevokeTokens(ctx, scope.Instance, scope.Path, m.now())
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}
