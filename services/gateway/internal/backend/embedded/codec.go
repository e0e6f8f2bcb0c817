package embedded

import (
	"encoding/binary"
	"fmt"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// Key families. Persisted: never change.
const (
	familyData    = 'd'
	familyExpiry  = 'x'
	familyCounter = 's'
)

const valueHeaderLen = 9

var (
	counterKeys    = []byte{familyCounter, 'k'}
	counterExpires = []byte{familyCounter, 'e'}
)

func appendDataKey(dst, key []byte) []byte {
	dst = append(dst, familyData)
	return append(dst, key...)
}

// expiryKeyLen is the length of key's expiry index key.
func expiryKeyLen(key []byte) int { return 9 + len(key) }

func appendExpiryKey(dst []byte, expiresAt int64, key []byte) []byte {
	dst = append(dst, familyExpiry)
	dst = binary.BigEndian.AppendUint64(dst, uint64(expiresAt))
	return append(dst, key...)
}

func decodeExpiryKey(k []byte) (expiresAt int64, key []byte, err error) {
	if len(k) < 9 || k[0] != familyExpiry {
		return 0, nil, fmt.Errorf("embedded: malformed expiry index key %q", k)
	}
	return int64(binary.BigEndian.Uint64(k[1:9])), k[9:], nil
}

func appendValue(dst []byte, v backend.Value) []byte {
	dst = append(dst, byte(v.Type))
	dst = binary.BigEndian.AppendUint64(dst, uint64(v.ExpiresAt))
	return append(dst, v.Data...)
}

// decodeValue parses an encoded value. Data aliases raw.
func decodeValue(raw []byte) (backend.Value, error) {
	if len(raw) < valueHeaderLen {
		return backend.Value{}, fmt.Errorf("embedded: corrupt value of %d bytes", len(raw))
	}
	return backend.Value{
		Type:      backend.Type(raw[0]),
		ExpiresAt: int64(binary.BigEndian.Uint64(raw[1:9])),
		Data:      raw[valueHeaderLen:],
	}, nil
}
