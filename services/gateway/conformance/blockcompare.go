package conformance

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// A blockStep is sent on connection conn; send does not wait for the reply
// (the command blocks), read takes the reply of an earlier send.
type blockStep struct {
	conn       int
	args       []string
	send, read bool
	// swap marks the SWAPDB case's steps.
	swap bool
}

func bdo(conn int, args ...string) blockStep   { return blockStep{conn: conn, args: args} }
func bsend(conn int, args ...string) blockStep { return blockStep{conn: conn, args: args, send: true} }
func bread(conn int) blockStep                 { return blockStep{conn: conn, read: true} }

// timeoutArgs are timeouts at and past every edge Redis 7.0 has: the
// long double parse, the multiplication by 1000, the cast to long long
// (LLONG_MIN past its range: "negative"), truncation to 0 (forever).
var timeoutArgs = []string{
	"0", "-0", "0.0", "-1", "-0.001", "-0.0009", "-0.0001", "0.0001", "1e-400", "abc", "", " 1", "1 ",
	"inf", "-inf", "+inf", "nan", "1e308", "1e4933", "1e5000", "0x10", "1e15", "1e16", "9.3e15", "1.8e15",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551616",
	"9223372036854775.807", "9223372036854775.806", "9223372036854775.808", "9223372036854.775807",
	"9223372036854775.8071", "9223372036854775.8072", "9223372036854775807.4e-3",
	"99999999999999999999999999999999999999",
}

// shortTimeouts are timeouts Redis rounds up to 1 ms, or to 0 (forever):
// tried on an empty list, the first return a null array at once.
var shortTimeouts = []string{"0.0001", "0.0006", "0.0009", "1e-400", "0.001", "0.0015", "-0.0015", "-0.0011"}

