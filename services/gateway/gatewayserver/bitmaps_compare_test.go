package gatewayserver_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// Byte-for-byte comparison of the bitmap commands (SETBIT, GETBIT,
// BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO) with redis-server: fixed
// cases, every error path, and extreme values in every numeric argument.

// bitExtremes go into every numeric position.
var bitExtremes = []string{
	"0", "1", "-1", "-0", "2", "7", "8", "-8", "-9", "15", "16", "63", "64", "100", "-100",
	"2147483647", "2147483648", "-2147483648", "-2147483649",
	"4294967295", "4294967296", "4294967297", "-4294967296",
	"8388607", "8388608", "1048575", "1048576", "536870911", "536870912",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
	"18446744073709551615", "18446744073709551616", "18446744073709551617", "-18446744073709551616",
	"123456789012345678901234567890", "000000000000000000000007", "007",
	"+5", " 5", "5 ", "0x10", "1e3", "1.5", "", "abc", "#", "#1", "#-1",
}

// bitRangeValues are crossed with each other as BITCOUNT's and BITPOS's
// start and end.
var bitRangeValues = []string{
	"0", "1", "-1", "2", "-2", "3", "7", "8", "-8", "-9", "15", "16", "17", "23", "24", "-24", "-25", "100", "-100",
	"2147483647", "-2147483648", "4294967296", "9223372036854775807", "-9223372036854775808",
}

// bitStrings are the values BITCOUNT and BITPOS are run over.
var bitStrings = map[string]string{
	"b:ones":  "\xff\xff\xff",
	"b:zeros": "\x00\x00\x00",
	"b:mixed": "\xff\xf0\x00",
	"b:tail":  "\x00\x00\x01",
	"b:mid":   "\xf7\x7f\xef\x00\x10",
	"b:one":   "\x80",
	"b:empty": "",
	"b:int":   "12345",
}

func bitStringSetup() []step {
	var steps []step
	for _, k := range []string{"b:ones", "b:zeros", "b:mixed", "b:tail", "b:mid", "b:one", "b:empty", "b:int"} {
		steps = append(steps, cmd("SET", k, bitStrings[k]))
	}
	return steps
}

