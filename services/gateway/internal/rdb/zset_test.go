package rdb

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// parseText stands in for the gateway's strtod (command.restoreScore).
func parseText(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	return f, err == nil
}

func TestDecodeZSet(t *testing.T) {
	show := func(ms [][]byte, ss []float64) string {
		var b strings.Builder
		for i := range ms {
			fmt.Fprintf(&b, "%s=%v;", ms[i], ss[i])
		}
		return b.String()
	}
	le := func(f float64) string {
		u := math.Float64bits(f)
		var b [8]byte
		for i := range b {
			b[i] = byte(u >> (8 * i))
		}
		return string(b[:])
	}
	for _, c := range []struct {
		name, body, want string
		err              error
	}{
		{"zset2", "\x05\x02" + rdbString("a") + le(1.5) + rdbString("b") + le(math.Inf(-1)), "a=1.5;b=-Inf;", nil},
		{"zset2-negzero", "\x05\x01" + rdbString("a") + le(math.Copysign(0, -1)), "a=-0;", nil},
		{"zset2-nan", "\x05\x01" + rdbString("a") + le(math.NaN()), "", ErrBadFormat},
		{"zset2-empty", "\x05\x00", "", ErrBadFormat},
		{"zset2-dup", "\x05\x02" + rdbString("a") + le(1) + rdbString("a") + le(2), "", ErrBadFormat},
		{"zset2-past-the-end", "\x05\x05" + rdbString("a") + le(1), "", ErrBadFormat},
		{"zset2-huge-count", "\x05\x81\xff\xff\xff\xff\xff\xff\xff\xfe", "", ErrBadFormat},
		{"zset-text", "\x03\x03" + rdbString("a") + "\x04-1.5" + rdbString("b") + "\xfe" + rdbString("c") + "\xff", "a=-1.5;b=+Inf;c=-Inf;", nil},
		{"zset-text-nan", "\x03\x01" + rdbString("a") + "\xfd", "", ErrBadFormat},
		{"zset-text-garbage", "\x03\x01" + rdbString("a") + "\x02xy", "", ErrBadFormat},
		{"zset-text-short", "\x03\x01" + rdbString("a") + "\x09-1", "", ErrBadFormat},
		{"listpack", "\x11" + rdbString(listpack("\x81a", "\x01", "\x81b", "\x832.5")), "a=1;b=2.5;", nil},
		{"listpack-odd", "\x11" + rdbString(listpack("\x81a", "\x01", "\x81b")), "", ErrBadFormat},
		{"listpack-bad-score", "\x11" + rdbString(listpack("\x81a", "\x81x")), "", ErrBadFormat},
		{"listpack-empty", "\x11" + rdbString(listpack()), "", ErrBadFormat},
		{"ziplist", "\x0c" + rdbString(ziplist("\x01a", "\xf8", "\x01b", "\x03inf")), "a=7;b=+Inf;", nil},
		{"ziplist-bad", "\x0c" + rdbString(ziplist("\x01a", "\xff")), "", ErrBadFormat},
	} {
		t.Run(c.name, func(t *testing.T) {
			ms, ss, err := DecodeZSet(Seal([]byte(c.body)), noLimit, parseText)
			if !errors.Is(err, c.err) || (err == nil && show(ms, ss) != c.want) {
				t.Fatalf("DecodeZSet = %q, %v; want %q, %v", show(ms, ss), err, c.want, c.err)
			}
		})
	}
	// What DumpZSet writes, DecodeZSet reads back, bit for bit.
	ms := [][]byte{[]byte("z"), []byte(strings.Repeat("y", 300)), []byte(""), []byte("n")}
	ss := []float64{math.Inf(1), 0.1, math.Copysign(0, -1), 5e-324}
	gm, gs, err := DecodeZSet(DumpZSet(ms, ss), noLimit, parseText)
	if err != nil || show(gm, gs) != show(ms, ss) || math.Float64bits(gs[2]) != math.Float64bits(ss[2]) {
		t.Fatalf("DumpZSet then DecodeZSet = %q, %v; want %q", show(gm, gs), err, show(ms, ss))
	}
	// The limit is asked before a member is allocated.
	errCap := errors.New("cap")
	if _, _, err := DecodeZSet(DumpZSet(ms, ss), func(n uint64) error {
		if n > 100 {
			return errCap
		}
		return nil
	}, parseText); !errors.Is(err, errCap) {
		t.Fatalf("DecodeZSet past the limit: %v", err)
	}
}
