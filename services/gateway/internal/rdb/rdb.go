// Package rdb reads and writes values in Redis's serialization format, as
// DUMP produces and RESTORE consumes it (redis/src/rdb.c, cluster.c):
//
//	type byte | value, RDB-encoded | RDB version (2 bytes LE) | CRC-64 Jones (8 bytes LE)
//
// Strings are written exactly as redis-server 7.0 writes them (with
// rdbcompression yes): an integer that fits 32 bits in its integer encoding,
// a string over 20 bytes LZF-compressed when that saves at least 4 bytes,
// anything else verbatim; so DUMP's output is byte-identical to Redis's and
// either side restores the other's.
package rdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// Version is the RDB version DUMP writes: Redis 7.0's. RESTORE accepts
// payloads of this version or older, as Redis does.
const Version = 10

// RDB object types (rdb.h). Only strings are decoded today.
const (
	TypeString = 0
)

// typeNames names the RDB object types Redis 7.0 knows (rdbIsObjectType):
// a payload of one of them is well-formed but not a string.
var typeNames = map[byte]string{
	1: "list", 2: "set", 3: "zset", 4: "hash", 5: "zset", 6: "module", 7: "module",
	9: "hash", 10: "list", 11: "set", 12: "zset", 13: "hash", 14: "list",
	15: "stream", 16: "hash", 17: "zset", 18: "list", 19: "stream",
}

// Errors of Decode. Their texts are Redis's replies without "ERR ".
var (
	// ErrChecksum: shorter than the footer, a newer RDB version, or a CRC
	// that does not match.
	ErrChecksum = errors.New("DUMP payload version or checksum are wrong")
	// ErrBadFormat: the value does not parse.
	ErrBadFormat = errors.New("Bad data format")
)

// UnsupportedTypeError is a well-formed payload of a type the gateway
// cannot store yet.
type UnsupportedTypeError struct {
	Type byte
	Name string
}

func (e *UnsupportedTypeError) Error() string {
	return fmt.Sprintf("DUMP payload of a %s value (RDB type %d): only strings, hashes, sets, lists and sorted sets can be restored", e.Name, e.Type)
}

// Length encodings (rdb.h).
const (
	len6Bit  = 0
	len14Bit = 1
	len32Bit = 0x80
	len64Bit = 0x81
	encVal   = 3
	encInt8  = 0
	encInt16 = 1
	encInt32 = 2
	encLZF   = 3
)

// appendLen is rdbSaveLen.
func appendLen(dst []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(dst, byte(n)|len6Bit<<6)
	case n < 1<<14:
		return append(dst, byte(n>>8)|len14Bit<<6, byte(n))
	case n <= 1<<32-1:
		return binary.BigEndian.AppendUint32(append(dst, len32Bit), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, len64Bit), n)
	}
}

// appendInt is rdbEncodeInteger: false if v needs more than 32 bits.
func appendInt(dst []byte, v int64) ([]byte, bool) {
	switch {
	case v >= -1<<7 && v <= 1<<7-1:
		return append(dst, encVal<<6|encInt8, byte(v)), true
	case v >= -1<<15 && v <= 1<<15-1:
		return binary.LittleEndian.AppendUint16(append(dst, encVal<<6|encInt16), uint16(v)), true
	case v >= -1<<31 && v <= 1<<31-1:
		return binary.LittleEndian.AppendUint32(append(dst, encVal<<6|encInt32), uint32(v)), true
	}
	return dst, false
}

// AppendString appends s as rdbSaveRawString writes it with rdbcompression
// on. What Redis writes depends on the bytes only, not on how the value is
// held (an integer-encoded value takes the same integer encoding, and is
// never long enough to be compressed).
func AppendString(dst, s []byte) []byte {
	if len(s) <= 11 {
		if v, ok := resp.ParseInt(s); ok {
			if out, ok := appendInt(dst, v); ok {
				return out
			}
		}
	}
	if len(s) > 20 {
		// rdbSaveLzfStringObject: worth it only if it saves 4 bytes or more.
		// The header's size is known only after compressing: compress past
		// room for the largest header, then move the result down.
		start := len(dst)
		dst = slices.Grow(dst, maxLZFHeader+len(s)-4)
		out := dst[start+maxLZFHeader : start+maxLZFHeader+len(s)-4]
		if n := lzfCompress(s, out); n > 0 {
			var h [maxLZFHeader]byte
			hdr := appendLen(appendLen(append(h[:0], encVal<<6|encLZF), uint64(n)), uint64(len(s)))
			dst = append(dst, hdr...)
			return append(dst, out[:n]...) // copy moves the overlapping bytes down
		}
	}
	dst = appendLen(dst, uint64(len(s)))
	return append(dst, s...)
}

// maxLZFHeader is the largest header of a compressed string: the encoding
// byte and two 64-bit lengths.
const maxLZFHeader = 1 + 9 + 9

// DumpString returns DUMP's payload for the string s.
func DumpString(s []byte) []byte {
	p := make([]byte, 0, 1+maxLZFHeader+len(s)+10)
	p = append(p, TypeString)
	p = AppendString(p, s)
	return Seal(p)
}

