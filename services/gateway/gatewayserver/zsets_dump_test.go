package gatewayserver_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
)

// DUMP of a sorted set on either server RESTOREs on the other with the
// same members, scores (byte for byte, as ZRANGE WITHSCORES prints them)
// and encoding: Redis 7.0's listpack and ZSET_2 payloads, and the
// gateway's ZSET_2 ones.
func TestZSetDumpRestoreWithRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	ours, theirs := conformance.DialRaw(t, srv.Addr()), conformance.DialRaw(t, redisAddr)
	cases := map[string][]string{
		"small": {"1", "a", "-5", "b", "0.1", "c", "12345678901", "d", "inf", "e", "-inf", "f", "-0", "g", "5e-324", "h", "1e308", "i"},
		"long":  {"1.5", strings.Repeat("y", 70), "-0", "nz", "1e17", "e17", "4611686018427387905", "big"},
	}
	var big []string
	for i := range 200 {
		big = append(big, fmt.Sprint(float64(i)/7-10), fmt.Sprint("m", i))
	}
	cases["big"] = big
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range cases {
			if !yield(k) {
				return
			}
		}
	}) {
		args := append([]string{"ZADD", name}, cases[name]...)
		ours.Do(args...)
		theirs.Do(args...)
		for _, dir := range []struct {
			label    string
			from, to *conformance.RawConn
		}{{"redis-to-nokv", theirs, ours}, {"nokv-to-redis", ours, theirs}} {
			payload := bulkBody(t, dir.from.Do("DUMP", name))
			copyKey := name + ":" + dir.label
			if got := dir.to.Do("RESTORE", copyKey, "0", payload); got != "+OK\r\n" {
				t.Fatalf("%s %s: RESTORE = %q", name, dir.label, got)
			}
			a, b := dir.from.Do("ZRANGE", name, "0", "-1", "WITHSCORES"), dir.to.Do("ZRANGE", copyKey, "0", "-1", "WITHSCORES")
			if a != b || !strings.HasPrefix(a, "*") || a == "*0\r\n" {
				t.Fatalf("%s %s: restored %q, dumped %q", name, dir.label, b, a)
			}
			if a, b := dir.from.Do("OBJECT", "ENCODING", name), dir.to.Do("OBJECT", "ENCODING", copyKey); a != b {
				t.Fatalf("%s %s: encoding %q, restored as %q", name, dir.label, a, b)
			}
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"RESTORE", copyKey, "0", payload}, "-BUSYKEY Target key name already exists.\r\n"},
				{[]string{"RESTORE", copyKey, "100000", payload, "REPLACE"}, "+OK\r\n"},
				{[]string{"TTL", copyKey}, ":100\r\n"},
				{[]string{"ZCARD", copyKey}, dir.from.Do("ZCARD", name)},
				{[]string{"RESTORE", copyKey, "0", corruptLast(payload), "REPLACE"}, "-ERR DUMP payload version or checksum are wrong\r\n"},
			} {
				if got := dir.to.Do(c.args...); got != c.want {
					t.Fatalf("%s %s: %q = %q, want %q", name, dir.label, c.args[:2], got, c.want)
				}
			}
		}
	}
}
