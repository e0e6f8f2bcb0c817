package gatewayserver_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/internal/rdb"
)

// Byte-for-byte comparison of OBJECT, DUMP and RESTORE with redis-server:
// fixed cases with every error path, DUMP of thousands of random strings,
// and payloads carried from each server to the other.

// bulkBody returns the payload of a RESP bulk reply.
func bulkBody(t *testing.T, reply string) string {
	t.Helper()
	head, rest, ok := strings.Cut(reply, "\r\n")
	if !ok || head == "" || head[0] != '$' {
		t.Fatalf("not a bulk reply: %.200q", reply)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 || len(rest) != n+2 {
		t.Fatalf("bad bulk reply: %.200q", reply)
	}
	return rest[:n]
}

// seal makes a DUMP payload of body: RDB version 10 and its CRC-64.
func seal(body string) string { return string(rdb.Seal([]byte(body))) }

// sealVersion is seal with another RDB version.
func sealVersion(body string, version uint16) string {
	p := binary.LittleEndian.AppendUint16([]byte(body), version)
	return string(binary.LittleEndian.AppendUint64(p, rdb.CRC64(0, p)))
}

func dumpSteps(payloads map[string]string) []step {
	hello, num, long := payloads["hello"], payloads["123"], payloads["long"]
	badCRC := []byte(hello)
	badCRC[len(badCRC)-1] ^= 0xff
	body := hello[:len(hello)-10]
	return []step{
		// OBJECT on strings as SET and friends write them.
		cmd("SET", "k", "123"), cmd("OBJECT", "ENCODING", "k"), cmd("OBJECT", "REFCOUNT", "k"),
		cmd("SET", "k", "9999"), cmd("OBJECT", "REFCOUNT", "k"), cmd("SET", "k", "10000"), cmd("OBJECT", "REFCOUNT", "k"),
		cmd("OBJECT", "ENCODING", "k"), cmd("SET", "k", "0"), cmd("OBJECT", "REFCOUNT", "k"),
		cmd("SET", "k", "-1"), cmd("OBJECT", "ENCODING", "k"), cmd("OBJECT", "REFCOUNT", "k"),
		cmd("SET", "k", "-0"), cmd("OBJECT", "ENCODING", "k"), cmd("SET", "k", "007"), cmd("OBJECT", "ENCODING", "k"),
		cmd("SET", "k", "+1"), cmd("OBJECT", "ENCODING", "k"), cmd("SET", "k", " 1"), cmd("OBJECT", "ENCODING", "k"),
		cmd("SET", "k", "1.5"), cmd("OBJECT", "ENCODING", "k"),
		cmd("SET", "k", "9223372036854775807"), cmd("OBJECT", "ENCODING", "k"), cmd("OBJECT", "REFCOUNT", "k"),
		cmd("SET", "k", "-9223372036854775808"), cmd("OBJECT", "ENCODING", "k"),
		cmd("SET", "k", "9223372036854775808"), cmd("OBJECT", "ENCODING", "k"),
		cmd("SET", "k", "12345678901234567890"), cmd("OBJECT", "ENCODING", "k"),
		cmd("SET", "k", ""), cmd("OBJECT", "ENCODING", "k"), cmd("OBJECT", "REFCOUNT", "k"),
		cmd("SET", "k", strings.Repeat("x", 44)), cmd("OBJECT", "ENCODING", "k"),
		cmd("SET", "k", strings.Repeat("x", 45)), cmd("OBJECT", "ENCODING", "k"), cmd("OBJECT", "REFCOUNT", "k"),
		cmd("SET", "k", strings.Repeat("y", 100000)), cmd("OBJECT", "encoding", "k"),
		cmd("MSET", "m1", "5", "m2", "abc"), cmd("OBJECT", "ENCODING", "m1"), cmd("OBJECT", "REFCOUNT", "m1"), cmd("OBJECT", "ENCODING", "m2"),
		cmd("SETNX", "n1", "77"), cmd("OBJECT", "ENCODING", "n1"), cmd("SETEX", "s1", "100", "88888"), cmd("OBJECT", "REFCOUNT", "s1"),
		cmd("GETSET", "n1", "x"), cmd("OBJECT", "ENCODING", "n1"),
		cmd("INCR", "c"), cmd("OBJECT", "ENCODING", "c"), cmd("OBJECT", "REFCOUNT", "c"), cmd("INCRBY", "c", "20000"),
		cmd("OBJECT", "ENCODING", "c"), cmd("OBJECT", "REFCOUNT", "c"), cmd("DECRBY", "c", "30000"), cmd("OBJECT", "REFCOUNT", "c"),
		cmd("RENAME", "c", "c2"), cmd("OBJECT", "ENCODING", "c2"), cmd("EXPIRE", "c2", "100"), cmd("OBJECT", "ENCODING", "c2"),
		// Missing keys, FREQ, HELP, and every error.
		cmd("OBJECT", "ENCODING", "nokey"), cmd("OBJECT", "REFCOUNT", "nokey"), cmd("OBJECT", "IDLETIME", "nokey"),
		cmd("OBJECT", "FREQ", "nokey"), cmd("OBJECT", "FREQ", "k"), cmd("OBJECT", "freq", "k"),
		cmd("OBJECT", "HELP"), cmd("object", "help"), cmd("OBJECT", "HELP", "x"), cmd("OBJECT"), cmd("OBJECT", "FOO"),
		cmd("OBJECT", "FOO", "k"), cmd("OBJECT", "ENCODING"), cmd("OBJECT", "ENCODING", "k", "k"), cmd("OBJECT", "REFCOUNT"),
		cmd("OBJECT", "IDLETIME"), cmd("OBJECT", "FREQ"), cmd("OBJECT", "IDLETIME", "a", "b"), cmd("OBJECT", ""),
		cmd("OBJECT", strings.Repeat("z", 200)),

		// DUMP.
		cmd("DUMP", "nokey"), cmd("DUMP"), cmd("DUMP", "a", "b"), cmd("SET", "d1", "hello"), cmd("DUMP", "d1"),
		cmd("SET", "d2", "-32769"), cmd("DUMP", "d2"), cmd("SET", "d3", strings.Repeat("abcdefgh", 40)), cmd("DUMP", "d3"),
		cmd("SET", "d4", "2147483648"), cmd("DUMP", "d4"), cmd("SET", "d5", ""), cmd("DUMP", "d5"),
		cmd("SET", "d6", "12345678901234567890123"), cmd("DUMP", "d6"), cmd("APPEND", "d6", "abc"), cmd("DUMP", "d6"),
		cmd("SETRANGE", "d7", "30", "x"), cmd("DUMP", "d7"), cmd("INCRBYFLOAT", "d8", "1.5"), cmd("DUMP", "d8"),
		cmd("SET", "d9", "v", "EX", "1000"), cmd("DUMP", "d9"),

		// RESTORE: the payload's value, TTL and options.
		cmd("RESTORE", "r", "0", hello), cmd("GET", "r"), cmd("TTL", "r"), cmd("OBJECT", "ENCODING", "r"),
		cmd("RESTORE", "r", "0", hello), cmd("RESTORE", "r", "0", num, "REPLACE"), cmd("GET", "r"),
		cmd("OBJECT", "ENCODING", "r"), cmd("OBJECT", "REFCOUNT", "r"),
		cmd("RESTORE", "r", "0", long, "replace"), cmd("STRLEN", "r"), cmd("OBJECT", "ENCODING", "r"),
		// An existing key is refused before the TTL and the payload are judged.
		cmd("RESTORE", "r", "x", "garbage"), cmd("RESTORE", "r", "-1", hello), cmd("RESTORE", "r", "0", "", "REPLACE"),
		cmd("RESTORE", "r2", "x", hello), cmd("RESTORE", "r2", "-1", hello), cmd("RESTORE", "r2", "1.5", hello),
		cmd("RESTORE", "r2", "", hello), cmd("RESTORE", "r2", "-9223372036854775808", hello),
		cmd("RESTORE", "r2", "0", ""), cmd("RESTORE", "r2", "0", "short"), cmd("RESTORE", "r2", "0", string(badCRC)),
		cmd("RESTORE", "r2", "0", sealVersion(body, 11)),
		cmd("RESTORE", "r6a", "0", sealVersion(body, 9)), cmd("RESTORE", "r6b", "0", sealVersion(body, 0)), cmd("GET", "r6b"), cmd("RESTORE", "r2", "0", strings.Repeat("\x00", 10)),
		cmd("RESTORE", "r2", "0", seal("\x00\xc4")), cmd("RESTORE", "r2", "0", seal("\x08")),
		cmd("RESTORE", "r2", "0", seal("\x00\x7f")), cmd("RESTORE", "r2", "0", seal("\x00\xc3\x02\x80\xff\xff\xff\xff\x00a")),
		cmd("RESTORE", "r2", "0", seal("\x00\xc3\x02\x05\x00a")), cmd("RESTORE", "r2", "0", seal("\x00\xc0")),
		cmd("EXISTS", "r2"),
		// Payloads Redis accepts though DUMP never writes them.
		cmd("RESTORE", "r3", "0", seal("\x00\x04ab")), cmd("GET", "r3"), cmd("RESTORE", "r4", "0", seal("\x00\x01vXYZ")), cmd("GET", "r4"),
		cmd("RESTORE", "r5", "0", seal("\x00\x80\x00\x00\x00\x02ok")), cmd("GET", "r5"),
		cmd("RESTORE", "r6", "0", seal("\x00\xc3\x02\x00\x05x")), cmd("GET", "r6"), cmd("EXISTS", "r6"),
		cmd("RESTORE", "r7", "0", seal("\x00\xc2\x00\x00\x00\x80")), cmd("GET", "r7"),
		cmd("RESTORE", "r8", "0", seal("\x00\x03007")), cmd("GET", "r8"), cmd("OBJECT", "ENCODING", "r8"),
		// Options.
		cmd("RESTORE", "o", "0", hello, "FOO"), cmd("RESTORE", "o", "0", hello, "REPLACE", "REPLACE", "ABSTTL", "ABSTTL"), cmd("GET", "o"),
		cmd("RESTORE", "o", "0", hello, "IDLETIME"), cmd("RESTORE", "o", "0", hello, "FREQ"),
		cmd("RESTORE", "o", "0", hello, "REPLACE", "IDLETIME", "-1"), cmd("RESTORE", "o", "0", hello, "REPLACE", "IDLETIME", "x"),
		cmd("RESTORE", "o", "0", hello, "REPLACE", "IDLETIME", "1000"), cmd("OBJECT", "FREQ", "o"),
		cmd("RESTORE", "o", "0", hello, "REPLACE", "FREQ", "256"), cmd("RESTORE", "o", "0", hello, "REPLACE", "FREQ", "-1"),
		cmd("RESTORE", "o", "0", hello, "REPLACE", "FREQ", "x"), cmd("RESTORE", "o", "0", hello, "REPLACE", "FREQ", "255"),
		cmd("RESTORE", "o", "0", hello, "REPLACE", "FREQ", "0"), cmd("OBJECT", "FREQ", "o"),
		cmd("RESTORE", "o", "0", hello, "REPLACE", "IDLETIME", "10", "FREQ", "5"),
		cmd("RESTORE", "o", "0", hello, "REPLACE", "FREQ", "5", "IDLETIME", "10"),
		cmd("RESTORE", "o", "0", hello, "REPLACE", "IDLETIME", "10", "IDLETIME", "20"),
		cmd("RESTORE", "o", "0", hello, "REPLACE", "FREQ", "5", "FREQ", "6"),
		cmd("RESTORE", "o", "0", hello, "IDLETIME", "-1", "FOO"), cmd("RESTORE", "o", "x", hello, "FOO"),
		// TTLs: relative, absolute, in the past (nothing created, and with
		// REPLACE the old key deleted), and near 2^63, where Redis's sum wraps.
		cmd("RESTORE", "t1", "100000", hello), cmd("TTL", "t1"),
		cmd("RESTORE", "t2", "4102444800000", hello, "ABSTTL"), cmd("PEXPIRETIME", "t2"),
		cmd("RESTORE", "t3", "1", hello, "ABSTTL"), cmd("EXISTS", "t3"),
		cmd("SET", "t4", "old"), cmd("RESTORE", "t4", "1", hello, "ABSTTL", "REPLACE"), cmd("EXISTS", "t4"),
		cmd("SET", "t5", "old", "EX", "100"), cmd("RESTORE", "t5", "0", hello, "REPLACE"), cmd("TTL", "t5"),
		cmd("RESTORE", "t6", "9223372036854775807", hello), cmd("EXISTS", "t6"),
		cmd("RESTORE", "t7", "9223372036854775807", hello, "ABSTTL"), cmd("PEXPIRETIME", "t7"),
		cmd("RESTORE", "t8", "9223372036854775808", hello), cmd("RESTORE", "t9", "0", hello, "ABSTTL"), cmd("TTL", "t9"),
		cmd("RESTORE"), cmd("RESTORE", "k"), cmd("RESTORE", "k", "0"),

		// In a transaction.
		cmd("MULTI"), cmd("SET", "x", "42"), cmd("OBJECT", "ENCODING", "x"), cmd("DUMP", "x"), cmd("RESTORE", "x2", "0", hello),
		cmd("RESTORE", "x2", "0", hello), cmd("OBJECT", "REFCOUNT", "x"), cmd("EXEC"), cmd("GET", "x2"),
	}
}

// TestDumpRestoreObjectMatchRedisServer runs the fixed cases on both
// servers, in RESP2 and RESP3.
func TestDumpRestoreObjectMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	theirs := conformance.DialRaw(t, redisAddr)
	// The payloads come from redis-server's own DUMP.
	payloads := map[string]string{}
	for name, v := range map[string]string{"hello": "hello", "123": "123", "long": strings.Repeat("0123456789", 30)} {
		theirs.Do("SET", "p", v)
		payloads[name] = bulkBody(t, theirs.Do("DUMP", "p"))
	}
	for _, proto := range []string{"2", "3"} {
		t.Run("RESP"+proto, func(t *testing.T) {
			ours := conformance.DialRaw(t, srv.Addr())
			theirs := conformance.DialRaw(t, redisAddr)
			ours.Do("HELLO", proto)
			theirs.Do("HELLO", proto)
			ours.Do("FLUSHALL")
			theirs.Do("FLUSHALL")
			for i, st := range dumpSteps(payloads) {
				got, want := ours.Do(st.args...), theirs.Do(st.args...)
				if got != want {
					t.Errorf("step %d %.200q:\n nokv:  %.300q\n redis: %.300q", i, strings.Join(st.args, " "), got, want)
				}
			}
		})
	}
}

