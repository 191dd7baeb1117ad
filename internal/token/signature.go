package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SigningSecretPrefix starts every signing secret, as GitLab expects.
const SigningSecretPrefix = "whsec_"

// DefaultSignatureTolerance is how far webhook-timestamp may be from the
// receiver's clock, either way, before a delivery is refused as a replay.
const DefaultSignatureTolerance = 5 * time.Minute

// Errors from VerifySignature. None of their messages contains a secret.
var (
	// ErrSignatureMissing: a webhook-id, webhook-timestamp or
	// webhook-signature header is absent, so the hook has no signing token.
	ErrSignatureMissing = errors.New("token: webhook signature missing")
	// ErrSignatureInvalid: the headers are malformed or no signature matches.
	ErrSignatureInvalid = errors.New("token: webhook signature invalid")
	// ErrSignatureTimestamp: the signature matches but webhook-timestamp is
	// too old or in the future.
	ErrSignatureTimestamp = errors.New("token: webhook timestamp out of tolerance")
	// ErrBadSigningSecret: the signing secret given to VerifySignature is
	// not a "whsec_" secret.
	ErrBadSigningSecret = errors.New("token: bad signing secret")
)

const (
	// signingLabel keeps derived signing secrets apart from token MACs.
	signingLabel = "upbuild signing v1\n"
	// Standard Webhooks secrets are 24 to 64 bytes; ours are 32.
	minSigningKeyLen = 24
	maxSigningKeyLen = 64
)

// SigningSecret returns the signing token ("whsec_" and the standard base64
// of 32 bytes) the maintainer configures next to the token with these
// claims. It is derived from the issuing key and the token id, so it needs
// no storage and stops working when that key leaves the keyring.
func (k *Keyring) SigningSecret(c Claims) (string, error) {
	if c.ID <= 0 {
		return "", fmt.Errorf("token: token id %d is not positive", c.ID)
	}
	key, ok := k.lookup(c.KeyID)
	if !ok {
		return "", fmt.Errorf("%w: key %s", ErrUnknownKey, c.KeyID)
	}
	mac := hmac.New(sha256.New, key.Secret)
	mac.Write([]byte(signingLabel))
	mac.Write(binary.BigEndian.AppendUint64(nil, uint64(c.ID)))
	return SigningSecretPrefix + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// VerifySignature checks a Standard-Webhooks style signature as GitLab sends
// it: signatureHeader holds one or more space-separated "v1,<base64
// HMAC-SHA256(key, webhookID + "." + timestamp + "." + body)>" values, any one
// of which may match, key being the bytes encoded in signingSecret. The
// timestamp (unix seconds) must be within tolerance of now, either way.
func VerifySignature(signingSecret string, webhookID, timestamp, signatureHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := decodeSigningSecret(signingSecret)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		return fmt.Errorf("token: signature tolerance %s is not positive", tolerance)
	}
	for _, h := range []struct{ name, value string }{
		{"webhook-id", webhookID},
		{"webhook-timestamp", timestamp},
		{"webhook-signature", signatureHeader},
	} {
		if h.value == "" {
			return fmt.Errorf("%w: no %s header", ErrSignatureMissing, h.name)
		}
	}
	sent, err := parseUnixSeconds(timestamp)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp is not unix seconds", ErrSignatureInvalid)
	}

	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(webhookID))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	want := mac.Sum(nil)
	if !anySignatureMatches(signatureHeader, want) {
		return fmt.Errorf("%w: no v1 signature matches", ErrSignatureInvalid)
	}

	// Checked after the signature so that the error says what is wrong with
	// a genuine delivery: a replay, or a clock out of step.
	nowSec := now.Unix()
	toleranceSec := int64(tolerance / time.Second)
	switch {
	case sent < nowSec-toleranceSec:
		return fmt.Errorf("%w: sent %ds ago, more than %s", ErrSignatureTimestamp, nowSec-sent, tolerance)
	case sent > nowSec+toleranceSec:
		return fmt.Errorf("%w: sent %ds in the future, more than %s", ErrSignatureTimestamp, sent-nowSec, tolerance)
	}
	return nil
}

func anySignatureMatches(header string, want []byte) bool {
	matched := false
	for _, field := range strings.Fields(header) {
		version, encoded, ok := strings.Cut(field, ",")
		if !ok || version != "v1" {
			continue // other schemes (v1a, ...) are not ours to check
		}
		// Strict: GitLab writes canonical base64, so each signature has one spelling.
		got, err := base64.StdEncoding.Strict().DecodeString(encoded)
		if err != nil {
			continue
		}
		// No early return: every candidate costs the same.
		matched = hmac.Equal(got, want) || matched
	}
	return matched
}

func decodeSigningSecret(s string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(s, SigningSecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: does not start with %q", ErrBadSigningSecret, SigningSecretPrefix)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("%w: not standard base64", ErrBadSigningSecret)
	}
	if len(key) < minSigningKeyLen || len(key) > maxSigningKeyLen {
		return nil, fmt.Errorf("%w: %d bytes, not between %d and %d", ErrBadSigningSecret, len(key), minSigningKeyLen, maxSigningKeyLen)
	}
	return key, nil
}

// parseUnixSeconds parses a decimal count of seconds, without sign or spaces.
func parseUnixSeconds(s string) (int64, error) {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