// bitFixedSteps are hand-written cases and error paths.
func bitFixedSteps() []step {
	s := []step{
		// SETBIT / GETBIT.
		cmd("SETBIT", "k", "7", "1"), cmd("GET", "k"), cmd("SETBIT", "k", "7", "1"), cmd("SETBIT", "k", "7", "0"),
		cmd("GET", "k"), cmd("SETBIT", "k", "100", "1"), cmd("STRLEN", "k"), cmd("GET", "k"),
		cmd("GETBIT", "k", "100"), cmd("GETBIT", "k", "101"), cmd("GETBIT", "k", "1000"), cmd("GETBIT", "nokey", "0"),
		cmd("SETBIT", "k", "0", "2"), cmd("SETBIT", "k", "0", "-1"), cmd("SETBIT", "k", "0", "x"), cmd("SETBIT", "k", "0", ""),
		cmd("SETBIT", "k", "0", "01"), cmd("SETBIT", "k", "0", "+1"), cmd("SETBIT", "k", "0", " 1"),
		cmd("SETBIT", "k", "-1", "1"), cmd("SETBIT", "k", "x", "2"), cmd("SETBIT", "k", "-1", "x"),
		cmd("SETBIT", "k", "#1", "1"), cmd("GETBIT", "k", "#1"), cmd("GETBIT", "k", "-1"), cmd("GETBIT", "k", ""),
		cmd("SETBIT", "k"), cmd("SETBIT", "k", "1"), cmd("SETBIT", "k", "1", "1", "1"), cmd("GETBIT", "k"),
		cmd("GETBIT", "k", "1", "1"), cmd("SETBIT"), cmd("GETBIT"),
		// A new empty string grows; the bit clear still creates the key.
		cmd("SETBIT", "z", "0", "0"), cmd("EXISTS", "z"), cmd("GET", "z"), cmd("SET", "e", ""), cmd("SETBIT", "e", "0", "0"),
		cmd("STRLEN", "e"),
		// TTL kept by SETBIT and BITFIELD, dropped on BITOP's destination.
		cmd("SET", "t", "a", "EX", "1000"), cmd("SETBIT", "t", "1", "1"), cmd("TTL", "t"), cmd("SETBIT", "t", "1", "1"), cmd("TTL", "t"),
		cmd("BITFIELD", "t", "SET", "u8", "8", "255"), cmd("TTL", "t"), cmd("GET", "t"),
		cmd("SET", "d", "x", "EX", "1000"), cmd("BITOP", "OR", "d", "t"), cmd("TTL", "d"), cmd("GET", "d"),
		// Integers stored as strings are their digits.
		cmd("SET", "n", "255"), cmd("GETBIT", "n", "2"), cmd("GETBIT", "n", "3"), cmd("BITCOUNT", "n"), cmd("BITPOS", "n", "1"),
		cmd("SETBIT", "n", "23", "0"), cmd("GET", "n"), cmd("INCR", "n"),

		// BITCOUNT.
		cmd("BITCOUNT", "b:mid"), cmd("BITCOUNT", "b:mid", "0", "-1"), cmd("BITCOUNT", "b:mid", "1", "1"),
		cmd("BITCOUNT", "b:mid", "5", "30", "BIT"), cmd("BITCOUNT", "b:mid", "5", "30", "bit"), cmd("BITCOUNT", "b:mid", "0", "0", "byte"),
		cmd("BITCOUNT", "b:mid", "0", "-1", "BITS"), cmd("BITCOUNT", "b:mid", "0"), cmd("BITCOUNT", "b:mid", "0", "1", "BIT", "x"),
		cmd("BITCOUNT", "b:mid", "x", "1"), cmd("BITCOUNT", "b:mid", "0", "x"), cmd("BITCOUNT", "b:mid", "-1", "-5", "FOO"),
		cmd("BITCOUNT", "b:mid", "-1", "-5", "BIT"), cmd("BITCOUNT", "b:mid", "x", "y", "FOO"), cmd("BITCOUNT", "b:mid", "0", "-1", "FOO"),
		cmd("BITCOUNT", "b:empty"), cmd("BITCOUNT", "b:empty", "0", "-1"), cmd("BITCOUNT", "b:empty", "0", "-1", "BIT"),
		// Redis 7.0 answers 0 for a missing key before judging the arguments.
		cmd("BITCOUNT", "nokey"), cmd("BITCOUNT", "nokey", "x", "y"), cmd("BITCOUNT", "nokey", "0"),
		cmd("BITCOUNT", "nokey", "0", "1", "FOO"), cmd("BITCOUNT", "nokey", "0", "1", "BIT", "x"), cmd("BITCOUNT"),

		// BITPOS.
		cmd("BITPOS", "b:mid", "0"), cmd("BITPOS", "b:mid", "1"), cmd("BITPOS", "b:ones", "0"), cmd("BITPOS", "b:zeros", "1"),
		cmd("BITPOS", "b:ones", "0", "0"), cmd("BITPOS", "b:ones", "0", "0", "-1"), cmd("BITPOS", "b:ones", "0", "0", "-1", "BIT"),
		cmd("BITPOS", "b:ones", "0", "5", "-1", "bit"), cmd("BITPOS", "b:empty", "0"), cmd("BITPOS", "b:empty", "1"),
		cmd("BITPOS", "b:empty", "0", "0"), cmd("BITPOS", "b:empty", "0", "0", "-1", "BIT"),
		cmd("BITPOS", "b:mid", "2"), cmd("BITPOS", "b:mid", "-1"), cmd("BITPOS", "b:mid", "x"), cmd("BITPOS", "b:mid", ""),
		cmd("BITPOS", "b:mid", "01"), cmd("BITPOS", "b:mid", "1", "x"), cmd("BITPOS", "b:mid", "1", "0", "x"),
		cmd("BITPOS", "b:mid", "1", "0", "-1", "FOO"), cmd("BITPOS", "b:mid", "1", "0", "x", "FOO"),
		cmd("BITPOS", "b:mid", "1", "x", "y", "FOO"), cmd("BITPOS", "b:mid", "1", "0", "-1", "BIT", "x"),
		cmd("BITPOS", "nokey", "0"), cmd("BITPOS", "nokey", "1"), cmd("BITPOS", "nokey", "2"), cmd("BITPOS", "nokey", "0", "x"),
		cmd("BITPOS", "nokey", "1", "0", "-1", "FOO"), cmd("BITPOS", "nokey", "1", "0", "-1", "BIT", "x"), cmd("BITPOS", "k"),

		// BITOP.
		cmd("SET", "a", "\xff\x0f\xaa"), cmd("SET", "b", "\x0f"), cmd("SET", "c", "\xf0\xf0\xf0\xf0\xf0"),
		cmd("BITOP", "AND", "r", "a", "b", "c"), cmd("GET", "r"), cmd("BITOP", "OR", "r", "a", "b", "c"), cmd("GET", "r"),
		cmd("BITOP", "XOR", "r", "a", "b", "c"), cmd("GET", "r"), cmd("BITOP", "NOT", "r", "a"), cmd("GET", "r"),
		cmd("BITOP", "and", "r", "a", "missing"), cmd("GET", "r"), cmd("BITOP", "or", "r", "missing", "a"), cmd("GET", "r"),
		cmd("BITOP", "xor", "r", "a", "a"), cmd("GET", "r"), cmd("BITOP", "AND", "r", "c", "a"), cmd("GET", "r"),
		cmd("BITOP", "AND", "r", "a"), cmd("GET", "r"), cmd("BITOP", "OR", "a", "a", "c"), cmd("GET", "a"),
		cmd("BITOP", "NOT", "r", "missing"), cmd("EXISTS", "r"), cmd("SET", "r", "x"), cmd("BITOP", "AND", "r", "m1", "m2"),
		cmd("EXISTS", "r"), cmd("BITOP", "OR", "r", "b:empty"), cmd("EXISTS", "r"), cmd("BITOP", "NOT", "r", "b:empty"),
		cmd("BITOP", "NOT", "r", "b:int"), cmd("GET", "r"), cmd("BITOP", "AND", "r", "b:int", "b:ones"), cmd("GET", "r"),
		cmd("BITOP", "NOT", "r", "a", "b"), cmd("BITOP", "NOT", "r"), cmd("BITOP", "NOT"), cmd("BITOP", "AND", "r"),
		cmd("BITOP", "NAND", "r", "a"), cmd("BITOP", "", "r", "a"), cmd("BITOP", "ANDX", "r", "a"), cmd("BITOP", "NOTT", "r", "a", "b"),
		cmd("BITOP", "FOO", "r"), cmd("BITOP"),

		// BITFIELD.
		cmd("BITFIELD", "f"), cmd("EXISTS", "f"), cmd("BITFIELD", "f", "GET", "u8", "0"), cmd("EXISTS", "f"),
		cmd("BITFIELD", "f", "SET", "u8", "0", "200", "GET", "u8", "0", "INCRBY", "u8", "0", "100", "GET", "i8", "0"),
		cmd("BITFIELD", "f", "SET", "i5", "#3", "-7", "GET", "i5", "#3", "GET", "u5", "#3", "INCRBY", "i5", "#3", "-20"),
		cmd("GET", "f"), cmd("STRLEN", "f"),
		cmd("BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "u4", "0", "100", "OVERFLOW", "FAIL", "INCRBY", "u4", "0", "1",
			"OVERFLOW", "WRAP", "INCRBY", "u4", "0", "1", "INCRBY", "i4", "0", "-100"),
		cmd("BITFIELD", "f", "overflow", "fail", "set", "u2", "100", "9"), cmd("STRLEN", "f"),
		cmd("BITFIELD", "g", "OVERFLOW", "FAIL", "INCRBY", "u8", "16", "1000"), cmd("GET", "g"),
		cmd("BITFIELD", "f", "GET"), cmd("BITFIELD", "f", "GET", "u8"), cmd("BITFIELD", "f", "SET", "u8", "0"),
		cmd("BITFIELD", "f", "INCRBY", "u8", "0"), cmd("BITFIELD", "f", "OVERFLOW"), cmd("BITFIELD", "f", "OVERFLOW", "BAD"),
		cmd("BITFIELD", "f", "OVERFLOW", "BAD", "GET", "x", "x"), cmd("BITFIELD", "f", "FOO", "u8", "0"),
		cmd("BITFIELD", "f", "GET", "u8", "0", "FOO"), cmd("BITFIELD", "f", "SET", "u8", "0", "1", "GET", "u8"),
		cmd("BITFIELD", "f", "GET", "u8", "0", "SET", "x8", "0", "1"), cmd("BITFIELD", "f", "SET", "u8", "x", "y"),
		cmd("BITFIELD", "f", "SET", "u8", "0", "y"), cmd("BITFIELD", "f", "SET", "x8", "y", "y"),
		cmd("BITFIELD", "f", "OVERFLOW", "SAT"), cmd("BITFIELD", "f", "OVERFLOW", "SAT", "OVERFLOW", "x"), cmd("BITFIELD"),
		cmd("BITFIELD", "f", "GET", "i64", "#-1"), cmd("BITFIELD", "f", "GET", "i64", "#"), cmd("BITFIELD", "f", "GET", "i64", "##1"),
		cmd("BITFIELD", "f", "GET", "i64", "#0"), cmd("BITFIELD", "f", "GET", "i64", "#+1"), cmd("BITFIELD", "f", "GET", "i64", "# 1"),
		cmd("BITFIELD", "f", "GET", "u8", "#67108863"), cmd("BITFIELD", "f", "GET", "u8", "#67108864"),
		cmd("BITFIELD", "f", "GET", "i64", "#9223372036854775807"), cmd("BITFIELD", "f", "GET", "i64", "#144115188075855872"),
		cmd("BITFIELD", "f", "GET", "i2", "#4611686018427387904"), cmd("BITFIELD", "f", "GET", "i8", "#2305843009213693952"),
		cmd("BITFIELD", "f", "GET", "u3", "#6148914691236517206"),
		// Types.
		cmd("BITFIELD", "f", "GET", "i0", "0"), cmd("BITFIELD", "f", "GET", "i64", "0"), cmd("BITFIELD", "f", "GET", "i65", "0"),
		cmd("BITFIELD", "f", "GET", "u63", "0"), cmd("BITFIELD", "f", "GET", "u64", "0"), cmd("BITFIELD", "f", "GET", "u0", "0"),
		cmd("BITFIELD", "f", "GET", "I8", "0"), cmd("BITFIELD", "f", "GET", "U8", "0"), cmd("BITFIELD", "f", "GET", "i", "0"),
		cmd("BITFIELD", "f", "GET", "", "0"), cmd("BITFIELD", "f", "GET", "i08", "0"), cmd("BITFIELD", "f", "GET", "i+8", "0"),
		cmd("BITFIELD", "f", "GET", "i 8", "0"), cmd("BITFIELD", "f", "GET", "u-1", "0"), cmd("BITFIELD", "f", "GET", "i-8", "0"),
		cmd("BITFIELD", "f", "GET", "x8", "0"), cmd("BITFIELD", "f", "GET", "i9223372036854775807", "0"),
		cmd("BITFIELD", "f", "GET", "i18446744073709551617", "0"), cmd("BITFIELD", "f", "GET", "u1", "0"), cmd("BITFIELD", "f", "GET", "i1", "0"),
		// The type is judged before the offset, the offset before the value.
		cmd("BITFIELD", "f", "SET", "x8", "-1", "y"), cmd("BITFIELD", "f", "SET", "u8", "-1", "y"),
		cmd("BITFIELD", "nokey", "GET", "u8", "-1"), cmd("BITFIELD", "nokey", "GET", "i64", "0"), cmd("EXISTS", "nokey"),
		// BITFIELD_RO.
		cmd("BITFIELD_RO", "f"), cmd("BITFIELD_RO", "f", "GET", "u8", "0", "GET", "i16", "#1"), cmd("BITFIELD_RO", "nokey", "GET", "u8", "0"),
		cmd("BITFIELD_RO", "f", "SET", "u8", "0", "1"), cmd("BITFIELD_RO", "f", "INCRBY", "u8", "0", "1"),
		cmd("BITFIELD_RO", "f", "SET", "u8", "0", "x"), cmd("BITFIELD_RO", "f", "OVERFLOW", "SAT", "GET", "u8", "0"),
		cmd("BITFIELD_RO", "f", "OVERFLOW", "x"), cmd("BITFIELD_RO", "f", "FOO"), cmd("BITFIELD_RO", "f", "GET", "u64", "0"),
		cmd("BITFIELD_RO", "nokey", "SET", "u8", "0", "1"), cmd("EXISTS", "nokey"), cmd("BITFIELD_RO"),
		cmd("GET", "f"), cmd("GET", "g"),
		// Redis reads option names as C strings: up to a NUL byte.
		cmd("BITFIELD", "f", "GET\x00x", "u8\x00x", "0"), cmd("BITFIELD", "f", "GET", "u8", "0\x00"),
		cmd("BITFIELD", "f", "OVERFLOW", "SAT\x00", "INCRBY\x00", "i\x008", "0", "1"), cmd("BITFIELD", "f", "GET", "\x00u8", "0"),
		cmd("BITOP", "OR\x00x", "r", "f"), cmd("BITOP", "NOT\x00", "r", "f", "f"), cmd("BITOP", "\x00", "r", "f"),
		cmd("BITCOUNT", "f", "0", "-1", "BIT\x00S"), cmd("BITPOS", "f", "1", "0", "-1", "byte\x00"), cmd("BITCOUNT", "f", "0\x00", "-1"),
		cmd("SETBIT", "f", "1\x00", "1"), cmd("SETBIT", "f", "1", "1\x00"),
	}
	return append(bitStringSetup(), s...)
}

