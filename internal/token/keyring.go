package token

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// MinSecretLen is the shortest key secret accepted, in bytes.
const MinSecretLen = 32

// keyIDBytes is the size of a key id once decoded from its 8 hex digits.
const keyIDBytes = 4

// ErrBadKey reports a key or keyring that cannot be used.
var ErrBadKey = errors.New("token: bad key")

// Key is a service key that tokens are issued with.
type Key struct {
	ID     string // 8 lowercase hex digits; not secret, it is written into every token
	Secret []byte `json:"-"`
}

// Format prints the key id only, so a key that reaches a log line through fmt
// (or log/slog) does not reveal its secret.
func (k Key) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "token.Key{ID:%q Secret:redacted}", k.ID)
}

// GenerateKey makes a key with a random id and a random 32-byte secret.
func GenerateKey() (Key, error) {
	id := make([]byte, keyIDBytes)
	secret := make([]byte, MinSecretLen)
	if _, err := rand.Read(id); err != nil {
		return Key{}, fmt.Errorf("token: generating a key id: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("token: generating a key secret: %w", err)
	}
	return Key{ID: hex.EncodeToString(id), Secret: secret}, nil
}

// Keyring is the set of keys a service issues and verifies tokens with: a
// primary key, used by Issue, and at most one previous key that Verify still
// accepts. It is immutable, and safe for concurrent use.
type Keyring struct {
	keys []Key // keys[0] is the primary key
}

// NewKeyring makes a keyring from the primary key and at most one previous
// key. Key ids must differ; the secrets are copied.
func NewKeyring(primary Key, previous ...Key) (*Keyring, error) {
	if len(previous) > 1 {
		return nil, fmt.Errorf("%w: a keyring holds at most one previous key, got %d", ErrBadKey, len(previous))
	}
	keys := make([]Key, 0, 1+len(previous))
	for _, k := range append([]Key{primary}, previous...) {
		if err := validateKey(k); err != nil {
			return nil, err
		}
		for _, seen := range keys {
			if seen.ID == k.ID {
				return nil, fmt.Errorf("%w: key id %s appears twice", ErrBadKey, k.ID)
			}
		}
		keys = append(keys, Key{ID: k.ID, Secret: bytes.Clone(k.Secret)})
	}
	return &Keyring{keys: keys}, nil
}

// KeyIDs returns the ids of the keys in the ring, primary first.
func (k *Keyring) KeyIDs() []string {
	ids := make([]string, len(k.keys))
	for i, key := range k.keys {
		ids[i] = key.ID
	}
	return ids
}

// Format prints the key ids only, never the secrets.
func (k *Keyring) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "token.Keyring%q", k.KeyIDs())
}

func (k *Keyring) primary() Key { return k.keys[0] }

func (k *Keyring) lookup(id string) (Key, bool) {
	for _, key := range k.keys {
		if key.ID == id {
			return key, true
		}
	}
	return Key{}, false
}

func validateKey(k Key) error {
	if !isKeyID(k.ID) {
		// Not quoted back: a garbled key file line may have a secret in that place.
		return fmt.Errorf("%w: a key id is not 8 lowercase hex digits", ErrBadKey)
	}
	if len(k.Secret) < MinSecretLen {
		return fmt.Errorf("%w: the secret of key %s has %d bytes, fewer than %d", ErrBadKey, k.ID, len(k.Secret), MinSecretLen)
	}
	return nil
}

func isKeyID(id string) bool {
	if len(id) != 2*keyIDBytes {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
