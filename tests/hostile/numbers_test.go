package hostile_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// extremes are put in every numeric argument position (labels name the subtests).
var extremes = []struct{ label, v string }{
	{"0", "0"}, {"1", "1"}, {"-1", "-1"}, {"-0", "-0"},
	{"2^31-1", "2147483647"}, {"2^31", "2147483648"}, {"2^31+1", "2147483649"},
	{"-2^31+1", "-2147483647"}, {"-2^31", "-2147483648"}, {"-2^31-1", "-2147483649"},
	{"2^63-1", "9223372036854775807"}, {"2^63", "9223372036854775808"},
	{"-2^63", "-9223372036854775808"}, {"-2^63-1", "-9223372036854775809"},
	{"2^64-1", "18446744073709551615"}, {"2^64", "18446744073709551616"}, {"2^64+1", "18446744073709551617"},
	{"-2^64", "-18446744073709551616"},
	{"24-digits", "123456789012345678901234"}, {"-24-digits", "-123456789012345678901234"},
	{"leading-zeros", "000000000000000000000007"},
	{"plus5", "+5"}, {"space5", " 5"}, {"5space", "5 "}, {"hex", "0x10"}, {"1e3", "1e3"}, {"1.5", "1.5"},
	{"inf", "inf"}, {"-inf", "-inf"}, {"nan", "nan"}, {"empty", ""},
	{"2^29-1", "536870911"}, {"2^29", "536870912"},
}

// How a reply is compared with redis-server's.
const (
	cmpExact = iota
	// cmpScan: SCAN's cursors and key order are the server's own; a cursor the
	// gateway never issued is ERR invalid cursor where Redis starts
	// somewhere (a documented difference: services/gateway/README.md, SCAN).
	cmpScan
	// cmpKind: only the kind of reply (error text exactly) is compared, for
	// replies that describe the server (HELLO).
	cmpKind
	// cmpSeconds: a TTL read at a different moment on each server rounds
	// to the nearest second, so a positive TTL may differ by one when the
	// two reads straddle a half-second.
	cmpSeconds
)

// A numTmpl is a command with one numeric position, "%v"; "%k" is the case's key.
type numTmpl struct {
	name string
	// cmd is the command (or container|subcommand) COMMAND INFO must know;
	// the cases of a command the gateway lacks are skipped.
	cmd string
	// init is stored at the key beforehand ("%v" for the case's value); empty
	// leaves the key absent. hinit instead stores a hash whose field "f"
	// holds it.
	init  string
	hinit string
	// sinit instead stores a set holding it.
	sinit string
	// linit instead stores a list of these elements (RPUSH).
	linit []string
	// zinit instead stores a sorted set of these score-member pairs (ZADD).
	zinit   []string
	args    []string
	then    [][]string // compared follow-ups
	cleanup [][]string // sent after, not compared
	cmp     int
}

var (
	ttl      = [][]string{{"TTL", "%k"}}
	expTime  = [][]string{{"PEXPIRETIME", "%k"}}
	getIt    = [][]string{{"GET", "%k"}}
	strlenIt = [][]string{{"STRLEN", "%k"}}
	delIt    = [][]string{{"DEL", "%k"}}
	hgetIt   = [][]string{{"HGET", "%k", "f"}}
	scardIt  = [][]string{{"SCARD", "%k"}}
	lrangeIt = [][]string{{"LRANGE", "%k", "0", "-1"}}
	abaca    = []string{"a", "b", "a", "c", "a"}
	zrangeIt = [][]string{{"ZRANGE", "%k", "0", "-1", "WITHSCORES"}}
	zabc     = []string{"1", "a", "2", "b", "2", "c", "-0.5", "d", "inf", "e"}
	zlex     = []string{"0", "a", "0", "b", "0", "c", "0", "d"}
)

// dumpOfV is redis-server 7.0's DUMP of the string "v".
const dumpOfV = "\x00\x01v\n\x00\x91\x08\xce\xb2\x19\x38\x8a\xce"

