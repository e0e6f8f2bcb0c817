package keyspace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Collections (hashes, lists, sets, sorted sets; docs/architecture.md,
// "Collections") are a metadata record at the Redis key's ordinary stored
// key plus one sub-key per element. A sub-key is
//
//	(db | SubKeyBit)(4) ‖ len(key)(4) ‖ key ‖ version(8) ‖ kind(1) ‖ element
//
// Database ids are below 2^31 (MaxDatabases), so the top bit of a stored
// key's first byte is never set: sub-keys cannot collide with a stored key,
// and no database's range [Prefix(db), End(db)) contains one. The key's
// length has a fixed width so that two keys' sub-keys never interleave, and
// each (key, version) and each (key, version, kind) is one contiguous range.

// SubKeyBit marks a sub-key's first 4 bytes.
const SubKeyBit = 1 << 31

// Sub-key kinds. Persisted: never change.
const (
	KindHashField   = 'f' // hash field -> value
	KindSetMember   = 'm' // set member -> ""
	KindListIndex   = 'l' // list index (AppendListIndex) -> element
	KindZSetMember  = 'z' // sorted-set member -> score (AppendScore)
	KindZSetScore   = 's' // sorted-set score (AppendScore) ‖ member -> ""
	subKeyFixedLen  = 4 + 4 + 8 + 1
	subKeyHeaderLen = 4 + 4
)

// ErrNotSubKey is wrapped by SplitSubKey's callers' errors for a key that is
// not a well-formed sub-key.
var ErrNotSubKey = errors.New("keyspace: not a sub-key")

func subDB(db uint32) uint32 {
	// MaxDatabases-1 is the last id: db|SubKeyBit never reaches 0xffffffff,
	// the reclaim queue's prefix (reclaim.go).
	if db >= MaxDatabases {
		panic(fmt.Sprintf("keyspace: database %d out of range", db))
	}
	return db | SubKeyBit
}

// AppendSubKeyPrefix appends the prefix every sub-key of key's version
// shares: a version's elements are the keys with this prefix.
func AppendSubKeyPrefix(dst []byte, db uint32, key []byte, version uint64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, subDB(db))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(key)))
	dst = append(dst, key...)
	return binary.BigEndian.AppendUint64(dst, version)
}

// AppendSubKey appends the sub-key of element elem, of kind kind, of key's
// version in database db.
func AppendSubKey(dst []byte, db uint32, key []byte, version uint64, kind byte, elem []byte) []byte {
	dst = AppendSubKeyPrefix(dst, db, key, version)
	dst = append(dst, kind)
	return append(dst, elem...)
}

// SubKey is AppendSubKey into a new slice of the exact size.
func SubKey(db uint32, key []byte, version uint64, kind byte, elem []byte) []byte {
	return AppendSubKey(make([]byte, 0, subKeyFixedLen+len(key)+len(elem)), db, key, version, kind, elem)
}

// VersionRange returns the range [start, end) holding every sub-key of
// key's version: what reclaiming the version deletes.
func VersionRange(db uint32, key []byte, version uint64) (start, end []byte) {
	start = AppendSubKeyPrefix(nil, db, key, version)
	return start, PrefixEnd(start)
}

// KindRange returns the range [start, end) of the sub-keys of one kind of
// key's version: a hash's fields, a sorted set's score index.
func KindRange(db uint32, key []byte, version uint64, kind byte) (start, end []byte) {
	start = append(AppendSubKeyPrefix(nil, db, key, version), kind)
	return start, PrefixEnd(start)
}

// SubKeyRange returns the range [start, end) of every sub-key of database
// db, of every key and version: FLUSHDB deletes it with the database.
func SubKeyRange(db uint32) (start, end []byte) {
	start = binary.BigEndian.AppendUint32(nil, subDB(db))
	return start, PrefixEnd(start)
}

// IsSubKey reports whether stored is in the sub-key family (it may still be
// malformed; SplitSubKey says).
func IsSubKey(stored []byte) bool { return len(stored) > 0 && stored[0]&0x80 != 0 }

// SubKeyParts is a sub-key taken apart; Key and Elem alias the sub-key.
type SubKeyParts struct {
	DB      uint32
	Key     []byte
	Version uint64
	Kind    byte
	Elem    []byte
}

