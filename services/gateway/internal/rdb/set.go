package rdb

import (
	"encoding/binary"
	"strconv"
)

// Set payloads. DUMP writes RDB_TYPE_SET (a count, then each member as an
// RDB string), which every Redis restores; RESTORE also reads Redis's
// intset (RDB_TYPE_SET_INTSET), what Redis 7.0 dumps for a set of integers.
const (
	TypeSet       = 2
	TypeSetIntset = 11
)

// IsSet reports whether payload p holds a set (not whether it is valid).
func IsSet(p []byte) bool { return len(p) > 0 && (p[0] == TypeSet || p[0] == TypeSetIntset) }

// DumpSet returns DUMP's payload for a set's members.
func DumpSet(members [][]byte) []byte {
	p := []byte{TypeSet}
	p = appendLen(p, uint64(len(members)))
	for _, m := range members {
		p = AppendString(p, m)
	}
	return Seal(p)
}

// DecodeSet verifies a set payload and returns its members. limit is asked
// about each member's length before it is allocated. An empty set or a
// member named twice is ErrBadFormat.
func DecodeSet(p []byte, limit func(n uint64) error) ([][]byte, error) {
	if err := Verify(p); err != nil {
		return nil, err
	}
	r := reader{p: p, pos: 1}
	var out [][]byte
	switch p[0] {
	case TypeSet:
		n, enc, ok := r.length()
		if !ok || enc || n == 0 || n > uint64(len(p)) {
			return nil, ErrBadFormat
		}
		for range n {
			s, err := r.string(limit)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
	case TypeSetIntset:
		// An intset (redis/src/intset.c): encoding (2, 4 or 8: bytes per
		// integer), count, then the integers, little-endian, ascending.
		blob, err := r.string(limit)
		if err != nil {
			return nil, err
		}
		if len(blob) < 8 {
			return nil, ErrBadFormat
		}
		size := int(binary.LittleEndian.Uint32(blob))
		n := int(binary.LittleEndian.Uint32(blob[4:]))
		if (size != 2 && size != 4 && size != 8) || n < 0 || len(blob) != 8+n*size {
			return nil, ErrBadFormat
		}
		for i := range n {
			var u uint64
			for j := size - 1; j >= 0; j-- {
				u = u<<8 | uint64(blob[8+i*size+j])
			}
			shift := 64 - 8*uint(size)
			out = append(out, strconv.AppendInt(nil, int64(u<<shift)>>shift, 10))
		}
	default:
		return nil, ErrBadFormat
	}
	if len(out) == 0 {
		return nil, ErrBadFormat
	}
	seen := make(map[string]bool, len(out))
	for _, m := range out {
		if seen[string(m)] {
			return nil, ErrBadFormat
		}
		seen[string(m)] = true
	}
	return out, nil
}