func numTemplates() []numTmpl {
	ts := []numTmpl{
		{name: "SET-EX", cmd: "set", args: []string{"SET", "%k", "v", "EX", "%v"}, then: ttl},
		{name: "SET-PX", cmd: "set", args: []string{"SET", "%k", "v", "PX", "%v"}},
		{name: "SET-EXAT", cmd: "set", args: []string{"SET", "%k", "v", "EXAT", "%v"}, then: expTime},
		{name: "SET-PXAT", cmd: "set", args: []string{"SET", "%k", "v", "PXAT", "%v"}, then: expTime},
		{name: "SET-GET-EX", cmd: "set", init: "old", args: []string{"SET", "%k", "v", "GET", "EX", "%v"}, then: getIt},
		{name: "SETEX", cmd: "setex", args: []string{"SETEX", "%k", "%v", "v"}, then: ttl},
		{name: "PSETEX", cmd: "psetex", args: []string{"PSETEX", "%k", "%v", "v"}},
		{name: "GETEX-EX", cmd: "getex", init: "v", args: []string{"GETEX", "%k", "EX", "%v"}, then: ttl},
		{name: "GETEX-PX", cmd: "getex", init: "v", args: []string{"GETEX", "%k", "PX", "%v"}},
		{name: "GETEX-EXAT", cmd: "getex", init: "v", args: []string{"GETEX", "%k", "EXAT", "%v"}, then: expTime},
		{name: "GETEX-PXAT", cmd: "getex", init: "v", args: []string{"GETEX", "%k", "PXAT", "%v"}, then: expTime},
		{name: "GETEX-missing", cmd: "getex", args: []string{"GETEX", "%k", "EX", "%v"}},
		{name: "SETRANGE", cmd: "setrange", init: "hello", args: []string{"SETRANGE", "%k", "%v", "A"}, then: strlenIt, cleanup: delIt},
		{name: "SETRANGE-missing", cmd: "setrange", args: []string{"SETRANGE", "%k", "%v", "A"}, then: strlenIt, cleanup: delIt},
		{name: "SETRANGE-empty", cmd: "setrange", init: "hello", args: []string{"SETRANGE", "%k", "%v", ""}, then: getIt},
		{name: "GETRANGE-start", cmd: "getrange", init: "hello world", args: []string{"GETRANGE", "%k", "%v", "5"}},
		{name: "GETRANGE-end", cmd: "getrange", init: "hello world", args: []string{"GETRANGE", "%k", "0", "%v"}},
		{name: "GETRANGE-both", cmd: "getrange", init: "hello world", args: []string{"GETRANGE", "%k", "%v", "%v"}},
		{name: "SUBSTR-start", cmd: "substr", init: "hello world", args: []string{"SUBSTR", "%k", "%v", "5"}},
		{name: "SUBSTR-end", cmd: "substr", init: "hello world", args: []string{"SUBSTR", "%k", "-3", "%v"}},
		{name: "INCRBY", cmd: "incrby", init: "10", args: []string{"INCRBY", "%k", "%v"}, then: getIt},
		{name: "INCRBY-neg", cmd: "incrby", init: "-10", args: []string{"INCRBY", "%k", "%v"}, then: getIt},
		{name: "DECRBY", cmd: "decrby", init: "10", args: []string{"DECRBY", "%k", "%v"}, then: getIt},
		{name: "DECRBY-neg", cmd: "decrby", init: "-10", args: []string{"DECRBY", "%k", "%v"}, then: getIt},
		{name: "INCRBYFLOAT", cmd: "incrbyfloat", init: "10.5", args: []string{"INCRBYFLOAT", "%k", "%v"}, then: getIt},
		{name: "INCRBYFLOAT-missing", cmd: "incrbyfloat", args: []string{"INCRBYFLOAT", "%k", "%v"}, then: getIt},
		// The number is the stored value.
		{name: "stored-INCR", cmd: "incr", init: "%v", args: []string{"INCR", "%k"}, then: getIt},
		{name: "stored-DECR", cmd: "decr", init: "%v", args: []string{"DECR", "%k"}, then: getIt},
		{name: "stored-INCRBY-max", cmd: "incrby", init: "%v", args: []string{"INCRBY", "%k", "9223372036854775807"}, then: getIt},
		{name: "stored-DECRBY-max", cmd: "decrby", init: "%v", args: []string{"DECRBY", "%k", "9223372036854775807"}, then: getIt},
		{name: "stored-INCRBYFLOAT", cmd: "incrbyfloat", init: "%v", args: []string{"INCRBYFLOAT", "%k", "1.5"}, then: getIt},
		{name: "SCAN-cursor", cmd: "scan", args: []string{"SCAN", "%v", "MATCH", "nosuchprefix:*"}, cmp: cmpScan},
		{name: "SCAN-COUNT", cmd: "scan", args: []string{"SCAN", "0", "MATCH", "nosuchprefix:*", "COUNT", "%v"}, cmp: cmpScan},
		{name: "SELECT", cmd: "select", args: []string{"SELECT", "%v"}, then: getIt},
		{name: "MOVE", cmd: "move", init: "v", args: []string{"MOVE", "%k", "%v"}, then: getIt},
		{name: "COPY-DB", cmd: "copy", init: "v", args: []string{"COPY", "%k", "num:copy-dst", "DB", "%v", "REPLACE"}, then: getIt},
		// The swap is undone after each case (both servers alike).
		{name: "SWAPDB-first", cmd: "swapdb", args: []string{"SWAPDB", "%v", "14"}, cleanup: [][]string{{"SWAPDB", "%v", "14"}}},
		{name: "SWAPDB-second", cmd: "swapdb", args: []string{"SWAPDB", "14", "%v"}, cleanup: [][]string{{"SWAPDB", "14", "%v"}}},
		{name: "HELLO", cmd: "hello", args: []string{"HELLO", "%v"}, cmp: cmpKind},
		{name: "CLIENT-LIST-ID", cmd: "client|list", args: []string{"CLIENT", "LIST", "ID", "%v"}},
		// Bitmaps: a write's offset builds a string of up to 512 MiB, which
		// the follow-up STRLEN reports (see builtString).
		{name: "SETBIT-offset", cmd: "setbit", args: []string{"SETBIT", "%k", "%v", "1"}, then: strlenIt, cleanup: delIt},
		{name: "SETBIT-value", cmd: "setbit", init: "hello", args: []string{"SETBIT", "%k", "3", "%v"}, then: getIt},
		{name: "GETBIT", cmd: "getbit", init: "hello", args: []string{"GETBIT", "%k", "%v"}},
		{name: "BITCOUNT-start", cmd: "bitcount", init: "hello world", args: []string{"BITCOUNT", "%k", "%v", "-1"}},
		{name: "BITCOUNT-end-BIT", cmd: "bitcount", init: "hello world", args: []string{"BITCOUNT", "%k", "0", "%v", "BIT"}},
		{name: "BITPOS-bit", cmd: "bitpos", init: "hello", args: []string{"BITPOS", "%k", "%v"}},
		{name: "BITPOS-start-BIT", cmd: "bitpos", init: "hello", args: []string{"BITPOS", "%k", "0", "%v", "-1", "BIT"}},
		{name: "BITPOS-end", cmd: "bitpos", init: "\xff\xff", args: []string{"BITPOS", "%k", "0", "0", "%v"}},
		{name: "BITFIELD-GET-offset", cmd: "bitfield", init: "hello", args: []string{"BITFIELD", "%k", "GET", "u8", "%v"}},
		{name: "BITFIELD-SET-offset", cmd: "bitfield", args: []string{"BITFIELD", "%k", "SET", "i64", "%v", "1"}, then: strlenIt, cleanup: delIt},
		{name: "BITFIELD-INCRBY-SAT", cmd: "bitfield", init: "hello", args: []string{"BITFIELD", "%k", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "%v"}, then: getIt},
		{name: "BITFIELD-INCRBY-FAIL-u63", cmd: "bitfield", init: "hello", args: []string{"BITFIELD", "%k", "OVERFLOW", "FAIL", "INCRBY", "u63", "1", "%v"}, then: getIt},
		{name: "BITFIELD_RO", cmd: "bitfield_ro", init: "hello", args: []string{"BITFIELD_RO", "%k", "GET", "i16", "%v"}},
		// Introspection. SLOWLOG's entries depend on each server's timing:
		// only the kind of reply (and an error's text) is compared.
		{name: "SLOWLOG-GET", cmd: "slowlog|get", args: []string{"SLOWLOG", "GET", "%v"}, cmp: cmpKind},
		{name: "MEMORY-USAGE-SAMPLES", cmd: "memory|usage", init: "v", args: []string{"MEMORY", "USAGE", "%k", "SAMPLES", "%v"}},
		{name: "MEMORY-USAGE-missing", cmd: "memory|usage", args: []string{"MEMORY", "USAGE", "%k", "SAMPLES", "%v"}},
		{name: "CONFIG-SET-slowlog-max-len", cmd: "config|set", args: []string{"CONFIG", "SET", "slowlog-max-len", "%v"},
			then: [][]string{{"CONFIG", "GET", "slowlog-max-len"}}, cleanup: [][]string{{"CONFIG", "SET", "slowlog-max-len", "128"}}},
		{name: "CONFIG-SET-slowlog-log-slower-than", cmd: "config|set", args: []string{"CONFIG", "SET", "slowlog-log-slower-than", "%v"},
			then: [][]string{{"CONFIG", "GET", "slowlog-log-slower-than"}}, cleanup: [][]string{{"CONFIG", "SET", "slowlog-log-slower-than", "10000"}}},
		{name: "CONFIG-SET-latency-monitor-threshold", cmd: "config|set", args: []string{"CONFIG", "SET", "latency-monitor-threshold", "%v"},
			then: [][]string{{"CONFIG", "GET", "latency-monitor-threshold"}}, cleanup: [][]string{{"CONFIG", "SET", "latency-monitor-threshold", "0"}}},
		// Paused writes only for the moment until the UNPAUSE pipelined
		// behind it (not itself a write).
		{name: "CLIENT-PAUSE", cmd: "client|pause", args: []string{"CLIENT", "PAUSE", "%v", "WRITE"}, cleanup: [][]string{{"CLIENT", "UNPAUSE"}}},
		// TYPE master matches no connection: the ID is parsed, nobody killed.
		{name: "CLIENT-KILL-ID", cmd: "client|kill", args: []string{"CLIENT", "KILL", "ID", "%v", "TYPE", "master"}},
		{name: "LCS-MINMATCHLEN", cmd: "lcs", init: "ohmytext", args: []string{"LCS", "%k", "%k", "IDX", "MINMATCHLEN", "%v", "WITHMATCHLEN"}},
		// RESTORE of redis-server's DUMP of "v": the TTL (relative, whose
		// key may expire within a millisecond, so only the reply is
		// compared; absolute), IDLETIME and FREQ.
		// Hashes: the number as an increment, as the stored field, as
		// HRANDFIELD's count (of a missing key: of an existing one, -2^31
		// would ask both servers for 2^31 replies) and as HSCAN's cursor
		// and COUNT.
		{name: "HINCRBY", cmd: "hincrby", hinit: "10", args: []string{"HINCRBY", "%k", "f", "%v"}, then: hgetIt},
		{name: "HINCRBY-neg", cmd: "hincrby", hinit: "-10", args: []string{"HINCRBY", "%k", "f", "%v"}, then: hgetIt},
		{name: "HINCRBY-missing", cmd: "hincrby", args: []string{"HINCRBY", "%k", "f", "%v"}, then: hgetIt, cleanup: delIt},
		{name: "stored-HINCRBY", cmd: "hincrby", hinit: "%v", args: []string{"HINCRBY", "%k", "f", "1"}, then: hgetIt},
		{name: "stored-HINCRBY-max", cmd: "hincrby", hinit: "%v", args: []string{"HINCRBY", "%k", "f", "9223372036854775807"}, then: hgetIt},
		{name: "stored-HINCRBY-min", cmd: "hincrby", hinit: "%v", args: []string{"HINCRBY", "%k", "f", "-9223372036854775808"}, then: hgetIt},
		{name: "HINCRBYFLOAT", cmd: "hincrbyfloat", hinit: "10.5", args: []string{"HINCRBYFLOAT", "%k", "f", "%v"}, then: hgetIt},
		{name: "HINCRBYFLOAT-missing", cmd: "hincrbyfloat", args: []string{"HINCRBYFLOAT", "%k", "f", "%v"}, then: hgetIt, cleanup: delIt},
		{name: "stored-HINCRBYFLOAT", cmd: "hincrbyfloat", hinit: "%v", args: []string{"HINCRBYFLOAT", "%k", "f", "1.5"}, then: hgetIt},
		{name: "HRANDFIELD-missing", cmd: "hrandfield", args: []string{"HRANDFIELD", "%k", "%v"}},
		{name: "HRANDFIELD-WITHVALUES-missing", cmd: "hrandfield", args: []string{"HRANDFIELD", "%k", "%v", "WITHVALUES"}},
		{name: "HRANDFIELD-WITHVALUES-wrongtype", cmd: "hrandfield", init: "v", args: []string{"HRANDFIELD", "%k", "%v", "WITHVALUES"}},
		{name: "HSCAN-cursor", cmd: "hscan", hinit: "v", args: []string{"HSCAN", "%k", "%v"}},
		{name: "HSCAN-COUNT", cmd: "hscan", hinit: "v", args: []string{"HSCAN", "%k", "0", "COUNT", "%v"}},
		{name: "HSCAN-missing", cmd: "hscan", args: []string{"HSCAN", "%k", "%v", "COUNT", "%v"}},
		// Sets: counts of missing keys and of a one-member set (whose
		// replies do not depend on the random pick), SINTERCARD's numkeys
		// and LIMIT, SSCAN's cursor and COUNT (of an intset, which Redis
		// returns whole whatever the cursor: a hashtable's cursors are the
		// server's own), numbers as members.
		{name: "SPOP-count", cmd: "spop", sinit: "m", args: []string{"SPOP", "%k", "%v"}, then: scardIt},
		{name: "SPOP-missing", cmd: "spop", args: []string{"SPOP", "%k", "%v"}},
		{name: "SRANDMEMBER-missing", cmd: "srandmember", args: []string{"SRANDMEMBER", "%k", "%v"}},
		{name: "SRANDMEMBER-wrongtype", cmd: "srandmember", init: "v", args: []string{"SRANDMEMBER", "%k", "%v"}},
		{name: "SINTERCARD-numkeys", cmd: "sintercard", sinit: "m", args: []string{"SINTERCARD", "%v", "%k"}},
		{name: "SINTERCARD-LIMIT", cmd: "sintercard", sinit: "m", args: []string{"SINTERCARD", "1", "%k", "LIMIT", "%v"}},
		{name: "SSCAN-cursor", cmd: "sscan", sinit: "5", args: []string{"SSCAN", "%k", "%v"}},
		{name: "SSCAN-COUNT", cmd: "sscan", sinit: "5", args: []string{"SSCAN", "%k", "0", "COUNT", "%v"}},
		{name: "SADD-member", cmd: "sadd", args: []string{"SADD", "%k", "%v"}, then: [][]string{{"OBJECT", "ENCODING", "%k"}, {"SMEMBERS", "%k"}}, cleanup: delIt},
		// Lists: pop counts, every index and range bound, LREM's count,
		// LPOS's RANK, COUNT and MAXLEN, LMPOP's numkeys and COUNT, and
		// numbers as elements.
		{name: "LPOP-count", cmd: "lpop", linit: abaca, args: []string{"LPOP", "%k", "%v"}, then: lrangeIt},
		{name: "RPOP-count", cmd: "rpop", linit: abaca, args: []string{"RPOP", "%k", "%v"}, then: lrangeIt},
		{name: "LPOP-missing", cmd: "lpop", args: []string{"LPOP", "%k", "%v"}},
		{name: "LRANGE-start", cmd: "lrange", linit: abaca, args: []string{"LRANGE", "%k", "%v", "-1"}},
		{name: "LRANGE-stop", cmd: "lrange", linit: abaca, args: []string{"LRANGE", "%k", "1", "%v"}},
		{name: "LRANGE-missing", cmd: "lrange", args: []string{"LRANGE", "%k", "%v", "%v"}},
		{name: "LINDEX", cmd: "lindex", linit: abaca, args: []string{"LINDEX", "%k", "%v"}},
		{name: "LINDEX-missing", cmd: "lindex", args: []string{"LINDEX", "%k", "%v"}},
		{name: "LSET", cmd: "lset", linit: abaca, args: []string{"LSET", "%k", "%v", "x"}, then: lrangeIt},
		{name: "LSET-missing", cmd: "lset", args: []string{"LSET", "%k", "%v", "x"}},
		{name: "LREM-count", cmd: "lrem", linit: abaca, args: []string{"LREM", "%k", "%v", "a"}, then: lrangeIt},
		{name: "LTRIM-start", cmd: "ltrim", linit: abaca, args: []string{"LTRIM", "%k", "%v", "-2"}, then: lrangeIt},
		{name: "LTRIM-stop", cmd: "ltrim", linit: abaca, args: []string{"LTRIM", "%k", "1", "%v"}, then: lrangeIt},
		{name: "LPOS-RANK", cmd: "lpos", linit: abaca, args: []string{"LPOS", "%k", "a", "RANK", "%v"}},
		{name: "LPOS-RANK-COUNT", cmd: "lpos", linit: abaca, args: []string{"LPOS", "%k", "a", "RANK", "%v", "COUNT", "0"}},
		{name: "LPOS-COUNT", cmd: "lpos", linit: abaca, args: []string{"LPOS", "%k", "a", "COUNT", "%v"}},
		{name: "LPOS-MAXLEN", cmd: "lpos", linit: abaca, args: []string{"LPOS", "%k", "a", "MAXLEN", "%v", "COUNT", "0", "RANK", "-1"}},
		{name: "LMPOP-numkeys", cmd: "lmpop", linit: abaca, args: []string{"LMPOP", "%v", "%k", "LEFT"}, then: lrangeIt},
		{name: "LMPOP-COUNT", cmd: "lmpop", linit: abaca, args: []string{"LMPOP", "1", "%k", "RIGHT", "COUNT", "%v"}, then: lrangeIt},
		{name: "RPUSH-element", cmd: "rpush", args: []string{"RPUSH", "%k", "%v"}, then: [][]string{{"LPOS", "%k", "%v"}, {"LRANGE", "%k", "0", "-1"}}, cleanup: delIt},
		// Sorted sets: the number as a score (added, incremented, stored
		// and read back), as every range bound (rank, score), offset and
		// limit, pop count, numkeys, weight, cursor and COUNT, and as
		// ZRANDMEMBER's count (of a missing key, as HRANDFIELD's).
		{name: "ZADD-score", cmd: "zadd", args: []string{"ZADD", "%k", "%v", "m"}, then: zrangeIt, cleanup: delIt},
		{name: "ZADD-score-skiplist", cmd: "zadd", zinit: []string{"1", strings.Repeat("x", 65)}, args: []string{"ZADD", "%k", "%v", "m"}, then: zrangeIt},
		{name: "ZADD-INCR", cmd: "zadd", zinit: zabc, args: []string{"ZADD", "%k", "INCR", "%v", "b"}, then: zrangeIt},
		{name: "ZADD-GT-CH", cmd: "zadd", zinit: zabc, args: []string{"ZADD", "%k", "GT", "CH", "%v", "b", "%v", "new"}, then: zrangeIt},
		{name: "ZADD-member", cmd: "zadd", args: []string{"ZADD", "%k", "1", "%v"}, then: [][]string{{"ZRANGE", "%k", "0", "-1", "WITHSCORES"}, {"ZSCORE", "%k", "%v"}, {"ZRANK", "%k", "%v"}}, cleanup: delIt},
		{name: "ZINCRBY", cmd: "zincrby", zinit: zabc, args: []string{"ZINCRBY", "%k", "%v", "a"}, then: zrangeIt},
		{name: "ZINCRBY-missing", cmd: "zincrby", args: []string{"ZINCRBY", "%k", "%v", "a"}, then: zrangeIt, cleanup: delIt},
		{name: "ZRANGE-start", cmd: "zrange", zinit: zabc, args: []string{"ZRANGE", "%k", "%v", "-1", "WITHSCORES"}},
		{name: "ZRANGE-stop", cmd: "zrange", zinit: zabc, args: []string{"ZRANGE", "%k", "1", "%v", "REV"}},
		{name: "ZRANGE-BYSCORE-min", cmd: "zrange", zinit: zabc, args: []string{"ZRANGE", "%k", "%v", "+inf", "BYSCORE", "WITHSCORES"}},
		{name: "ZRANGE-BYSCORE-max", cmd: "zrange", zinit: zabc, args: []string{"ZRANGE", "%k", "%v", "-inf", "BYSCORE", "REV"}},
		{name: "ZRANGE-BYSCORE-excl", cmd: "zrange", zinit: zabc, args: []string{"ZRANGE", "%k", "(%v", "+inf", "BYSCORE"}},
		{name: "ZRANGE-LIMIT-offset", cmd: "zrange", zinit: zabc, args: []string{"ZRANGE", "%k", "-inf", "+inf", "BYSCORE", "LIMIT", "%v", "2"}},
		{name: "ZRANGE-LIMIT-count", cmd: "zrange", zinit: zabc, args: []string{"ZRANGE", "%k", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "%v"}},
		{name: "ZRANGE-BYLEX-LIMIT", cmd: "zrange", zinit: zlex, args: []string{"ZRANGE", "%k", "-", "+", "BYLEX", "LIMIT", "%v", "%v"}},
		{name: "ZREVRANGE", cmd: "zrevrange", zinit: zabc, args: []string{"ZREVRANGE", "%k", "%v", "%v", "WITHSCORES"}},
		{name: "ZRANGEBYSCORE", cmd: "zrangebyscore", zinit: zabc, args: []string{"ZRANGEBYSCORE", "%k", "%v", "%v", "WITHSCORES"}},
		{name: "ZRANGEBYSCORE-LIMIT", cmd: "zrangebyscore", zinit: zabc, args: []string{"ZRANGEBYSCORE", "%k", "-inf", "inf", "LIMIT", "0", "%v"}},
		{name: "ZREVRANGEBYSCORE", cmd: "zrevrangebyscore", zinit: zabc, args: []string{"ZREVRANGEBYSCORE", "%k", "%v", "-inf", "LIMIT", "%v", "1"}},
		{name: "ZRANGEBYLEX-LIMIT", cmd: "zrangebylex", zinit: zlex, args: []string{"ZRANGEBYLEX", "%k", "-", "+", "LIMIT", "%v", "2"}},
		{name: "ZREVRANGEBYLEX-LIMIT", cmd: "zrevrangebylex", zinit: zlex, args: []string{"ZREVRANGEBYLEX", "%k", "+", "-", "LIMIT", "1", "%v"}},
		{name: "ZCOUNT", cmd: "zcount", zinit: zabc, args: []string{"ZCOUNT", "%k", "%v", "+inf"}},
		{name: "ZPOPMIN-count", cmd: "zpopmin", zinit: zabc, args: []string{"ZPOPMIN", "%k", "%v"}, then: zrangeIt},
		{name: "ZPOPMAX-count", cmd: "zpopmax", zinit: zabc, args: []string{"ZPOPMAX", "%k", "%v"}, then: zrangeIt},
		{name: "ZMPOP-numkeys", cmd: "zmpop", zinit: zabc, args: []string{"ZMPOP", "%v", "%k", "MIN"}, then: zrangeIt},
		{name: "ZMPOP-COUNT", cmd: "zmpop", zinit: zabc, args: []string{"ZMPOP", "1", "%k", "MAX", "COUNT", "%v"}, then: zrangeIt},
		// The blocking pops on a non-empty key pop at once, whatever timeout
		// is accepted.
		{name: "BLPOP-timeout", cmd: "blpop", linit: abaca, args: []string{"BLPOP", "%k", "%v"}, then: lrangeIt},
		{name: "BRPOP-timeout", cmd: "brpop", linit: abaca, args: []string{"BRPOP", "%k", "%v"}, then: lrangeIt},
		{name: "BLMOVE-timeout", cmd: "blmove", linit: abaca, args: []string{"BLMOVE", "%k", "%k", "LEFT", "RIGHT", "%v"}, then: lrangeIt},
		{name: "BRPOPLPUSH-timeout", cmd: "brpoplpush", linit: abaca, args: []string{"BRPOPLPUSH", "%k", "%k", "%v"}, then: lrangeIt},
		{name: "BLMPOP-timeout", cmd: "blmpop", linit: abaca, args: []string{"BLMPOP", "%v", "1", "%k", "LEFT"}, then: lrangeIt},
		{name: "BLMPOP-numkeys", cmd: "blmpop", linit: abaca, args: []string{"BLMPOP", "0", "%v", "%k", "LEFT"}, then: lrangeIt},
		{name: "BLMPOP-COUNT", cmd: "blmpop", linit: abaca, args: []string{"BLMPOP", "0", "1", "%k", "RIGHT", "COUNT", "%v"}, then: lrangeIt},
		{name: "BZPOPMIN-timeout", cmd: "bzpopmin", zinit: zabc, args: []string{"BZPOPMIN", "%k", "%v"}, then: zrangeIt},
		{name: "BZPOPMAX-timeout", cmd: "bzpopmax", zinit: zabc, args: []string{"BZPOPMAX", "%k", "%v"}, then: zrangeIt},
		{name: "BZMPOP-timeout", cmd: "bzmpop", zinit: zabc, args: []string{"BZMPOP", "%v", "1", "%k", "MIN"}, then: zrangeIt},
		{name: "BZMPOP-numkeys", cmd: "bzmpop", zinit: zabc, args: []string{"BZMPOP", "0", "%v", "%k", "MIN"}, then: zrangeIt},
		{name: "BZMPOP-COUNT", cmd: "bzmpop", zinit: zabc, args: []string{"BZMPOP", "0", "1", "%k", "MAX", "COUNT", "%v"}, then: zrangeIt},
		{name: "ZREMRANGEBYRANK", cmd: "zremrangebyrank", zinit: zabc, args: []string{"ZREMRANGEBYRANK", "%k", "%v", "%v"}, then: zrangeIt},
		{name: "ZREMRANGEBYSCORE", cmd: "zremrangebyscore", zinit: zabc, args: []string{"ZREMRANGEBYSCORE", "%k", "%v", "2"}, then: zrangeIt},
		{name: "ZRANDMEMBER-missing", cmd: "zrandmember", args: []string{"ZRANDMEMBER", "%k", "%v"}},
		{name: "ZRANDMEMBER-WITHSCORES-missing", cmd: "zrandmember", args: []string{"ZRANDMEMBER", "%k", "%v", "WITHSCORES"}},
		{name: "ZRANDMEMBER-wrongtype", cmd: "zrandmember", init: "v", args: []string{"ZRANDMEMBER", "%k", "%v", "WITHSCORES"}},
		{name: "ZSCAN-cursor", cmd: "zscan", zinit: zabc, args: []string{"ZSCAN", "%k", "%v"}},
		{name: "ZSCAN-COUNT", cmd: "zscan", zinit: zabc, args: []string{"ZSCAN", "%k", "0", "COUNT", "%v"}},
		{name: "ZUNION-numkeys", cmd: "zunion", zinit: zabc, args: []string{"ZUNION", "%v", "%k", "%k", "WITHSCORES"}},
		{name: "ZUNION-WEIGHTS", cmd: "zunion", zinit: zabc, args: []string{"ZUNION", "2", "%k", "%k", "WEIGHTS", "%v", "1", "WITHSCORES"}},
		{name: "ZINTER-WEIGHTS", cmd: "zinter", zinit: zabc, args: []string{"ZINTER", "2", "%k", "%k", "WEIGHTS", "%v", "%v", "AGGREGATE", "MIN", "WITHSCORES"}},
		{name: "ZDIFF-numkeys", cmd: "zdiff", zinit: zabc, args: []string{"ZDIFF", "%v", "%k", "WITHSCORES"}},
		{name: "ZUNIONSTORE", cmd: "zunionstore", zinit: zabc, args: []string{"ZUNIONSTORE", "%k", "1", "%k", "WEIGHTS", "%v"}, then: zrangeIt},
		{name: "ZINTERSTORE-numkeys", cmd: "zinterstore", zinit: zabc, args: []string{"ZINTERSTORE", "%k", "%v", "%k"}, then: zrangeIt},
		{name: "ZDIFFSTORE-numkeys", cmd: "zdiffstore", zinit: zabc, args: []string{"ZDIFFSTORE", "%k", "%v", "%k", "nokey"}, then: zrangeIt},
		{name: "ZINTERCARD-numkeys", cmd: "zintercard", zinit: zabc, args: []string{"ZINTERCARD", "%v", "%k"}},
		{name: "ZINTERCARD-LIMIT", cmd: "zintercard", zinit: zabc, args: []string{"ZINTERCARD", "1", "%k", "LIMIT", "%v"}},
		{name: "ZRANGESTORE", cmd: "zrangestore", zinit: zabc, args: []string{"ZRANGESTORE", "%k", "%k", "%v", "-1"}, then: zrangeIt},
		{name: "ZRANGESTORE-BYSCORE-LIMIT", cmd: "zrangestore", zinit: zabc, args: []string{"ZRANGESTORE", "%k", "%k", "%v", "inf", "BYSCORE", "LIMIT", "0", "%v"}, then: zrangeIt},
		{name: "RESTORE-ttl", cmd: "restore", args: []string{"RESTORE", "%k", "%v", dumpOfV}, cleanup: delIt},
		{name: "RESTORE-ABSTTL", cmd: "restore", args: []string{"RESTORE", "%k", "%v", dumpOfV, "ABSTTL"}, then: expTime, cleanup: delIt},
		{name: "RESTORE-REPLACE-ABSTTL", cmd: "restore", init: "old", args: []string{"RESTORE", "%k", "%v", dumpOfV, "REPLACE", "ABSTTL"}, then: getIt},
		{name: "RESTORE-busy-ttl", cmd: "restore", init: "old", args: []string{"RESTORE", "%k", "%v", dumpOfV}},
		{name: "RESTORE-IDLETIME", cmd: "restore", args: []string{"RESTORE", "%k", "0", dumpOfV, "IDLETIME", "%v"}, then: getIt, cleanup: delIt},
		{name: "RESTORE-FREQ", cmd: "restore", args: []string{"RESTORE", "%k", "0", dumpOfV, "FREQ", "%v"}, then: getIt, cleanup: delIt},
	}
	for _, c := range []string{"EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"} {
		var then [][]string
		switch c {
		case "EXPIRE":
			then = ttl
		case "EXPIREAT", "PEXPIREAT":
			then = expTime
		}
		for _, opt := range []string{"", "NX", "XX", "GT", "LT"} {
			tm := numTmpl{name: c, cmd: strings.ToLower(c), init: "v", args: []string{c, "%k", "%v"}, then: then}
			if opt != "" {
				tm.name += "-" + opt
				tm.args = append(tm.args, opt)
			}
			ts = append(ts, tm)
		}
		// A key with an expiry already, for GT and LT to compare with.
		ts = append(ts, numTmpl{name: c + "-GT-volatile", cmd: strings.ToLower(c), init: "v", args: []string{c, "%k", "%v", "GT"}, then: then})
	}
	return ts
}

