package rdb

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestDecodeList(t *testing.T) {
	join := func(es [][]byte) string { return string(bytes.Join(es, []byte(";"))) }
	for _, c := range []struct {
		name, body, want string
		err              error
	}{
		{"list", "\x01\x03" + rdbString("a") + rdbString("") + rdbString("12"), "a;;12", nil},
		{"list-empty", "\x01\x00", "", ErrBadFormat},
		{"list-short", "\x01\x02" + rdbString("a"), "", ErrBadFormat},
		{"list-huge-count", "\x01\x81\xff\xff\xff\xff\xff\xff\xff\xfe", "", ErrBadFormat},
		// Redis 7.0's DUMP of RPUSH l a b 1 (conformance.redisListDump
		// without its footer).
		{"quicklist2-redis", "\x12\x01\x02\x0f\x0f\x00\x00\x00\x03\x00\x81a\x02\x81b\x02\x01\x01\xff", "a;b;1", nil},
		{"quicklist2-plain-and-packed", "\x12\x02\x01" + rdbString("big") + "\x02" + rdbString(listpack("\x05", "\x82ab")), "big;5;ab", nil},
		{"quicklist2-bad-container", "\x12\x01\x03" + rdbString("x"), "", ErrBadFormat},
		{"quicklist2-empty-node", "\x12\x01\x02" + rdbString(listpack()), "", ErrBadFormat},
		{"quicklist-ziplist", "\x0e\x02" + rdbString(ziplist("\x01a", "\xf8")) + rdbString(ziplist("\x40\x02zz")), "a;7;zz", nil},
		{"quicklist-bad-ziplist", "\x0e\x01" + rdbString(ziplist("\x01a", "\xff")), "", ErrBadFormat},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeList(Seal([]byte(c.body)), noLimit)
			if !errors.Is(err, c.err) || (err == nil && join(got) != c.want) {
				t.Fatalf("DecodeList = %q, %v; want %q, %v", join(got), err, c.want, c.err)
			}
		})
	}
	// What DumpList writes, DecodeList reads back, in order.
	es := [][]byte{[]byte("z"), []byte("12"), []byte(strings.Repeat("y", 300)), []byte(""), []byte("z")}
	got, err := DecodeList(DumpList(es), noLimit)
	if err != nil || join(got) != join(es) {
		t.Fatalf("round trip: %q %v", join(got), err)
	}
	// The limit is asked about every element, listpack entries included.
	tooBig := errors.New("too big")
	limit := func(n uint64) error {
		if n > 1 {
			return tooBig
		}
		return nil
	}
	if _, err := DecodeList(Seal([]byte("\x12\x01\x02"+rdbString(listpack("\x82ab")))), limit); !errors.Is(err, tooBig) {
		t.Fatalf("limit not applied: %v", err)
	}
}

// Mutated list payloads are refused or decoded, never a panic.
func TestDecodeListMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	bases := [][]byte{
		[]byte("\x12\x02\x01" + rdbString("big") + "\x02" + rdbString(listpack("\x05", "\x82ab", "\xdf\xff"))),
		[]byte("\x0e\x02" + rdbString(ziplist("\x01a", "\xf8")) + rdbString(ziplist("\x40\x02zz"))),
		[]byte("\x01\x03" + rdbString("a") + rdbString("") + rdbString("12")),
	}
	for range 20000 {
		p := bytes.Clone(bases[rng.IntN(len(bases))])
		for range 1 + rng.IntN(3) {
			p[rng.IntN(len(p))] = byte(rng.Uint32())
		}
		_, _ = DecodeList(Seal(p), noLimit)
	}
}
