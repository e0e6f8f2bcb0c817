package embedded

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Key families of format 2 (keyspace.FormatVersion). Persisted: never
// change. Format 1's families ('d', 'x', 's': data, expiry index and
// counters of a store without databases) are other bytes, so a store part
// way through its migration (migrate.go) holds both without a collision.
const (
	familyData    = 'k' // 'k' stored key -> value
	familyExpiry  = 'e' // 'e' expires_at(8) stored key -> ""
	familyCounter = 'c' // 'c' db(4) 'k'|'e' -> int64 (merge operator)
	familyVersion = 'v' // 'v' -> format version, uint32 big-endian
)

// Format 1's families, read only by the migration.
const (
	v1FamilyData    = 'd'
	v1FamilyExpiry  = 'x'
	v1FamilyCounter = 's'
)

var versionKey = []byte{familyVersion}

const valueHeaderLen = 9

// counterKey is the key of database db's key counter (kind 'k') or
// expiring-key counter (kind 'e').
func counterKey(db uint32, kind byte) []byte {
	k := make([]byte, 0, 6)
	k = append(k, familyCounter)
	k = binary.BigEndian.AppendUint32(k, db)
	return append(k, kind)
}

// appendDataKey appends the data key of a stored key (keyspace's: database
// prefix and Redis key).
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
	if len(k) < 9+keyspace.PrefixLen || k[0] != familyExpiry {
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

// counterDeltas gathers a batch's counter changes per database. Nearly
// every batch touches one database, which needs no map.
type counterDeltas struct {
	db      uint32
	set     bool
	keys    int64
	expires int64
	more    map[uint32][2]int64
}

func (d *counterDeltas) add(key []byte, keys, expires int64) {
	if keys == 0 && expires == 0 {
		return
	}
	db := keyspace.DB(key)
	if !d.set || d.db == db {
		d.db, d.set = db, true
		d.keys += keys
		d.expires += expires
		return
	}
	if d.more == nil {
		d.more = map[uint32][2]int64{}
	}
	m := d.more[db]
	m[0] += keys
	m[1] += expires
	d.more[db] = m
}

// appendTo merges the nonzero deltas into the counters.
func (d *counterDeltas) appendTo(b *pebble.Batch) {
	if d.set {
		appendCounterDeltas(b, d.db, d.keys, d.expires)
	}
	for db, m := range d.more {
		appendCounterDeltas(b, db, m[0], m[1])
	}
}

// appendCounterDeltas merges nonzero deltas into database db's counters.
func appendCounterDeltas(b *pebble.Batch, db uint32, keysDelta, expiresDelta int64) {
	if keysDelta != 0 {
		_ = b.Merge(counterKey(db, 'k'), encodeCounter(keysDelta), nil)
	}
	if expiresDelta != 0 {
		_ = b.Merge(counterKey(db, 'e'), encodeCounter(expiresDelta), nil)
	}
}
