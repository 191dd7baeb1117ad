package token_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/token"
)

// Fixed keys make failures reproducible; real keys come from GenerateKey.
var (
	keyA = token.Key{ID: "0a0a0a0a", Secret: bytes.Repeat([]byte{0xa1}, 32)}
	keyB = token.Key{ID: "0b0b0b0b", Secret: bytes.Repeat([]byte{0xb2}, 48)}
	keyC = token.Key{ID: "0c0c0c0c", Secret: bytes.Repeat([]byte{0xc3}, 32)}
)

var (
	gtkProject = token.Scope{Kind: token.ScopeProject, Instance: "https://gitlab.gnome.org", Path: "GNOME/gtk"}
	gnomeGroup = token.Scope{Kind: token.ScopeGroup, Instance: "https://gitlab.gnome.org", Path: "GNOME"}
)

func mustKeyring(t testing.TB, primary token.Key, previous ...token.Key) *token.Keyring {
	t.Helper()
	ring, err := token.NewKeyring(primary, previous...)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return ring
}

func mustIssue(t testing.TB, ring *token.Keyring, id int64, s token.Scope) string {
	t.Helper()
	tok, err := ring.Issue(id, s)
	if err != nil {
		t.Fatalf("Issue(%d, %v): %v", id, s, err)
	}
	return tok
}

// assertNoLeak fails if err's message contains any of the secrets.
func assertNoLeak(t testing.TB, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains a secret", err)
		}
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	ring := mustKeyring(t, keyA)
	for _, tt := range []struct {
		id    int64
		scope token.Scope
	}{
		{1, gtkProject},
		{42, gnomeGroup},
		{1 << 62, token.Scope{Kind: token.ScopeGroup, Instance: "https://example.org/gitlab", Path: "infra/sub.group/x_y-z"}},
		{7, token.Scope{Kind: token.ScopeProject, Instance: "http://127.0.0.1:8080", Path: "upbuild/demo"}},
	} {
		tok := mustIssue(t, ring, tt.id, tt.scope)
		if !strings.HasPrefix(tok, "upb1_") {
			t.Errorf("token %q lacks the upb1_ prefix", tok)
		}
		got, err := ring.Verify(tok)
		if err != nil {
			t.Fatalf("Verify(Issue(%d, %v)): %v", tt.id, tt.scope, err)
		}
		want := token.Claims{ID: tt.id, KeyID: keyA.ID, Scope: tt.scope}
		if got != want {
			t.Errorf("Verify(Issue(%d, %v)) = %+v, want %+v", tt.id, tt.scope, got, want)
		}
	}
}

func TestVerifiedScopeCovers(t *testing.T) {
	ring := mustKeyring(t, keyA)
	claims, err := ring.Verify(mustIssue(t, ring, 5, gtkProject))
	if err != nil {
		t.Fatal(err)
	}
	if !claims.Scope.Covers("https://gitlab.gnome.org", "GNOME/gtk") {
		t.Error("a gtk token does not cover GNOME/gtk")
	}
	if claims.Scope.Covers("https://gitlab.gnome.org", "GNOME/glib") {
		t.Error("a gtk token covers GNOME/glib")
	}
	if claims.Scope.Covers("https://gitlab.com", "GNOME/gtk") {
		t.Error("a gitlab.gnome.org token covers gitlab.com")
	}

	claims, err = ring.Verify(mustIssue(t, ring, 6, token.Scope{Kind: token.ScopeGroup, Instance: "https://gitlab.gnome.org", Path: "GNOME/gtk"}))
	if err != nil {
		t.Fatal(err)
	}
	if !claims.Scope.Covers("https://gitlab.gnome.org", "GNOME/gtk/sub/gtk4") {
		t.Error("a group token does not cover a project in a subgroup")
	}
	if claims.Scope.Covers("https://gitlab.gnome.org", "GNOME/gtk-foo") {
		t.Error("group GNOME/gtk covers GNOME/gtk-foo")
	}
}

func TestTokenLength(t *testing.T) {
	ring := mustKeyring(t, keyA)
	tok := mustIssue(t, ring, 123456, gtkProject)
	if len(tok) > 130 {
		t.Errorf("token for a normal project is %d characters long: %s", len(tok), tok)
	}

	// Grow the path until Issue refuses; the last accepted token must fit.
	path := "g"
	longest := ""
	for {
		s := token.Scope{Kind: token.ScopeGroup, Instance: "https://gitlab.freedesktop.org", Path: path}
		tok, err := ring.Issue(1<<62, s)
		if err != nil {
			if !errors.Is(err, token.ErrTooLong) {
				t.Fatalf("Issue with a %d-byte path: %v, want ErrTooLong", len(path), err)
			}
			if s.Validate() == nil {
				t.Error("Validate accepts a scope that Issue refuses")
			}
			break
		}
		if _, err := ring.Verify(tok); err != nil {
			t.Fatalf("Verify of a %d-character token: %v", len(tok), err)
		}
		longest = tok
		path += "/g"
	}
	if len(longest) > token.MaxTokenLen || len(longest) < token.MaxTokenLen-4 {
		t.Errorf("longest token has %d characters, want just under %d", len(longest), token.MaxTokenLen)
	}
	if len(path) < 100 {
		t.Errorf("Issue refuses a %d-byte path on gitlab.freedesktop.org; want room for at least 100", len(path))
	}
}

