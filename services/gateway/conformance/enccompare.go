package conformance

import (
	"strconv"
	"strings"
	"testing"
)

// encodingDefaults are redis-server 7.0's built-in values of the collection
// encoding thresholds: every EncodingConfigCases case starts from them and
// the comparison restores them, so that the cases (and whatever else runs
// on the same servers) see the defaults.
var encodingDefaults = [][]string{
	{"CONFIG", "SET", "hash-max-listpack-entries", "512", "hash-max-listpack-value", "64",
		"set-max-intset-entries", "512", "zset-max-listpack-entries", "128", "zset-max-listpack-value", "64",
		"list-max-listpack-size", "-2", "list-compress-depth", "0"},
}

// encodingSettings are every threshold CONFIG SET takes in Redis 7.0,
// aliases included.
var encodingSettings = []string{
	"hash-max-listpack-entries", "hash-max-ziplist-entries", "hash-max-listpack-value", "hash-max-ziplist-value",
	"set-max-intset-entries", "zset-max-listpack-entries", "zset-max-ziplist-entries",
	"zset-max-listpack-value", "zset-max-ziplist-value", "list-max-listpack-size", "list-max-ziplist-size",
	"list-compress-depth",
}

// encodingValues are the values each setting is tried with: the ranges'
// edges, 2^64, units (memory settings take them, the others refuse them)
// and the forms strtoull and string2ll treat differently.
var encodingValues = []string{
	"0", "-1", "1", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551616",
	"2147483647", "2147483648", "-2147483648", "-2147483649", "32768", "-5", "-6",
	"abc", "", " 1", "1 ", "+1", "-0", "08", "1.5", "0x10", "-",
	"1b", "1B", "2k", "2kb", "2KB", "3m", "3mb", "1g", "1gb", "1bb", "k", "kb",
	// the unit's product wraps past 2^64 (memtoull): 2^34 gb is 0
	"17179869184gb", "17179869185gb", "9007199254740991kb", "9007199254740992kb", "18446744073709551616kb",
	// memtoull reads at most 127 digits
	strings.Repeat("0", 126) + "7", strings.Repeat("0", 127) + "7",
}