// noNumbers are the commands with no numeric argument. Every command the
// gateway implements is either here or has a template above, so a command
// added later is not forgotten.
var noNumbers = []string{
	"get", "setnx", "getset", "getdel", "append", "strlen", "mget", "mset", "msetnx", "incr", "decr",
	"del", "unlink", "exists", "touch", "type", "ttl", "pttl", "expiretime", "pexpiretime", "persist",
	"rename", "renamenx", "keys", "dbsize", "flushdb", "flushall", "randomkey",
	"ping", "echo", "quit", "auth", "command", "config", "info", "time", "bitop",
	"multi", "exec", "discard", "watch", "unwatch", "object", "dump", "latency", "monitor", "shutdown",
	"hset", "hsetnx", "hmset", "hget", "hmget", "hgetall", "hkeys", "hvals", "hdel", "hlen", "hstrlen", "hexists",
	"srem", "smembers", "sismember", "smismember", "scard", "smove", "sinter", "sunion", "sdiff",
	"sinterstore", "sunionstore", "sdiffstore",
	"lpush", "lpushx", "rpushx", "llen", "linsert", "lmove", "rpoplpush",
	"zrem", "zcard", "zscore", "zmscore", "zlexcount", "zrank", "zrevrank", "zremrangebylex",
}

func fill(args []string, key, v string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		switch a {
		case "%k":
			out[i] = key
		case "%v":
			out[i] = v
		default:
			out[i] = strings.ReplaceAll(a, "%v", v) // "(%v": an exclusive bound
		}
	}
	return out
}