func TestIssueRefuses(t *testing.T) {
	ring := mustKeyring(t, keyA)
	for _, tt := range []struct {
		id    int64
		scope token.Scope
		want  error
	}{
		{1, token.Scope{Kind: token.ScopeProject, Instance: "https://GitLab.gnome.org", Path: "GNOME/gtk"}, token.ErrBadScope},
		{1, token.Scope{Kind: "user", Instance: "https://gitlab.gnome.org", Path: "GNOME/gtk"}, token.ErrBadScope},
		{1, token.Scope{Kind: token.ScopeProject, Instance: "https://gitlab.gnome.org", Path: "GNOME//gtk"}, token.ErrBadScope},
		{1, token.Scope{Kind: token.ScopeProject, Instance: "https://gitlab.gnome.org", Path: strings.Repeat("a", 200)}, token.ErrTooLong},
		{0, gtkProject, nil},
		{-3, gtkProject, nil},
	} {
		tok, err := ring.Issue(tt.id, tt.scope)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("Issue(%d, %+v) = %q, %v; want error %v", tt.id, tt.scope, tok, err, tt.want)
		}
	}
}

func TestZeroKeyring(t *testing.T) {
	var ring token.Keyring
	if tok, err := ring.Issue(1, gtkProject); !errors.Is(err, token.ErrBadKey) {
		t.Errorf("Issue on a zero Keyring = %q, %v; want ErrBadKey", tok, err)
	}
	tok := mustIssue(t, mustKeyring(t, keyA), 1, gtkProject)
	if _, err := ring.Verify(tok); !errors.Is(err, token.ErrUnknownKey) {
		t.Errorf("Verify on a zero Keyring = %v, want ErrUnknownKey", err)
	}
}

func TestVerifyRefusesTampering(t *testing.T) {
	ring := mustKeyring(t, keyA)
	tok := mustIssue(t, ring, 99, gtkProject)
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, token.Prefix))
	if err != nil {
		t.Fatal(err)
	}

	// Every bit of the decoded token matters.
	for i := range raw {
		for bit := range 8 {
			changed := bytes.Clone(raw)
			changed[i] ^= 1 << bit
			forged := token.Prefix + base64.RawURLEncoding.EncodeToString(changed)
			claims, err := ring.Verify(forged)
			if err == nil {
				t.Fatalf("flipping bit %d of byte %d verifies: %+v", bit, i, claims)
			}
			if !errors.Is(err, token.ErrInvalid) && !errors.Is(err, token.ErrMalformed) && !errors.Is(err, token.ErrUnknownKey) {
				t.Errorf("flipping bit %d of byte %d: %v, want ErrInvalid, ErrMalformed or ErrUnknownKey", bit, i, err)
			}
			if i >= len(raw)-32 && !errors.Is(err, token.ErrInvalid) {
				t.Errorf("flipping bit %d of MAC byte %d: %v, want ErrInvalid", bit, i, err)
			}
			assertNoLeak(t, err, tok, forged, forged[len(token.Prefix):])
		}
	}

	// Every character of the text matters, including the prefix.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(tok) {
		for _, c := range []byte(alphabet + "+/=.\n") {
			if c == tok[i] {
				continue
			}
			forged := tok[:i] + string(c) + tok[i+1:]
			if _, err := ring.Verify(forged); err == nil {
				t.Fatalf("changing character %d to %q verifies", i, c)
			}
		}
	}

	for _, forged := range []string{
		"", token.Prefix, tok + "A", tok + "\n", tok[:len(tok)-1], " " + tok, strings.ToUpper(tok),
		"upb2_" + tok[len(token.Prefix):], tok[len(token.Prefix):],
	} {
		if _, err := ring.Verify(forged); err == nil {
			t.Errorf("Verify(%q) succeeds", forged)
		}
	}
}

func TestVerifyUnknownKey(t *testing.T) {
	tok := mustIssue(t, mustKeyring(t, keyC), 3, gtkProject)
	_, err := mustKeyring(t, keyA, keyB).Verify(tok)
	if !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("Verify of a token from another key: %v, want ErrUnknownKey", err)
	}
	assertNoLeak(t, err, tok, tok[len(token.Prefix):])
}