func blockingSteps() []blockStep {
	var s []blockStep
	// Every timeout against a list holding elements: accepted ones pop at
	// once, refused ones fail; the same for BLMOVE's and BLMPOP's.
	for _, t := range timeoutArgs {
		s = append(s, bdo(0, "DEL", "full", "dst"), bdo(0, "RPUSH", "full", "a", "b"),
			bdo(0, "BLPOP", "full", t), bdo(0, "BRPOP", "full", t),
			bdo(0, "RPUSH", "full", "c"), bdo(0, "BLMOVE", "full", "dst", "LEFT", "RIGHT", t),
			bdo(0, "RPUSH", "full", "d"), bdo(0, "BRPOPLPUSH", "full", "dst", t),
			bdo(0, "RPUSH", "full", "e"), bdo(0, "BLMPOP", t, "1", "full", "LEFT", "COUNT", "5"))
	}
	s = append(s, bdo(0, "DEL", "full", "dst"))
	for _, t := range shortTimeouts {
		s = append(s, bdo(0, "BLPOP", "empty", t), bdo(0, "BLMPOP", t, "1", "empty", "LEFT"),
			bdo(0, "BLMOVE", "empty", "d", "LEFT", "LEFT", t))
	}
	// Timeouts: a null array for every command, RESP2 and RESP3.
	s = append(s,
		bdo(0, "BLPOP", "e1", "e2", "0.01"), bdo(0, "BRPOP", "e1", "0.01"),
		bdo(0, "BLMOVE", "e1", "e2", "LEFT", "RIGHT", "0.01"), bdo(0, "BRPOPLPUSH", "e1", "e2", "0.01"),
		bdo(0, "BLMPOP", "0.01", "2", "e1", "e2", "RIGHT", "COUNT", "3"), bdo(0, "EXISTS", "e1", "e2"),
		bdo(0, "HELLO", "3"),
		bdo(0, "BLPOP", "e1", "e2", "0.01"), bdo(0, "BLMOVE", "e1", "e2", "LEFT", "RIGHT", "0.01"),
		bdo(0, "BLMPOP", "0.01", "1", "e1", "LEFT"),
		bdo(0, "RPUSH", "l", "x", "y"), bdo(0, "BLPOP", "l", "0"), bdo(0, "BLMPOP", "0", "1", "l", "RIGHT", "COUNT", "9"),
		bdo(0, "HELLO", "2"),
	)
	// BLMPOP's numkeys and COUNT at their extremes, and its other errors
	// (checked before the timeout, as in Redis 7.0).
	for _, n := range []string{"0", "-1", "1", "2", "3", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "18446744073709551616", "x", "1.5"} {
		s = append(s, bdo(0, "RPUSH", "m", "a", "b", "c"),
			bdo(0, "BLMPOP", "0", n, "m", "LEFT"), bdo(0, "BLMPOP", "0", "1", "m", "LEFT", "COUNT", n),
			bdo(0, "BLMPOP", "x", n, "m", "LEFT"), bdo(0, "BLMPOP", "-1", "1", "m", "LEFT", "COUNT", n), bdo(0, "DEL", "m"))
	}
	s = append(s,
		bdo(0, "BLMPOP", "0", "1", "m", "MIDDLE"), bdo(0, "BLMPOP", "0", "2", "m", "LEFT"),
		bdo(0, "BLMPOP", "0", "1", "m", "LEFT", "COUNT", "1", "COUNT", "2"), bdo(0, "BLMPOP", "0", "1", "m", "LEFT", "COUNT"),
		bdo(0, "BLMPOP", "x", "1", "m", "MIDDLE"), bdo(0, "BLMPOP", "inf", "1", "m", "LEFT", "COUNT", "2"),
		bdo(0, "BLMPOP", "0", "1", "m"), bdo(0, "BLMPOP", "0", "1"), bdo(0, "BLPOP", "k"), bdo(0, "BLPOP"),
		bdo(0, "BLMOVE", "a", "b", "UP", "DOWN", "x"), bdo(0, "BLMOVE", "a", "b", "LEFT", "DOWN", "x"),
		bdo(0, "BLMOVE", "a", "b", "LEFT", "LEFT", "x"), bdo(0, "BLMOVE", "a", "b", "LEFT", "LEFT"),
		bdo(0, "BRPOPLPUSH", "a", "b"), bdo(0, "BRPOPLPUSH", "a", "b", "x"),
	)
	// Wrong types: the first key in order decides, before a later list.
	s = append(s,
		bdo(0, "SET", "s", "v"), bdo(0, "RPUSH", "l", "a", "b"),
		bdo(0, "BLPOP", "s", "0"), bdo(0, "BLPOP", "s", "-1"), bdo(0, "BLPOP", "nolist", "s", "l", "0"),
		bdo(0, "BLPOP", "l", "s", "0"), bdo(0, "BLMPOP", "0", "2", "nolist", "s", "LEFT"),
		bdo(0, "BLMOVE", "s", "d", "LEFT", "LEFT", "0"), bdo(0, "BLMOVE", "l", "s", "LEFT", "LEFT", "0"),
		bdo(0, "LLEN", "l"), bdo(0, "BRPOPLPUSH", "l", "l", "0"), bdo(0, "LRANGE", "l", "0", "-1"),
		bdo(0, "BLPOP", "l", "l", "0"), bdo(0, "EXISTS", "l"), bdo(0, "DEL", "s"),
	)
	// Inside MULTI nothing blocks: a null array (BLMOVE and BRPOPLPUSH: a
	// null bulk), or what the command pops.
	s = append(s,
		bdo(0, "MULTI"), bdo(0, "BLPOP", "e", "0"), bdo(0, "BRPOP", "e", "0"), bdo(0, "BLMOVE", "e", "d", "LEFT", "RIGHT", "0"),
		bdo(0, "BRPOPLPUSH", "e", "d", "0"), bdo(0, "BLMPOP", "0", "1", "e", "LEFT"), bdo(0, "BLPOP", "e", "-1"),
		bdo(0, "BLMPOP", "0", "1", "e", "LEFT", "COUNT", "0"), bdo(0, "RPUSH", "e", "x", "y", "z"), bdo(0, "BLPOP", "e", "0"),
		bdo(0, "BLMOVE", "e", "d", "LEFT", "RIGHT", "0"), bdo(0, "BLMPOP", "0", "1", "e", "LEFT", "COUNT", "5"),
		bdo(0, "BLPOP", "e", "0"), bdo(0, "EXEC"), bdo(0, "LRANGE", "d", "0", "-1"),
		bdo(0, "HELLO", "3"), bdo(0, "MULTI"), bdo(0, "BLPOP", "e", "0"), bdo(0, "BLMOVE", "e", "d", "LEFT", "RIGHT", "0"),
		bdo(0, "EXEC"), bdo(0, "HELLO", "2"), bdo(0, "DEL", "d"),
	)
	// Served by another client's push: FIFO across waiters, one element
	// each, the rest still waiting.
	s = append(s,
		bsend(0, "BLPOP", "q", "0"), bsend(1, "BRPOP", "q", "0"), bsend(2, "BLMPOP", "0", "1", "q", "LEFT", "COUNT", "5"),
		bdo(3, "RPUSH", "q", "a", "b"), bread(0), bread(1), bdo(3, "LPUSH", "q", "c", "d", "e"), bread(2),
		bdo(3, "EXISTS", "q"),
	)
	// Several keys: the waiter is served from the key that became ready
	// first (EXEC pushes b before a).
	s = append(s,
		bsend(0, "BLPOP", "a", "b", "0"),
		bdo(3, "MULTI"), bdo(3, "RPUSH", "b", "x"), bdo(3, "RPUSH", "a", "y"), bdo(3, "EXEC"), bread(0),
		bdo(3, "LRANGE", "a", "0", "-1"), bdo(3, "DEL", "a", "b"),
	)
	// BLMOVE into another list; its push wakes a waiter of the destination.
	s = append(s,
		bsend(0, "BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"), bsend(1, "BLPOP", "dst", "0"),
		bdo(3, "RPUSH", "src", "1", "2"), bread(0), bread(1), bdo(3, "LRANGE", "src", "0", "-1"), bdo(3, "EXISTS", "dst"),
		bdo(3, "DEL", "src"),
	)
	// A destination of the wrong type when served: WRONGTYPE, the element
	// stays. A source that is not a list meanwhile keeps the client blocked.
	s = append(s,
		bsend(0, "BLMOVE", "src", "dst", "LEFT", "LEFT", "0"), bdo(3, "SET", "dst", "x"), bdo(3, "RPUSH", "src", "a"),
		bread(0), bdo(3, "LRANGE", "src", "0", "-1"), bdo(3, "DEL", "src", "dst"),
		bsend(0, "BLPOP", "k", "0"), bdo(3, "SET", "k", "x"), bdo(3, "DEL", "k"), bdo(3, "RPUSH", "k", "a"), bread(0),
	)
	// Pushes by other commands: RPOPLPUSH, LMOVE, RESTORE, RENAME, COPY,
	// MOVE (from database 1).
	s = append(s,
		bdo(3, "RPUSH", "p", "1", "2", "3"),
		bsend(0, "BLPOP", "w", "0"), bdo(3, "RPOPLPUSH", "p", "w"), bread(0),
		bsend(0, "BLPOP", "w", "0"), bdo(3, "LMOVE", "p", "w", "LEFT", "LEFT"), bread(0),
		bsend(0, "BLPOP", "w", "0"), bdo(3, "RENAME", "p", "w"), bread(0),
		bdo(3, "RPUSH", "w", "c", "d"), bsend(0, "BLPOP", "w2", "0"), bdo(3, "COPY", "w", "w2"), bread(0),
		bdo(3, "SELECT", "1"), bdo(3, "RPUSH", "mv", "m"), bsend(0, "BLPOP", "mv", "0"), bdo(3, "MOVE", "mv", "0"),
		bread(0), bdo(3, "SELECT", "0"),
	)
	swap := []blockStep{bdo(3, "SELECT", "1"), bdo(3, "RPUSH", "sw", "s"), bsend(0, "BLPOP", "sw", "0"),
		bdo(3, "SWAPDB", "0", "1"), bread(0), bdo(3, "SWAPDB", "0", "1"), bdo(3, "SELECT", "0")}
	for _, st := range swap {
		st.swap = true
		s = append(s, st)
	}
	s = append(s,
		bdo(3, "DEL", "w", "w2"),
	)
	// CLIENT REPLY OFF and SKIP drop the reply of a command served later.
	s = append(s,
		bsend(0, "CLIENT", "REPLY", "OFF"), bsend(0, "BLPOP", "r", "0"), bdo(3, "RPUSH", "r", "x", "y"),
		bdo(0, "CLIENT", "REPLY", "ON"), bsend(0, "CLIENT", "REPLY", "SKIP"), bsend(0, "BLPOP", "r", "r2", "0"),
		bdo(3, "EXISTS", "r"), bdo(0, "PING"), bdo(3, "EXISTS", "r"),
	)
	s = append(s, zblockingSteps()...)
	// UNBLOCK reasons and errors.
	s = append(s,
		bdo(0, "CLIENT", "UNBLOCK"), bdo(0, "CLIENT", "UNBLOCK", "x"), bdo(0, "CLIENT", "UNBLOCK", "1", "foo"),
		bdo(0, "CLIENT", "UNBLOCK", "x", "foo"), bdo(0, "CLIENT", "UNBLOCK", "1", "timeout", "x"),
		bdo(0, "CLIENT", "UNBLOCK", "99999", "error"), bdo(0, "CLIENT", "UNBLOCK", "-1"),
		bdo(0, "CLIENT", "UNBLOCK", "9223372036854775808"), bdo(0, "CLIENT", "UNBLOCK", "0", "TIMEOUT"),
		bdo(0, "CLIENT", "UNBLOCK", "18446744073709551616"), bdo(0, "CLIENT", "UNBLOCK", "-9223372036854775808", "ERROR"),
	)
	return s
}

