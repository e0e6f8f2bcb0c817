package gatewayserver_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/conformance"
)

// Byte-for-byte comparison of MULTI, EXEC, DISCARD, WATCH and UNWATCH with
// redis-server: queueing and its errors (EXECABORT), errors inside EXEC,
// nesting, WATCH with modifications by the same and by another client,
// expiry, FLUSHALL, and in RESP2 and RESP3.

// txStep is one command sent on one of two connections.
type txStep struct {
	conn int
	args []string
}

func on(conn int, args ...string) txStep { return txStep{conn: conn, args: args} }

func multiSteps() []txStep {
	return []txStep{
		// Queueing and its errors.
		on(0, "MULTI"), on(0, "MULTI"), on(0, "SET", "a", "1"), on(0, "INCR", "a"), on(0, "GET"), on(0, "WATCH", "x"),
		on(0, "EXEC"), on(0, "EXEC"), on(0, "DISCARD"),
		on(0, "MULTI"), on(0, "SET", "a", "1"), on(0, "INCR", "a"), on(0, "SET", "a", "x"), on(0, "INCR", "a"),
		on(0, "GET", "a"), on(0, "SET", "a", "v", "EX", "-1"), on(0, "MGET", "a", "nokey"), on(0, "EXEC"),
		on(0, "MULTI"), on(0, "EXEC"), on(0, "MULTI"), on(0, "DISCARD"), on(0, "WATCH"), on(0, "UNWATCH", "x"),
		on(0, "MULTI"), on(0, "FOO", "bar"), on(0, "PING"), on(0, "EXEC"),
		on(0, "MULTI"), on(0, "PING"), on(0, "EXEC", "extra"), on(0, "EXEC"),
		on(0, "MULTI"), on(0, "UNWATCH"), on(0, "ECHO", "hi"), on(0, "EXEC"),
		on(0, "MULTI"), on(0, "DISCARD", "x"), on(0, "DISCARD"),
		// Replies of every kind inside EXEC; a failed command writes nothing.
		on(0, "MULTI"), on(0, "SET", "n", "10"), on(0, "INCRBY", "n", "5"), on(0, "INCRBYFLOAT", "n", "1.5"),
		on(0, "INCR", "n"), on(0, "APPEND", "n", "x"), on(0, "STRLEN", "n"), on(0, "GETRANGE", "n", "0", "1"),
		on(0, "SETRANGE", "n", "0", "ab"), on(0, "GET", "n"), on(0, "EXISTS", "n", "nokey"), on(0, "TYPE", "n"),
		on(0, "EXPIRE", "n", "100"), on(0, "TTL", "n"), on(0, "PERSIST", "n"), on(0, "TTL", "n"),
		on(0, "MSET", "m1", "1", "m2", "2"), on(0, "MSETNX", "m1", "x", "m3", "3"), on(0, "MGET", "m1", "m2", "m3"),
		on(0, "RENAME", "m1", "m4"), on(0, "RENAME", "nokey", "m5"), on(0, "GETDEL", "m2"), on(0, "DEL", "m2", "m4"),
		on(0, "SETBIT", "bits", "7", "1"), on(0, "BITCOUNT", "bits"), on(0, "BITFIELD", "bits", "INCRBY", "u8", "0", "300"),
		on(0, "LCS", "n", "n"), on(0, "SETNX", "n", "z"), on(0, "GETSET", "n", "z"), on(0, "GETEX", "n", "PX", "100000"),
		on(0, "PTTL", "nokey"), on(0, "DBSIZE"), on(0, "KEYS", "m*"), on(0, "SET", "after", "1"), on(0, "EXEC"),
		on(0, "GET", "after"), on(0, "MGET", "n", "m1", "m3", "bits"),
		// FLUSHALL inside EXEC, between other commands.
		on(0, "MULTI"), on(0, "SET", "f1", "1"), on(0, "FLUSHALL"), on(0, "GET", "f1"), on(0, "SET", "f2", "2"),
		on(0, "DBSIZE"), on(0, "EXEC"), on(0, "KEYS", "*"),
		// WATCH: another client's write aborts EXEC; a read does not.
		on(0, "SET", "w", "1"), on(0, "WATCH", "w"), on(1, "SET", "w", "2"), on(0, "MULTI"), on(0, "SET", "w", "3"),
		on(0, "EXEC"), on(0, "GET", "w"),
		on(0, "WATCH", "w"), on(1, "GET", "w"), on(0, "MULTI"), on(0, "SET", "w", "4"), on(0, "EXEC"), on(0, "GET", "w"),
		// The same value counts as a modification; deleting an absent key does not.
		on(0, "WATCH", "w"), on(1, "SET", "w", "4"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		on(0, "WATCH", "nokey"), on(1, "DEL", "nokey"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		on(0, "WATCH", "nokey"), on(1, "SET", "nokey", "1"), on(1, "DEL", "nokey"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		// Own writes count; UNWATCH, DISCARD and EXECABORT forget the keys.
		on(0, "WATCH", "w"), on(0, "SET", "w", "5"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		on(0, "WATCH", "w"), on(0, "UNWATCH"), on(1, "SET", "w", "6"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		on(0, "WATCH", "w"), on(0, "MULTI"), on(0, "DISCARD"), on(1, "SET", "w", "7"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		on(0, "WATCH", "w"), on(0, "MULTI"), on(0, "NOSUCH"), on(0, "EXEC"), on(1, "SET", "w", "8"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		// EXPIRE, PERSIST of a key without TTL, RENAME into a watched key.
		on(0, "WATCH", "w"), on(1, "EXPIRE", "w", "1000"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		on(0, "WATCH", "w"), on(1, "PERSIST", "w"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		on(0, "WATCH", "w"), on(1, "SET", "src", "x"), on(1, "RENAME", "src", "w"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		// Several keys, one modified; WATCH twice.
		on(0, "WATCH", "w", "y"), on(0, "WATCH", "w"), on(1, "SET", "y", "1"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		// FLUSHALL modifies the watched keys that exist, not the others.
		on(0, "SET", "w", "1"), on(0, "WATCH", "w"), on(1, "FLUSHALL"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		on(0, "WATCH", "nokey"), on(1, "FLUSHALL"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		// Another client's EXEC modifies.
		on(0, "WATCH", "w"), on(1, "MULTI"), on(1, "SET", "w", "9"), on(1, "EXEC"), on(0, "MULTI"), on(0, "GET", "w"), on(0, "EXEC"),
		// An empty EXEC with a watch; WATCH after MULTI was refused.
		on(0, "WATCH", "w"), on(0, "MULTI"), on(0, "EXEC"),
		// MULTI replies in RESP3 (nulls inside EXEC, the null array).
		on(0, "HELLO", "3"), on(0, "MULTI"), on(0, "GET", "nokey"), on(0, "MGET", "w", "nokey"), on(0, "SET", "r3", "1"), on(0, "EXEC"),
		on(0, "WATCH", "w"), on(1, "SET", "w", "10"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"), on(0, "HELLO", "2"),
	}
}

// dbSteps are MULTI/EXEC and WATCH across logical databases: a queued
// SELECT moves the commands after it; a watched key is a (database, key)
// pair; FLUSHDB and SWAPDB modify the watched keys Redis's
// touchAllWatchedKeysInDb says they do.
func dbSteps() []txStep {
	return []txStep{
		// SELECT inside MULTI applies to the queued commands after it, and stays.
		on(0, "MULTI"), on(0, "SET", "k", "0"), on(0, "SELECT", "1"), on(0, "SET", "k", "1"), on(0, "GET", "k"),
		on(0, "SELECT", "16"), on(0, "GET", "k"), on(0, "EXEC"), on(0, "GET", "k"), on(0, "SELECT", "0"), on(0, "GET", "k"),
		on(0, "MULTI"), on(0, "SELECT", "2"), on(0, "SET", "m", "x"), on(0, "MOVE", "m", "3"), on(0, "COPY", "k", "c", "DB", "4"),
		on(0, "SELECT", "4"), on(0, "GET", "c"), on(0, "SWAPDB", "3", "4"), on(0, "GET", "m"), on(0, "DBSIZE"), on(0, "EXEC"),
		on(0, "DBSIZE"), on(0, "SELECT", "0"),
		// A watched key is a database's: a write of the same name elsewhere does not touch it.
		on(0, "WATCH", "w"), on(1, "SELECT", "1"), on(1, "SET", "w", "1"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		on(0, "SELECT", "1"), on(0, "WATCH", "w"), on(0, "SELECT", "0"), on(1, "SET", "w", "2"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		// FLUSHDB touches the flushed database's existing watched keys only.
		on(1, "SET", "w", "3"), on(0, "SELECT", "1"), on(0, "WATCH", "w"), on(1, "SELECT", "0"), on(1, "FLUSHDB"),
		on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		on(0, "WATCH", "w"), on(1, "SELECT", "1"), on(1, "FLUSHDB"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		on(0, "WATCH", "w"), on(1, "FLUSHDB"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC"),
		// SWAPDB: a watched key that exists in either database is touched.
		on(0, "SELECT", "5"), on(0, "SET", "s", "1"), on(0, "WATCH", "s"), on(1, "SWAPDB", "5", "6"), on(0, "MULTI"), on(0, "GET", "s"), on(0, "EXEC"),
		on(0, "WATCH", "s"), on(1, "SWAPDB", "5", "6"), on(0, "MULTI"), on(0, "GET", "s"), on(0, "EXEC"),
		on(0, "WATCH", "nokey"), on(1, "SWAPDB", "5", "6"), on(0, "MULTI"), on(0, "GET", "s"), on(0, "EXEC"),
		on(0, "WATCH", "s"), on(1, "SWAPDB", "7", "8"), on(0, "MULTI"), on(0, "GET", "s"), on(0, "EXEC"),
		// MOVE and COPY into a watched key of another database touch it.
		on(0, "SELECT", "0"), on(0, "WATCH", "mv"), on(1, "SELECT", "9"), on(1, "SET", "mv", "1"), on(1, "MOVE", "mv", "0"),
		on(0, "MULTI"), on(0, "GET", "mv"), on(0, "EXEC"),
		on(0, "WATCH", "cp"), on(1, "SET", "x", "1"), on(1, "COPY", "x", "cp", "DB", "0"), on(0, "MULTI"), on(0, "GET", "cp"), on(0, "EXEC"),
		on(0, "WATCH", "mv"), on(1, "SET", "mv", "2"), on(1, "MOVE", "mv", "0"), on(0, "MULTI"), on(0, "GET", "mv"), on(0, "EXEC"),
	}
}

func TestMultiExecAcrossDatabasesMatchesRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	runTxSteps(t, srv.Addr(), redisAddr, dbSteps())
}

func TestMultiExecMatchesRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	runTxSteps(t, srv.Addr(), redisAddr, multiSteps())
}

func runTxSteps(t *testing.T, oursAddr, theirsAddr string, steps []txStep) {
	t.Helper()
	ours := []*conformance.RawConn{conformance.DialRaw(t, oursAddr), conformance.DialRaw(t, oursAddr)}
	theirs := []*conformance.RawConn{conformance.DialRaw(t, theirsAddr), conformance.DialRaw(t, theirsAddr)}
	ours[0].Do("FLUSHALL")
	theirs[0].Do("FLUSHALL")
	fails := 0
	for i, st := range steps {
		got, want := ours[st.conn].Do(st.args...), theirs[st.conn].Do(st.args...)
		if st.args[0] == "HELLO" {
			continue // server version and client id differ
		}
		if st.args[0] == "KEYS" {
			got, want = sortedElements(got), sortedElements(want)
		}
		if got != want {
			t.Errorf("step %d conn %d %q:\n nokv:  %q\n redis: %q", i, st.conn, strings.Join(st.args, " "), got, want)
			if fails++; fails > 30 {
				t.Fatalf("too many differences")
			}
		}
	}
}

// A watched key that expires before EXEC was modified; one already expired
// when watched was not. The waits are far longer than the expiries, so the
// two servers see the same thing.
func TestWatchExpiryMatchesRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	steps := func(phase int) []txStep {
		switch phase {
		case 0:
			return []txStep{on(0, "SET", "k", "v", "PX", "150"), on(0, "SET", "gone", "v", "PX", "150"),
				on(0, "WATCH", "k"), on(0, "MULTI"), on(0, "PING")}
		case 1:
			return []txStep{on(0, "EXEC"), on(0, "WATCH", "gone"), on(0, "MULTI"), on(0, "PING"), on(0, "EXEC")}
		}
		return nil
	}
	ours := []*conformance.RawConn{conformance.DialRaw(t, srv.Addr()), conformance.DialRaw(t, srv.Addr())}
	theirs := []*conformance.RawConn{conformance.DialRaw(t, redisAddr), conformance.DialRaw(t, redisAddr)}
	for phase := range 2 {
		for _, st := range steps(phase) {
			got, want := ours[st.conn].Do(st.args...), theirs[st.conn].Do(st.args...)
			t.Logf("%q: %q", strings.Join(st.args, " "), got)
			if got != want {
				t.Errorf("%q:\n nokv:  %q\n redis: %q", strings.Join(st.args, " "), got, want)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}
