package gatewayserver_test

import (
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// startRedis runs Debian's redis-server, in memory, on a free loopback port. It
// skips the test when redis-server is absent, unless NOKV_REQUIRE_REDIS=1 (set by
// CI, which installs it) makes that a failure.
func startRedis(t *testing.T, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("NOKV_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server not found but NOKV_REQUIRE_REDIS=1: %v", err)
		}
		t.Skip("redis-server not installed (apt-get install redis-server); skipping comparison")
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--databases", "16", "--dir", t.TempDir()}, extra...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not come up on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A step is one command; unordered marks replies whose element order Redis does
// not define (KEYS), which are compared as sorted sets.
type step struct {
	args      []string
	unordered bool
	// sampled marks INFO keyspace, whose avg_ttl is Redis's estimate from
	// its expiry cycle's samples (the gateway reports 0): it is masked.
	sampled bool
}

func cmd(args ...string) step   { return step{args: args} }
func unord(args ...string) step { return step{args: args, unordered: true} }
func infoKeyspace() step        { return step{args: []string{"INFO", "keyspace"}, sampled: true} }

var (
	avgTTL   = regexp.MustCompile(`avg_ttl=\d+`)
	bulkHead = regexp.MustCompile(`^\$\d+\r\n`)
)

// maskSampled masks what Redis estimates in an INFO keyspace reply.
func maskSampled(reply string) string {
	return bulkHead.ReplaceAllString(avgTTL.ReplaceAllString(reply, "avg_ttl=*"), "$$*\r\n")
}

// compareSequences are run on both servers, each from an empty database, and
// every reply must be byte-identical.
var compareSequences = map[string][]step{
	"set-get": {
		cmd("GET", "k"), cmd("SET", "k", "v"), cmd("GET", "k"), cmd("SET", "k", "w", "GET"),
		cmd("SET", "k", "x", "NX"), cmd("SET", "k", "x", "XX"), cmd("SET", "n", "x", "XX"),
		cmd("SET", "k", "y", "NX", "GET"), cmd("SET", "k", "v", "EX", "100"), cmd("TTL", "k"),
		cmd("SET", "k", "v", "KEEPTTL"), cmd("TTL", "k"), cmd("SET", "k", "v"), cmd("TTL", "k"),
		cmd("SET", "k", "v", "EXAT", "4102444800"), cmd("EXPIRETIME", "k"), cmd("PEXPIRETIME", "k"),
		cmd("SET", "k", "v", "PXAT", "4102444800123"), cmd("PEXPIRETIME", "k"), cmd("EXPIRETIME", "k"),
		cmd("SET", "k", "v", "EXAT", "1"), cmd("EXISTS", "k"),
		cmd("SET", "k", "v", "NX", "XX"), cmd("SET", "k", "v", "EX", "1", "PX", "1"),
		cmd("SET", "k", "v", "KEEPTTL", "EX", "1"), cmd("SET", "k", "v", "EX"), cmd("SET", "k", "v", "EX", "0"),
		cmd("SET", "k", "v", "EX", "-1"), cmd("SET", "k", "v", "EX", "x"), cmd("SET", "k", "v", "FOO"),
		cmd("SET", "k", "v", "EX", "9223372036854775807"), cmd("SET", "k", "v", "PX", "9223372036854775807"),
		cmd("SET", "k"), cmd("GET"), cmd("GET", "a", "b"),
		cmd("SETNX", "k", "1"), cmd("SETNX", "k", "2"), cmd("GET", "k"),
		cmd("SETEX", "s", "100", "v"), cmd("TTL", "s"), cmd("SETEX", "s", "0", "v"), cmd("SETEX", "s", "x", "v"),
		cmd("PSETEX", "p", "100000", "v"), cmd("TTL", "p"), cmd("PSETEX", "p", "-1", "v"),
		cmd("GETSET", "g", "1"), cmd("GETSET", "g", "2"), cmd("GETDEL", "g"), cmd("GETDEL", "g"),
	},
	"getex": {
		cmd("SET", "k", "v"), cmd("GETEX", "k"), cmd("GETEX", "k", "EX", "100"), cmd("TTL", "k"),
		cmd("GETEX", "k", "PERSIST"), cmd("TTL", "k"), cmd("GETEX", "k", "EXAT", "4102444800"),
		cmd("EXPIRETIME", "k"), cmd("GETEX", "k", "PXAT", "4102444800999"), cmd("PEXPIRETIME", "k"),
		cmd("GETEX", "k", "EX", "1", "PX", "1"), cmd("GETEX", "k", "EX"), cmd("GETEX", "k", "EX", "0"),
		cmd("GETEX", "k", "FOO"), cmd("GETEX", "missing", "EX", "10"), cmd("GETEX", "k", "PXAT", "1"),
		cmd("EXISTS", "k"),
		// The time is judged only for an existing key.
		cmd("GETEX", "missing", "PX", "1.5"), cmd("GETEX", "missing", "EX", "0"), cmd("GETEX", "missing", "EX", "-9223372036854775808"),
	},
	"append-range": {
		cmd("APPEND", "k", "Hello"), cmd("APPEND", "k", " World"), cmd("STRLEN", "k"), cmd("STRLEN", "nokey"),
		cmd("GETRANGE", "k", "0", "4"), cmd("GETRANGE", "k", "-5", "-1"), cmd("GETRANGE", "k", "5", "3"),
		cmd("GETRANGE", "k", "-100", "100"), cmd("GETRANGE", "k", "-1", "-5"), cmd("GETRANGE", "k", "20", "30"),
		cmd("GETRANGE", "k", "x", "1"), cmd("GETRANGE", "nokey", "0", "-1"),
		cmd("SETRANGE", "k", "6", "Redis"), cmd("GET", "k"), cmd("SETRANGE", "pad", "3", "x"), cmd("GET", "pad"),
		cmd("SETRANGE", "e", "3", ""), cmd("EXISTS", "e"), cmd("SETRANGE", "k", "1", ""),
		cmd("SETRANGE", "k", "-1", "x"), cmd("SETRANGE", "k", "536870912", "x"), cmd("SETRANGE", "k", "x", "x"),
	},
	"multi": {
		cmd("MSET", "a", "1", "b", "2"), cmd("MGET", "a", "b", "c"), cmd("MSET", "a", "1", "b"),
		cmd("MSETNX", "a", "9", "c", "3"), cmd("MGET", "a", "c"), cmd("MSETNX", "c", "3", "d", "4"),
		cmd("MGET", "c", "d"), cmd("MSETNX", "a"), cmd("DEL", "a", "a", "zz"), cmd("EXISTS", "a", "b", "b", "zz"),
		cmd("TOUCH", "b", "zz"), cmd("UNLINK", "b", "c"), cmd("DBSIZE"),
	},
	"counters": {
		cmd("INCR", "n"), cmd("INCRBY", "n", "10"), cmd("DECR", "n"), cmd("DECRBY", "n", "20"),
		cmd("INCRBY", "n", "x"), cmd("INCRBY", "n", "1.5"), cmd("DECRBY", "n", "-9223372036854775808"),
		cmd("SET", "m", "9223372036854775807"), cmd("INCR", "m"), cmd("SET", "m", "-9223372036854775808"), cmd("DECR", "m"),
		cmd("SET", "s", " 1"), cmd("INCR", "s"), cmd("SET", "s", "01"), cmd("INCR", "s"), cmd("SET", "s", "+1"), cmd("INCR", "s"),
		cmd("SET", "s", "-0"), cmd("INCR", "s"), cmd("SET", "s", "-1"), cmd("INCR", "s"),
		cmd("SET", "f", "10.50"), cmd("INCRBYFLOAT", "f", "0.1"), cmd("INCRBYFLOAT", "f", "-5"),
		cmd("INCRBYFLOAT", "f", "abc"), cmd("INCRBYFLOAT", "f", " 1"), cmd("INCRBYFLOAT", "nf", "3"),
		cmd("SET", "g", "5.0e3"), cmd("INCRBYFLOAT", "g", "2.0e2"), cmd("INCRBYFLOAT", "g", "1e400"),
		cmd("SET", "h", "1e308"), cmd("INCRBYFLOAT", "h", "1e308"), cmd("SET", "i", "abc"), cmd("INCRBYFLOAT", "i", "1"),
		cmd("INCRBYFLOAT", "j", "0.0001"), cmd("INCRBYFLOAT", "j", "100000"),
		cmd("INCRBYFLOAT", "z", "inf"), cmd("INCRBYFLOAT", "z", "-inf"), cmd("INCRBYFLOAT", "z", "nan"),
		cmd("INCRBYFLOAT", "z", "1e5000"), cmd("INCRBYFLOAT", "z", ".5"), cmd("INCRBYFLOAT", "z", "5."),
		cmd("INCRBYFLOAT", "z", "0x10"), cmd("INCRBYFLOAT", "z", "-5.5"), cmd("INCRBYFLOAT", "z", "1_0"),
		cmd("SET", "y", "-0.0"), cmd("INCRBYFLOAT", "y", "0"), cmd("INCRBYFLOAT", "y", "-1e-20"),
		cmd("SET", "w", "1.1e4932"), cmd("INCRBYFLOAT", "w", "1e4932"), cmd("INCRBYFLOAT", "w", "-2e4932"),
		cmd("INCRBYFLOAT", "x", "3.0000000000000000001"), cmd("INCRBYFLOAT", "x", "1.1"),
	},
	"expire": {
		cmd("EXPIRE", "k", "100"), cmd("SET", "k", "v"), cmd("TTL", "k"), cmd("PTTL", "k"), cmd("EXPIRETIME", "k"),
		cmd("TTL", "nokey"), cmd("PTTL", "nokey"), cmd("EXPIRETIME", "nokey"), cmd("PEXPIRETIME", "nokey"),
		cmd("EXPIRE", "k", "100"), cmd("TTL", "k"), cmd("EXPIRE", "k", "200", "NX"), cmd("EXPIRE", "k", "200", "XX"),
		cmd("EXPIRE", "k", "100", "GT"), cmd("EXPIRE", "k", "300", "GT"), cmd("EXPIRE", "k", "400", "LT"),
		cmd("EXPIRE", "k", "50", "LT"), cmd("TTL", "k"), cmd("EXPIRE", "k", "10", "NX", "XX"),
		cmd("EXPIRE", "k", "10", "GT", "LT"), cmd("EXPIRE", "k", "10", "FOO"), cmd("EXPIRE", "k", "x"),
		// Options are judged before the time.
		cmd("EXPIRE", "k", "x", "FOO"), cmd("EXPIRE", "k", "x", "GT", "LT"), cmd("PEXPIRE", "k", "x", "NX", "XX"),
		cmd("EXPIRE", "k", "9223372036854775807"), cmd("PEXPIRE", "k", "9223372036854775807"),
		cmd("EXPIRE", "k"), cmd("EXPIREAT", "k", "4102444800"), cmd("EXPIRETIME", "k"),
		cmd("PEXPIREAT", "k", "4102444800777"), cmd("PEXPIRETIME", "k"), cmd("PERSIST", "k"), cmd("PERSIST", "k"),
		cmd("TTL", "k"), cmd("SET", "p", "v"), cmd("EXPIRE", "p", "100", "GT"), cmd("EXPIRE", "p", "100", "LT"),
		cmd("EXPIRE", "p", "-1"), cmd("EXISTS", "p"), cmd("SET", "p", "v"), cmd("PEXPIREAT", "p", "1"), cmd("EXISTS", "p"),
		cmd("SET", "p", "v"), cmd("EXPIREAT", "p", "0"), cmd("GET", "p"), cmd("PERSIST", "nokey"),
	},
	"keys": {
		cmd("MSET", "user:1", "a", "user:2", "b", "other", "c", "h*llo", "d"), unord("KEYS", "*"),
		unord("KEYS", "user:*"), unord("KEYS", "user:[1]"), unord("KEYS", `h\*llo`), unord("KEYS", "nomatch*"),
		cmd("TYPE", "user:1"), cmd("TYPE", "nokey"), cmd("RENAME", "nokey", "x"), cmd("RENAMENX", "nokey", "x"),
		cmd("RENAME", "user:1", "user:3"), cmd("GET", "user:3"), cmd("RENAME", "user:3", "user:3"),
		cmd("RENAMENX", "user:3", "user:2"), cmd("RENAMENX", "user:3", "user:4"), cmd("RENAMENX", "user:4", "user:4"),
		cmd("DBSIZE"), cmd("SCAN", "x"), cmd("SCAN", "0", "COUNT", "0"), cmd("SCAN", "0", "MATCH"),
		cmd("SCAN", "0", "COUNT", "x"), cmd("FLUSHDB", "NOW"), cmd("FLUSHDB"), cmd("DBSIZE"), cmd("RANDOMKEY"),
		// Cursors are read with strtoul: a sign is allowed and "" is 0.
		cmd("SCAN", ""), cmd("SCAN", "+0"), cmd("SCAN", "-0"), cmd("SCAN", "+"), cmd("SCAN", " 0"),
		cmd("SCAN", "0x"), cmd("SCAN", "18446744073709551616"), cmd("SCAN", "-18446744073709551616"),
		cmd("SCAN", "-1", "FOO", "x"), cmd("SCAN", "x", "FOO", "x"),
		cmd("SET", "only", "1"), cmd("RANDOMKEY"), cmd("FLUSHALL", "SYNC"), cmd("KEYS", "*"),
	},
	"databases": {
		cmd("CONFIG", "GET", "databases"),
		cmd("SET", "k", "v0"), cmd("SELECT", "1"), cmd("GET", "k"), cmd("SET", "k", "v1"), cmd("DBSIZE"),
		cmd("SELECT", "0"), cmd("DBSIZE"), cmd("GET", "k"), cmd("SELECT", "15"), cmd("DBSIZE"), cmd("SELECT", "0"),
		cmd("SELECT", "16"), cmd("SELECT", "-1"), cmd("SELECT", "x"), cmd("SELECT", "2147483648"),
		cmd("SELECT", "-2147483649"), cmd("SELECT", "9223372036854775808"), cmd("SELECT", ""), cmd("SELECT", "1.0"),
		cmd("SELECT"), cmd("SELECT", "0", "1"), cmd("GET", "k"),
		// MOVE
		cmd("MOVE", "k", "1"), cmd("MOVE", "k", "0"), cmd("MOVE", "k", "16"), cmd("MOVE", "k", "-1"),
		cmd("MOVE", "k", "x"), cmd("MOVE", "k", "2147483648"), cmd("MOVE", "k", "18446744073709551616"),
		cmd("MOVE", "nokey", "1"), cmd("MOVE", "nokey", "0"), cmd("MOVE", "k"),
		cmd("SELECT", "1"), cmd("DEL", "k"), cmd("SELECT", "0"), cmd("MOVE", "k", "1"), cmd("EXISTS", "k"),
		cmd("SELECT", "1"), cmd("GET", "k"), cmd("SET", "t", "v", "EX", "1000"), cmd("MOVE", "t", "2"),
		cmd("SELECT", "2"), cmd("TTL", "t"), cmd("GET", "t"),
		cmd("SELECT", "1"), cmd("EXISTS", "t"),
		// COPY
		cmd("SET", "a", "x"), cmd("PEXPIRE", "a", "5000000"), cmd("COPY", "a", "b"), cmd("TTL", "b"), cmd("GET", "b"),
		cmd("COPY", "a", "b"), cmd("COPY", "a", "b", "REPLACE"), cmd("COPY", "a", "a"), cmd("COPY", "a", "a", "DB", "1"),
		cmd("COPY", "a", "a", "REPLACE"), cmd("COPY", "a", "a", "DB", "3"), cmd("SELECT", "3"), cmd("GET", "a"),
		cmd("TTL", "a"), cmd("SELECT", "1"), cmd("COPY", "a", "c", "DB", "16"), cmd("COPY", "a", "c", "DB", "-1"),
		cmd("COPY", "a", "c", "DB", "x"), cmd("COPY", "a", "c", "DB"), cmd("COPY", "a", "c", "FOO"),
		cmd("COPY", "a", "c", "DB", "2147483648"), cmd("COPY", "a", "c", "DB", "9223372036854775808"),
		cmd("COPY", "nokey", "c"), cmd("COPY", "nokey", "nokey"), cmd("COPY", "a"), cmd("COPY", "a", "c", "DB", "16", "FOO"),
		cmd("COPY", "a", "c", "FOO", "DB", "16"), cmd("COPY", "a", "c", "REPLACE", "DB", "3"), cmd("COPY", "a", "c", "DB", "3", "REPLACE"),
		cmd("COPY", "a", "a", "DB", "1", "REPLACE"), cmd("DBSIZE"),
		// SWAPDB
		cmd("SELECT", "0"), cmd("SET", "zero", "0"), cmd("SWAPDB", "0", "1"), cmd("GET", "zero"), cmd("GET", "a"),
		cmd("DBSIZE"), cmd("SWAPDB", "0", "0"), cmd("SWAPDB", "0", "16"), cmd("SWAPDB", "16", "0"),
		cmd("SWAPDB", "x", "0"), cmd("SWAPDB", "0", "x"), cmd("SWAPDB", "x", "y"), cmd("SWAPDB", "-1", "0"),
		cmd("SWAPDB", "2147483648", "0"), cmd("SWAPDB", "0", "2147483648"), cmd("SWAPDB", "0"), cmd("SWAPDB", "1", "5"),
		cmd("SELECT", "5"), cmd("GET", "zero"), cmd("TTL", "zero"), cmd("RANDOMKEY"), cmd("SELECT", "0"), cmd("DBSIZE"),
		unord("KEYS", "*"), cmd("SCAN", "0", "MATCH", "a"), infoKeyspace(),
		// FLUSHDB empties the selected database only.
		cmd("FLUSHDB"), cmd("DBSIZE"), cmd("RANDOMKEY"), cmd("SELECT", "5"), cmd("DBSIZE"), cmd("FLUSHDB", "ASYNC"),
		cmd("SELECT", "3"), cmd("FLUSHDB", "SYNC"), cmd("FLUSHDB", "FOO"), infoKeyspace(),
		cmd("SET", "x", "1"), cmd("SELECT", "9"), cmd("SET", "y", "1"), infoKeyspace(), cmd("FLUSHALL"),
		cmd("DBSIZE"), cmd("SELECT", "3"), cmd("DBSIZE"), infoKeyspace(),
	},
	"connection": {
		cmd("PING"), cmd("PING", "hi"), cmd("PING", "a", "b"), cmd("ECHO", "x"), cmd("ECHO"),
		cmd("SELECT", "0"), cmd("SELECT", "1"), cmd("SELECT", "x"), cmd("SELECT", "2147483648"),
		cmd("SELECT", "-2147483649"), cmd("SELECT", "-2147483648"), cmd("HELLO", "4"), cmd("HELLO", "x"),
		cmd("CLIENT", "SETNAME", "bad name"), cmd("CLIENT", "SETNAME", "good"), cmd("CLIENT", "GETNAME"),
		cmd("CLIENT", "SETNAME"), cmd("AUTH", "pw"), cmd("NOSUCH", "a", "b"), cmd("NOSUCH"),
		cmd("CONFIG", "GET", "databases"), cmd("CONFIG", "GET", "nosuch"), cmd("COMMAND", "INFO", "nosuch"),
	},
}

func TestRepliesMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	for _, name := range slices.Sorted(maps.Keys(compareSequences)) {
		t.Run(name, func(t *testing.T) {
			ours := conformance.DialRaw(t, srv.Addr())
			theirs := conformance.DialRaw(t, redisAddr)
			ours.Do("FLUSHALL")
			theirs.Do("FLUSHALL")
			for i, st := range compareSequences[name] {
				got, want := ours.Do(st.args...), theirs.Do(st.args...)
				if st.unordered {
					got, want = sortedElements(got), sortedElements(want)
				}
				if st.sampled {
					got, want = maskSampled(got), maskSampled(want)
				}
				if got != want {
					t.Errorf("step %d %q:\n nokv:  %q\n redis: %q", i, strings.Join(st.args, " "), got, want)
				}
			}
		})
	}
}

