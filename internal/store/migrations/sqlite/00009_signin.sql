-- +goose Up
-- Dashboard sign-in (GitLab OAuth2 with PKCE). Cookie values are never
-- stored, only their SHA-256, so a copy of the database signs nobody in.
CREATE TABLE web_sessions (
    id_hash      TEXT    PRIMARY KEY,
    instance     TEXT    NOT NULL,
    user_id      INTEGER  NOT NULL,
    username     TEXT    NOT NULL,
    display_name TEXT    NOT NULL DEFAULT '',
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER  NOT NULL,
    expires_at   INTEGER  NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- A sign-in that went to GitLab and has not come back yet: the PKCE
-- verifier and where to return, keyed by the hashed OAuth2 state.
CREATE TABLE oauth_logins (
    state_hash TEXT    PRIMARY KEY,
    instance   TEXT    NOT NULL,
    verifier   TEXT    NOT NULL,
    return_to  TEXT    NOT NULL DEFAULT '/',
    created_at INTEGER  NOT NULL
);

-- +goose Down
DROP TABLE oauth_logins;
DROP INDEX web_sessions_expiry;
DROP TABLE web_sessions;