// bitExtremeSteps put every extreme value in every numeric position. With
// all false, a write offset that would build a string of more than 128 KiB
// (up to 512 MiB at the default proto-max-bulk-len) is left out; the run
// with proto-max-bulk-len at 1 MiB has them all.
func bitExtremeSteps(all bool) []step {
	steps := bitStringSetup()
	for _, v := range bitExtremes {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 1<<20 && !all {
			steps = append(steps, cmd("GETBIT", "b:mid", v), cmd("GETBIT", "nokey", v), cmd("SETBIT", "s", "3", v),
				cmd("BITFIELD", "x", "GET", "u8", v), cmd("BITFIELD", "x", "GET", "u8", "#"+v), cmd("BITFIELD", "x", "SET", "i8", "0", v),
				cmd("BITFIELD_RO", "b:mid", "GET", "u8", v), cmd("BITFIELD_RO", "b:mid", "GET", "i4", "#"+v),
				cmd("BITCOUNT", "b:mid", v, "-1"), cmd("BITPOS", "b:mid", "1", v), cmd("BITPOS", "b:mid", "0", "0", v))
			continue
		}
		steps = append(steps,
			cmd("GETBIT", "b:mid", v), cmd("GETBIT", "nokey", v),
			cmd("SETBIT", "s", v, "1"), cmd("SETBIT", "s", "3", v), cmd("STRLEN", "s"), cmd("BITCOUNT", "s"),
			cmd("BITCOUNT", "b:mid", v, "-1"), cmd("BITCOUNT", "b:mid", "0", v), cmd("BITCOUNT", "b:mid", v, v, "BIT"),
			cmd("BITPOS", "b:mid", v), cmd("BITPOS", "b:mid", "1", v), cmd("BITPOS", "b:mid", "0", "0", v),
			cmd("BITPOS", "b:mid", "0", v, "-1", "BIT"),
			cmd("BITFIELD", "x", "GET", "u8", v), cmd("BITFIELD", "x", "SET", "i8", v, "1"), cmd("BITFIELD", "x", "SET", "i8", "0", v),
			cmd("BITFIELD", "x", "INCRBY", "u8", "0", v), cmd("BITFIELD", "x", "GET", "i"+v, "0"), cmd("BITFIELD", "x", "GET", "u"+v, "0"),
			cmd("BITFIELD", "x", "GET", "u8", "#"+v), cmd("BITFIELD", "x", "GET", "i64", "#"+v), cmd("BITFIELD", "x", "SET", "u3", "#"+v, "5"),
			cmd("BITFIELD_RO", "b:mid", "GET", "u8", v), cmd("BITFIELD_RO", "b:mid", "GET", "i4", "#"+v),
			cmd("STRLEN", "x"), cmd("BITCOUNT", "x"),
		)
	}
	return steps
}