// sortedElements normalises a flat array of bulk strings for order-free comparison.
func sortedElements(reply string) string {
	parts := strings.Split(reply, "\r\n")
	if len(parts) < 2 || !strings.HasPrefix(parts[0], "*") {
		return reply
	}
	var elems []string
	for i := 1; i+1 < len(parts); i += 2 {
		elems = append(elems, parts[i]+"\r\n"+parts[i+1])
	}
	slices.Sort(elems)
	return fmt.Sprintf("%s\r\n%s\r\n", parts[0], strings.Join(elems, "\r\n"))
}

// wireCases are raw request streams, each sent on a fresh connection to both
// servers, whose whole reply streams must be byte-identical: they pin the
// request parser (inline quoting, headers, protocol errors) to Redis's.
var wireCases = map[string]string{
	"inline":               "PING\r\nPING\necho   a   b  \r\n",
	"inline-empty-lines":   "\r\n\n  \r\nPING\r\n",
	"inline-whitespace":    "ECHO\tx\r\n\v\fECHO y\r\nECHO\vz\r\n",
	"inline-double-quotes": "SET k \"a b\\x41\\n\\t\\r\\b\\a\\q\\\"\"\r\nGET k\r\nECHO \"\\xzz\" \"\\x4\"\r\n",
	"inline-single-quotes": "SET k 'it\\'s \\n'\r\nGET k\r\nECHO ''\r\n",
	"inline-mid-token":     "ECHO a\"b c\"d\r\nECHO x'y z'\r\n",
	"inline-nul":           "PING\r\nECHO a\x00b c\r\nPING\r\n",
	// Past a NUL, Redis's strchr never finds the line's end: everything
	// after is swallowed until the buffer is too big.
	"inline-nul-too-big":   "PING\r\nECHO a\x00b\r\n" + strings.Repeat("PING\r\n", 11000),
	"header-nul-too-big":   "PING\r\n*1\x00\r\n" + strings.Repeat("PING\r\n", 11000),
	"bulk-nul-too-big":     "*1\r\n$4\x00\r\n" + strings.Repeat("PING\r\n", 11000),
	"inline-unbalanced":    "PING\r\nSET k \"open\r\nPING\r\n",
	"inline-bad-close":     "PING\r\nECHO \"a\"b\r\n",
	"inline-bad-close-sq":  "ECHO 'a'b\r\n",
	"inline-unknown":       "NOSUCH 'a b' \"c\"\r\n",
	"header-nul":           "PING\r\n*1\x00\r\n$4\r\nPING\r\n",
	"bulk-header-nul":      "PING\r\n*1\r\n$4\x00\r\nPING\r\n",
	"empty-multibulk":      "*0\r\n*-1\r\n*-5\r\nPING\r\n",
	"bulk-crlf-unchecked":  "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",
	"header-cr-skip":       "*1\rX$4\r\nPING\r\n",
	"header-cr-skip-bad":   "*1\r$4\r\nPING\r\n",
	"expected-dollar":      "PING\r\n*1\r\nfoo\r\n",
	"expected-dollar-cr":   "*1\r\n\r\n",
	"expected-dollar-high": "*1\r\n\xff\r\n",
	"bad-count":            "*abc\r\n",
	"bad-count-zero-lead":  "*01\r\n$4\r\nPING\r\n",
	"bad-count-plus":       "*+1\r\n$4\r\nPING\r\n",
	"bad-bulk-negative":    "*1\r\n$-1\r\n",
	"bad-bulk-zero-lead":   "*1\r\n$04\r\nPING\r\n",
	"bad-bulk-empty":       "*1\r\n$\r\nPING\r\n",
	"bad-bulk-huge":        "*1\r\n$99999999999999999999\r\n",
	"empty-bulk":           "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
	"mixed":                "*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\nPING\r\n*1\r\n$4\r\nPING\r\n",
	"binary-args":          "*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\x00\xff\r\n",
	"partial-then-marker":  "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO",
}

