package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// WebSession is a signed-in person on the dashboard. IDHash is the SHA-256
// of the cookie value (hex); the value itself is never stored.
type WebSession struct {
	IDHash      string
	Instance    string
	UserID      int64
	Username    string
	DisplayName string
	// CSRFToken is the per-session token every state-changing form carries.
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// OAuthLogin is a sign-in that went to GitLab and has not come back yet.
// StateHash is the SHA-256 of the OAuth2 state parameter (hex).
type OAuthLogin struct {
	StateHash string
	Instance  string
	// Verifier is the PKCE code verifier. It is only useful together with
	// a code that GitLab hands to the browser that started the sign-in.
	Verifier  string
	ReturnTo  string
	CreatedAt time.Time
}

// CreateOAuthLogin records a sign-in in progress.
func (s *Store) CreateOAuthLogin(ctx context.Context, l OAuthLogin) error {
	if l.CreatedAt.IsZero() {
		l.CreatedAt = time.Now()
	}
	_, err := s.write.ExecContext(ctx, s.q(`INSERT INTO oauth_logins (state_hash, instance, verifier, return_to, created_at)
		VALUES (?, ?, ?, ?, ?)`), l.StateHash, l.Instance, l.Verifier, l.ReturnTo, micros(l.CreatedAt))
	if err != nil {
		return fmt.Errorf("record sign-in: %w", err)
	}
	return nil
}

// TakeOAuthLogin removes and returns the sign-in with stateHash, so that a
// state works once. ErrNotFound when there is none, or when it was created
// before notBefore (it has expired; it is removed all the same).
func (s *Store) TakeOAuthLogin(ctx context.Context, stateHash string, notBefore time.Time) (OAuthLogin, error) {
	l := OAuthLogin{StateHash: stateHash}
	var created int64
	err := s.write.QueryRowContext(ctx, s.q(`DELETE FROM oauth_logins WHERE state_hash = ?
		RETURNING instance, verifier, return_to, created_at`), stateHash).
		Scan(&l.Instance, &l.Verifier, &l.ReturnTo, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return OAuthLogin{}, ErrNotFound
	}
	if err != nil {
		return OAuthLogin{}, fmt.Errorf("finish sign-in: %w", err)
	}
	l.CreatedAt = fromMicros(created)
	if l.CreatedAt.Before(notBefore) {
		return OAuthLogin{}, ErrNotFound
	}
	return l, nil
}

// CreateWebSession stores a new session.
func (s *Store) CreateWebSession(ctx context.Context, ws WebSession) error {
	if ws.CreatedAt.IsZero() {
		ws.CreatedAt = time.Now()
	}
	_, err := s.write.ExecContext(ctx, s.q(`INSERT INTO web_sessions
		(id_hash, instance, user_id, username, display_name, csrf_token, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		ws.IDHash, ws.Instance, ws.UserID, ws.Username, ws.DisplayName, ws.CSRFToken, micros(ws.CreatedAt), micros(ws.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// WebSession returns the session with idHash that has not expired at now;
// ErrNotFound otherwise.
func (s *Store) WebSession(ctx context.Context, idHash string, now time.Time) (WebSession, error) {
	ws := WebSession{IDHash: idHash}
	var created, expires int64
	err := s.read.QueryRowContext(ctx, s.q(`SELECT instance, user_id, username, display_name, csrf_token, created_at, expires_at
		FROM web_sessions WHERE id_hash = ? AND expires_at > ?`), idHash, micros(now)).
		Scan(&ws.Instance, &ws.UserID, &ws.Username, &ws.DisplayName, &ws.CSRFToken, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return WebSession{}, ErrNotFound
	}
	if err != nil {
		return WebSession{}, fmt.Errorf("read session: %w", err)
	}
	ws.CreatedAt, ws.ExpiresAt = fromMicros(created), fromMicros(expires)
	return ws, nil
}

// DeleteWebSession ends a session; ending one that does not exist is not
// an error.
func (s *Store) DeleteWebSession(ctx context.Context, idHash string) error {
	if _, err := s.write.ExecContext(ctx, s.q(`DELETE FROM web_sessions WHERE id_hash = ?`), idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// PruneSignIns deletes sessions that expired before now and sign-ins
// started before loginsBefore, and says how many rows went.
func (s *Store) PruneSignIns(ctx context.Context, now, loginsBefore time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, s.q(`DELETE FROM web_sessions WHERE expires_at <= ?`), micros(now))
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	sessions, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	res, err = s.write.ExecContext(ctx, s.q(`DELETE FROM oauth_logins WHERE created_at < ?`), micros(loginsBefore))
	if err != nil {
		return 0, fmt.Errorf("prune sign-ins: %w", err)
	}
	logins, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune sign-ins: %w", err)
	}
	return sessions + logins, nil
}