// Seal appends the footer to a payload's body: the RDB version and the
// CRC-64 of everything before it.
func Seal(p []byte) []byte {
	p = binary.LittleEndian.AppendUint16(p, Version)
	return binary.LittleEndian.AppendUint64(p, CRC64(0, p))
}

// Verify checks the footer as verifyDumpPayload does.
func Verify(p []byte) error {
	if len(p) < 10 {
		return ErrChecksum
	}
	footer := p[len(p)-10:]
	if binary.LittleEndian.Uint16(footer) > Version {
		return ErrChecksum
	}
	if CRC64(0, p[:len(p)-8]) != binary.LittleEndian.Uint64(footer[2:]) {
		return ErrChecksum
	}
	return nil
}

// Decode verifies a DUMP payload and returns the string it holds. limit is
// asked about the string's length before any of it is allocated (an LZF
// header may claim gigabytes); its error is returned as it is.
//
// As in Redis, the value is read from the whole payload, footer included:
// a string whose length runs into the footer takes the footer's bytes, and
// bytes after the value are ignored. The result may alias p.
func Decode(p []byte, limit func(n uint64) error) ([]byte, error) {
	if err := Verify(p); err != nil {
		return nil, err
	}
	t := p[0]
	if t != TypeString {
		if name, ok := typeNames[t]; ok {
			return nil, &UnsupportedTypeError{Type: t, Name: name}
		}
		return nil, ErrBadFormat
	}
	r := reader{p: p, pos: 1}
	return r.string(limit)
}

// reader reads RDB encodings from a payload.
type reader struct {
	p   []byte
	pos int
}

func (r *reader) take(n uint64) ([]byte, bool) {
	if n > uint64(len(r.p)-r.pos) {
		return nil, false
	}
	b := r.p[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b, true
}

// length is rdbLoadLenByRef: a length, or (encoded) a special encoding.
func (r *reader) length() (n uint64, encoded bool, ok bool) {
	b, ok := r.take(1)
	if !ok {
		return 0, false, false
	}
	switch t := b[0] >> 6; {
	case t == encVal:
		return uint64(b[0] & 0x3f), true, true
	case t == len6Bit:
		return uint64(b[0] & 0x3f), false, true
	case t == len14Bit:
		c, ok := r.take(1)
		if !ok {
			return 0, false, false
		}
		return uint64(b[0]&0x3f)<<8 | uint64(c[0]), false, true
	case b[0] == len32Bit:
		c, ok := r.take(4)
		if !ok {
			return 0, false, false
		}
		return uint64(binary.BigEndian.Uint32(c)), false, true
	case b[0] == len64Bit:
		c, ok := r.take(8)
		if !ok {
			return 0, false, false
		}
		n := binary.BigEndian.Uint64(c)
		// rdbLoadLen's error value: Redis cannot tell it from an error.
		return n, false, n != 1<<64-1
	}
	return 0, false, false
}

// string is rdbGenericLoadStringObject.
func (r *reader) string(limit func(uint64) error) ([]byte, error) {
	n, encoded, ok := r.length()
	if !ok {
		return nil, ErrBadFormat
	}
	if !encoded {
		b, ok := r.take(n)
		if !ok {
			return nil, ErrBadFormat
		}
		if err := limit(n); err != nil {
			return nil, err
		}
		return b, nil
	}
	switch n {
	case encInt8, encInt16, encInt32:
		size := uint64(1) << n // 1, 2, 4 bytes
		b, ok := r.take(size)
		if !ok {
			return nil, ErrBadFormat
		}
		var v int64
		switch n {
		case encInt8:
			v = int64(int8(b[0]))
		case encInt16:
			v = int64(int16(binary.LittleEndian.Uint16(b)))
		default:
			v = int64(int32(binary.LittleEndian.Uint32(b)))
		}
		return strconv.AppendInt(nil, v, 10), nil
	case encLZF:
		return r.lzf(limit)
	}
	return nil, ErrBadFormat
}

// lzf is rdbLoadLzfStringObject, bounded: the announced length is checked
// against what the compressed bytes could possibly expand to and against
// limit before anything is allocated.
func (r *reader) lzf(limit func(uint64) error) ([]byte, error) {
	// rdbLoadLen(rdb, NULL): an "encoded" length byte is read as a plain
	// 6-bit length.
	clen, _, ok := r.length()
	if !ok {
		return nil, ErrBadFormat
	}
	n, _, ok := r.length()
	if !ok {
		return nil, ErrBadFormat
	}
	c, ok := r.take(clen)
	if !ok {
		return nil, ErrBadFormat
	}
	if n == 0 {
		// lzf_decompress into no room fails with 0, which is the length
		// announced: Redis accepts any compressed bytes as "".
		return []byte{}, nil
	}
	if n > uint64(len(c))*lzfMaxRatio {
		return nil, ErrBadFormat // no LZF stream of clen bytes expands that far
	}
	if err := limit(n); err != nil {
		return nil, err
	}
	out := make([]byte, n)
	if lzfDecompress(c, out) != len(out) {
		return nil, ErrBadFormat
	}
	return out, nil
}