// EncodingConfigCases are CONFIG SET of the encoding thresholds and what
// they change: OBJECT ENCODING (a collection converts at its next write
// past a lowered threshold, and never back), MEMORY USAGE, RESTORE.
var EncodingConfigCases = map[string][][]string{
	"config-set-values": encodingValueSteps(),
	"config-set-forms": {
		// Names are matched without case and answered in lower case; an
		// alias and its setting are two names, so setting both is no
		// duplicate (the later wins); a bad value sets nothing.
		{"CONFIG", "SET", "HASH-MAX-ZIPLIST-ENTRIES", "7"}, {"CONFIG", "GET", "hash-max-listpack-entries"},
		{"CONFIG", "GET", "HASH-MAX-ZIPLIST-ENTRIES"}, {"CONFIG", "SET", "Zset-Max-Listpack-Value", "x"},
		{"CONFIG", "SET", "hash-max-listpack-entries", "1", "hash-max-ziplist-entries", "2"}, {"CONFIG", "GET", "hash-max-listpack-entries"},
		{"CONFIG", "SET", "hash-max-listpack-entries", "1", "hash-max-listpack-entries", "2"},
		{"CONFIG", "SET", "list-max-listpack-size", "5", "zset-max-listpack-value", "-1"}, {"CONFIG", "GET", "list-max-ziplist-size"},
		{"CONFIG", "SET", "set-max-intset-entries", "3", "zset-max-listpack-value", "1kb", "list-compress-depth", "2"},
		{"CONFIG", "GET", "set-max-intset-entries"}, {"CONFIG", "GET", "zset-max-ziplist-value"}, {"CONFIG", "GET", "list-compress-depth"},
		{"CONFIG", "SET", "set-max-listpack-entries", "1"}, {"CONFIG", "SET", "zset-max-listpack-entries"},
		{"CONFIG", "SET", "list-max-listpack-size", "1", "foo", "1"}, {"CONFIG", "GET", "list-max-listpack-size"},
		// CONFIG GET answers a name as spelled, a pattern's matches in
		// lower case.
		{"CONFIG", "GET", "HASH-MAX-LISTPACK-ENTRIE?"}, {"CONFIG", "GET", "hash-max-listpack-entries", "HASH-MAX-LISTPACK-ENTRIES"},
		{"CONFIG", "GET", "List-Compress-Depth", "list-compress-*"}, {"CONFIG", "GET", `list\-compress-depth`},
		{"CONFIG", "GET", `list\-compress-dept?`},
	},
	"hash-encoding": {
		{"HSET", "h", "a", "1", "b", "2", "c", "3"}, {"OBJECT", "ENCODING", "h"}, {"MEMORY", "USAGE", "h"},
		// Lowering converts nothing until a write: an update converts, as
		// hashTypeSet judges the length after any set.
		{"CONFIG", "SET", "hash-max-listpack-entries", "2"}, {"OBJECT", "ENCODING", "h"}, {"HGET", "h", "a"},
		{"HSETNX", "h", "a", "x"}, {"OBJECT", "ENCODING", "h"},
		{"HSET", "h", "a", "1"}, {"OBJECT", "ENCODING", "h"}, {"MEMORY", "USAGE", "h", "SAMPLES", "0"},
		// Raising converts nothing back.
		{"CONFIG", "SET", "hash-max-listpack-entries", "512"}, {"HDEL", "h", "a", "b"}, {"OBJECT", "ENCODING", "h"},
		{"HSET", "h2", "a", "1", "b", "2"}, {"OBJECT", "ENCODING", "h2"},
		{"CONFIG", "SET", "hash-max-listpack-entries", "2"}, {"HSET", "h3", "a", "1", "b", "2"}, {"OBJECT", "ENCODING", "h3"},
		{"HSET", "h3", "c", "3"}, {"OBJECT", "ENCODING", "h3"},
		{"CONFIG", "SET", "hash-max-listpack-entries", "0"}, {"HSET", "h4", "a", "1"}, {"OBJECT", "ENCODING", "h4"},
		{"HINCRBY", "h5", "a", "1"}, {"OBJECT", "ENCODING", "h5"},
		// A listpack copied keeps its encoding (hashTypeDup).
		{"COPY", "h2", "h2c"}, {"OBJECT", "ENCODING", "h2c"}, {"MEMORY", "USAGE", "h2c"},
		{"CONFIG", "SET", "hash-max-listpack-entries", "9223372036854775807", "hash-max-listpack-value", "3"},
		{"HSET", "v", "abc", "def"}, {"OBJECT", "ENCODING", "v"}, {"HSET", "v", "abc", "defg"}, {"OBJECT", "ENCODING", "v"},
		{"HSET", "v2", "abcd", "1"}, {"OBJECT", "ENCODING", "v2"},
		{"HSET", "v3", "a", "1"}, {"HINCRBY", "v3", "a", "1000"}, {"OBJECT", "ENCODING", "v3"},
		{"HSET", "v4", "a", "1"}, {"HINCRBYFLOAT", "v4", "a", "0.5"}, {"OBJECT", "ENCODING", "v4"},
		{"HSET", "v5", "a", "1"}, {"HSETNX", "v5", "a", "12345"}, {"OBJECT", "ENCODING", "v5"},
		{"HSETNX", "v5", "b", "12345"}, {"OBJECT", "ENCODING", "v5"},
		{"CONFIG", "SET", "hash-max-listpack-value", "0"}, {"HSET", "e", "", ""}, {"OBJECT", "ENCODING", "e"},
		{"HSET", "e", "a", ""}, {"OBJECT", "ENCODING", "e"}, {"MEMORY", "USAGE", "e", "SAMPLES", "0"},
		{"CONFIG", "SET", "hash-max-listpack-value", "1kb"}, {"HSET", "k", "a", strings.Repeat("x", 1024)}, {"OBJECT", "ENCODING", "k"},
		{"HSET", "k", "b", strings.Repeat("x", 1025)}, {"OBJECT", "ENCODING", "k"},
	},
	"set-encoding": {
		{"SADD", "s", "1", "2", "3"}, {"OBJECT", "ENCODING", "s"}, {"MEMORY", "USAGE", "s"},
		{"CONFIG", "SET", "set-max-intset-entries", "2"}, {"OBJECT", "ENCODING", "s"},
		{"SADD", "s", "2"}, {"OBJECT", "ENCODING", "s"}, {"SREM", "s", "3"}, {"SADD", "s", "4"}, {"OBJECT", "ENCODING", "s"},
		{"SADD", "s", "5"}, {"OBJECT", "ENCODING", "s"}, {"MEMORY", "USAGE", "s", "SAMPLES", "0"},
		{"CONFIG", "SET", "set-max-intset-entries", "512"}, {"SREM", "s", "5", "4"}, {"OBJECT", "ENCODING", "s"},
		{"CONFIG", "SET", "set-max-intset-entries", "0"}, {"SADD", "s0", "1"}, {"OBJECT", "ENCODING", "s0"},
		{"CONFIG", "SET", "set-max-intset-entries", "1"}, {"SADD", "s1", "1"}, {"OBJECT", "ENCODING", "s1"},
		{"SADD", "a", "1", "2"}, {"SADD", "b", "2", "3"}, {"SINTERSTORE", "i", "a", "b"}, {"OBJECT", "ENCODING", "i"},
		{"SUNIONSTORE", "u", "a", "b"}, {"OBJECT", "ENCODING", "u"}, {"SDIFFSTORE", "d", "a", "b"}, {"OBJECT", "ENCODING", "d"},
		{"SMOVE", "s1", "m", "1"}, {"OBJECT", "ENCODING", "m"},
		{"CONFIG", "SET", "set-max-intset-entries", "9223372036854775807"}, {"SADD", "big", "1", "2", "3", "4"}, {"OBJECT", "ENCODING", "big"},
		// SPOP of at least 5 times what stays rebuilds the set from the
		// members left (spopWithCountCommand): an intset again if they
		// are integers within the threshold, a hashtable otherwise.
		{"CONFIG", "SET", "set-max-intset-entries", "512"},
		append([]string{"SADD", "p", "x"}, intRange(1, 20)...), {"SREM", "p", "x"}, {"SPOP", "p", "17"}, {"OBJECT", "ENCODING", "p"},
		{"SCARD", "p"}, {"MEMORY", "USAGE", "p"},
		append([]string{"SADD", "p2", "x"}, intRange(1, 20)...), {"SREM", "p2", "x"}, {"SPOP", "p2", "16"}, {"OBJECT", "ENCODING", "p2"},
		{"CONFIG", "SET", "set-max-intset-entries", "2"},
		append([]string{"SADD", "p3", "x"}, intRange(1, 20)...), {"SREM", "p3", "x"}, {"SPOP", "p3", "18"}, {"OBJECT", "ENCODING", "p3"},
		append([]string{"SADD", "p4", "x"}, intRange(1, 20)...), {"SREM", "p4", "x"}, {"SPOP", "p4", "17"}, {"OBJECT", "ENCODING", "p4"},
		{"CONFIG", "SET", "set-max-intset-entries", "0"},
		append([]string{"SADD", "p5"}, intRange(1, 12)...), {"SPOP", "p5", "10"}, {"OBJECT", "ENCODING", "p5"},
		{"SADD", "p6", "a", "b", "c", "d", "e", "f", "g"}, {"SPOP", "p6", "6"}, {"OBJECT", "ENCODING", "p6"},
		// An intset payload converts past the threshold.
		{"CONFIG", "SET", "set-max-intset-entries", "2"}, {"RESTORE", "r", "0", redisIntsetDump}, {"OBJECT", "ENCODING", "r"},
		{"CONFIG", "SET", "set-max-intset-entries", "3"}, {"RESTORE", "r2", "0", redisIntsetDump}, {"OBJECT", "ENCODING", "r2"},
	},
	"zset-encoding": {
		{"ZADD", "z", "1", "a", "2", "b", "3", "c"}, {"OBJECT", "ENCODING", "z"}, {"MEMORY", "USAGE", "z"},
		// Only an insertion converts a sorted set (zsetAdd).
		{"CONFIG", "SET", "zset-max-listpack-entries", "2"}, {"OBJECT", "ENCODING", "z"},
		{"ZADD", "z", "5", "a"}, {"ZINCRBY", "z", "1", "b"}, {"OBJECT", "ENCODING", "z"},
		// (no MEMORY USAGE of a skiplist: Redis draws its nodes' levels at random)
		{"ZADD", "z", "4", "d"}, {"OBJECT", "ENCODING", "z"},
		{"CONFIG", "SET", "zset-max-listpack-entries", "128"}, {"ZREM", "z", "a", "b", "c"}, {"OBJECT", "ENCODING", "z"},
		{"CONFIG", "SET", "zset-max-listpack-entries", "0"}, {"ZADD", "z0", "1", "a"}, {"OBJECT", "ENCODING", "z0"},
		{"ZINCRBY", "z1", "1", "a"}, {"OBJECT", "ENCODING", "z1"},
		{"CONFIG", "SET", "zset-max-listpack-entries", "2"},
		{"ZADD", "x", "1", "a", "2", "b"}, {"OBJECT", "ENCODING", "x"}, {"ZADD", "y", "1", "a", "2", "b", "3", "c"}, {"OBJECT", "ENCODING", "y"},
		{"ZUNIONSTORE", "u", "2", "x", "y"}, {"OBJECT", "ENCODING", "u"}, {"ZINTERSTORE", "i", "2", "x", "y"}, {"OBJECT", "ENCODING", "i"},
		{"ZDIFFSTORE", "d", "1", "y"}, {"OBJECT", "ENCODING", "d"}, {"ZDIFFSTORE", "d2", "2", "y", "x"}, {"OBJECT", "ENCODING", "d2"},
		{"ZRANGESTORE", "r", "y", "0", "1"}, {"OBJECT", "ENCODING", "r"}, {"ZRANGESTORE", "r2", "y", "0", "-1"}, {"OBJECT", "ENCODING", "r2"},
		{"ZRANGESTORE", "r3", "y", "0", "2", "BYSCORE"}, {"OBJECT", "ENCODING", "r3"},
		{"CONFIG", "SET", "zset-max-listpack-entries", "128", "zset-max-listpack-value", "1"},
		{"ZADD", "v", "1", "a"}, {"OBJECT", "ENCODING", "v"}, {"ZADD", "v", "2", "bb"}, {"OBJECT", "ENCODING", "v"},
		{"ZADD", "v2", "1", "ab"}, {"OBJECT", "ENCODING", "v2"}, {"ZADD", "v3", "1", ""}, {"OBJECT", "ENCODING", "v3"},
		{"ZUNIONSTORE", "v4", "1", "v"}, {"OBJECT", "ENCODING", "v4"},
		// A listpack payload converts only past the entries threshold, a
		// long member notwithstanding (rdbLoadObject).
		{"RESTORE", "rz", "0", redisZSetLongMemberDump}, {"OBJECT", "ENCODING", "rz"}, {"MEMORY", "USAGE", "rz"},
		{"CONFIG", "SET", "zset-max-listpack-entries", "1"}, {"RESTORE", "rz2", "0", redisZSetLongMemberDump}, {"OBJECT", "ENCODING", "rz2"},
		{"CONFIG", "SET", "zset-max-listpack-entries", "9223372036854775807", "zset-max-listpack-value", "9223372036854775807"},
		{"ZADD", "m", "1", strings.Repeat("m", 200)}, {"OBJECT", "ENCODING", "m"},
	},
	"hash-restore": {
		{"CONFIG", "SET", "hash-max-listpack-value", "2"},
		{"RESTORE", "rh", "0", redisHashLongFieldDump}, {"OBJECT", "ENCODING", "rh"}, {"MEMORY", "USAGE", "rh"},
		{"CONFIG", "SET", "hash-max-listpack-entries", "1"}, {"RESTORE", "rh2", "0", redisHashLongFieldDump}, {"OBJECT", "ENCODING", "rh2"},
	},
	"list-memory": listMemorySteps(),
}

