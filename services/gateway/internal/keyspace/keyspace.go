// Package keyspace is the one encoding of Redis keys into stored keys that
// both backends share: a stored key is the logical database's id, 4 bytes
// big-endian, followed by the Redis key.
//
// The prefix has a fixed width, so no database's keys are a prefix of
// another's, and within a database the stored keys sort as the Redis keys
// do: a scan of one database is a scan of its prefix, and SCAN's resume
// keys work per database unchanged. Every stored key is at least PrefixLen
// bytes long, which leaves the keys shorter than that to the backends'
// own records (the raft backend's format record is the empty key).
//
// The layout is persisted: FormatVersion names it, and a store written with
// a format a binary does not know is refused, not misread.
package keyspace

import (
	"encoding/binary"
	"fmt"
)

// PrefixLen is the length of a database's prefix.
const PrefixLen = 4

// FormatVersion is the on-disk format this package defines. Version 1 (the
// releases before logical databases) stored Redis keys without a prefix:
// they belong to database 0. Version 3 adds collections (metadata records
// of types 2-5 and the sub-key family, collection.go); every format-2 store
// is a valid format-3 one, so the step only rewrites the record, and its
// purpose is that a format-2 binary refuses data it would misread.
const FormatVersion = 3

// Format2 is the last format without collections: a store in it is brought
// to FormatVersion by rewriting its record.
const Format2 = 2

// MaxDatabases bounds the databases setting: ids are 32-bit (Redis's limit
// is INT_MAX).
const MaxDatabases = 1<<31 - 1

// Prefix returns database db's prefix.
func Prefix(db uint32) []byte { return binary.BigEndian.AppendUint32(make([]byte, 0, PrefixLen), db) }

// AppendKey appends the stored form of key in database db to dst.
func AppendKey(dst []byte, db uint32, key []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, db)
	return append(dst, key...)
}

// Key returns the stored form of key in database db, in a new slice.
func Key(db uint32, key []byte) []byte {
	return AppendKey(make([]byte, 0, PrefixLen+len(key)), db, key)
}

// Split returns the database and the Redis key of a stored key; key aliases
// stored. ok is false for a key shorter than a prefix (not a Redis key).
func Split(stored []byte) (db uint32, key []byte, ok bool) {
	if len(stored) < PrefixLen {
		return 0, nil, false
	}
	return binary.BigEndian.Uint32(stored), stored[PrefixLen:], true
}

// DB returns the database of a stored key, which must be one.
func DB(stored []byte) uint32 {
	if len(stored) < PrefixLen {
		panic(fmt.Sprintf("keyspace: %q is not a stored key", stored))
	}
	return binary.BigEndian.Uint32(stored)
}

// UserKey strips the prefix of a stored key, which must be one.
func UserKey(stored []byte) []byte {
	if len(stored) < PrefixLen {
		panic(fmt.Sprintf("keyspace: %q is not a stored key", stored))
	}
	return stored[PrefixLen:]
}

// End returns the smallest stored key past every key of database db, or
// nil past the last database.
func End(db uint32) []byte {
	if db == ^uint32(0) {
		return nil
	}
	return Prefix(db + 1)
}

// ErrFormatTooNew is wrapped by a backend that finds data written in a
// format newer than FormatVersion: this binary cannot read it, and must not
// write to it.
var ErrFormatTooNew = fmt.Errorf("data was written by a newer nokv-redis (format newer than %d); upgrade this binary", FormatVersion)