// bitRangeSteps cross start and end for BITCOUNT and BITPOS over every
// test string, in BYTE and BIT mode and without a mode.
func bitRangeSteps() []step {
	steps := bitStringSetup()
	for _, k := range []string{"b:ones", "b:zeros", "b:mixed", "b:tail", "b:mid", "b:one", "b:empty"} {
		steps = append(steps, cmd("BITCOUNT", k), cmd("BITPOS", k, "0"), cmd("BITPOS", k, "1"))
		for _, st := range bitRangeValues {
			steps = append(steps, cmd("BITPOS", k, "0", st), cmd("BITPOS", k, "1", st))
			for _, en := range bitRangeValues {
				steps = append(steps, cmd("BITCOUNT", k, st, en), cmd("BITCOUNT", k, st, en, "BIT"), cmd("BITCOUNT", k, st, en, "BYTE"))
				for _, bit := range []string{"0", "1"} {
					steps = append(steps, cmd("BITPOS", k, bit, st, en), cmd("BITPOS", k, bit, st, en, "BIT"), cmd("BITPOS", k, bit, st, en, "BYTE"))
				}
			}
		}
	}
	return steps
}

// bitfieldEdgeSteps run SET and INCRBY with every overflow mode at the
// edges of every width, the i64 and u63 ones included.
func bitfieldEdgeSteps() []step {
	values := []string{
		"0", "1", "-1", "2", "-2", "127", "128", "-128", "-129", "255", "256",
		"2147483647", "2147483648", "-2147483648", "4294967295", "4294967296",
		"4611686018427387903", "4611686018427387904", "-4611686018427387904", "-4611686018427387905",
		"9223372036854775806", "9223372036854775807", "-9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "-9223372036854775809", "18446744073709551615", "x",
	}
	var steps []step
	for _, typ := range []string{"i1", "u1", "i2", "u2", "i7", "i8", "u8", "i32", "u32", "i33", "u63", "i63", "i64", "u62"} {
		for _, mode := range []string{"WRAP", "SAT", "FAIL"} {
			for _, v := range values {
				steps = append(steps,
					cmd("BITFIELD", "e", "OVERFLOW", mode, "SET", typ, "3", v, "GET", typ, "3"),
					cmd("BITFIELD", "e", "OVERFLOW", mode, "INCRBY", typ, "3", v, "GET", typ, "3", "INCRBY", typ, "3", v),
					cmd("BITFIELD", "e", "OVERFLOW", mode, "SET", typ, "#1", v, "INCRBY", typ, "#1", "-1", "INCRBY", typ, "#1", "1"),
				)
			}
			// From each edge, one step over it either way.
			for _, edge := range []string{"9223372036854775807", "-9223372036854775808", "4611686018427387903", "127", "-128", "255", "1", "0"} {
				steps = append(steps,
					cmd("BITFIELD", "e", "OVERFLOW", "WRAP", "SET", typ, "0", edge, "OVERFLOW", mode, "INCRBY", typ, "0", "1", "INCRBY", typ, "0", "-1"),
					cmd("BITFIELD", "e", "OVERFLOW", "WRAP", "SET", typ, "0", edge, "OVERFLOW", mode, "INCRBY", typ, "0", "-9223372036854775808"),
					cmd("BITFIELD", "e", "OVERFLOW", "WRAP", "SET", typ, "0", edge, "OVERFLOW", mode, "INCRBY", typ, "0", "9223372036854775807"),
				)
			}
		}
	}
	return append(steps, cmd("GET", "e"))
}