func testNumbers(t *testing.T, tg *target, redisAddr string) {
	templates := numTemplates()
	// Every implemented command is classified.
	list := mustDo(t, tg.addr, "COMMAND", "LIST")
	covered := map[string]bool{}
	for _, n := range noNumbers {
		covered[n] = true
	}
	for _, tm := range templates {
		covered[strings.Split(tm.cmd, "|")[0]] = true
	}
	for _, line := range strings.Split(list, "\r\n") {
		if line == "" || line[0] == '*' || line[0] == '$' {
			continue
		}
		if !covered[strings.ToLower(line)] {
			t.Errorf("nokv-redis implements %q, which tests/hostile neither gives extreme numbers (numTemplates) nor lists in noNumbers", line)
		}
	}

	implemented := map[string]bool{}
	for _, tm := range templates {
		if _, ok := implemented[tm.cmd]; !ok {
			r := mustDo(t, tg.addr, "COMMAND", "INFO", tm.cmd)
			implemented[tm.cmd] = r != "*1\r\n*-1\r\n" && r != "*1\r\n$-1\r\n"
		}
	}
	for _, tm := range templates {
		t.Run(tm.name, func(t *testing.T) {
			if !implemented[tm.cmd] {
				t.Skipf("nokv-redis does not implement %s", tm.cmd)
			}
			key := func(label string) string { return fmt.Sprintf("num:%s:%s", tm.name, label) }
			if tm.hinit != "" || tm.sinit != "" || tm.linit != nil || tm.zinit != nil {
				for _, x := range extremes {
					s := []string{"HSET", key(x.label), "f", strings.ReplaceAll(tm.hinit, "%v", x.v)}
					if tm.sinit != "" {
						s = []string{"SADD", key(x.label), strings.ReplaceAll(tm.sinit, "%v", x.v)}
					}
					if tm.linit != nil {
						s = append([]string{"RPUSH", key(x.label)}, tm.linit...)
					}
					if tm.zinit != nil {
						s = append([]string{"ZADD", key(x.label)}, tm.zinit...)
					}
					if r := mustDo(t, tg.addr, s...); r[0] == '-' {
						t.Fatalf("setup %s: %q", shortArgs(s), r)
					}
					if redisAddr != "" {
						mustDo(t, redisAddr, s...)
					}
				}
			}
			if tm.init != "" {
				mset := []string{"MSET"}
				for _, x := range extremes {
					mset = append(mset, key(x.label), strings.ReplaceAll(tm.init, "%v", x.v))
				}
				var setup [][]string
				setup = append(setup, mset)
				if strings.HasSuffix(tm.name, "-volatile") {
					for _, x := range extremes {
						setup = append(setup, []string{"PEXPIREAT", key(x.label), "4102444800000"})
					}
				}
				for _, s := range setup {
					if r := mustDo(t, tg.addr, s...); r[0] == '-' {
						t.Fatalf("setup %s: %q", shortArgs(s), r)
					}
					if redisAddr != "" {
						mustDo(t, redisAddr, s...)
					}
				}
			}
			for _, x := range extremes {
				t.Run(x.label, func(t *testing.T) {
					skipKnown(t)
					k := key(x.label)
					cmds := [][]string{fill(tm.args, k, x.v)}
					for _, c := range tm.then {
						cmds = append(cmds, fill(c, k, x.v))
					}
					compared := len(cmds)
					for _, c := range tm.cleanup {
						cmds = append(cmds, fill(c, k, x.v))
					}
					timeout := tg.timeout
					switch tm.cmd {
					case "setrange", "setbit", "bitfield":
						// Far offsets build and fsync up to 512 MiB, as
						// Redis allows: seconds of disk on a loaded machine.
						timeout = tg.slow
					}
					ours := tg.exchange(t, timeout, cmds...)
					tg.checkBuilt(t, shortArgs(cmds[0]), builtString(tm.cmd, ours))
					if redisAddr == "" || len(ours) < compared {
						return
					}
					theirs, err := exchangeWith(redisAddr, cmds)
					if err != nil {
						t.Fatalf("redis-server: %v", err)
					}
					if documentedRefusal(tg.backend, ours[0]) {
						// The raft backend's caps (services/gateway/README.md):
						// nothing was written, so the follow-ups differ too.
						t.Logf("%s (%s backend) refused: %s", shortArgs(cmds[0]), tg.backend, short(ours[0]))
						return
					}
					for i := range compared {
						mode := tm.cmp
						if i > 0 && strings.EqualFold(cmds[i][0], "TTL") {
							mode = cmpSeconds
						}
						if !sameReply(mode, ours[i], theirs[i]) {
							t.Errorf("%s (%s backend):\n nokv:  %s\n redis: %s", shortArgs(cmds[i]), tg.backend, short(ours[i]), short(theirs[i]))
						}
					}
				})
			}
		})
	}
}