// CompareBlocking runs the blocking list and sorted-set commands (BLPOP ...,
// BZPOPMIN, BZPOPMAX, BZMPOP) on the server at ours and
// on redis-server at theirs, each from an empty keyspace, and requires
// byte-identical replies: argument errors and timeouts at their extremes,
// the null replies (RESP2 and RESP3), the forms inside MULTI, and blocked
// clients served by other clients' pushes and sorted-set writes, in Redis's order.
// A target that refuses SWAPDB (NoSwapDB) skips its steps.
func CompareBlocking(t *testing.T, target Target, theirsAddr string) {
	t.Helper()
	oursAddr := target.Addr
	var steps []blockStep
	for _, st := range blockingSteps() {
		if target.NoSwapDB && st.swap {
			continue
		}
		steps = append(steps, st)
	}
	const conns = 4
	var ours, theirs [conns]*RawConn
	for i := range conns {
		ours[i], theirs[i] = DialRaw(t, oursAddr), DialRaw(t, theirsAddr)
	}
	oursCtl, theirsCtl := DialRaw(t, oursAddr), DialRaw(t, theirsAddr)
	ours[0].Do("FLUSHALL")
	theirs[0].Do("FLUSHALL")
	fails := 0
	for i, st := range steps {
		var got, want string
		switch {
		case st.send:
			oursTaken, theirsTaken := newTakenProbe(oursCtl), newTakenProbe(theirsCtl)
			ours[st.conn].Send(Encode(st.args...))
			theirs[st.conn].Send(Encode(st.args...))
			// Taken (blocked or run) by both before the next step runs:
			// which blocked client a push serves depends on the order they
			// blocked in.
			awaitSameBlocked(oursTaken, theirsTaken)
			continue
		case st.read:
			got, want = ours[st.conn].Read(), theirs[st.conn].Read()
		default:
			got, want = ours[st.conn].Do(st.args...), theirs[st.conn].Do(st.args...)
			if st.args[0] == "HELLO" {
				continue // server version, client id
			}
		}
		if got != want {
			t.Errorf("step %d conn %d %q:\n nokv:  %q\n redis: %q", i, st.conn, strings.Join(st.args, " "), got, want)
			if fails++; fails > 30 {
				t.Fatalf("too many differences")
			}
		}
	}
}