func TestVerifySameIDOtherSecret(t *testing.T) {
	// A key with the right id but another secret: a forger who guessed the id.
	forger := token.Key{ID: keyA.ID, Secret: bytes.Repeat([]byte{0x55}, 32)}
	tok := mustIssue(t, mustKeyring(t, forger), 3, gtkProject)
	if _, err := mustKeyring(t, keyA).Verify(tok); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("Verify of a token signed with the wrong secret: %v, want ErrInvalid", err)
	}
}

func TestKeyringAcceptsPreviousKey(t *testing.T) {
	before := mustKeyring(t, keyA)
	after := mustKeyring(t, keyB, keyA)
	old := mustIssue(t, before, 1, gtkProject)
	if c, err := after.Verify(old); err != nil || c.KeyID != keyA.ID {
		t.Fatalf("after rotation, old token: %+v, %v", c, err)
	}
	fresh := mustIssue(t, after, 2, gtkProject)
	if c, err := after.Verify(fresh); err != nil || c.KeyID != keyB.ID {
		t.Fatalf("new token: %+v, %v; want key %s", c, err, keyB.ID)
	}
	if _, err := before.Verify(fresh); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("a process still on the old ring: %v, want ErrUnknownKey", err)
	}
	if got := after.KeyIDs(); len(got) != 2 || got[0] != keyB.ID || got[1] != keyA.ID {
		t.Errorf("KeyIDs = %q, want [%s %s]", got, keyB.ID, keyA.ID)
	}
}

func TestNewKeyringRefuses(t *testing.T) {
	for _, tt := range []struct {
		name     string
		primary  token.Key
		previous []token.Key
	}{
		{"short secret", token.Key{ID: "01234567", Secret: make([]byte, 31)}, nil},
		{"upper-case id", token.Key{ID: "ABCDEF01", Secret: keyA.Secret}, nil},
		{"short id", token.Key{ID: "abc", Secret: keyA.Secret}, nil},
		{"empty id", token.Key{Secret: keyA.Secret}, nil},
		{"duplicate id", keyA, []token.Key{{ID: keyA.ID, Secret: keyB.Secret}}},
		{"two previous keys", keyA, []token.Key{keyB, keyC}},
		{"bad previous key", keyA, []token.Key{{ID: "zzzzzzzz", Secret: keyB.Secret}}},
	} {
		if _, err := token.NewKeyring(tt.primary, tt.previous...); !errors.Is(err, token.ErrBadKey) {
			t.Errorf("%s: NewKeyring = %v, want ErrBadKey", tt.name, err)
		}
	}
}

func TestKeyringCopiesSecrets(t *testing.T) {
	key := token.Key{ID: keyA.ID, Secret: bytes.Clone(keyA.Secret)}
	ring := mustKeyring(t, key)
	tok := mustIssue(t, ring, 1, gtkProject)
	key.Secret[0] ^= 0xff // the caller reuses its buffer
	if _, err := ring.Verify(tok); err != nil {
		t.Fatalf("changing the caller's secret changed the keyring: %v", err)
	}
}

func TestGenerateKey(t *testing.T) {
	k1, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k1.Secret, k2.Secret) || k1.ID == k2.ID {
		t.Errorf("two generated keys share an id or secret: %s %s", k1.ID, k2.ID)
	}
	ring := mustKeyring(t, k1, k2) // both valid
	if _, err := ring.Verify(mustIssue(t, ring, 1, gnomeGroup)); err != nil {
		t.Error(err)
	}
}

func TestKeysDoNotPrintSecrets(t *testing.T) {
	ring := mustKeyring(t, keyA, keyB)
	key := keyB
	jsonKey, err := json.Marshal(key)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s %x %X %q %d", key, key, key, key, key, key, key, key) +
		fmt.Sprintf("%v %+v %#v %s %x %d", ring, ring, ring, ring, ring, ring) +
		fmt.Sprintf("%v", []token.Key{key}) + string(jsonKey)
	for _, leak := range []string{
		base64.StdEncoding.EncodeToString(key.Secret[:12]),
		fmt.Sprintf("%x", key.Secret[:8]),
		fmt.Sprintf("%X", key.Secret[:8]),
		fmt.Sprint(key.Secret[:8]),
		fmt.Sprintf("%d", key.Secret[0]),
		fmt.Sprintf("%q", key.Secret[:8]),
	} {
		if strings.Contains(out, leak) {
			t.Errorf("formatted keys contain the secret (%s): %s", leak, out)
		}
	}
	if !strings.Contains(out, keyB.ID) || !strings.Contains(out, keyA.ID) {
		t.Errorf("formatted keys do not even show the key ids: %s", out)
	}
}

func BenchmarkVerify(b *testing.B) {
	ring := mustKeyring(b, keyB, keyA)
	tok := mustIssue(b, ring, 123456, gtkProject)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