// wireMarker follows every wire case: its reply ends the stream unless the
// case closed the connection (or left a request open, which then eats it).
const wireMarker = "*2\r\n$4\r\nECHO\r\n$6\r\nMARKER\r\n"

// wireExchange sends in and the marker on a fresh connection and returns
// every byte received until the marker's reply, the server closing, or a
// second of silence.
func wireExchange(t *testing.T, addr, in string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(in + wireMarker)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for !strings.HasSuffix(string(got), "$6\r\nMARKER\r\n") {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(got)
}

func TestWireMatchesRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	compareWire(t, wireCases, redisAddr, startServer(t, nil).Addr())
	// redcon's server, behind resp.GuardedConn, answers the same.
	t.Run("redcon", func(t *testing.T) {
		t.Cleanup(gatewayserver.ServeWithRedcon())
		compareWire(t, wireCases, redisAddr, startServer(t, nil).Addr())
	})
}

// Before AUTH, Redis refuses requests of more than 10 arguments or with an
// argument over 16 KiB.
func TestWireUnauthenticatedMatchesRedisServer(t *testing.T) {
	args := func(n int) string {
		return "*" + fmt.Sprint(n) + "\r\n" + strings.Repeat("$1\r\na\r\n", n)
	}
	cases := map[string]string{
		"noauth":          "*2\r\n$4\r\nPING\r\n$1\r\nx\r\n",
		"noauth-order":    "*1\r\n$6\r\nNOSUCH\r\n*1\r\n$3\r\nGET\r\n*3\r\n$3\r\nGET\r\n$1\r\nk\r\n$1\r\nx\r\nGET k\r\n",
		"ten-args":        args(10),
		"eleven-args":     args(11),
		"big-bulk":        "*2\r\n$4\r\nECHO\r\n$16385\r\n",
		"limit-bulk":      "*2\r\n$4\r\nECHO\r\n$16384\r\n" + strings.Repeat("b", 16384) + "\r\n",
		"after-auth":      "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n" + args(11) + "*2\r\n$4\r\nECHO\r\n$16385\r\n" + strings.Repeat("c", 16385) + "\r\n",
		"pipelined-auth":  "*2\r\n$4\r\nAUTH\r\n$5\r\nwrong\r\n" + args(11),
		"inline-no-limit": "ECHO " + strings.Repeat("d", 20000) + "\r\n",
	}
	redisAddr := startRedis(t, "--requirepass", "pw")
	requirePass := func(c *gatewayserver.Config) { c.RequirePass = "pw" }
	compareWire(t, cases, redisAddr, startServer(t, requirePass).Addr())
	// redcon's server enforces the limits in resp.GuardedConn instead.
	t.Run("redcon", func(t *testing.T) {
		t.Cleanup(gatewayserver.ServeWithRedcon())
		compareWire(t, cases, redisAddr, startServer(t, requirePass).Addr())
	})
}