// bitsMaxStep grows strings to the largest size proto-max-bulk-len allows
// (1 MiB on both servers here) and one past it.
func bitsMaxSteps() []step {
	return []step{
		cmd("SETBIT", "m", "8388607", "1"), cmd("STRLEN", "m"), cmd("SETBIT", "m", "8388608", "1"), cmd("BITCOUNT", "m"),
		cmd("BITPOS", "m", "1"), cmd("BITPOS", "m", "0", "-1"), cmd("BITPOS", "m", "1", "-1", "-1", "BIT"),
		cmd("GETBIT", "m", "8388607"), cmd("GETBIT", "m", "8388608"),
		cmd("BITFIELD", "n", "SET", "u8", "#1048575", "255"), cmd("STRLEN", "n"), cmd("BITFIELD", "n", "SET", "u8", "#1048576", "255"),
		// Only a field's offset is bounded: its end may pass the limit.
		cmd("BITFIELD", "o", "SET", "u63", "8388607", "1"), cmd("STRLEN", "o"), cmd("BITFIELD", "o", "GET", "u63", "8388607"),
		cmd("BITFIELD", "o", "SET", "i64", "#131071", "-1"), cmd("STRLEN", "o"), cmd("BITFIELD", "o", "GET", "i64", "#131071"),
		cmd("BITOP", "NOT", "p", "m"), cmd("STRLEN", "p"), cmd("BITCOUNT", "p"), cmd("BITOP", "XOR", "p", "m", "o", "n"), cmd("BITCOUNT", "p"),
		cmd("SETRANGE", "q", "1048575", "x"), cmd("SETBIT", "q", "8388607", "0"), cmd("GETRANGE", "q", "-1", "-1"),
	}
}