// zblockingSteps are BZPOPMIN, BZPOPMAX and BZMPOP's: the same edges as
// the list commands', and the sorted-set writes that wake them.
func zblockingSteps() []blockStep {
	var s []blockStep
	for _, t := range timeoutArgs {
		s = append(s, bdo(0, "DEL", "zf"), bdo(0, "ZADD", "zf", "1", "a", "2", "b", "3", "c"),
			bdo(0, "BZPOPMIN", "zf", t), bdo(0, "BZPOPMAX", "zf", t),
			bdo(0, "BZMPOP", t, "1", "zf", "MIN", "COUNT", "5"))
	}
	s = append(s, bdo(0, "DEL", "zf"))
	for _, t := range shortTimeouts {
		s = append(s, bdo(0, "BZPOPMIN", "ze", t), bdo(0, "BZPOPMAX", "ze", t), bdo(0, "BZMPOP", t, "1", "ze", "MAX"))
	}
	// Timeouts (a null array) and the RESP3 forms: scores as doubles.
	s = append(s,
		bdo(0, "BZPOPMIN", "e1", "e2", "0.01"), bdo(0, "BZPOPMAX", "e1", "0.01"),
		bdo(0, "BZMPOP", "0.01", "2", "e1", "e2", "MAX", "COUNT", "3"), bdo(0, "EXISTS", "e1", "e2"),
		bdo(0, "HELLO", "3"),
		bdo(0, "BZPOPMIN", "e1", "e2", "0.01"), bdo(0, "BZMPOP", "0.01", "1", "e1", "MIN"),
		bdo(0, "ZADD", "z", "1.5", "x", "-inf", "y", "inf", "w", "0", "v"), bdo(0, "BZPOPMIN", "z", "0"),
		bdo(0, "BZPOPMAX", "z", "0"), bdo(0, "BZMPOP", "0", "1", "z", "MAX", "COUNT", "9"),
		bdo(0, "HELLO", "2"),
		bdo(0, "ZADD", "z", "1.5", "x", "-inf", "y", "inf", "w", "1e300", "v"), bdo(0, "BZPOPMIN", "z", "0"),
		bdo(0, "BZPOPMAX", "z", "0"), bdo(0, "BZMPOP", "0", "1", "z", "MIN", "COUNT", "9"),
	)
	// BZMPOP's numkeys and COUNT at their extremes, and its other errors
	// (checked before the timeout, as in Redis 7.0).
	for _, n := range []string{"0", "-1", "1", "2", "3", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "18446744073709551616", "x", "1.5"} {
		s = append(s, bdo(0, "ZADD", "m", "1", "a", "2", "b", "3", "c"),
			bdo(0, "BZMPOP", "0", n, "m", "MIN"), bdo(0, "BZMPOP", "0", "1", "m", "MAX", "COUNT", n),
			bdo(0, "BZMPOP", "x", n, "m", "MIN"), bdo(0, "BZMPOP", "-1", "1", "m", "MIN", "COUNT", n), bdo(0, "DEL", "m"))
	}
	s = append(s,
		bdo(0, "BZMPOP", "0", "1", "m", "MIDDLE"), bdo(0, "BZMPOP", "0", "1", "m", "LEFT"), bdo(0, "BZMPOP", "0", "2", "m", "MIN"),
		bdo(0, "BZMPOP", "0", "1", "m", "MIN", "COUNT", "1", "COUNT", "2"), bdo(0, "BZMPOP", "0", "1", "m", "MIN", "COUNT"),
		bdo(0, "BZMPOP", "x", "1", "m", "MIDDLE"), bdo(0, "BZMPOP", "inf", "1", "m", "MIN", "COUNT", "2"),
		bdo(0, "BZMPOP", "0", "1", "m"), bdo(0, "BZMPOP", "0", "1"), bdo(0, "BZPOPMIN", "k"), bdo(0, "BZPOPMAX"),
	)
	// Wrong types: the first key in order decides, before a later zset.
	s = append(s,
		bdo(0, "SET", "s", "v"), bdo(0, "ZADD", "zz", "1", "a", "2", "b"), bdo(0, "RPUSH", "l", "x"),
		bdo(0, "BZPOPMIN", "s", "0"), bdo(0, "BZPOPMIN", "s", "-1"), bdo(0, "BZPOPMAX", "nozset", "s", "zz", "0"),
		bdo(0, "BZPOPMIN", "zz", "s", "0"), bdo(0, "BZMPOP", "0", "2", "nozset", "l", "MIN"),
		bdo(0, "BZPOPMIN", "zz", "zz", "0"), bdo(0, "EXISTS", "zz"), bdo(0, "DEL", "s", "l"),
	)
	// Inside MULTI nothing blocks: a null array, or what the command pops.
	s = append(s,
		bdo(0, "MULTI"), bdo(0, "BZPOPMIN", "e", "0"), bdo(0, "BZPOPMAX", "e", "0"), bdo(0, "BZMPOP", "0", "1", "e", "MIN"),
		bdo(0, "BZPOPMIN", "e", "-1"), bdo(0, "BZMPOP", "0", "1", "e", "MIN", "COUNT", "0"),
		bdo(0, "ZADD", "e", "1", "x", "2", "y", "3", "z"), bdo(0, "BZPOPMIN", "e", "0"),
		bdo(0, "BZMPOP", "0", "1", "e", "MAX", "COUNT", "5"), bdo(0, "BZPOPMAX", "e", "0"), bdo(0, "EXEC"),
		bdo(0, "HELLO", "3"), bdo(0, "MULTI"), bdo(0, "BZPOPMIN", "e", "0"), bdo(0, "BZMPOP", "0", "1", "e", "MIN"),
		bdo(0, "EXEC"), bdo(0, "HELLO", "2"),
	)
	// Served by another client's ZADD: FIFO across waiters, one member
	// each (BZMPOP up to its COUNT), the rest still waiting.
	s = append(s,
		bsend(0, "BZPOPMIN", "q", "0"), bsend(1, "BZPOPMAX", "q", "0"), bsend(2, "BZMPOP", "0", "1", "q", "MIN", "COUNT", "5"),
		bdo(3, "ZADD", "q", "1", "a", "2", "b"), bread(0), bread(1), bdo(3, "ZADD", "q", "3", "c", "4", "d", "5", "e"), bread(2),
		bdo(3, "EXISTS", "q"),
	)
	// Several keys: the waiter is served from the key that became ready
	// first (EXEC adds to b before a).
	s = append(s,
		bsend(0, "BZPOPMIN", "a", "b", "0"),
		bdo(3, "MULTI"), bdo(3, "ZADD", "b", "1", "x"), bdo(3, "ZADD", "a", "2", "y"), bdo(3, "EXEC"), bread(0),
		bdo(3, "ZRANGE", "a", "0", "-1"), bdo(3, "DEL", "a", "b"),
	)
	// A key that is not a sorted set meanwhile keeps the client blocked;
	// a list push does not serve it.
	s = append(s,
		bsend(0, "BZPOPMIN", "k", "0"), bdo(3, "SET", "k", "x"), bdo(3, "DEL", "k"), bdo(3, "RPUSH", "k", "a"),
		bdo(3, "DEL", "k"), bdo(3, "ZADD", "k", "7", "m"), bread(0),
	)
	// Other writes that make a sorted set: ZINCRBY, ZUNIONSTORE,
	// ZINTERSTORE, ZDIFFSTORE, ZRANGESTORE, RESTORE, RENAME, COPY, MOVE,
	// ZADD with flags (NX; XX on an absent key adds nothing).
	s = append(s,
		bdo(3, "ZADD", "src", "1", "a", "2", "b", "3", "c"), bdo(3, "ZADD", "src2", "2", "b"),
		bsend(0, "BZPOPMIN", "w", "0"), bdo(3, "ZINCRBY", "w", "5", "m"), bread(0),
		bsend(0, "BZPOPMAX", "w", "0"), bdo(3, "ZUNIONSTORE", "w", "2", "src", "src2"), bread(0), bdo(3, "DEL", "w"),
		bsend(0, "BZPOPMIN", "w", "0"), bdo(3, "ZINTERSTORE", "w", "2", "src", "src2"), bread(0),
		bsend(0, "BZPOPMIN", "w", "0"), bdo(3, "ZDIFFSTORE", "w", "2", "src", "src2"), bread(0), bdo(3, "DEL", "w"),
		bsend(0, "BZMPOP", "0", "1", "w", "MAX", "COUNT", "2"), bdo(3, "ZRANGESTORE", "w", "src", "0", "1"), bread(0),
		bsend(0, "BZPOPMIN", "w", "0"), bdo(3, "ZINTERSTORE", "w", "2", "src", "nothing"), bdo(3, "ZADD", "w", "XX", "1", "q"),
		bdo(3, "ZADD", "w", "NX", "CH", "9", "n"), bread(0),
		// DUMP of a zset {a: 1.5, b: 2} by redis-server 7.0.15.
		bsend(0, "BZPOPMIN", "w", "0"), bdo(3, "RESTORE", "w", "0",
			"\x11\x14\x14\x00\x00\x00\x04\x00\x81\x61\x02\x83\x31\x2e\x35\x04\x81\x62\x02\x02\x01\xff\x0a\x00\xfa\x02\xb4\x25\xaf\x18\x87\x63"),
		bread(0), bdo(3, "DEL", "w"),
		bsend(0, "BZPOPMIN", "w", "0"), bdo(3, "RENAME", "src2", "w"), bread(0),
		bsend(0, "BZPOPMIN", "w2", "0"), bdo(3, "COPY", "src", "w2"), bread(0),
		bdo(3, "SELECT", "1"), bdo(3, "ZADD", "mv", "1", "m"), bsend(0, "BZPOPMIN", "mv", "0"), bdo(3, "MOVE", "mv", "0"),
		bread(0), bdo(3, "SELECT", "0"), bdo(3, "DEL", "src", "w", "w2"),
	)
	return s
}

