package rdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// listpack builds a listpack of entries already encoded (encoding byte and
// data), adding each entry's back-length, the header and the terminator.
func listpack(entries ...string) string {
	var body []byte
	for _, e := range entries {
		body = append(body, e...)
		body = append(body, byte(len(e))) // entries here are shorter than 128 bytes
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(6+len(body)+1))
	out = binary.LittleEndian.AppendUint16(out, uint16(len(entries)))
	return string(append(append(out, body...), 0xff))
}

// ziplist builds a ziplist of entries already encoded (encoding and data),
// each preceded by the previous entry's length.
func ziplist(entries ...string) string {
	var body []byte
	prev := 0
	for _, e := range entries {
		body = append(body, byte(prev))
		body = append(body, e...)
		prev = 1 + len(e)
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(10+len(body)+1))
	out = binary.LittleEndian.AppendUint32(out, 0) // tail offset: not read
	out = binary.LittleEndian.AppendUint16(out, uint16(len(entries)))
	return string(append(append(out, body...), 0xff))
}

func rdbString(s string) string { return string(AppendString(nil, []byte(s))) }

func TestDecodeHash(t *testing.T) {
	pairs := func(fields, vals [][]byte) string {
		var b strings.Builder
		for i := range fields {
			b.WriteString(string(fields[i]) + "=" + string(vals[i]) + ";")
		}
		return b.String()
	}
	for _, c := range []struct {
		name, body, want string
		err              error
	}{
		{"hash", "\x04\x02" + rdbString("a") + rdbString("1") + rdbString("b") + rdbString("xyz"), "a=1;b=xyz;", nil},
		{"hash-empty", "\x04\x00", "", ErrBadFormat},
		{"hash-duplicate", "\x04\x02" + rdbString("a") + rdbString("1") + rdbString("a") + rdbString("2"), "", ErrBadFormat},
		{"hash-short", "\x04\x02" + rdbString("a") + rdbString("1"), "", ErrBadFormat},
		{"hash-huge-count", "\x04\x81\xff\xff\xff\xff\xff\xff\xff\xfe", "", ErrBadFormat},
		// Listpack entries: 7-bit int, 6-bit string, 13-bit int (-1),
		// 12-bit string, int16 (-2), int24 (-3), int32, int64.
		{"listpack", "\x10" + rdbString(listpack("\x05", "\x82ab", "\xdf\xff", "\xe0\x01c", "\xf1\xfe\xff", "\xf2\xfd\xff\xff",
			"\xf3\x00\x00\x00\x80", "\xf4\xff\xff\xff\xff\xff\xff\xff\x7f")),
			"5=ab;-1=c;-2=-3;-2147483648=9223372036854775807;", nil},
		{"listpack-odd", "\x10" + rdbString(listpack("\x05")), "", ErrBadFormat},
		{"listpack-bad-size", "\x10" + rdbString("\x09\x00\x00\x00\x00\x00\xff"), "", ErrBadFormat},
		{"listpack-truncated-string", "\x10" + rdbString(listpack("\x85ab", "\x01")[:10]+"\xff"), "", ErrBadFormat},
		{"listpack-bad-encoding", "\x10" + rdbString(listpack("\xf5", "\x01")), "", ErrBadFormat},
		// Ziplist entries: 6-bit string, int16, 4-bit immediate (7),
		// int8, int24, int32, int64, 14-bit string.
		{"ziplist", "\x0d" + rdbString(ziplist("\x01a", "\xc0\xff\xff", "\xf8", "\xfe\x80", "\xf0\x00\x00\x80",
			"\xd0\x01\x00\x00\x00", "\xe0\x02\x00\x00\x00\x00\x00\x00\x00", "\x40\x02zz")),
			"a=-1;7=-128;-8388608=1;2=zz;", nil},
		{"ziplist-bad-encoding", "\x0d" + rdbString(ziplist("\x01a", "\xff")), "", ErrBadFormat},
	} {
		t.Run(c.name, func(t *testing.T) {
			fields, vals, err := DecodeHash(Seal([]byte(c.body)), noLimit)
			if !errors.Is(err, c.err) || (err == nil && pairs(fields, vals) != c.want) {
				t.Fatalf("DecodeHash = %q, %v; want %q, %v", pairs(fields, vals), err, c.want, c.err)
			}
		})
	}
	// What DumpHash writes, DecodeHash reads back.
	f := [][]byte{[]byte("a"), []byte("12"), []byte(strings.Repeat("z", 100))}
	v := [][]byte{[]byte("-7"), []byte(strings.Repeat("y", 300)), []byte("")}
	gf, gv, err := DecodeHash(DumpHash(f, v), noLimit)
	if err != nil || pairs(gf, gv) != pairs(f, v) {
		t.Fatalf("round trip: %q %v", pairs(gf, gv), err)
	}
}

// Mutated hash payloads (with a correct checksum, so the decoder sees them)
// are refused or decoded, never a panic or an unbounded allocation.
func TestDecodeHashMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	bases := [][]byte{
		[]byte("\x10" + rdbString(listpack("\x05", "\x82ab", "\xdf\xff", "\xe0\x01c", "\xf4\xff\xff\xff\xff\xff\xff\xff\x7f", "\x01"))),
		[]byte("\x0d" + rdbString(ziplist("\x01a", "\xc0\xff\xff", "\xf8", "\x40\x02zz"))),
	}
	dumped := DumpHash([][]byte{[]byte("f"), []byte("g")}, [][]byte{[]byte("1"), bytes.Repeat([]byte("x"), 40)})
	bases = append(bases, dumped[:len(dumped)-10]) // without its footer, which Seal adds again
	for range 20000 {
		p := bytes.Clone(bases[rng.IntN(len(bases))])
		for range 1 + rng.IntN(3) {
			p[rng.IntN(len(p))] = byte(rng.Uint32())
		}
		_, _, _ = DecodeHash(Seal(p), noLimit)
	}
}