// runBitSteps runs steps on both servers from empty databases, in each
// protocol of protos, and requires byte-identical replies.
func runBitSteps(t *testing.T, oursAddr, theirsAddr string, steps []step, protos ...string) {
	t.Helper()
	ours := conformance.DialRaw(t, oursAddr)
	theirs := conformance.DialRaw(t, theirsAddr)
	for _, proto := range protos {
		ours.Do("HELLO", proto)
		theirs.Do("HELLO", proto)
		ours.Do("FLUSHALL")
		theirs.Do("FLUSHALL")
		fails := 0
		for i, st := range steps {
			got, want := ours.Do(st.args...), theirs.Do(st.args...)
			if got != want {
				t.Errorf("RESP%s step %d %q:\n nokv:  %q\n redis: %q", proto, i, strings.Join(st.args, " "), got, want)
				if fails++; fails > 30 {
					t.Fatalf("too many differences")
				}
			}
		}
	}
}

func TestBitmapRepliesMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	t.Run("fixed", func(t *testing.T) { runBitSteps(t, srv.Addr(), redisAddr, bitFixedSteps(), "2", "3") })
	t.Run("extremes", func(t *testing.T) { runBitSteps(t, srv.Addr(), redisAddr, bitExtremeSteps(false), "2", "3") })
	t.Run("bitfield", func(t *testing.T) { runBitSteps(t, srv.Addr(), redisAddr, bitfieldEdgeSteps(), "2", "3") })
	// Integer replies only: RESP3 would add nothing but time.
	t.Run("ranges", func(t *testing.T) { runBitSteps(t, srv.Addr(), redisAddr, bitRangeSteps(), "2") })
}