// takenProbe tells when a server has taken a command sent on another
// connection: the server counts a command in total_commands_processed
// once it has run (Redis also when it blocks), and a command that blocks
// raises blocked_clients. The probe's own INFO commands count too; it
// subtracts them.
type takenProbe struct {
	ctl           *RawConn
	base, blocked int
	infos         int
}

func newTakenProbe(ctl *RawConn) *takenProbe {
	p := &takenProbe{ctl: ctl}
	p.base, p.blocked = p.read()
	return p
}

// read returns total_commands_processed less the probe's own INFOs, and
// blocked_clients.
func (p *takenProbe) read() (processed, blocked int) {
	processed = rawInfoInt(p.ctl, "stats", "total_commands_processed") - p.infos
	p.infos++
	blocked = rawInfoInt(p.ctl, "clients", "blocked_clients")
	p.infos++
	return processed, blocked
}

// taken reports whether the server has run or blocked on the command.
func (p *takenProbe) taken() bool {
	processed, blocked := p.read()
	return processed > p.base || blocked > p.blocked
}

// awaitSameBlocked waits until both servers have taken the command just
// sent (takenProbe: run, or blocked on) and then until our server reports
// as many blocked clients as Redis does, 10 s at most each: a loaded
// machine may take longer than any fixed sleep to run a command that was
// just sent, and a command that does not block (served at once) leaves
// both counts where they were. The probes are taken before the send.
func awaitSameBlocked(ours, theirs *takenProbe) {
	for _, p := range []*takenProbe{theirs, ours} {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !p.taken(); time.Sleep(2 * time.Millisecond) {
		}
	}
	want := rawBlockedClients(theirs.ctl)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if rawBlockedClients(ours.ctl) == want {
			return
		}
	}
}

// rawInfoInt is the integer field of an INFO section (-1 if absent).
func rawInfoInt(c *RawConn, section, field string) int {
	reply := c.Do("INFO", section)
	_, rest, ok := strings.Cut(reply, "\r\n"+field+":")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(rest, "\r\n", 2)[0]))
	if err != nil {
		return -1
	}
	return n
}

// rawBlockedClients is blockedClients over a RawConn (-1 if absent).
func rawBlockedClients(c *RawConn) int { return rawInfoInt(c, "clients", "blocked_clients") }
