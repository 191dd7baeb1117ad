package token_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/token"
)

// signAsGitLab computes the webhook-signature value GitLab would send, from
// the whsec secret alone, independently of the package under test.
func signAsGitLab(t testing.TB, signingSecret, webhookID, timestamp string, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(signingSecret, "whsec_"))
	if err != nil {
		t.Fatalf("the signing secret is not whsec_<base64>: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(webhookID + "." + timestamp + "." + string(body)))
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func signingSecretFor(t testing.TB, ring *token.Keyring, id int64) string {
	t.Helper()
	claims, err := ring.Verify(mustIssue(t, ring, id, gtkProject))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := ring.SigningSecret(claims)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func TestSigningSecret(t *testing.T) {
	ring := mustKeyring(t, keyA, keyB)
	secret := signingSecretFor(t, ring, 17)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if !strings.HasPrefix(secret, "whsec_") || err != nil || len(key) != 32 {
		t.Fatalf("signing secret is not whsec_ and 32 bytes in standard base64 (err %v, %d bytes)", err, len(key))
	}
	if again := signingSecretFor(t, ring, 17); again != secret {
		t.Error("the signing secret for the same token id changes between calls")
	}
	if other := signingSecretFor(t, ring, 18); other == secret {
		t.Error("two token ids share a signing secret")
	}
	// Derived from the issuing key: unchanged after a rotation, different under another key.
	rotated := mustKeyring(t, keyC, keyA)
	if got, err := rotated.SigningSecret(token.Claims{ID: 17, KeyID: keyA.ID, Scope: gtkProject}); err != nil || got != secret {
		t.Errorf("after rotation the signing secret of a key-%s token changed (err %v)", keyA.ID, err)
	}
	if got := signingSecretFor(t, rotated, 17); got == secret {
		t.Error("tokens with the same id under different keys share a signing secret")
	}
	// Gone with its key.
	_, err = mustKeyring(t, keyC).SigningSecret(token.Claims{ID: 17, KeyID: keyA.ID, Scope: gtkProject})
	if !errors.Is(err, token.ErrUnknownKey) {
		t.Errorf("SigningSecret for a key not in the ring: %v, want ErrUnknownKey", err)
	}
	if _, err := ring.SigningSecret(token.Claims{ID: 0, KeyID: keyA.ID}); err == nil {
		t.Error("SigningSecret for token id 0 succeeds")
	}
}

func TestVerifySignature(t *testing.T) {
	ring := mustKeyring(t, keyA)
	secret := signingSecretFor(t, ring, 1)
	otherSecret := signingSecretFor(t, ring, 2)
	now := time.Unix(1_760_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	id := "msg_2f1c0e6a-9c7d-4d1e-8f7b-0a1b2c3d4e5f"
	body := []byte(`{"object_kind":"push","ref":"refs/heads/main"}`)
	good := signAsGitLab(t, secret, id, ts, body)
	wrongSecret := signAsGitLab(t, otherSecret, id, ts, body)
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }

	tests := []struct {
		name               string
		id, ts, header     string
		body               []byte
		want               error // nil: valid
		secretUnderTest    string
		toleranceUnderTest time.Duration
	}{
		{name: "valid", id: id, ts: ts, header: good, body: body},
		{name: "several signatures, the last valid", id: id, ts: ts, header: wrongSecret + " v1,AAAA " + good, body: body},
		{name: "several signatures, the first valid", id: id, ts: ts, header: good + "  " + wrongSecret, body: body},
		{name: "other schemes beside v1", id: id, ts: ts, header: "v1a,c2lnbmF0dXJl " + good, body: body},
		{name: "4 minutes old", id: id, ts: at(-4 * time.Minute), header: signAsGitLab(t, secret, id, at(-4*time.Minute), body), body: body},
		{name: "4 minutes ahead", id: id, ts: at(4 * time.Minute), header: signAsGitLab(t, secret, id, at(4*time.Minute), body), body: body},
		{name: "empty body", id: id, ts: ts, header: signAsGitLab(t, secret, id, ts, nil), body: nil},

		{name: "wrong secret", id: id, ts: ts, header: wrongSecret, body: body, want: token.ErrSignatureInvalid},
		{name: "tampered body", id: id, ts: ts, header: good, body: []byte(`{"object_kind":"push","ref":"refs/heads/evil"}`), want: token.ErrSignatureInvalid},
		{name: "body with a byte more", id: id, ts: ts, header: good, body: append([]byte(string(body)), ' '), want: token.ErrSignatureInvalid},
		{name: "other webhook-id", id: id + "x", ts: ts, header: good, body: body, want: token.ErrSignatureInvalid},
		{name: "timestamp changed after signing", id: id, ts: at(time.Second), header: good, body: body, want: token.ErrSignatureInvalid},
		{name: "signature without scheme", id: id, ts: ts, header: strings.TrimPrefix(good, "v1,"), body: body, want: token.ErrSignatureInvalid},
		{name: "signature under v2", id: id, ts: ts, header: "v2," + strings.TrimPrefix(good, "v1,"), body: body, want: token.ErrSignatureInvalid},
		{name: "signature not base64", id: id, ts: ts, header: "v1,!!!!", body: body, want: token.ErrSignatureInvalid},
		{name: "truncated signature", id: id, ts: ts, header: good[:len(good)-4], body: body, want: token.ErrSignatureInvalid},
		{name: "only spaces", id: id, ts: ts, header: "   ", body: body, want: token.ErrSignatureInvalid},
		{name: "timestamp in milliseconds", id: id, ts: ts + "000", header: signAsGitLab(t, secret, id, ts+"000", body), body: body, want: token.ErrSignatureTimestamp},
		{name: "timestamp not a number", id: id, ts: "yesterday", header: signAsGitLab(t, secret, id, "yesterday", body), body: body, want: token.ErrSignatureInvalid},
		{name: "timestamp with a sign", id: id, ts: "+" + ts, header: signAsGitLab(t, secret, id, "+"+ts, body), body: body, want: token.ErrSignatureInvalid},
		{name: "timestamp overflows", id: id, ts: "99999999999999999999", header: signAsGitLab(t, secret, id, "99999999999999999999", body), body: body, want: token.ErrSignatureInvalid},
		{name: "stale", id: id, ts: at(-6 * time.Minute), header: signAsGitLab(t, secret, id, at(-6*time.Minute), body), body: body, want: token.ErrSignatureTimestamp},
		{name: "future", id: id, ts: at(6 * time.Minute), header: signAsGitLab(t, secret, id, at(6*time.Minute), body), body: body, want: token.ErrSignatureTimestamp},
		{name: "epoch", id: id, ts: "0", header: signAsGitLab(t, secret, id, "0", body), body: body, want: token.ErrSignatureTimestamp},
		{name: "stale under a tighter tolerance", id: id, ts: at(-2 * time.Minute), header: signAsGitLab(t, secret, id, at(-2*time.Minute), body), body: body,
			toleranceUnderTest: time.Minute, want: token.ErrSignatureTimestamp},
		{name: "no webhook-id", ts: ts, header: good, body: body, want: token.ErrSignatureMissing},
		{name: "no webhook-timestamp", id: id, header: good, body: body, want: token.ErrSignatureMissing},
		{name: "no webhook-signature", id: id, ts: ts, body: body, want: token.ErrSignatureMissing},
		{name: "no headers at all", body: body, want: token.ErrSignatureMissing},

		{name: "secret without whsec_", id: id, ts: ts, header: good, body: body, secretUnderTest: strings.TrimPrefix(secret, "whsec_"), want: token.ErrBadSigningSecret},
		{name: "secret not base64", id: id, ts: ts, header: good, body: body, secretUnderTest: "whsec_" + strings.Repeat("*", 44), want: token.ErrBadSigningSecret},
		{name: "secret too short", id: id, ts: ts, header: good, body: body, secretUnderTest: "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 8)), want: token.ErrBadSigningSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signingSecret := secret
			if tt.secretUnderTest != "" {
				signingSecret = tt.secretUnderTest
			}
			tolerance := token.DefaultSignatureTolerance
			if tt.toleranceUnderTest != 0 {
				tolerance = tt.toleranceUnderTest
			}
			err := token.VerifySignature(signingSecret, tt.id, tt.ts, tt.header, tt.body, now, tolerance)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifySignature = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifySignature = %v, want %v", err, tt.want)
			}
			assertNoLeak(t, err, secret, strings.TrimPrefix(secret, "whsec_"), signingSecret, strings.TrimPrefix(signingSecret, "whsec_"))
		})
	}
}

func TestVerifySignatureRefusesBadTolerance(t *testing.T) {
	secret := signingSecretFor(t, mustKeyring(t, keyA), 1)
	now := time.Unix(1_760_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	header := signAsGitLab(t, secret, "id", ts, nil)
	for _, tolerance := range []time.Duration{0, -time.Minute} {
		if err := token.VerifySignature(secret, "id", ts, header, nil, now, tolerance); err == nil {
			t.Errorf("VerifySignature with tolerance %s succeeds", tolerance)
		}
	}
}