// With proto-max-bulk-len at Redis's minimum (1 MiB) on both servers, the
// largest bit offsets are reachable without 512 MiB strings.
func TestBitmapLimitsMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t, "--proto-max-bulk-len", "1mb")
	srv := startServer(t, func(c *gatewayserver.Config) { c.MaxBulkLen = 1 << 20 })
	runBitSteps(t, srv.Addr(), redisAddr, append(bitsMaxSteps(), bitExtremeSteps(true)...), "2", "3")
}

// The bitmap commands that read a key count keyspace hits and misses as
// Redis does (INFO stats); writes count neither.
func TestBitmapKeyspaceStatsMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	steps := []step{
		cmd("SET", "a", "\x0f"), cmd("SETBIT", "a", "1", "1"), cmd("SETBIT", "new", "1", "1"),
		cmd("GETBIT", "a", "1"), cmd("GETBIT", "none", "1"), cmd("GETBIT", "a", "-1"),
		cmd("BITCOUNT", "a"), cmd("BITCOUNT", "none"), cmd("BITCOUNT", "a", "x", "1"),
		cmd("BITPOS", "a", "1"), cmd("BITPOS", "none", "0"), cmd("BITPOS", "a", "2"),
		cmd("BITOP", "AND", "d", "a", "none", "new"), cmd("BITOP", "NOT", "d", "none"),
		cmd("BITFIELD", "a", "GET", "u8", "0"), cmd("BITFIELD", "none", "GET", "u8", "0"), cmd("BITFIELD", "a", "INCRBY", "u8", "0", "1"),
		cmd("BITFIELD_RO", "a", "GET", "u8", "0"), cmd("BITFIELD_RO", "none", "GET", "u8", "0"), cmd("BITFIELD_RO", "a", "GET", "u64", "0"),
	}
	runBitSteps(t, srv.Addr(), redisAddr, steps, "2")
	stats := func(addr string) string {
		info := conformance.DialRaw(t, addr).Do("INFO", "stats")
		var out []string
		for _, line := range strings.Split(info, "\r\n") {
			if strings.HasPrefix(line, "keyspace_hits:") || strings.HasPrefix(line, "keyspace_misses:") {
				out = append(out, line)
			}
		}
		return strings.Join(out, " ")
	}
	if got, want := stats(srv.Addr()), stats(redisAddr); got != want || got == "" {
		t.Fatalf("after the bitmap commands: nokv %q, redis %q", got, want)
	}
}