// exchangeWith sends cmds pipelined on a fresh connection to addr and reads
// their replies.
func exchangeWith(addr string, cmds [][]string) ([]string, error) {
	c, err := dial(addr, pingTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var req []byte
	for _, args := range cmds {
		req = append(req, encode(args...)...)
	}
	if err := c.send(req, pingTimeout); err != nil {
		return nil, err
	}
	var replies []string
	for range cmds {
		r, err := c.read(30e9)
		if err != nil {
			return replies, err
		}
		replies = append(replies, r)
	}
	return replies, nil
}

func sameReply(mode int, ours, theirs string) bool {
	if ours == theirs {
		return true
	}
	isErr := func(s string) bool { return strings.HasPrefix(s, "-") }
	switch mode {
	case cmpScan:
		if strings.HasPrefix(theirs, "*2\r\n") {
			return strings.HasPrefix(ours, "*2\r\n") || ours == "-ERR invalid cursor\r\n"
		}
	case cmpKind:
		return !isErr(ours) && !isErr(theirs) && ours[0] == theirs[0]
	case cmpSeconds:
		a, errA := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(ours, ":")), 10, 64)
		b, errB := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(theirs, ":")), 10, 64)
		return ours[0] == ':' && theirs[0] == ':' && errA == nil && errB == nil && a > 0 && b > 0 && (a-b <= 1 && b-a <= 1)
	}
	return false
}

// builtString is the size of the string a SETRANGE built (its reply), or a
// SETBIT or BITFIELD (the STRLEN after it), when that is over 32 MiB: a
// legitimate request (Redis allows up to proto-max-bulk-len) whose memory
// the check allows for. 0 for anything else.
func builtString(cmd string, replies []string) int64 {
	i := 0
	switch cmd {
	case "setrange":
	case "setbit", "bitfield":
		i = 1
	default:
		return 0
	}
	if len(replies) <= i || !strings.HasPrefix(replies[i], ":") {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(replies[i][1:]), 10, 64)
	if err != nil || n <= 32<<20 {
		return 0
	}
	return n
}
