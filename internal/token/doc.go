// Package token issues and verifies the per-project and per-group webhook
// secret tokens that maintainers paste into GitLab, and checks the
// Standard-Webhooks style signatures that newer GitLab versions add.
//
// # Tokens
//
// A token is self-contained so that intake can authenticate a delivery from
// the X-Gitlab-Token header alone, with no database access and before the
// request body is parsed:
//
//	upb1_<base64url, no padding, of payload || HMAC-SHA256(key, label || payload)>
//
// The payload is binary: version (1 byte, = 1), key id (4 bytes), token id
// (int64, big endian), scope kind (1 byte, 'p' or 'g'), instance length
// (1 byte) and instance, path length (1 byte) and path. The MAC label
// separates token MACs from the signing secrets derived from the same key.
// Base64 decoding is strict, so every valid token has exactly one spelling.
// Tokens are at most MaxTokenLen characters; Issue refuses scopes whose
// instance and path would not fit (about 139 bytes together).
//
// Revocation is the caller's job: it stores the token id (Claims.ID) and
// refuses ids it has revoked after Verify succeeds.
//
// # Keys and the key file
//
// A Keyring holds the primary key, used by Issue, and at most one previous
// key, still accepted by Verify, so a rotation breaks no webhook. The key file
// is text, one key per line, primary first:
//
//	# comment lines and blank lines are ignored
//	<key id> <standard base64 of the secret>
//
// A key id is 8 lowercase hex digits; a secret has at least 32 bytes.
// LoadOrCreateKeyring and RotateKeyringFile refuse a key file that group or
// others may read or write (ErrInsecureKeyFile), the way ssh refuses such a
// private key: a leaked key lets anyone forge tokens. RotateKeyringFile makes
// a new primary, keeps the old primary as previous and drops the key before
// it, so tokens two rotations old stop verifying. It replaces the file
// atomically but must not run concurrently with itself. A running process
// keeps the keyring it loaded; restart it after a rotation.
//
// # Signing secrets
//
// The signing secret ("whsec_...") for a token is derived from the key that
// issued it and the token id, so nothing secret is stored in the database;
// it stops working when that key leaves the keyring, together with the
// token. VerifySignature checks the webhook-id, webhook-timestamp and
// webhook-signature headers GitLab sends when a signing token is configured.
//
// No error, and no fmt or JSON rendering of a Key or Keyring, contains a
// token, key secret or signing secret.
package token
