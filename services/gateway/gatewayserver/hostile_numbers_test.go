package gatewayserver_test

import (
	"strings"
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// extremeSequences put extreme numbers in the numeric arguments of the
// string and keyspace commands; every reply must match redis-server's.
// (Values whose reply depends on the clock, such as TTL after a relative
// expiry, are read back only through EXPIRETIME of absolute deadlines.)
var extremeSequences = map[string][]step{
	"setrange": {
		cmd("SETRANGE", "k", "9223372036854775807", "A"), cmd("SETRANGE", "k", "9223372036854775807", ""),
		cmd("SETRANGE", "k", "-9223372036854775808", "A"), cmd("SETRANGE", "k", "-1", "A"), cmd("SETRANGE", "k", "-1", ""),
		cmd("SETRANGE", "k", "18446744073709551616", "A"), cmd("SETRANGE", "k", "536870912", "A"),
		cmd("SETRANGE", "k", "536870911", "AB"), cmd("SETRANGE", "k", "0", ""), cmd("EXISTS", "k"),
		cmd("SET", "s", "abc"), cmd("SETRANGE", "s", "9223372036854775807", ""), cmd("SETRANGE", "s", "99999999999", ""),
		cmd("SETRANGE", "s", "9223372036854775806", "xy"), cmd("SETRANGE", "s", "1", "Z"), cmd("GET", "s"),
		cmd("SETRANGE", "s", "0", ""), cmd("SETRANGE", "s", "2147483648", "x"),
	},
	"getrange": {
		cmd("SET", "s", "hello"), cmd("GETRANGE", "s", "0", "9223372036854775807"),
		cmd("GETRANGE", "s", "-9223372036854775808", "-1"), cmd("GETRANGE", "s", "-9223372036854775808", "9223372036854775807"),
		cmd("GETRANGE", "s", "9223372036854775807", "-9223372036854775808"), cmd("GETRANGE", "s", "-1", "-9223372036854775808"),
		cmd("GETRANGE", "s", "18446744073709551616", "1"), cmd("GETRANGE", "s", "0", "-0"), cmd("GETRANGE", "s", "-2147483649", "2147483648"),
		cmd("SUBSTR", "s", "1", "3"), cmd("SUBSTR", "s", "-9223372036854775808", "9223372036854775807"), cmd("SUBSTR", "s"),
		cmd("SUBSTR", "nokey", "0", "-1"), cmd("GETRANGE", "nokey", "0", "x"),
	},
	"counters": {
		cmd("INCRBY", "n", "9223372036854775807"), cmd("INCRBY", "n", "1"), cmd("INCRBY", "n", "-9223372036854775808"),
		cmd("DECRBY", "n", "-9223372036854775808"), cmd("DECRBY", "n", "9223372036854775807"), cmd("DECRBY", "n", "9223372036854775807"),
		cmd("INCRBY", "n", "18446744073709551616"), cmd("INCRBY", "n", "-9223372036854775809"), cmd("INCRBY", "n", "99999999999999999999999"),
		cmd("SET", "m", "-9223372036854775808"), cmd("DECR", "m"), cmd("INCRBY", "m", "-1"), cmd("DECRBY", "m", "1"),
		cmd("INCRBYFLOAT", "f", "1e308"), cmd("INCRBYFLOAT", "f", "1e308"), cmd("INCRBYFLOAT", "f", strings.Repeat("9", 400)),
		cmd("INCRBYFLOAT", "f", "-"+strings.Repeat("1", 6000)), cmd("INCRBYFLOAT", "f", "0."+strings.Repeat("0", 6000)+"1"),
	},
	"expiry-options": {
		// Redis 7.0 accepts the same expiry option again; the last one wins
		// and only it is judged.
		cmd("SET", "k", "v", "EXAT", "4102444800", "EXAT", "4102444801"), cmd("EXPIRETIME", "k"),
		cmd("SET", "k", "v", "PXAT", "abc", "PXAT", "4102444800123"), cmd("PEXPIRETIME", "k"),
		cmd("SET", "k", "v", "EX", "10", "PX", "10"), cmd("SET", "k", "v", "EX", "10", "KEEPTTL"),
		cmd("SET", "k", "v", "KEEPTTL", "KEEPTTL"), cmd("SET", "k", "v", "NX", "NX"), cmd("SET", "k", "v", "GET", "GET"),
		cmd("SET", "k", "v", "XX", "XX"), cmd("SET", "k", "v", "NX", "XX"),
		cmd("GETEX", "k", "EXAT", "4102444800", "EXAT", "4102444802"), cmd("EXPIRETIME", "k"),
		cmd("GETEX", "k", "PERSIST", "PERSIST"), cmd("TTL", "k"), cmd("GETEX", "k", "EX", "5", "PERSIST"),
		cmd("GETEX", "k", "PERSIST", "EX", "5"), cmd("GETEX", "k", "EX", "5", "PX", "5"),
		cmd("SET", "k", "v", "EX", "0"), cmd("SET", "k", "v", "EX", "-1"), cmd("SET", "k", "v", "EX", "9223372036854775807"),
		cmd("SET", "k", "v", "EX", "9223372036854775"), cmd("SET", "k", "v", "PX", "9223372036854775807"),
		cmd("SET", "k", "v", "EXAT", "9223372036854775807"), cmd("SET", "k", "v", "PXAT", "9223372036854775807"), cmd("PEXPIRETIME", "k"),
		cmd("EXPIRETIME", "k"), cmd("SET", "k", "v", "EX", "18446744073709551616"), cmd("SETEX", "k", "-9223372036854775808", "v"),
		cmd("PSETEX", "k", "0", "v"), cmd("GETEX", "k", "PX", "-1"), cmd("GETEX", "nokey", "PX", "-1"),
	},
	"expire": {
		cmd("SET", "k", "v"), cmd("PEXPIREAT", "k", "9223372036854775807"), cmd("EXPIRETIME", "k"), cmd("PEXPIRETIME", "k"),
		cmd("PEXPIREAT", "k", "9223372036854775300"), cmd("EXPIRETIME", "k"), cmd("PEXPIREAT", "k", "4102444800499"),
		cmd("EXPIRETIME", "k"), cmd("PEXPIREAT", "k", "4102444800500"), cmd("EXPIRETIME", "k"),
		cmd("EXPIREAT", "k", "9223372036854775"), cmd("EXPIREAT", "k", "9223372036854776"), cmd("EXPIRE", "k", "-9223372036854775808"),
		cmd("SET", "k", "v"), cmd("PEXPIRE", "k", "-9223372036854775808"), cmd("EXISTS", "k"), cmd("SET", "k", "v"),
		cmd("EXPIRE", "k", "9223372036854775807"), cmd("PEXPIRE", "k", "9223372036854775807"), cmd("EXPIRE", "k", "18446744073709551616"),
		cmd("EXPIREAT", "k", "-9223372036854775808"), cmd("EXISTS", "k"),
	},
	"scan": {
		// Any cursor up to 2^64-1 is accepted. (Which keys a made-up cursor
		// returns differs: Redis's is a hash table position, ours a key.)
		cmd("SCAN", "18446744073709551615"), cmd("SCAN", "18446744073709551616"), cmd("SET", "a", "1"),
		cmd("SCAN", "0", "COUNT", "9223372036854775807"), cmd("SCAN", "0", "COUNT", "-9223372036854775808"),
		cmd("SCAN", "0", "COUNT", "18446744073709551616"), cmd("SCAN", "0", "COUNT", "2147483648"),
		cmd("SELECT", "9223372036854775807"), cmd("SELECT", "-1"),
	},
	"client": {
		cmd("CLIENT", "LIST", "ID", "0"), cmd("CLIENT", "LIST", "ID", "-1"), cmd("CLIENT", "LIST", "ID", "9223372036854775807"),
		cmd("CLIENT", "LIST", "ID", "-9223372036854775808", "0"), cmd("CLIENT", "LIST", "ID", "18446744073709551616"),
		cmd("CLIENT", "LIST", "ID", "abc"), cmd("CLIENT", "LIST", "ID", "0", "x"), cmd("CLIENT", "LIST", "ID"),
		cmd("CLIENT", "LIST", "TYPE", "foo"), cmd("CLIENT", "LIST", "TYPE", "Replica"), cmd("CLIENT", "LIST", "TYPE", "pubsub"),
		cmd("CLIENT", "LIST", "TYPE", "normal", "x"), cmd("CLIENT", "LIST", "x"),
		cmd("HELLO", "99999999999999999999"), cmd("HELLO", "-9223372036854775808"), cmd("HELLO", "0"),
	},
}

func TestExtremeNumbersMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	for name, steps := range extremeSequences {
		t.Run(name, func(t *testing.T) {
			ours := conformance.DialRaw(t, srv.Addr())
			theirs := conformance.DialRaw(t, redisAddr)
			ours.Do("FLUSHALL")
			theirs.Do("FLUSHALL")
			for i, st := range steps {
				got, want := ours.Do(st.args...), theirs.Do(st.args...)
				if got != want {
					t.Errorf("step %d %.200q:\n nokv:  %.300q\n redis: %.300q", i, strings.Join(st.args, " "), got, want)
				}
			}
		})
	}
}

// CONFIG GET reports the buffer limits as Redis does (here set to Redis's
// defaults, which differ from ours only in the hard output limit).
func TestConfigGetBufferLimitsMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, func(c *gatewayserver.Config) {
		c.ClientOutputBufferLimit = gatewayserver.OutputBufferLimit{}
	})
	ours := conformance.DialRaw(t, srv.Addr())
	theirs := conformance.DialRaw(t, redisAddr)
	for _, p := range []string{"client-query-buffer-limit", "client-output-buffer-limit"} {
		if got, want := ours.Do("CONFIG", "GET", p), theirs.Do("CONFIG", "GET", p); got != want {
			t.Errorf("CONFIG GET %s:\n nokv:  %q\n redis: %q", p, got, want)
		}
	}
}
