package keyspace

import (
	"encoding/binary"
	"fmt"
)

// The raft backend's reclaim queue (docs/architecture.md, "Reclamation of
// old versions"): one key per dead collection version whose sub-keys are
// still to be deleted,
//
//	ReclaimPrefix(4) ‖ id(8) ‖ db(4) ‖ key ‖ version(8)
//
// id is the start timestamp of the transaction that killed the version, so
// the queue is read oldest first. The prefix, four 0xff bytes, is the one
// 4-byte value neither a database (ids below MaxDatabases < 2^31) nor the
// sub-key family (db | SubKeyBit, at most 0xfffffffe) uses: no database's
// range and no SubKeyRange holds a queue key, so SCAN, DBSIZE, KEYS,
// RANDOMKEY, INFO keyspace and FLUSHDB never meet one (FLUSHALL, which
// deletes from the first database to the end of the key space, removes
// the queue with everything).

// reclaimPrefix starts every reclaim-queue key.
var reclaimPrefix = []byte{0xff, 0xff, 0xff, 0xff}

const reclaimFixedLen = 4 + 8 + 4 + 8

// ReclaimRange returns the range [start, end) of the reclaim queue (end is
// nil: the queue runs to the end of the key space).
func ReclaimRange() (start, end []byte) { return append([]byte(nil), reclaimPrefix...), nil }

// SubKeyFamilyRange returns the range [start, end) of every sub-key of
// every database, the reclaim queue excluded.
func SubKeyFamilyRange() (start, end []byte) {
	return binary.BigEndian.AppendUint32(nil, SubKeyBit), append([]byte(nil), reclaimPrefix...)
}

// ReclaimKey returns the queue key saying that key's version in database
// db, killed by the transaction id, is to be reclaimed.
func ReclaimKey(id uint64, db uint32, key []byte, version uint64) []byte {
	out := make([]byte, 0, reclaimFixedLen+len(key))
	out = append(out, reclaimPrefix...)
	out = binary.BigEndian.AppendUint64(out, id)
	out = binary.BigEndian.AppendUint32(out, db)
	out = append(out, key...)
	return binary.BigEndian.AppendUint64(out, version)
}

// ReclaimEntry is a reclaim-queue key taken apart; Key aliases the queue
// key.
type ReclaimEntry struct {
	ID      uint64
	DB      uint32
	Key     []byte
	Version uint64
}

// SplitReclaimKey takes a reclaim-queue key apart.
func SplitReclaimKey(k []byte) (ReclaimEntry, error) {
	if len(k) < reclaimFixedLen || string(k[:4]) != string(reclaimPrefix) {
		return ReclaimEntry{}, fmt.Errorf("keyspace: %q is not a reclaim-queue key", k)
	}
	n := len(k) - 8
	return ReclaimEntry{
		ID:      binary.BigEndian.Uint64(k[4:12]),
		DB:      binary.BigEndian.Uint32(k[12:16]),
		Key:     k[16:n],
		Version: binary.BigEndian.Uint64(k[n:]),
	}, nil
}
