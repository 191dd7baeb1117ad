package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MaxTokenLen is the longest token Issue makes, in characters: the size of
// GitLab's secret token field.
const MaxTokenLen = 255

// Prefix starts every token, so that people and secret scanners recognise one.
const Prefix = "upb1_"

// Errors from Issue and Verify. None of their messages contains the token.
var (
	ErrTooLong    = errors.New("token: too long")
	ErrMalformed  = errors.New("token: malformed")
	ErrUnknownKey = errors.New("token: issued with a key that is not in the keyring")
	ErrInvalid    = errors.New("token: invalid")
)

const (
	formatVersion = 1
	// tokenMACLabel keeps token MACs apart from other uses of the same key.
	tokenMACLabel = "upbuild token v1\n"
	macLen        = sha256.Size
	// version, key id, token id, kind, instance length, path length.
	headerLen = 1 + keyIDBytes + 8 + 1
	minRawLen = headerLen + 1 + 1 + macLen

	kindByteProject = 'p'
	kindByteGroup   = 'g'
)

// Claims is what a verified token says.
type Claims struct {
	ID    int64  // the token id the caller stored when issuing; check it is not revoked
	KeyID string // the key that issued the token
	Scope Scope
}

// Issue makes a token with the primary key for the token id (the caller's
// row id, positive) and scope.
func (k *Keyring) Issue(id int64, s Scope) (string, error) {
	if id <= 0 {
		return "", fmt.Errorf("token: token id %d is not positive", id)
	}
	if err := s.Validate(); err != nil {
		return "", err
	}
	if len(k.keys) == 0 {
		return "", fmt.Errorf("%w: the keyring is empty; make it with NewKeyring", ErrBadKey)
	}
	key := k.primary()
	raw, err := appendPayload(make([]byte, 0, minRawLen+len(s.Instance)+len(s.Path)), key.ID, id, s)
	if err != nil {
		return "", err
	}
	raw = appendTokenMAC(raw, key.Secret, raw)
	return Prefix + base64.RawURLEncoding.EncodeToString(raw), nil
}

// Verify checks a token's integrity and returns its claims. It needs no
// database and takes constant time in the MAC comparison. It fails with an
// error wrapping ErrMalformed (not a token of this service), ErrUnknownKey
// (issued with a key that has been rotated out, or by another service) or
// ErrInvalid (forged or altered).
func (k *Keyring) Verify(tok string) (Claims, error) {
	if len(tok) > MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: longer than %d characters", ErrMalformed, MaxTokenLen)
	}
	body, ok := strings.CutPrefix(tok, Prefix)
	if !ok {
		return Claims{}, fmt.Errorf("%w: does not start with %q", ErrMalformed, Prefix)
	}
	// The decoder skips CR and LF; refusing them keeps one spelling per token.
	if !isBase64URL(body) {
		return Claims{}, fmt.Errorf("%w: not base64url", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: not base64url", ErrMalformed)
	}
	if len(raw) < minRawLen {
		return Claims{}, fmt.Errorf("%w: too short", ErrMalformed)
	}
	payload, mac := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	claims, err := parsePayload(payload)
	if err != nil {
		return Claims{}, err
	}
	key, ok := k.lookup(claims.KeyID)
	if !ok {
		return Claims{}, fmt.Errorf("%w: key %s", ErrUnknownKey, claims.KeyID)
	}
	if !hmac.Equal(mac, appendTokenMAC(nil, key.Secret, payload)) {
		return Claims{}, fmt.Errorf("%w: the signature does not match", ErrInvalid)
	}
	// Only a token this service issued gets here, and Issue validated it.
	// Checking again costs little and guards callers against a leaked key.
	if err := claims.Scope.Validate(); err != nil || claims.ID <= 0 {
		return Claims{}, fmt.Errorf("%w: the claims are not valid", ErrMalformed)
	}
	return claims, nil
}

// encodedLen is the length of the token Issue makes for s.
func encodedLen(s Scope) int {
	return len(Prefix) + base64.RawURLEncoding.EncodedLen(minRawLen+len(s.Instance)+len(s.Path))
}

// appendPayload appends the binary payload described in the package comment.
// The scope must be valid, so that the lengths fit in a byte.
func appendPayload(b []byte, keyID string, id int64, s Scope) ([]byte, error) {
	b = append(b, formatVersion)
	b, err := hex.AppendDecode(b, []byte(keyID))
	if err != nil {
		return nil, fmt.Errorf("%w: a key id is not hex", ErrBadKey)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(id))
	kind := byte(kindByteProject)
	if s.Kind == ScopeGroup {
		kind = kindByteGroup
	}
	b = append(b, kind, byte(len(s.Instance)))
	b = append(b, s.Instance...)
	b = append(b, byte(len(s.Path)))
	return append(b, s.Path...), nil
}

// parsePayload reads the payload's structure; it trusts none of it.
func parsePayload(p []byte) (Claims, error) {
	if p[0] != formatVersion {
		return Claims{}, fmt.Errorf("%w: unsupported format version %d", ErrMalformed, p[0])
	}
	var c Claims
	c.KeyID = hex.EncodeToString(p[1 : 1+keyIDBytes])
	c.ID = int64(binary.BigEndian.Uint64(p[1+keyIDBytes : headerLen-1]))
	switch p[headerLen-1] {
	case kindByteProject:
		c.Scope.Kind = ScopeProject
	case kindByteGroup:
		c.Scope.Kind = ScopeGroup
	default:
		return Claims{}, fmt.Errorf("%w: unknown scope kind", ErrMalformed)
	}
	rest := p[headerLen:]
	instanceLen := int(rest[0])
	if len(rest) < 1+instanceLen+1 {
		return Claims{}, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	c.Scope.Instance = string(rest[1 : 1+instanceLen])
	rest = rest[1+instanceLen:]
	if int(rest[0]) != len(rest)-1 {
		return Claims{}, fmt.Errorf("%w: wrong path length", ErrMalformed)
	}
	c.Scope.Path = string(rest[1:])
	return c, nil
}

func appendTokenMAC(b, secret, payload []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(tokenMACLabel))
	mac.Write(payload)
	return mac.Sum(b)
}

func isBase64URL(s string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
