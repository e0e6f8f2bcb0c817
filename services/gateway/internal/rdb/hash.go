package rdb

import (
	"encoding/binary"
	"strconv"
)

// Hash payloads. DUMP writes RDB_TYPE_HASH (a count, then each field and
// value as an RDB string): every Redis since 2.0 restores it, and Redis
// converts it to the encoding its own limits call for. Redis 7.0 itself
// dumps a small hash as a listpack (RDB_TYPE_HASH_LISTPACK) and Redis 6 as
// a ziplist (RDB_TYPE_HASH_ZIPLIST): RESTORE reads all three.
const (
	TypeHash         = 4
	TypeHashZiplist  = 13
	TypeHashListpack = 16
)

// IsHash reports whether payload p holds a hash (not whether it is valid).
func IsHash(p []byte) bool {
	return len(p) > 0 && (p[0] == TypeHash || p[0] == TypeHashZiplist || p[0] == TypeHashListpack)
}

// DumpHash returns DUMP's payload for a hash's fields and values.
func DumpHash(fields, vals [][]byte) []byte {
	p := []byte{TypeHash}
	p = appendLen(p, uint64(len(fields)))
	for i := range fields {
		p = AppendString(p, fields[i])
		p = AppendString(p, vals[i])
	}
	return Seal(p)
}

// DecodeHash verifies a hash payload and returns its fields and values.
// limit is asked about each string's length before it is allocated. An
// empty hash, an odd number of elements or a field named twice is
// ErrBadFormat (Redis refuses the first two, and would keep the second
// value of the third only with deep sanitization off).
func DecodeHash(p []byte, limit func(n uint64) error) (fields, vals [][]byte, err error) {
	if err := Verify(p); err != nil {
		return nil, nil, err
	}
	r := reader{p: p, pos: 1}
	var elems [][]byte
	switch p[0] {
	case TypeHash:
		n, enc, ok := r.length()
		if !ok || enc || n == 0 || n > uint64(len(p)) {
			return nil, nil, ErrBadFormat
		}
		elems = make([][]byte, 0, 2*n)
		for range 2 * n {
			s, err := r.string(limit)
			if err != nil {
				return nil, nil, err
			}
			elems = append(elems, s)
		}
	case TypeHashListpack, TypeHashZiplist:
		blob, err := r.string(limit)
		if err != nil {
			return nil, nil, err
		}
		if p[0] == TypeHashListpack {
			elems, err = listpackEntries(blob)
		} else {
			elems, err = ziplistEntries(blob)
		}
		if err != nil {
			return nil, nil, err
		}
		for _, e := range elems {
			if err := limit(uint64(len(e))); err != nil {
				return nil, nil, err
			}
		}
	default:
		return nil, nil, ErrBadFormat
	}
	if len(elems) == 0 || len(elems)%2 != 0 {
		return nil, nil, ErrBadFormat
	}
	seen := make(map[string]bool, len(elems)/2)
	for i := 0; i < len(elems); i += 2 {
		if seen[string(elems[i])] {
			return nil, nil, ErrBadFormat
		}
		seen[string(elems[i])] = true
		fields = append(fields, elems[i])
		vals = append(vals, elems[i+1])
	}
	return fields, vals, nil
}

