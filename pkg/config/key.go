package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// HexPrefix marks a key string as hex-encoded binary, e.g. "hex:6d" is the
// single byte 'm'.
const HexPrefix = "hex:"

// Key is a region boundary key. In JSON it is a string holding either the
// raw key bytes or, with the "hex:" prefix, their hex encoding. The empty
// key is unbounded: -inf as a start key and +inf as an end key.
type Key []byte

// ParseKey decodes the JSON string form of a key.
func ParseKey(s string) (Key, error) {
	if !strings.HasPrefix(s, HexPrefix) {
		if s == "" {
			return nil, nil
		}
		return Key(s), nil
	}
	digits := strings.TrimPrefix(s, HexPrefix)
	b, err := hex.DecodeString(digits)
	if err != nil {
		return nil, fmt.Errorf("bad hex %q: %w", digits, err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return Key(b), nil
}

// String returns the key's string form: the raw bytes if they are printable
// UTF-8 (and do not themselves start with "hex:"), else "hex:" and the hex
// encoding. ParseKey(k.String()) returns k.
func (k Key) String() string {
	if isPlain(k) {
		return string(k)
	}
	return HexPrefix + hex.EncodeToString(k)
}

func isPlain(k []byte) bool {
	if !utf8.Valid(k) || bytes.HasPrefix(k, []byte(HexPrefix)) {
		return false
	}
	for _, r := range string(k) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Unbounded reports whether k is the empty key.
func (k Key) Unbounded() bool { return len(k) == 0 }

// MarshalJSON encodes k as a JSON string in the form returned by String.
func (k Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(k.String())
}

// UnmarshalJSON decodes a JSON string with ParseKey. JSON null decodes to
// the empty key.
func (k *Key) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*k = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New("key must be a JSON string")
	}
	parsed, err := ParseKey(s)
	if err != nil {
		return err
	}
	*k = parsed
	return nil
}