// redis-server 7.0's DUMPs of ZADD zd 1 abcdef 2 g, HSET hd abcdef 1 g 2
// (listpacks) and SADD sd 1 2 3 (an intset).
const (
	redisZSetLongMemberDump = "\x11\x16\x16\x00\x00\x00\x04\x00\x86\x61\x62\x63\x64\x65\x66\x07\x01\x01\x81\x67\x02\x02\x01\xff\x0a\x00\xcf\x91\xa4\x82\xf9\x16\x6d\x6d"
	redisHashLongFieldDump  = "\x10\x16\x16\x00\x00\x00\x04\x00\x86\x61\x62\x63\x64\x65\x66\x07\x01\x01\x81\x67\x02\x02\x01\xff\x0a\x00\x59\x11\x5f\xf1\xf4\xe2\xe6\xa5"
	redisIntsetDump         = "\x0b\x0e\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00\x03\x00\x0a\x00\xa5\x02\x5c\xe2\x6d\x6e\x4d\x1b"
)

// intRange is the integers from..to as strings.
func intRange(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// encodingValueSteps sets every threshold to every value and reads it back.
func encodingValueSteps() [][]string {
	var steps [][]string
	for _, name := range encodingSettings {
		for _, v := range encodingValues {
			steps = append(steps, []string{"CONFIG", "SET", name, v}, []string{"CONFIG", "GET", name})
		}
	}
	return steps
}

// listMemorySteps lays lists out under each list-max-listpack-size (a
// list takes the fill in force when it is created) and compares MEMORY
// USAGE, exact with SAMPLES 0 and sampled by default.
func listMemorySteps() [][]string {
	var steps [][]string
	small := []string{"RPUSH", ""}
	for i := range 40 {
		small = append(small, strconv.Itoa(i*37))
	}
	// Elements of one size: Redis samples the first nodes and multiplies
	// by the node count, which the gateway estimates from the sampled
	// nodes' elements (memusage.go), exactly when the nodes are alike.
	wide := []string{"RPUSH", ""}
	for range 30 {
		wide = append(wide, strings.Repeat("w", 700))
	}
	// Elements of growing size: only the figure over every node is exact.
	grow := []string{"RPUSH", ""}
	for i := range 30 {
		grow = append(grow, strings.Repeat("g", 500+i*50))
	}
	for _, fill := range []string{"-2", "-1", "-3", "-4", "-5", "-6", "-2147483648", "0", "1", "2", "7", "100", "32767", "2147483647"} {
		steps = append(steps, []string{"CONFIG", "SET", "list-max-listpack-size", fill})
		for _, push := range [][]string{small, wide, grow} {
			key := "l" + fill + push[2][:1]
			args := append([]string{push[0], key}, push[2:]...)
			steps = append(steps, args, []string{"OBJECT", "ENCODING", key}, []string{"MEMORY", "USAGE", key, "SAMPLES", "0"})
			if push[2][0] != 'g' {
				steps = append(steps, []string{"MEMORY", "USAGE", key}, []string{"MEMORY", "USAGE", key, "SAMPLES", "1"})
			}
		}
	}
	return steps
}

// CompareEncodingConfigCases runs EncodingConfigCases on ours and theirs (a
// redis-server), each from empty servers with the default thresholds,
// which it restores on both when done.
func CompareEncodingConfigCases(t *testing.T, ours, theirs string) {
	reset := func() {
		a, b := DialRaw(t, ours), DialRaw(t, theirs)
		for _, args := range encodingDefaults {
			if got, want := a.Do(args...), b.Do(args...); got != want {
				t.Errorf("%q:\n nokv:  %q\n redis: %q", strings.Join(args, " "), got, want)
			}
		}
	}
	t.Cleanup(reset)
	cases := map[string][][]string{}
	for name, steps := range EncodingConfigCases {
		cases[name] = append(append([][]string(nil), encodingDefaults...), steps...)
	}
	compareCases(t, ours, theirs, cases)
}