// listpackEntries reads a listpack (redis/src/listpack.c): a 6-byte header
// (total bytes, element count), entries, 0xFF. Each entry is an encoding
// byte with its data, then its own length backwards (1 to 5 bytes).
func listpackEntries(b []byte) ([][]byte, error) {
	if len(b) < 7 || binary.LittleEndian.Uint32(b) != uint32(len(b)) || b[len(b)-1] != 0xFF {
		return nil, ErrBadFormat
	}
	count := int(binary.LittleEndian.Uint16(b[4:]))
	var out [][]byte
	pos := 6
	for pos < len(b)-1 {
		start := pos
		c := b[pos]
		var entry []byte
		need := func(n int) bool { return pos+n <= len(b)-1 }
		switch {
		case c&0x80 == 0: // 7-bit unsigned integer
			entry = strconv.AppendInt(nil, int64(c&0x7f), 10)
			pos++
		case c&0xC0 == 0x80: // string, 6-bit length
			n := int(c & 0x3f)
			if !need(1 + n) {
				return nil, ErrBadFormat
			}
			entry = b[pos+1 : pos+1+n]
			pos += 1 + n
		case c&0xE0 == 0xC0: // 13-bit signed integer
			if !need(2) {
				return nil, ErrBadFormat
			}
			v := int64(c&0x1f)<<8 | int64(b[pos+1])
			if v >= 1<<12 {
				v -= 1 << 13
			}
			entry = strconv.AppendInt(nil, v, 10)
			pos += 2
		case c&0xF0 == 0xE0: // string, 12-bit length
			if !need(2) {
				return nil, ErrBadFormat
			}
			n := int(c&0x0f)<<8 | int(b[pos+1])
			if !need(2 + n) {
				return nil, ErrBadFormat
			}
			entry = b[pos+2 : pos+2+n]
			pos += 2 + n
		case c == 0xF0: // string, 32-bit length
			if !need(5) {
				return nil, ErrBadFormat
			}
			n := int(binary.LittleEndian.Uint32(b[pos+1:]))
			if n < 0 || !need(5+n) {
				return nil, ErrBadFormat
			}
			entry = b[pos+5 : pos+5+n]
			pos += 5 + n
		case c >= 0xF1 && c <= 0xF4: // 16, 24, 32, 64-bit signed integers
			size := map[byte]int{0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}[c]
			if !need(1 + size) {
				return nil, ErrBadFormat
			}
			var u uint64
			for i := size - 1; i >= 0; i-- {
				u = u<<8 | uint64(b[pos+1+i])
			}
			shift := 64 - 8*uint(size)
			entry = strconv.AppendInt(nil, int64(u<<shift)>>shift, 10)
			pos += 1 + size
		default:
			return nil, ErrBadFormat
		}
		// The back-length: the entry's size, 7 bits per byte.
		l := pos - start
		bl := 1
		for x := l; x >= 128; x >>= 7 {
			bl++
		}
		if !need(bl) {
			return nil, ErrBadFormat
		}
		pos += bl
		out = append(out, entry)
	}
	if count != 0xFFFF && count != len(out) {
		return nil, ErrBadFormat
	}
	return out, nil
}

// ziplistEntries reads a ziplist (redis/src/ziplist.c, Redis before 7):
// a 10-byte header (total bytes, tail offset, count), entries, 0xFF. Each
// entry is the previous entry's length (1 or 5 bytes), an encoding and
// its data.
func ziplistEntries(b []byte) ([][]byte, error) {
	if len(b) < 11 || binary.LittleEndian.Uint32(b) != uint32(len(b)) || b[len(b)-1] != 0xFF {
		return nil, ErrBadFormat
	}
	count := int(binary.LittleEndian.Uint16(b[8:]))
	var out [][]byte
	pos := 10
	need := func(n int) bool { return pos+n <= len(b)-1 }
	for pos < len(b)-1 {
		if b[pos] == 0xFE {
			pos += 5
		} else {
			pos++
		}
		if !need(1) {
			return nil, ErrBadFormat
		}
		c := b[pos]
		var entry []byte
		switch {
		case c>>6 == 0:
			n := int(c & 0x3f)
			if !need(1 + n) {
				return nil, ErrBadFormat
			}
			entry, pos = b[pos+1:pos+1+n], pos+1+n
		case c>>6 == 1:
			if !need(2) {
				return nil, ErrBadFormat
			}
			n := int(c&0x3f)<<8 | int(b[pos+1])
			if !need(2 + n) {
				return nil, ErrBadFormat
			}
			entry, pos = b[pos+2:pos+2+n], pos+2+n
		case c == 0x80:
			if !need(5) {
				return nil, ErrBadFormat
			}
			n := int(binary.BigEndian.Uint32(b[pos+1:]))
			if n < 0 || !need(5+n) {
				return nil, ErrBadFormat
			}
			entry, pos = b[pos+5:pos+5+n], pos+5+n
		case c >= 0xF1 && c <= 0xFD: // 4-bit immediate, 0 to 12
			entry, pos = strconv.AppendInt(nil, int64(c&0x0f)-1, 10), pos+1
		default:
			size := map[byte]int{0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}[c]
			if size == 0 || !need(1+size) {
				return nil, ErrBadFormat
			}
			var u uint64
			for i := size - 1; i >= 0; i-- {
				u = u<<8 | uint64(b[pos+1+i])
			}
			shift := 64 - 8*uint(size)
			entry, pos = strconv.AppendInt(nil, int64(u<<shift)>>shift, 10), pos+1+size
		}
		out = append(out, entry)
	}
	if count != 0xFFFF && count != len(out) {
		return nil, ErrBadFormat
	}
	return out, nil
}
