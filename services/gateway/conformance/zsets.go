package conformance

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/rdb"
)

// Sorted sets compared with redis-server, as CollectionCases: fixed cases
// and random sequences, reply by reply, byte for byte except where Redis
// picks at random (ZRANDMEMBER: the shape) or pages in hash order (ZSCAN
// of a skiplist: the kind), and DUMP (both non-null: Redis dumps a small
// zset as a listpack, the gateway as RDB_TYPE_ZSET_2; restored both ways
// by gatewayserver's TestZSetDumpRestoreWithRedisServer).

const (
	i64Max  = "9223372036854775807"
	i64Min  = "-9223372036854775808"
	i64Over = "9223372036854775808"
	u64Over = "18446744073709551616"
)

var long65 = strings.Repeat("m", 65)

// ZSetCases are the fixed cases: each runs from empty databases on both
// servers.
var ZSetCases = map[string][][]string{
	"zadd": {
		{"ZADD", "z", "1", "a", "2", "b", "3", "c"}, {"ZADD", "z", "1", "a"}, {"ZADD", "z", "5", "a"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"},
		{"ZADD", "z"}, {"ZADD", "z", "1"}, {"ZADD", "z", "1", "a", "2"}, {"ZADD", "z", "NX"}, {"ZADD", "z", "NX", "1"},
		{"ZADD", "z", "XX", "NX", "1", "a"}, {"ZADD", "z", "GT", "LT", "1", "a"}, {"ZADD", "z", "NX", "GT", "1", "a"},
		{"ZADD", "z", "NX", "LT", "1", "a"}, {"ZADD", "z", "XX", "GT", "1", "a"}, {"ZADD", "z", "INCR", "1", "a", "2", "b"},
		{"ZADD", "z", "XX", "NX", "1"}, {"ZADD", "z", "nx", "xx", "x", "a"}, {"ZADD", "z", "x", "a", "1", "b"}, {"ZADD", "z", "1", "a", "x", "b"},
		{"ZADD", "z", "NX", "1", "a", "9", "d"}, {"ZADD", "z", "XX", "7", "a", "9", "e"}, {"ZADD", "z", "XX", "CH", "7", "a", "8", "b", "9", "e"},
		{"ZADD", "z", "GT", "CH", "1", "a", "100", "b", "4", "f"}, {"ZADD", "z", "LT", "CH", "1", "a", "100", "b", "0", "g"},
		{"ZADD", "z", "XX", "LT", "CH", "-1", "a", "-1", "h"}, {"ZADD", "z", "CH", "CH", "1", "a"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"},
		{"ZADD", "z", "INCR", "5", "a"}, {"ZADD", "z", "INCR", "NX", "5", "a"}, {"ZADD", "z", "INCR", "NX", "5", "new"},
		{"ZADD", "z", "INCR", "XX", "5", "nope"}, {"ZADD", "z", "INCR", "XX", "5", "a"}, {"ZADD", "z", "INCR", "GT", "-5", "a"},
		{"ZADD", "z", "INCR", "LT", "-5", "a"}, {"ZADD", "z", "INCR", "GT", "0", "a"}, {"ZADD", "z", "INCR", "CH", "1", "a"},
		{"ZADD", "z", "XX", "1", "a"}, {"ZADD", "nokey", "XX", "1", "a"}, {"EXISTS", "nokey"}, {"ZADD", "nokey", "XX", "INCR", "1", "a"},
		{"ZADD", "nokey", "GT", "1", "a"}, {"ZADD", "nokey2", "LT", "CH", "1", "a"}, {"ZCARD", "nokey2"},
		{"ZINCRBY", "z", "1", "a"}, {"ZINCRBY", "z", "x", "a"}, {"ZINCRBY", "z", "1"}, {"ZINCRBY", "z", "NX", "a"}, {"ZINCRBY", "z", "1", "a", "b"},
		{"ZINCRBY", "inc", "inf", "a"}, {"ZINCRBY", "inc", "-inf", "a"}, {"ZINCRBY", "inc", "inf", "a"}, {"ZADD", "inc", "INCR", "-inf", "a"},
		{"ZSCORE", "inc", "a"}, {"ZINCRBY", "inc", "nan", "a"}, {"ZINCRBY", "inc", "1e308", "b"}, {"ZINCRBY", "inc", "1e308", "b"},
		{"ZINCRBY", "inc", "-1e308", "b"}, {"ZINCRBY", "inc", "0.1", "c"}, {"ZINCRBY", "inc", "0.2", "c"}, {"ZRANGE", "inc", "0", "-1", "WITHSCORES"},
		{"ZREM", "z", "a", "nope", "a"}, {"ZREM", "z"}, {"ZREM", "nokey", "a"}, {"ZCARD", "z"}, {"ZCARD", "nokey"},
		{"ZREM", "inc", "a", "b", "c"}, {"EXISTS", "inc"}, {"TYPE", "z"},
	},
	"scores": {
		{"ZADD", "z", "inf", "pinf", "+inf", "pinf2", "-inf", "ninf", "1e308", "big", "-0", "nzero", "0", "zero", "5e-324", "tiny",
			"-5e-324", "ntiny", "0x10", "hex", "1e17", "e17", "0.1", "tenth", "123456789012345678", "i18", "4611686018427387904", "two62",
			"-4611686018427387904", "ntwo62", "4611686018427387905", "over62", "1.5", "one5", "INF", "up", "-Infinity", "ninf2"},
		{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZSCORE", "z", "nzero"}, {"ZSCORE", "z", "tiny"}, {"ZSCORE", "z", "e17"},
		{"ZSCAN", "z", "0"}, {"ZMSCORE", "z", "hex", "nope", "pinf", "ninf"}, {"ZMSCORE", "nokey", "a", "b"},
		{"ZADD", "z", "1e400", "x"}, {"ZADD", "z", "-1e400", "x"}, {"ZADD", "z", "1e-400", "x"}, {"ZADD", "z", "nan", "x"},
		{"ZADD", "z", "-nan", "x"}, {"ZADD", "z", "NaN", "x"}, {"ZADD", "z", " 1", "x"}, {"ZADD", "z", "1 ", "x"}, {"ZADD", "z", "", "x"},
		{"ZADD", "z", "1e", "x"}, {"ZADD", "z", "0x", "x"}, {"ZADD", "z", "1_0", "x"}, {"ZADD", "z", "1\x00", "x"}, {"ZADD", "z", ".", "x"},
		{"ZADD", "z", "0x1p-1080", "x"}, {"ZADD", "z", "0X1P3", "x"}, {"ZADD", "z", "+.5e-3", "y"}, {"ZADD", "z", "5.", "w"},
		{"ZADD", "z", i64Max, "imax"}, {"ZADD", "z", i64Min, "imin"}, {"ZADD", "z", u64Over, "u64"},
		{"ZADD", "z", "99999999999999999999999999999999999999", "huge"}, {"ZADD", "z", "infinity", "inf3"}, {"ZADD", "z", "infinit", "x"},
		{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZSCAN", "z", "0"}, {"ZINCRBY", "z", "-0", "zero"}, {"ZSCORE", "z", "zero"},
		{"ZINCRBY", "z", "1e400", "zero"}, {"ZINCRBY", "z", "1e-400", "zero"}, {"ZINCRBY", "z", "5e-324", "zero"}, {"ZSCORE", "z", "zero"},
		{"ZADD", "big", "-0", long65, "-0", "nz", "1e17", "e17", "0.5", "half"}, {"OBJECT", "ENCODING", "big"}, {"ZSCORE", "big", "nz"},
		{"ZRANGE", "big", "0", "-1", "WITHSCORES"}, {"ZSCAN", "big", "0", "COUNT", "100"}, {"ZRANGEBYSCORE", "big", "-0", "0", "WITHSCORES"},
		{"ZADD", "big", "0", "nz"}, {"ZSCORE", "big", "nz"}, {"ZADD", "big", "-0", "p0"}, {"ZINCRBY", "big", "-0", "p0"}, {"ZSCORE", "big", "p0"},
		{"HELLO", "3"}, {"ZSCORE", "z", "pinf"}, {"ZSCORE", "z", "ninf"}, {"ZSCORE", "z", "tenth"}, {"ZMSCORE", "z", "pinf", "x"},
		{"ZINCRBY", "z", "1", "one5"}, {"ZRANGE", "z", "0", "2", "WITHSCORES"}, {"ZSCORE", "big", "nz"}, {"HELLO", "2"},
	},
	"zrange": {
		{"ZADD", "z", "-inf", "a", "-2", "b", "-1", "c", "-0", "d", "0", "e", "1", "f", "1", "g", "2", "h", "inf", "i", "-1", "bb", "0", "d2"},
		{"ZRANGE", "z", "0", "-1"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZRANGE", "z", "2", "4"}, {"ZRANGE", "z", "-3", "-1"},
		{"ZRANGE", "z", "5", "2"}, {"ZRANGE", "z", "-100", "100"}, {"ZRANGE", "z", "100", "200"}, {"ZRANGE", "z", "0", "0"},
		{"ZRANGE", "z", i64Min, i64Max}, {"ZRANGE", "z", i64Max, i64Min}, {"ZRANGE", "z", i64Over, "1"}, {"ZRANGE", "z", "0", u64Over},
		{"ZRANGE", "z", "x", "1"}, {"ZRANGE", "z", "0", "1.5"}, {"ZRANGE", "z", "-1", "-1"}, {"ZRANGE", "z", "0", "-1", "REV"},
		{"ZRANGE", "z", "1", "3", "REV", "WITHSCORES"}, {"ZREVRANGE", "z", "0", "2"}, {"ZREVRANGE", "z", "0", "2", "WITHSCORES"},
		{"ZREVRANGE", "z", "0", "2", "REV"}, {"ZREVRANGE", "z", "0", "2", "BYSCORE"}, {"ZRANGE", "z", "0", "1", "LIMIT", "0", "1"},
		{"ZRANGE", "z", "0", "1", "BYLEX", "WITHSCORES"}, {"ZRANGE", "z", "0", "1", "FOO"}, {"ZRANGE", "z", "0"}, {"ZRANGE", "nokey", "0", "-1"},
		{"ZRANGE", "z", "-inf", "+inf", "BYSCORE"}, {"ZRANGE", "z", "-1", "1", "BYSCORE", "WITHSCORES"}, {"ZRANGE", "z", "(-1", "(1", "BYSCORE"},
		{"ZRANGE", "z", "-0", "0", "BYSCORE", "WITHSCORES"}, {"ZRANGE", "z", "(0", "+inf", "BYSCORE"}, {"ZRANGE", "z", "-inf", "(-0", "BYSCORE"},
		{"ZRANGE", "z", "(-inf", "(inf", "BYSCORE"}, {"ZRANGE", "z", "inf", "inf", "BYSCORE"}, {"ZRANGE", "z", "(inf", "inf", "BYSCORE"},
		{"ZRANGE", "z", "1", "-1", "BYSCORE"}, {"ZRANGE", "z", "1", "(1", "BYSCORE"}, {"ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV"},
		{"ZRANGE", "z", "(2", "(-2", "BYSCORE", "REV", "WITHSCORES"}, {"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "2", "3"},
		{"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "2", "-1"}, {"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "3"},
		{"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "0", "0"}, {"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "100", "1"},
		{"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", i64Max, i64Max}, {"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", i64Min, i64Min},
		{"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "0", i64Over}, {"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "2", i64Max},
		{"ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "3", i64Max}, {"ZRANGEBYLEX", "z", "-", "+", "LIMIT", "2", i64Max}, {"ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1"},
		{"ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2", "WITHSCORES"}, {"ZRANGE", "z", "x", "1", "BYSCORE"},
		{"ZRANGE", "z", "nan", "1", "BYSCORE"}, {"ZRANGE", "z", "(nan", "1", "BYSCORE"}, {"ZRANGE", "z", "", "1", "BYSCORE"},
		{"ZRANGE", "z", "(", "1", "BYSCORE"}, {"ZRANGE", "z", " 1", "1e400", "BYSCORE"}, {"ZRANGE", "z", "-1e400", "1e-400", "BYSCORE"},
		{"ZRANGE", "z", "1 ", "2", "BYSCORE"}, {"ZRANGE", "z", "1\x00x", "2", "BYSCORE"}, {"ZRANGE", "z", "0x1", "0X2", "BYSCORE"},
		{"ZRANGEBYSCORE", "z", "-inf", "inf", "WITHSCORES", "LIMIT", "1", "2"}, {"ZRANGEBYSCORE", "z", "-inf", "inf", "BYSCORE"},
		{"ZRANGEBYSCORE", "z", "-inf", "inf", "REV"}, {"ZREVRANGEBYSCORE", "z", "inf", "-inf"}, {"ZREVRANGEBYSCORE", "z", "-inf", "inf"},
		{"ZREVRANGEBYSCORE", "z", "(1", "-1", "WITHSCORES", "LIMIT", "0", "2"}, {"ZRANGEBYSCORE", "nokey", "x", "1"},
		{"ZRANGEBYSCORE", "nokey", "-inf", "inf"}, {"ZCOUNT", "z", "-inf", "+inf"}, {"ZCOUNT", "z", "(-1", "1"}, {"ZCOUNT", "z", "-0", "0"},
		{"ZCOUNT", "z", "1", "0"}, {"ZCOUNT", "z", "x", "0"}, {"ZCOUNT", "nokey", "0", "1"}, {"ZCOUNT", "z", "(inf", "+inf"},
		{"ZRANK", "z", "a"}, {"ZRANK", "z", "d"}, {"ZRANK", "z", "d2"}, {"ZRANK", "z", "e"}, {"ZRANK", "z", "i"}, {"ZRANK", "z", "nope"},
		{"ZRANK", "nokey", "a"}, {"ZREVRANK", "z", "a"}, {"ZREVRANK", "z", "i"}, {"ZREVRANK", "z", "nope"}, {"ZRANK", "z", "a", "WITHSCORE"},
		{"ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "", "0", "ab"},
		{"ZRANGEBYLEX", "l", "-", "+"}, {"ZRANGEBYLEX", "l", "+", "-"}, {"ZRANGEBYLEX", "l", "[b", "(d"}, {"ZRANGEBYLEX", "l", "(b", "[d"},
		{"ZRANGEBYLEX", "l", "[", "[a"}, {"ZRANGEBYLEX", "l", "(", "+"}, {"ZRANGEBYLEX", "l", "[b", "[b"}, {"ZRANGEBYLEX", "l", "(b", "[b"},
		{"ZRANGEBYLEX", "l", "-", "-"}, {"ZRANGEBYLEX", "l", "+", "+"}, {"ZRANGEBYLEX", "l", "b", "c"}, {"ZRANGEBYLEX", "l", "", "+"},
		{"ZRANGEBYLEX", "l", "-x", "+"}, {"ZRANGEBYLEX", "l", "-\x00", "+"}, {"ZRANGEBYLEX", "l", "-", "+", "LIMIT", "1", "2"},
		{"ZRANGEBYLEX", "l", "-", "+", "LIMIT", "-1", "2"}, {"ZRANGEBYLEX", "l", "-", "+", "LIMIT", "2", "-1"}, {"ZRANGEBYLEX", "l", "-", "+", "WITHSCORES"},
		{"ZRANGEBYLEX", "l", "-", "+", "LIMIT", i64Max, "1"}, {"ZREVRANGEBYLEX", "l", "+", "-"}, {"ZREVRANGEBYLEX", "l", "(d", "[b"},
		{"ZREVRANGEBYLEX", "l", "+", "-", "LIMIT", "1", "3"}, {"ZRANGE", "l", "[b", "[d", "BYLEX"}, {"ZRANGE", "l", "[d", "[b", "BYLEX", "REV"},
		{"ZRANGE", "l", "-", "+", "BYLEX", "LIMIT", "0", "2"}, {"ZLEXCOUNT", "l", "-", "+"}, {"ZLEXCOUNT", "l", "[b", "(d"},
		{"ZLEXCOUNT", "l", "(e", "+"}, {"ZLEXCOUNT", "l", "x", "+"}, {"ZLEXCOUNT", "nokey", "-", "+"}, {"ZRANGEBYLEX", "z", "-", "+"},
		{"ZRANGEBYLEX", "z", "[b", "[f"}, {"ZLEXCOUNT", "z", "[b", "[f"}, {"ZREVRANGEBYLEX", "z", "[f", "[b"},
		{"HELLO", "3"}, {"ZRANGE", "z", "0", "2", "WITHSCORES"}, {"ZRANGEBYSCORE", "z", "-inf", "0", "WITHSCORES"}, {"ZRANGE", "z", "0", "1"},
		{"HELLO", "2"},
	},
	"zpop": {
		{"ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "-0", "f", "inf", "g"},
		{"ZPOPMIN", "z"}, {"ZPOPMAX", "z"}, {"ZPOPMIN", "z", "2"}, {"ZPOPMAX", "z", "2"}, {"ZPOPMIN", "z", "0"}, {"ZPOPMAX", "z", "0"},
		{"ZPOPMIN", "z", "-1"}, {"ZPOPMIN", "z", "x"}, {"ZPOPMIN", "z", "1", "2"}, {"ZPOPMIN", "z", i64Min}, {"ZPOPMIN", "z", i64Over},
		{"ZPOPMIN", "nokey"}, {"ZPOPMIN", "nokey", "0"}, {"ZPOPMAX", "nokey", "3"}, {"ZPOPMIN", "nokey", "-1"},
		{"ZPOPMAX", "z", i64Max}, {"EXISTS", "z"}, {"ZADD", "z", "1", "a", "2", "b", "3", "c"},
		{"ZMPOP", "1", "z", "MIN"}, {"ZMPOP", "2", "nokey", "z", "MAX", "COUNT", "5"}, {"EXISTS", "z"}, {"ZMPOP", "1", "z", "MIN"},
		{"ZADD", "y", "1", "a", "2", "b"}, {"ZMPOP", "1", "y", "MIN", "COUNT", "0"}, {"ZMPOP", "1", "y", "MIN", "COUNT", "-1"},
		{"ZMPOP", "1", "y", "MIN", "COUNT", "x"}, {"ZMPOP", "1", "y", "MIN", "COUNT"}, {"ZMPOP", "1", "y", "MIN", "COUNT", "1", "COUNT", "1"},
		{"ZMPOP", "1", "y", "LEFT"}, {"ZMPOP", "0", "y", "MIN"}, {"ZMPOP", "-1", "y", "MIN"}, {"ZMPOP", "x", "y", "MIN"},
		{"ZMPOP", "3", "y", "MIN"}, {"ZMPOP", "2", "y", "MIN"}, {"ZMPOP", i64Max, "y", "MIN"}, {"ZMPOP", i64Min, "y", "MIN"},
		{"ZMPOP", u64Over, "y", "MIN"}, {"ZMPOP", "1", "y", "MIN", "COUNT", i64Max}, {"ZMPOP", "1", "y", "MIN", "COUNT", i64Over},
		{"SET", "s", "v"}, {"ZMPOP", "2", "s", "y", "MIN"}, {"ZMPOP", "2", "nokey", "s", "MIN"}, {"ZPOPMIN", "s"}, {"ZPOPMIN", "s", "0"},
		{"ZMPOP", "1", "y", "MIN", "FOO"}, {"ZADD", "y", "1", "a", "2", "b", "3", "c"}, {"HELLO", "3"}, {"ZPOPMIN", "y"},
		{"ZPOPMIN", "y", "1"}, {"ZPOPMAX", "y", "5"}, {"ZPOPMIN", "nokey", "1"}, {"ZMPOP", "1", "nokey", "MIN"},
		{"ZADD", "y", "1", "a"}, {"ZMPOP", "1", "y", "MAX"}, {"HELLO", "2"},
	},
	// The score index's marks (command/zmarks.go): pops at both ends,
	// inserts below and above what was popped, reads and removals from the
	// ends, long members (whose marks are shortened bounds), -0 and the
	// infinities at the ends, and a copy, a rename and a restore of a
	// popped set.
	"zpop-marks": {
		{"ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f", "7", "g", "8", "h", "9", "i", "10", "j"},
		{"ZPOPMIN", "z", "2"}, {"ZPOPMAX", "z", "2"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZRANK", "z", "c"}, {"ZREVRANK", "z", "c"},
		{"ZADD", "z", "2", "b2", "1.5", "a2"}, {"ZRANGE", "z", "0", "1"}, {"ZPOPMIN", "z"}, {"ZADD", "z", "9", "i2", "20", "k"},
		{"ZRANGE", "z", "-2", "-1", "WITHSCORES"}, {"ZPOPMAX", "z"}, {"ZPOPMAX", "z"}, {"ZINCRBY", "z", "100", "c"}, {"ZINCRBY", "z", "-100", "h"},
		{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZPOPMIN", "z"}, {"ZPOPMAX", "z"}, {"ZREMRANGEBYRANK", "z", "0", "0"},
		{"ZREMRANGEBYRANK", "z", "-1", "-1"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZADD", "z", "0", "lo", "50", "hi"},
		{"ZREMRANGEBYSCORE", "z", "-inf", "0"}, {"ZREMRANGEBYSCORE", "z", "(49", "+inf"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"},
		{"ZADD", "z", "-inf", "ninf", "inf", "pinf", "-0", "mz"}, {"ZREMRANGEBYSCORE", "z", "(-inf", "-1"}, {"ZREMRANGEBYSCORE", "z", "100", "(inf"},
		{"ZPOPMIN", "z"}, {"ZPOPMAX", "z"}, {"ZPOPMIN", "z"}, {"ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"}, {"ZCOUNT", "z", "-inf", "+inf"},
		{"ZREVRANGE", "z", "0", "1"}, {"ZCARD", "z"}, {"ZMPOP", "1", "z", "MIN", "COUNT", "2"}, {"ZMPOP", "1", "z", "MAX", "COUNT", "2"},
		{"ZADD", "z", "3", "c3", "8", "h8"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"},
		{"COPY", "z", "zc"}, {"ZPOPMIN", "zc"}, {"ZPOPMAX", "zc"}, {"ZRANGE", "zc", "0", "-1"}, {"RENAME", "z", "zr"}, {"ZADD", "zr", "0", "first"},
		{"ZRANGE", "zr", "0", "-1", "WITHSCORES"}, {"ZPOPMIN", "zr", "100"}, {"EXISTS", "zr"}, {"ZADD", "zr", "1", "a"}, {"ZRANGE", "zr", "0", "-1"},
		{"ZADD", "long", "1", strings.Repeat("m", 100) + "1", "1", strings.Repeat("m", 100) + "2", "1", strings.Repeat("m", 100) + "3",
			"1", strings.Repeat("m", 100) + "4", "2", strings.Repeat("\xff", 90)},
		{"ZPOPMIN", "long"}, {"ZPOPMAX", "long"}, {"ZADD", "long", "1", strings.Repeat("m", 100) + "0", "1", strings.Repeat("m", 100) + "9"},
		{"ZRANGE", "long", "0", "-1"}, {"ZPOPMAX", "long"}, {"ZPOPMIN", "long"}, {"ZPOPMAX", "long", "5"},
		{"ZADD", "q", "1", "a", "2", "b", "3", "c", "4", "d"}, {"ZPOPMIN", "q"}, {"ZPOPMAX", "q"}, {"EXPIRE", "q", "100"}, {"ZADD", "q", "0", "z"},
		{"ZRANGE", "q", "0", "-1", "WITHSCORES"}, {"TTL", "q"}, {"MULTI"}, {"ZPOPMIN", "q"}, {"ZADD", "q", "-1", "y"}, {"ZPOPMAX", "q"}, {"ZRANGE", "q", "0", "-1"},
		{"EXEC"}, {"ZRANGE", "q", "0", "-1", "WITHSCORES"},
	},
	"zremrange": {
		{"ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"}, {"ZREMRANGEBYRANK", "z", "0", "0"}, {"ZREMRANGEBYRANK", "z", "-1", "-1"},
		{"ZREMRANGEBYRANK", "z", "5", "1"}, {"ZREMRANGEBYRANK", "z", "x", "1"}, {"ZREMRANGEBYRANK", "z", i64Min, "0"},
		{"ZREMRANGEBYRANK", "z", i64Max, i64Max}, {"ZREMRANGEBYRANK", "z", "0", i64Over}, {"ZRANGE", "z", "0", "-1"},
		{"ZREMRANGEBYRANK", "nokey", "0", "-1"}, {"ZADD", "z", "1", "a", "5", "e"}, {"ZREMRANGEBYSCORE", "z", "(1", "3"},
		{"ZREMRANGEBYSCORE", "z", "x", "3"}, {"ZREMRANGEBYSCORE", "z", "3", "1"}, {"ZREMRANGEBYSCORE", "nokey", "-inf", "inf"},
		{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZREMRANGEBYSCORE", "z", "-inf", "(5"}, {"ZREMRANGEBYSCORE", "z", "nan", "1"},
		{"ZREMRANGEBYSCORE", "z", "5", "+inf"}, {"EXISTS", "z"}, {"ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d"},
		{"ZREMRANGEBYLEX", "l", "(a", "[c"}, {"ZREMRANGEBYLEX", "l", "x", "[c"}, {"ZREMRANGEBYLEX", "l", "+", "-"}, {"ZRANGE", "l", "0", "-1"},
		{"ZREMRANGEBYLEX", "nokey", "-", "+"}, {"ZREMRANGEBYLEX", "l", "-", "+"}, {"EXISTS", "l"}, {"SET", "s", "v"},
		{"ZREMRANGEBYRANK", "s", "0", "1"}, {"ZREMRANGEBYSCORE", "s", "0", "1"}, {"ZREMRANGEBYLEX", "s", "-", "+"},
		{"ZREMRANGEBYSCORE", "s", "x", "1"}, {"ZREMRANGEBYRANK", "s", "x", "1"},
	},
	"zscan-zrandmember": {
		{"ZSCAN", "nokey", "0"}, {"ZSCAN", "nokey", "x"}, {"ZSCAN", "nokey", "0", "FOO"}, {"ZADD", "z", "3", "a1", "1.5", "a2", "2", "b1", "-0", "c"},
		{"ZSCAN", "z", "0"}, {"ZSCAN", "z", "0", "MATCH", "a*"}, {"ZSCAN", "z", "0", "COUNT", "1"}, {"ZSCAN", "z", "0", "COUNT", "0"},
		{"ZSCAN", "z", "0", "COUNT", "-1"}, {"ZSCAN", "z", "0", "COUNT", "x"}, {"ZSCAN", "z", "0", "MATCH"}, {"ZSCAN", "z", "x"},
		{"ZSCAN", "z", "-1"}, {"ZSCAN", "z", "18446744073709551615"}, {"ZSCAN", "z", u64Over}, {"ZSCAN", "z", "0", "COUNT", i64Max},
		{"ZSCAN", "z", "0", "COUNT", i64Over}, {"ZSCAN", "z", "0", "TYPE", "zset"},
		{"ZRANDMEMBER", "nokey"}, {"ZRANDMEMBER", "nokey", "0"}, {"ZRANDMEMBER", "nokey", "5"}, {"ZRANDMEMBER", "nokey", "-5", "WITHSCORES"},
		{"ZRANDMEMBER", "z"}, {"ZRANDMEMBER", "z", "0"}, {"ZRANDMEMBER", "z", "1"}, {"ZRANDMEMBER", "z", "2"}, {"ZRANDMEMBER", "z", "4"},
		{"ZRANDMEMBER", "z", "10"}, {"ZRANDMEMBER", "z", "-1"}, {"ZRANDMEMBER", "z", "-10"}, {"ZRANDMEMBER", "z", "2", "WITHSCORES"},
		{"ZRANDMEMBER", "z", "10", "withscores"}, {"ZRANDMEMBER", "z", "-7", "WITHSCORES"}, {"ZRANDMEMBER", "z", "x"},
		{"ZRANDMEMBER", "z", "1", "FOO"}, {"ZRANDMEMBER", "z", "1", "WITHSCORES", "x"}, {"ZRANDMEMBER", "z", i64Min},
		{"ZRANDMEMBER", "z", i64Max, "WITHSCORES"}, {"ZRANDMEMBER", "z", "-4611686018427387904", "WITHSCORES"},
		{"ZRANDMEMBER", "z", "4611686018427387903", "WITHSCORES"}, {"ZRANDMEMBER", "z", i64Max}, {"ZRANDMEMBER", "z", i64Over},
		{"HELLO", "3"}, {"ZRANDMEMBER", "z", "2", "WITHSCORES"}, {"ZRANDMEMBER", "z", "-3", "WITHSCORES"}, {"ZRANDMEMBER", "z", "1", "WITHSCORES"},
		{"ZRANDMEMBER", "z", "9", "WITHSCORES"}, {"ZSCAN", "z", "0"}, {"HELLO", "2"}, {"SET", "s", "v"}, {"ZSCAN", "s", "0"}, {"ZRANDMEMBER", "s"},
	},
	"zset-algebra": {
		{"ZADD", "a", "1", "x", "2", "y", "3", "z"}, {"ZADD", "b", "10", "y", "20", "z", "30", "w"}, {"SADD", "s", "x", "w", "q"},
		{"ZUNION", "2", "a", "b"}, {"ZUNION", "2", "a", "b", "WITHSCORES"}, {"ZINTER", "2", "a", "b", "WITHSCORES"}, {"ZDIFF", "2", "a", "b", "WITHSCORES"},
		{"ZDIFF", "2", "b", "a", "WITHSCORES"}, {"ZUNION", "3", "a", "b", "s", "WITHSCORES"}, {"ZINTER", "2", "a", "s", "WITHSCORES"},
		{"ZDIFF", "2", "s", "a", "WITHSCORES"}, {"ZUNION", "2", "a", "b", "WEIGHTS", "2", "0.5", "WITHSCORES"},
		{"ZUNION", "2", "a", "b", "WEIGHTS", "inf", "-inf", "WITHSCORES"}, {"ZINTER", "2", "a", "b", "WEIGHTS", "inf", "0", "WITHSCORES"},
		{"ZINTER", "2", "a", "b", "WEIGHTS", "inf", "0", "AGGREGATE", "MIN", "WITHSCORES"}, {"ZUNION", "2", "a", "b", "AGGREGATE", "MAX", "WITHSCORES"},
		{"ZUNION", "2", "a", "b", "AGGREGATE", "min", "WITHSCORES"}, {"ZUNION", "2", "a", "b", "AGGREGATE", "sum", "AGGREGATE", "max", "WITHSCORES"},
		{"ZUNION", "2", "a", "b", "WEIGHTS", "1"}, {"ZUNION", "2", "a", "b", "WEIGHTS", "1", "x"}, {"ZUNION", "2", "a", "b", "WEIGHTS", "1", "nan"},
		{"ZUNION", "2", "a", "b", "WEIGHTS", "1", "1e400"}, {"ZUNION", "2", "a", "b", "AGGREGATE", "avg"}, {"ZUNION", "2", "a", "b", "AGGREGATE"},
		{"ZUNION", "2", "a", "b", "FOO"}, {"ZDIFF", "2", "a", "b", "WEIGHTS", "1", "1"}, {"ZDIFF", "2", "a", "b", "AGGREGATE", "MAX"},
		{"ZUNION", "0", "a"}, {"ZUNION", "-1", "a"}, {"ZUNION", "x", "a"}, {"ZUNION", "3", "a", "b"}, {"ZUNION", i64Max, "a"},
		{"ZUNION", i64Min, "a"}, {"ZUNION", u64Over, "a"}, {"ZUNION", "1", "nokey"}, {"ZINTER", "2", "a", "nokey"}, {"ZDIFF", "1", "nokey"},
		{"SET", "str", "v"}, {"ZUNION", "2", "a", "str"}, {"ZUNION", "2", "a", "str", "FOO"}, {"ZINTER", "2", "nokey", "str"},
		{"ZUNIONSTORE", "d", "2", "a", "b"}, {"ZRANGE", "d", "0", "-1", "WITHSCORES"}, {"OBJECT", "ENCODING", "d"},
		{"ZINTERSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2", "AGGREGATE", "MAX"}, {"ZRANGE", "d", "0", "-1", "WITHSCORES"},
		{"ZDIFFSTORE", "d", "2", "a", "b"}, {"ZRANGE", "d", "0", "-1", "WITHSCORES"}, {"ZINTERSTORE", "d", "2", "a", "nokey"}, {"EXISTS", "d"},
		{"ZUNIONSTORE", "str", "1", "a"}, {"TYPE", "str"}, {"ZUNIONSTORE", "d", "1", "a", "WITHSCORES"}, {"ZUNIONSTORE", "d", "0", "a"},
		{"ZDIFFSTORE", "d", "0", "a"}, {"ZUNIONSTORE", "a", "2", "a", "b"}, {"ZRANGE", "a", "0", "-1", "WITHSCORES"},
		{"ZINTERCARD", "2", "a", "b"}, {"ZINTERCARD", "2", "a", "b", "LIMIT", "1"}, {"ZINTERCARD", "2", "a", "b", "LIMIT", "0"},
		{"ZINTERCARD", "2", "a", "b", "LIMIT", "-1"}, {"ZINTERCARD", "2", "a", "b", "LIMIT", "x"}, {"ZINTERCARD", "2", "a", "b", "LIMIT", i64Max},
		{"ZINTERCARD", "0", "a"}, {"ZINTERCARD", "x", "a"}, {"ZINTERCARD", "3", "a"}, {"ZINTERCARD", "1", "a", "WITHSCORES"},
		{"ZINTERCARD", "2", "a", "s"}, {"ZINTERCARD", "2", "a", "str"}, {"ZINTERCARD", "1", "nokey"}, {"ZINTERCARD", "2", "a", "b", "LIMIT"},
		{"ZADD", "src", "1", "a", "2", "b", "3", "c", "4", "d"}, {"ZRANGESTORE", "dst", "src", "1", "2"}, {"ZRANGE", "dst", "0", "-1", "WITHSCORES"},
		{"ZRANGESTORE", "dst", "src", "(1", "+inf", "BYSCORE", "LIMIT", "1", "5"}, {"ZRANGE", "dst", "0", "-1", "WITHSCORES"},
		{"ZRANGESTORE", "dst", "src", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "0", "2"}, {"ZRANGE", "dst", "0", "-1", "WITHSCORES"},
		{"ZRANGESTORE", "dst", "src", "[a", "[c", "BYLEX"}, {"ZRANGESTORE", "dst", "src", "0", "-1", "WITHSCORES"},
		{"ZRANGESTORE", "dst", "src", "5", "9"}, {"EXISTS", "dst"}, {"ZRANGESTORE", "dst", "nokey", "0", "-1"}, {"ZRANGESTORE", "dst", "str", "0", "-1"},
		{"ZRANGESTORE", "str", "src", "0", "0"}, {"TYPE", "str"}, {"ZRANGESTORE", "dst", "src", "x", "1"}, {"ZRANGESTORE", "dst", "src", "0"},
		{"HELLO", "3"}, {"ZUNION", "2", "src", "b", "WITHSCORES"}, {"ZINTER", "2", "src", "src"}, {"HELLO", "2"},
		{"MULTI"}, {"ZADD", "m", "1", "a"}, {"ZUNIONSTORE", "m2", "2", "m", "src"}, {"ZINTERSTORE", "m", "2", "m", "src"}, {"ZCARD", "m"},
		{"DEL", "m"}, {"ZADD", "m", "5", "q"}, {"ZRANGE", "m", "0", "-1", "WITHSCORES"}, {"ZINTERCARD", "1", "m2"}, {"EXEC"},
		{"ZRANGE", "m2", "0", "-1", "WITHSCORES"},
	},
	"zset-generic": {
		{"ZADD", "z", "1", "a", "2", "b"}, {"TYPE", "z"}, {"EXISTS", "z", "z"}, {"EXPIRE", "z", "1000"}, {"TTL", "z"}, {"RENAME", "z", "y"},
		{"ZRANGE", "y", "0", "-1", "WITHSCORES"}, {"TTL", "y"}, {"EXISTS", "z"}, {"RENAMENX", "y", "z"}, {"SET", "s", "v"}, {"RENAMENX", "z", "s"},
		{"COPY", "z", "c"}, {"ZADD", "c", "3", "x"}, {"ZRANGE", "z", "0", "-1"}, {"ZRANGE", "c", "0", "-1"}, {"COPY", "z", "c"},
		{"COPY", "z", "c", "REPLACE"}, {"ZRANGE", "c", "0", "-1", "WITHSCORES"}, {"COPY", "z", "c1", "DB", "1"}, {"MOVE", "c", "1"},
		{"MOVE", "c", "2"}, {"SELECT", "2"}, {"ZRANGE", "c", "0", "-1", "WITHSCORES"}, {"SELECT", "1"}, {"ZRANGE", "c1", "0", "-1"},
		{"SELECT", "0"}, {"SCAN", "0", "TYPE", "zset"}, {"SCAN", "0", "TYPE", "ZSET"}, {"DBSIZE"}, {"DEL", "z"}, {"ZRANGE", "z", "0", "-1"},
		{"ZADD", "z", "9", "n"}, {"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"PEXPIREAT", "z", "1"}, {"ZCARD", "z"}, {"ZADD", "z", "1", "fresh"},
		{"ZRANGE", "z", "0", "-1"}, {"UNLINK", "z"}, {"EXISTS", "z"},
		{"ZADD", "s", "1", "a"}, {"ZINCRBY", "s", "1", "a"}, {"ZRANGE", "s", "0", "-1"}, {"ZSCORE", "s", "a"}, {"ZCARD", "s"}, {"ZREM", "s", "a"},
		{"ZRANK", "s", "a"}, {"ZCOUNT", "s", "0", "1"}, {"ZLEXCOUNT", "s", "-", "+"}, {"ZMSCORE", "s", "a"}, {"ZRANGESTORE", "d", "s", "0", "1"},
		{"ZADD", "zz", "1", "a"}, {"GET", "zz"}, {"HSET", "zz", "a", "1"}, {"SADD", "zz", "a"}, {"LPUSH", "zz", "a"}, {"INCR", "zz"},
		{"APPEND", "zz", "x"}, {"SINTER", "zz"}, {"SUNION", "zz", "nokey"}, {"OBJECT", "ENCODING", "zz"}, {"OBJECT", "REFCOUNT", "zz"},
		{"SET", "zz", "now a string"}, {"TYPE", "zz"}, {"ZADD", "zz", "1", "a"}, {"DBSIZE"},
		{"MULTI"}, {"ZADD", "t", "1", "a"}, {"DEL", "t"}, {"ZADD", "t", "2", "b"}, {"ZRANGE", "t", "0", "-1", "WITHSCORES"},
		{"RENAME", "t", "t2"}, {"ZINCRBY", "t2", "5", "b"}, {"ZPOPMIN", "t2"}, {"EXISTS", "t2"}, {"ZADD", "t3", "1", "x", "2", "y"},
		{"ZMPOP", "2", "t2", "t3", "MAX"}, {"EXEC"}, {"ZRANGE", "t3", "0", "-1"}, {"WATCH", "t3"}, {"ZADD", "t3", "3", "z"}, {"MULTI"},
		{"ZCARD", "t3"}, {"EXEC"},
	},
	"zset-encoding": {
		{"ZADD", "z", "1", "a"}, {"OBJECT", "ENCODING", "z"}, {"ZADD", "z", "1", strings.Repeat("m", 64)}, {"OBJECT", "ENCODING", "z"},
		{"ZADD", "z", "XX", "1", long65}, {"OBJECT", "ENCODING", "z"}, {"ZADD", "z", "NX", "1", long65}, {"OBJECT", "ENCODING", "z"},
		{"ZREM", "z", long65}, {"OBJECT", "ENCODING", "z"}, {"ZINCRBY", "i", "1", long65}, {"OBJECT", "ENCODING", "i"},
		{"ZADD", "dup", "1", "a", "1", "a", "1", "a"}, {"OBJECT", "ENCODING", "dup"}, {"ZUNIONSTORE", "u", "1", "z"}, {"OBJECT", "ENCODING", "u"},
		{"ZRANGESTORE", "r", "z", "0", "0"}, {"OBJECT", "ENCODING", "r"}, {"COPY", "z", "c"}, {"OBJECT", "ENCODING", "c"},
		{"RENAME", "c", "c2"}, {"OBJECT", "ENCODING", "c2"}, {"OBJECT", "ENCODING", "nokey"},
	},
	"zset-dump-restore": {
		{"RESTORE", "l", "0", redisZSetListpackDump}, {"ZRANGE", "l", "0", "-1", "WITHSCORES"}, {"OBJECT", "ENCODING", "l"},
		{"RESTORE", "s", "0", redisZSetSkiplistDump}, {"ZRANGE", "s", "0", "-1", "WITHSCORES"}, {"OBJECT", "ENCODING", "s"}, {"ZSCORE", "s", "m"},
		{"ZSCAN", "s", "0", "COUNT", "100"}, {"RESTORE", "l", "0", redisZSetListpackDump}, {"RESTORE", "l", "100000", redisZSetSkiplistDump, "REPLACE"},
		{"TTL", "l"}, {"ZCARD", "l"}, {"RESTORE", "zl", "0", zsetZiplistPayload()}, {"ZRANGE", "zl", "0", "-1", "WITHSCORES"},
		{"OBJECT", "ENCODING", "zl"}, {"RESTORE", "z1", "0", zsetType1Payload()}, {"ZRANGE", "z1", "0", "-1", "WITHSCORES"},
		{"OBJECT", "ENCODING", "z1"}, {"RESTORE", "x", "0", redisZSetListpackDump[:len(redisZSetListpackDump)-1] + "\x00"}, {"EXISTS", "x"},
		{"RESTORE", "x", "0", string(rdb.Seal([]byte{rdb.TypeZSet2, 0}))}, {"EXISTS", "x"},
		{"RESTORE", "x", "0", zsetNaNPayload()}, {"EXISTS", "x"}, {"DUMP", "l"}, {"DUMP", "zl"}, {"DUMP", "nokey"},
		{"ZADD", "d", "1", "a", "-0", "b", "inf", "c"}, {"DUMP", "d"}, {"MULTI"}, {"DUMP", "d"}, {"RESTORE", "y", "0", redisZSetListpackDump},
		{"ZCARD", "y"}, {"EXEC"}, {"SET", "str", "v"}, {"RESTORE", "str", "0", redisZSetListpackDump, "REPLACE"}, {"TYPE", "str"},
	},
}

// redisZSetListpackDump is redis-server 7.0's DUMP of ZADD dz 1 a 2.5 b
// -3 c inf d: RDB_TYPE_ZSET_LISTPACK.
const redisZSetListpackDump = "\x11\x22\x22\x00\x00\x00\x08\x00\x81\x63\x02\xdf\xfd\x02\x81\x61\x02\x01\x01\x81\x62\x02\x83\x32\x2e\x35\x04\x81\x64\x02\x83\x69\x6e\x66\x04\xff\x0a\x00\xc5\x4a\x2b\x13\xac\xcb\xa9\x7f"

// redisZSetSkiplistDump is redis-server 7.0's DUMP of ZADD dz2 1 x*65 -0
// m 0.1 n: RDB_TYPE_ZSET_2 (binary scores, an LZF-compressed member).
const redisZSetSkiplistDump = "\x05\x03\xc3\x09\x40\x41\x01\x78\x78\xe0\x34\x00\x01\x78\x78\x00\x00\x00\x00\x00\x00\xf0\x3f\x01\x6e\x9a\x99\x99\x99\x99\x99\xb9\x3f\x01\x6d\x00\x00\x00\x00\x00\x00\x00\x80\x0a\x00\x4b\x85\x04\xe0\xf2\x02\xdb\x2d"

// zsetZiplistPayload is an RDB_TYPE_ZSET_ZIPLIST payload as Redis 6
// writes one (entries as strings, the last an integer), built here.
func zsetZiplistPayload() string {
	entries := []string{"c", "-inf", "a", "1.5", "b", "2"}
	var body []byte
	prev := 0
	for _, e := range entries {
		start := len(body)
		body = append(body, byte(prev), byte(len(e))) // prevlen, 6-bit string length
		body = append(body, e...)
		prev = len(body) - start
	}
	// An integer entry (0xFE: int8) for the member "7" with score 7.
	start := len(body)
	body = append(body, byte(prev), 0xFE, 7)
	prev = len(body) - start
	tailOff := 10 + start
	body = append(body, byte(prev), 0xFE, 7)
	zl := binary.LittleEndian.AppendUint32(nil, uint32(10+len(body)+1))
	zl = binary.LittleEndian.AppendUint32(zl, uint32(tailOff+3))
	zl = binary.LittleEndian.AppendUint16(zl, uint16(len(entries)+2))
	zl = append(append(zl, body...), 0xFF)
	p := []byte{rdb.TypeZSetZiplist}
	p = rdb.AppendString(p, zl)
	return string(rdb.Seal(p))
}

// zsetType1Payload is an RDB_TYPE_ZSET payload (Redis before 4.0: scores
// as text, 254 for +inf).
func zsetType1Payload() string {
	p := []byte{rdb.TypeZSet, 3}
	p = rdb.AppendString(p, []byte("a"))
	p = append(p, 4)
	p = append(p, "-1.5"...)
	p = rdb.AppendString(p, []byte("b"))
	p = append(p, 254)
	p = rdb.AppendString(p, []byte("c"))
	p = append(p, 5)
	p = append(p, "1e-10"...)
	return string(rdb.Seal(p))
}

// zsetNaNPayload is an RDB_TYPE_ZSET payload with a NaN score (253),
// which Redis refuses.
func zsetNaNPayload() string {
	p := []byte{rdb.TypeZSet, 1}
	p = rdb.AppendString(p, []byte("a"))
	p = append(p, 253)
	return string(rdb.Seal(p))
}

// CompareZSetCases runs ZSetCases on ours and theirs (a redis-server).
func CompareZSetCases(t *testing.T, ours, theirs string) { compareCases(t, ours, theirs, ZSetCases) }

// CompareZSetRandom sends the same pseudo-random sequences over sorted
// sets (with strings and sets in the same keys) to ours and theirs.
func CompareZSetRandom(t *testing.T, ours, theirs string, seeds, steps int) {
	for seed := 1; seed <= seeds; seed++ {
		CompareZSetRandomSeed(t, ours, theirs, seed, steps)
	}
}

// CompareZSetRandomSeed is one seed's sequence of CompareZSetRandom (see
// CompareCollectionRandomSeed).
func CompareZSetRandomSeed(t *testing.T, ours, theirs string, seed, steps int) {
	compareRandomSeed(t, ours, theirs, rand.NewPCG(uint64(seed), 0x7a736574), randomZSetCommand, seed, steps)
}

var (
	zrKeys    = []string{"a", "b", "c", "z"}
	zrMembers = []string{"m", "n", "o", "p", "", "q1", "q2", "0", "-1", long65}
	zrScores  = []string{"0", "1", "-1", "2.5", "-0", "inf", "-inf", "0.1", "1e17", "5e-324", "1e308", "-1e308", "3", "7",
		"1e400", "nan", "0x10", " 1", "x", "4611686018427387904", "123456789.123"}
	zrBounds = []string{"-inf", "+inf", "0", "(0", "-0", "(-0", "1", "(1", "-1", "2.5", "(2.5", "inf", "(inf", "x", "nan", "1e400", ""}
	zrLex    = []string{"-", "+", "[m", "(m", "[o", "(o", "[", "(", "[q1", "x", "[0"}
	zrInts   = []string{"0", "1", "-1", "2", "3", "-2", "10", "-10", i64Max, i64Min, i64Over, "x"}
)

func randomZSetCommand(r *rand.Rand) []string {
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	k, m, s := pick(zrKeys), pick(zrMembers), pick(zrScores)
	flag := func() []string {
		var out []string
		for _, f := range []string{"NX", "XX", "GT", "LT", "CH"} {
			if r.IntN(5) == 0 {
				out = append(out, f)
			}
		}
		return out
	}
	zadd := append(append([]string{"ZADD", k}, flag()...), s, m)
	if r.IntN(2) == 0 {
		zadd = append(zadd, pick(zrScores), pick(zrMembers))
	}
	// Many adds so that sets grow past 128 members now and then.
	bulk := []string{"ZADD", k}
	for i := range 20 + r.IntN(120) {
		bulk = append(bulk, strconv.Itoa(r.IntN(50)-25), "b"+strconv.Itoa(i+r.IntN(200)))
	}
	lexBulk := []string{"ZADD", "lex"}
	for i := range 10 + r.IntN(60) {
		lexBulk = append(lexBulk, "0", "q"+strconv.Itoa(i+r.IntN(200)))
	}
	cmds := [][]string{
		zadd, zadd, bulk, {"ZADD", k, "INCR", s, m}, {"ZINCRBY", k, s, m}, {"ZREM", k, m, pick(zrMembers)}, {"ZCARD", k},
		{"ZSCORE", k, m}, {"ZMSCORE", k, m, pick(zrMembers)}, {"ZRANK", k, m}, {"ZREVRANK", k, m},
		{"ZCOUNT", k, pick(zrBounds), pick(zrBounds)},
		{"ZRANGE", k, pick(zrInts), pick(zrInts)}, {"ZRANGE", k, pick(zrInts), pick(zrInts), "WITHSCORES"}, {"ZRANGE", k, "0", "-1", "WITHSCORES"},
		{"ZRANGE", k, pick(zrInts), pick(zrInts), "REV", "WITHSCORES"},
		{"ZRANGE", k, pick(zrBounds), pick(zrBounds), "BYSCORE", "WITHSCORES"},
		{"ZRANGE", k, pick(zrBounds), pick(zrBounds), "BYSCORE", "REV", "LIMIT", pick(zrInts), pick(zrInts), "WITHSCORES"},
		{"ZRANGEBYSCORE", k, pick(zrBounds), pick(zrBounds), "LIMIT", pick(zrInts), pick(zrInts)},
		{"ZREVRANGEBYSCORE", k, pick(zrBounds), pick(zrBounds), "WITHSCORES"},
		// Lex ranges only where every score is equal: Redis defines no
		// other case (a skiplist's answer then depends on its random
		// levels).
		{"ZADD", "lex", "0", m, "0", pick(zrMembers)}, lexBulk, {"ZREM", "lex", m}, {"ZLEXCOUNT", "lex", pick(zrLex), pick(zrLex)},
		{"ZRANGEBYLEX", "lex", pick(zrLex), pick(zrLex)}, {"ZREVRANGEBYLEX", "lex", pick(zrLex), pick(zrLex), "LIMIT", pick(zrInts), pick(zrInts)},
		{"ZRANGE", "lex", pick(zrLex), pick(zrLex), "BYLEX", "REV"}, {"ZREMRANGEBYLEX", "lex", pick(zrLex), pick(zrLex)},
		{"ZRANGESTORE", k, "lex", pick(zrLex), pick(zrLex), "BYLEX"}, {"OBJECT", "ENCODING", "lex"},
		{"ZPOPMIN", k}, {"ZPOPMAX", k, pick(zrInts)}, {"ZMPOP", "2", k, pick(zrKeys), pick([]string{"MIN", "MAX"}), "COUNT", pick(zrInts)},
		{"ZREMRANGEBYRANK", k, pick(zrInts), pick(zrInts)}, {"ZREMRANGEBYSCORE", k, pick(zrBounds), pick(zrBounds)},
		{"ZSCAN", k, "0"}, {"ZSCAN", k, "0", "MATCH", pick([]string{"*", "q*", "?", "b1*"})},
		{"ZRANDMEMBER", k}, {"ZRANDMEMBER", k, pick(zrInts)}, {"ZRANDMEMBER", k, pick(zrInts), "WITHSCORES"},
		{"ZUNION", "2", k, pick(zrKeys), "WITHSCORES"}, {"ZINTER", "2", k, pick(zrKeys), "AGGREGATE", pick([]string{"SUM", "MIN", "MAX"}), "WITHSCORES"},
		{"ZDIFF", "2", k, pick(zrKeys), "WITHSCORES"}, {"ZUNIONSTORE", pick(zrKeys), "2", k, pick(zrKeys), "WEIGHTS", pick(zrScores), pick(zrScores)},
		{"ZINTERSTORE", pick(zrKeys), "2", k, pick(zrKeys)}, {"ZDIFFSTORE", pick(zrKeys), "2", k, pick(zrKeys)},
		{"ZINTERCARD", "2", k, pick(zrKeys), "LIMIT", pick(zrInts)}, {"ZRANGESTORE", pick(zrKeys), k, pick(zrInts), pick(zrInts)},
		{"OBJECT", "ENCODING", k}, {"TYPE", k}, {"DEL", k}, {"RENAME", k, pick(zrKeys)}, {"COPY", k, pick(zrKeys), "REPLACE"},
		{"SADD", k, m}, {"SET", k, s}, {"EXPIRE", k, "1000"}, {"DUMP", k}, {"RESTORE", k, "0", redisZSetListpackDump, "REPLACE"},
		{"RESTORE", k, "0", redisZSetSkiplistDump, "REPLACE"}, {"SCAN", "0", "TYPE", "zset"},
	}
	return cmds[r.IntN(len(cmds))]
}