// SplitSubKey takes a sub-key apart.
func SplitSubKey(sub []byte) (SubKeyParts, error) {
	if len(sub) < subKeyFixedLen || !IsSubKey(sub) {
		return SubKeyParts{}, fmt.Errorf("%w: %q", ErrNotSubKey, sub)
	}
	n := binary.BigEndian.Uint32(sub[4:8])
	if uint64(n) > uint64(len(sub)-subKeyFixedLen) {
		return SubKeyParts{}, fmt.Errorf("%w: key length %d past the end of %d bytes", ErrNotSubKey, n, len(sub))
	}
	rest := sub[subKeyHeaderLen+n:]
	return SubKeyParts{
		DB:      binary.BigEndian.Uint32(sub) &^ SubKeyBit,
		Key:     sub[subKeyHeaderLen : subKeyHeaderLen+n],
		Version: binary.BigEndian.Uint64(rest),
		Kind:    rest[8],
		Elem:    rest[9:],
	}, nil
}

// PrefixEnd returns the smallest key greater than every key with prefix p,
// or nil (unbounded) for an empty or all-0xff prefix.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// AppendScore appends the 8-byte order-preserving form of a sorted-set
// score: the bytes of two scores compare as the scores do, so a score
// index is scanned by score and ZRANGEBYSCORE is a range scan. -0 is
// written as +0: Redis orders them as equal (ties broken by member, as the
// index's member suffix then does). NaN must not be passed (Redis refuses
// it as a score).
func AppendScore(dst []byte, f float64) []byte {
	if f == 0 {
		f = 0 // -0 == 0: normalise the sign
	}
	b := math.Float64bits(f)
	if b&(1<<63) != 0 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, b)
}

// DecodeScore inverts AppendScore on the first 8 bytes of b.
func DecodeScore(b []byte) float64 {
	u := binary.BigEndian.Uint64(b)
	if u&(1<<63) != 0 {
		u &^= 1 << 63
	} else {
		u = ^u
	}
	return math.Float64frombits(u)
}

// AppendListIndex appends the 8-byte form of a list element's index:
// offset by 2^63 so that the indexes below a list's first head (LPUSH goes
// down from it) sort before the ones above, in byte order.
func AppendListIndex(dst []byte, idx int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(idx)^(1<<63))
}

