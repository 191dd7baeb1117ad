package token_test

import (
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"upbuild.dev/upbuild/internal/token"
)

func FuzzVerify(f *testing.F) {
	ring := mustKeyring(f, keyA, keyB)
	// Each key's own ring re-issues what that key issued, spelling for spelling.
	issuers := map[string]*token.Keyring{keyA.ID: mustKeyring(f, keyA), keyB.ID: mustKeyring(f, keyB)}
	issued := map[string]bool{}
	for i, s := range []token.Scope{
		gtkProject,
		gnomeGroup,
		{Kind: token.ScopeGroup, Instance: "https://example.org/gitlab", Path: "a/b.c/d_e-f"},
		{Kind: token.ScopeProject, Instance: "http://[::1]:8080", Path: "x"},
	} {
		for _, issuer := range issuers {
			tok := mustIssue(f, issuer, int64(i+1)<<(8*i), s)
			issued[tok] = true
			f.Add(tok)
			f.Add(tok[:len(tok)-1])
			f.Add(tok + "A")
			f.Add(tok + "\n")
			f.Add(tok[:20] + "\r\n" + tok[20:])
			f.Add(tok[:len(tok)-1] + "B")
			f.Add(strings.Replace(tok, "_", "/", 1))
			f.Add(tok[len(token.Prefix):])
		}
	}
	f.Add(token.Prefix + strings.Repeat("A", 100))
	f.Add(token.Prefix + base64.RawURLEncoding.EncodeToString([]byte{1, 0, 0, 0, 0}))
	f.Add("")

	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := ring.Verify(tok)
		if err != nil {
			if !errors.Is(err, token.ErrMalformed) && !errors.Is(err, token.ErrUnknownKey) && !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("Verify(%q) = %v, not one of the documented errors", tok, err)
			}
			if body := strings.TrimPrefix(tok, token.Prefix); len(body) >= 8 && strings.Contains(err.Error(), body) {
				t.Fatalf("Verify(%q) error %q repeats the token", tok, err)
			}
			return
		}
		if !issued[tok] {
			t.Fatalf("Verify(%q) = %+v, but that token was never issued", tok, claims)
		}
		again, err := issuers[claims.KeyID].Issue(claims.ID, claims.Scope)
		if err != nil || again != tok {
			t.Fatalf("re-issuing the claims of %q gives %q, %v", tok, again, err)
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	ring := mustKeyring(f, keyA)
	secret := signingSecretFor(f, ring, 1)
	now := time.Unix(1_760_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"object_kind":"merge_request"}`)
	good := signAsGitLab(f, secret, "id-1", ts, body)
	f.Add(secret, "id-1", ts, good, body)
	f.Add(secret, "id-1", ts, "v1,AAAA "+good, body)
	f.Add(secret, "id-1", ts, good[:len(good)-2]+"==", body)
	f.Add(secret, "id-1", ts, good, append(body, '\n'))
	f.Add(secret, "id-1.", ts, good, body)
	f.Add(secret, "id-1", "0"+ts, good, body)
	f.Add(secret, "id-1", "-1", good, body)
	f.Add(secret[:len(secret)-1], "id-1", ts, good, body)
	f.Add("whsec_", "", "", "", []byte(nil))

	f.Fuzz(func(t *testing.T, signingSecret, webhookID, timestamp, header string, body []byte) {
		err := token.VerifySignature(signingSecret, webhookID, timestamp, header, body, now, token.DefaultSignatureTolerance)
		if err != nil {
			if encoded := strings.TrimPrefix(signingSecret, "whsec_"); len(encoded) >= 8 && strings.Contains(err.Error(), encoded) {
				t.Fatalf("error %q repeats the signing secret", err)
			}
			return
		}
		// Success only for a header carrying the exact signature of this
		// delivery, computed independently, with a timestamp in the window.
		want := signAsGitLab(t, signingSecret, webhookID, timestamp, body)
		if !strings.HasPrefix(signingSecret, "whsec_") || !slices.Contains(strings.Fields(header), want) {
			t.Fatalf("VerifySignature(%q, %q, %q, %q, %q) succeeds without a valid signature", signingSecret, webhookID, timestamp, header, body)
		}
		sent, perr := strconv.ParseInt(timestamp, 10, 64)
		if perr != nil || sent < now.Unix()-300 || sent > now.Unix()+300 {
			t.Fatalf("VerifySignature accepts timestamp %q", timestamp)
		}
	})
}