// OBJECT IDLETIME is 0 here (no access clock is kept); redis-server's is
// the seconds since the last write, 0 or 1 just after it.
func TestObjectIdletime(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	for _, addr := range []string{srv.Addr(), redisAddr} {
		c := conformance.DialRaw(t, addr)
		c.Do("SET", "k", "v")
		if got := c.Do("OBJECT", "IDLETIME", "k"); got != ":0\r\n" && !(addr == redisAddr && got == ":1\r\n") {
			t.Errorf("%s: OBJECT IDLETIME just after SET = %q", addr, got)
		}
	}
}

// TestDumpOfRandomStringsMatchesRedisServer: every string, of lengths from
// 0 to 200 KiB and contents from one repeated byte to noise, dumps to the
// same bytes on both servers, OBJECT says the same of it, and each server
// restores the other's payload to the same value.
func TestDumpOfRandomStringsMatchesRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	ours := conformance.DialRaw(t, srv.Addr())
	theirs := conformance.DialRaw(t, redisAddr)
	rng := rand.New(rand.NewPCG(7, 8))
	n := 600
	if testing.Short() {
		n = 100
	}
	for i := range n {
		v := randomValue(rng, i)
		key := fmt.Sprintf("k%d", i)
		for _, c := range []*conformance.RawConn{ours, theirs} {
			if r := c.Do("SET", key, v); r != "+OK\r\n" {
				t.Fatalf("SET: %q", r)
			}
		}
		got, want := ours.Do("DUMP", key), theirs.Do("DUMP", key)
		if got != want {
			t.Fatalf("DUMP of %d bytes %.40q:\n nokv:  %.200q\n redis: %.200q", len(v), v, got, want)
		}
		for _, sub := range []string{"ENCODING", "REFCOUNT"} {
			if got, want := ours.Do("OBJECT", sub, key), theirs.Do("OBJECT", sub, key); got != want {
				t.Fatalf("OBJECT %s of %.40q: nokv %q, redis %q", sub, v, got, want)
			}
		}
		// Each restores the other's payload.
		payload := bulkBody(t, want)
		if r := ours.Do("RESTORE", key+":r", "0", payload); r != "+OK\r\n" {
			t.Fatalf("RESTORE of redis's payload: %q", r)
		}
		if r := theirs.Do("RESTORE", key+":r", "0", bulkBody(t, got)); r != "+OK\r\n" {
			t.Fatalf("redis RESTORE of our payload: %q", r)
		}
		want = "$" + strconv.Itoa(len(v)) + "\r\n" + v + "\r\n"
		if r := ours.Do("GET", key+":r"); r != want {
			t.Fatalf("GET after RESTORE of redis's payload of %.40q: %.100q", v, r)
		}
		if r := theirs.Do("GET", key+":r"); r != want {
			t.Fatalf("redis GET after RESTORE of our payload of %.40q: %.100q", v, r)
		}
		// Keys are kept: a value's memory reused for a later one could
		// make redis-server's compressor differ (internal/rdb's lzfTable).
	}
}

func randomValue(rng *rand.Rand, i int) string {
	switch i % 8 {
	case 0:
		return strconv.FormatInt(rng.Int64()>>rng.IntN(64)*int64(1-2*rng.IntN(2)), 10)
	case 1:
		return strconv.Itoa(rng.IntN(20000) - 5000)
	}
	n := []int{rng.IntN(50), rng.IntN(300), rng.IntN(5000), rng.IntN(200 << 10)}[rng.IntN(4)]
	alphabet := []string{"a", "ab", "abcd", "0123456789", "the quick brown fox ", "\x00\xff\r\n"}[rng.IntN(6)]
	var b strings.Builder
	switch rng.IntN(3) {
	case 0: // noise
		for range n {
			b.WriteByte(byte(rng.IntN(256)))
		}
	case 1: // a small alphabet
		for range n {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
	default: // phrases repeated with changes
		for b.Len() < n {
			if rng.IntN(4) == 0 {
				b.WriteByte(byte(rng.IntN(256)))
			} else {
				b.WriteString(alphabet)
			}
		}
	}
	return b.String()
}