// DecodeListIndex inverts AppendListIndex on the first 8 bytes of b.
func DecodeListIndex(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// Meta is the body of a collection's metadata record (the Data of the
// backend.Value stored at the Redis key, whose Type and ExpiresAt hold the
// type and the expiry).
type Meta struct {
	// Version names the incarnation whose sub-keys are live; every other
	// version's sub-keys are dead and awaiting reclamation.
	Version uint64
	// Count is the number of elements.
	Count uint64
	// Big records that the collection has crossed Redis's compact-encoding
	// thresholds (hash-max-listpack-entries, -value, ...): Redis never
	// converts back, so OBJECT ENCODING keeps answering the big encoding.
	Big bool
	// Stamp changes with every write of the collection (the command layer
	// draws it at random): the record's bytes then differ after any write,
	// even one that changes an element's value alone, so that a WATCH
	// through one raft gateway, which compares what a key holds, sees a
	// write through another.
	Stamp uint64
	// List says Head and Tail are present: a list's elements are the
	// indexes [Head, Tail).
	List       bool
	Head, Tail int64
	// ZLow and ZHigh are a sorted set's marks on its score index (elements
	// of kind KindZSetScore): no live index entry sorts below ZLow, and none
	// at or above ZHigh (nil: the index's start, its end). Pops move them
	// past what they popped, so that the next pop seeks to the mark rather
	// than stepping over the deletions every earlier pop left behind until
	// the store compacts them (a list's Head and Tail do the same for
	// LPOP); an insert outside them widens them in the same record write.
	// They are bounds, not the exact ends: a ZREM of the smallest member
	// leaves ZLow below it. Records written before the marks existed have
	// none (nil, nil), which is the whole index. At most MaxZMark bytes
	// each (ZMarkLow and ZMarkHigh make a bound of that size).
	ZLow, ZHigh []byte
}

// MaxZMark is the longest sorted-set mark kept in a metadata record (the
// score's 8 bytes and a member of up to 64 bytes, Redis's listpack
// threshold): the record is rewritten by every write of the set, so a mark
// of a long member is shortened into a looser bound instead.
const MaxZMark = 8 + 64

// ZMarkLow returns the low mark to keep when no live entry sorts below
// elem: elem itself, or a prefix of it (a lower bound) if it is longer
// than MaxZMark.
func ZMarkLow(elem []byte) []byte {
	return append([]byte(nil), elem[:min(len(elem), MaxZMark)]...)
}

// ZMarkAbove returns the low mark to keep when no live entry sorts at or
// below elem (elem's successor, elem ‖ 0x00, or a prefix of it).
func ZMarkAbove(elem []byte) []byte {
	if len(elem) >= MaxZMark {
		return ZMarkLow(elem)
	}
	return append(append(make([]byte, 0, len(elem)+1), elem...), 0)
}

// ZMarkHighAbove returns the high mark to keep when no live entry sorts
// above elem (elem is live): elem ‖ 0x00, or the end of a prefix's range
// (nil, unbounded, for an all-0xff prefix).
func ZMarkHighAbove(elem []byte) []byte {
	if len(elem) < MaxZMark {
		return append(append(make([]byte, 0, len(elem)+1), elem...), 0)
	}
	return PrefixEnd(elem[:MaxZMark])
}

// ZMarkHigh returns the high mark to keep when no live entry sorts at or
// above elem: elem itself, or if it is longer than MaxZMark the end of
// its prefix's range (an upper bound; nil, unbounded, for an all-0xff
// prefix).
func ZMarkHigh(elem []byte) []byte {
	if len(elem) <= MaxZMark {
		return append([]byte(nil), elem...)
	}
	return PrefixEnd(elem[:MaxZMark])
}

// Body layouts (persisted). Format 1 is the base (26 bytes) or the base
// and a list's head and tail (42). Format 2 is the base and a sorted set's
// marks, each a length byte (0: no mark) and that many bytes; it is
// written only for a record that has a mark, so a sorted set never popped
// keeps format 1, which binaries from before the marks read (they refuse
// format 2 with ErrFormatTooNew rather than misread it).
const (
	metaFormat      = 1
	metaFormatMarks = 2
	metaFlagBig     = 1 << 0
	metaLen         = 1 + 1 + 8 + 8 + 8
	metaListLen     = metaLen + 16
)

// AppendMeta appends m's encoding.
func AppendMeta(dst []byte, m Meta) []byte {
	var flags byte
	if m.Big {
		flags |= metaFlagBig
	}
	marks := !m.List && (m.ZLow != nil || m.ZHigh != nil)
	format := byte(metaFormat)
	if marks {
		format = metaFormatMarks
	}
	dst = append(dst, format, flags)
	dst = binary.BigEndian.AppendUint64(dst, m.Version)
	dst = binary.BigEndian.AppendUint64(dst, m.Count)
	dst = binary.BigEndian.AppendUint64(dst, m.Stamp)
	if m.List {
		dst = AppendListIndex(dst, m.Head)
		dst = AppendListIndex(dst, m.Tail)
	}
	if marks {
		for _, mark := range [][]byte{m.ZLow, m.ZHigh} {
			if len(mark) > MaxZMark {
				panic(fmt.Sprintf("keyspace: sorted-set mark of %d bytes", len(mark)))
			}
			dst = append(dst, byte(len(mark)))
			dst = append(dst, mark...)
		}
	}
	return dst
}

// DecodeMeta parses a metadata body.
func DecodeMeta(b []byte) (Meta, error) {
	if len(b) < metaLen {
		return Meta{}, fmt.Errorf("keyspace: corrupt collection metadata of %d bytes", len(b))
	}
	switch b[0] {
	case metaFormat:
		if len(b) != metaLen && len(b) != metaListLen {
			return Meta{}, fmt.Errorf("keyspace: corrupt collection metadata of %d bytes", len(b))
		}
	case metaFormatMarks:
	default:
		return Meta{}, fmt.Errorf("keyspace: collection metadata format %d unknown: %w", b[0], ErrFormatTooNew)
	}
	m := Meta{
		Big:     b[1]&metaFlagBig != 0,
		Version: binary.BigEndian.Uint64(b[2:10]),
		Count:   binary.BigEndian.Uint64(b[10:18]),
		Stamp:   binary.BigEndian.Uint64(b[18:26]),
	}
	if b[0] == metaFormatMarks {
		rest := b[metaLen:]
		for _, mark := range []*[]byte{&m.ZLow, &m.ZHigh} {
			if len(rest) < 1 || int(rest[0]) > len(rest)-1 || rest[0] > MaxZMark {
				return Meta{}, fmt.Errorf("keyspace: corrupt sorted-set marks in collection metadata of %d bytes", len(b))
			}
			if n := int(rest[0]); n > 0 {
				*mark = append([]byte(nil), rest[1:1+n]...)
			}
			rest = rest[1+int(rest[0]):]
		}
		if len(rest) != 0 {
			return Meta{}, fmt.Errorf("keyspace: corrupt collection metadata of %d bytes", len(b))
		}
		return m, nil
	}
	if len(b) == metaListLen {
		m.List = true
		m.Head = DecodeListIndex(b[26:34])
		m.Tail = DecodeListIndex(b[34:42])
	}
	return m, nil
}