// compareWire sends every case to both servers and compares the replies.
func compareWire(t *testing.T, cases map[string]string, redisAddr, ourAddr string) {
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		t.Run(name, func(t *testing.T) {
			in := cases[name]
			got, want := wireExchange(t, ourAddr, in), wireExchange(t, redisAddr, in)
			if got != want {
				t.Errorf("sent %.300q:\n nokv:  %.300q\n redis: %.300q", in, got, want)
			}
			if want == "" {
				t.Errorf("redis-server sent nothing for %q: the case tests nothing", in)
			}
		})
	}
}

// COMMAND INFO of every command (and subcommand) the gateway implements
// matches redis-server's, in RESP2 and RESP3. The containers themselves
// (CLIENT, COMMAND, CONFIG, SLOWLOG, LATENCY, MEMORY) are left out: Redis lists subcommands that the
// gateway does not have.
func TestCommandInfoMatchesRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	for _, proto := range []string{"2", "3"} {
		ours := conformance.DialRaw(t, srv.Addr())
		theirs := conformance.DialRaw(t, redisAddr)
		ours.Do("HELLO", proto)
		theirs.Do("HELLO", proto)
		names := strings.Fields(strings.NewReplacer("\r\n", " ").Replace(ours.Do("COMMAND", "LIST")))
		var checked int
		for _, field := range names {
			if strings.HasPrefix(field, "*") || strings.HasPrefix(field, "$") {
				continue
			}
			name := field
			subs := []string{name}
			switch name {
			case "client":
				subs = []string{"client|setname", "client|getname", "client|id", "client|info", "client|list",
					"client|kill", "client|pause", "client|unpause", "client|reply", "client|no-evict"}
			case "command":
				subs = []string{"command|count", "command|docs", "command|info", "command|list"}
			case "config":
				subs = []string{"config|get", "config|set", "config|resetstat", "config|help"}
			case "object":
				// Not the container: Redis lists its subcommands in the
				// order of a hash table with a random seed.
				subs = []string{"object|encoding", "object|freq", "object|help", "object|idletime", "object|refcount"}
			case "slowlog":
				subs = []string{"slowlog|get", "slowlog|len", "slowlog|reset", "slowlog|help"}
			case "latency":
				subs = []string{"latency|latest", "latency|reset", "latency|help"}
			case "memory":
				subs = []string{"memory|usage", "memory|help"}
			}
			for _, n := range subs {
				got, want := ours.Do("COMMAND", "INFO", n), theirs.Do("COMMAND", "INFO", n)
				if got != want {
					t.Errorf("RESP%s COMMAND INFO %s:\n nokv:  %q\n redis: %q", proto, n, got, want)
				}
				checked++
			}
		}
		if checked < 50 {
			t.Fatalf("RESP%s: only %d commands compared; COMMAND LIST gave %q", proto, checked, names)
		}
	}
}
