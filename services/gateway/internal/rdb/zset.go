package rdb

import (
	"encoding/binary"
	"math"
)

// Sorted-set payloads. DUMP writes RDB_TYPE_ZSET_2 (a count, then each
// member as an RDB string and its score as a little-endian binary double),
// which every Redis since 4.0 restores, converting it to the encoding its
// own limits call for. RESTORE also reads RDB_TYPE_ZSET (scores as text,
// Redis before 4.0), RDB_TYPE_ZSET_ZIPLIST (Redis 6's small zsets) and
// RDB_TYPE_ZSET_LISTPACK (Redis 7.0's).
const (
	TypeZSet         = 3
	TypeZSet2        = 5
	TypeZSetZiplist  = 12
	TypeZSetListpack = 17
)

// IsZSet reports whether payload p holds a sorted set (not whether it is
// valid).
func IsZSet(p []byte) bool {
	return len(p) > 0 && (p[0] == TypeZSet || p[0] == TypeZSet2 || p[0] == TypeZSetZiplist || p[0] == TypeZSetListpack)
}

// DumpZSet returns DUMP's payload for a sorted set's members and scores.
func DumpZSet(members [][]byte, scores []float64) []byte {
	p := []byte{TypeZSet2}
	p = appendLen(p, uint64(len(members)))
	for i := range members {
		p = AppendString(p, members[i])
		p = binary.LittleEndian.AppendUint64(p, math.Float64bits(scores[i]))
	}
	return Seal(p)
}

// DecodeZSet verifies a sorted-set payload and returns its members and
// scores. limit is asked about each string's length before it is
// allocated; parseScore reads a score written as text (RDB_TYPE_ZSET, a
// listpack's or ziplist's non-integer entry) as Redis's strtod does. An
// empty set, a NaN score, a score that does not parse, an odd number of
// entries or a member named twice is ErrBadFormat (Redis refuses each).
func DecodeZSet(p []byte, limit func(n uint64) error, parseScore func([]byte) (float64, bool)) (members [][]byte, scores []float64, err error) {
	if err := Verify(p); err != nil {
		return nil, nil, err
	}
	r := reader{p: p, pos: 1}
	switch p[0] {
	case TypeZSet, TypeZSet2:
		n, enc, ok := r.length()
		if !ok || enc || n == 0 || n > uint64(len(p)) {
			return nil, nil, ErrBadFormat
		}
		for range n {
			m, err := r.string(limit)
			if err != nil {
				return nil, nil, err
			}
			var f float64
			if p[0] == TypeZSet2 {
				b, ok := r.take(8)
				if !ok {
					return nil, nil, ErrBadFormat
				}
				f = math.Float64frombits(binary.LittleEndian.Uint64(b))
			} else {
				// rdbLoadDoubleValue: a length byte, 253 NaN, 254 +inf,
				// 255 -inf, else that many bytes of text.
				b, ok := r.take(1)
				if !ok {
					return nil, nil, ErrBadFormat
				}
				switch b[0] {
				case 253:
					f = math.NaN()
				case 254:
					f = math.Inf(1)
				case 255:
					f = math.Inf(-1)
				default:
					txt, ok := r.take(uint64(b[0]))
					if !ok {
						return nil, nil, ErrBadFormat
					}
					if f, ok = parseScore(txt); !ok {
						return nil, nil, ErrBadFormat
					}
				}
			}
			members = append(members, m)
			scores = append(scores, f)
		}
	case TypeZSetZiplist, TypeZSetListpack:
		blob, err := r.string(limit)
		if err != nil {
			return nil, nil, err
		}
		var elems [][]byte
		if p[0] == TypeZSetListpack {
			elems, err = listpackEntries(blob)
		} else {
			elems, err = ziplistEntries(blob)
		}
		if err != nil {
			return nil, nil, err
		}
		if len(elems)%2 != 0 {
			return nil, nil, ErrBadFormat
		}
		for i := 0; i < len(elems); i += 2 {
			if err := limit(uint64(len(elems[i]))); err != nil {
				return nil, nil, err
			}
			f, ok := parseScore(elems[i+1])
			if !ok {
				return nil, nil, ErrBadFormat
			}
			members = append(members, elems[i])
			scores = append(scores, f)
		}
	default:
		return nil, nil, ErrBadFormat
	}
	if len(members) == 0 {
		return nil, nil, ErrBadFormat
	}
	seen := make(map[string]bool, len(members))
	for i, m := range members {
		if seen[string(m)] || math.IsNaN(scores[i]) {
			return nil, nil, ErrBadFormat
		}
		seen[string(m)] = true
	}
	return members, scores, nil
}
