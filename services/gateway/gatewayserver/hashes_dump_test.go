package gatewayserver_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
)

// DUMP of a hash on either server RESTOREs on the other with the same
// fields, values and encoding: Redis 7.0's listpack payloads, and the
// gateway's RDB_TYPE_HASH ones.
func TestHashDumpRestoreWithRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	ours, theirs := conformance.DialRaw(t, srv.Addr()), conformance.DialRaw(t, redisAddr)
	cases := map[string][]string{
		"small": {"a", "1", "b", "-5", "c", "hello", "d", "12345678901", "e", ""},
		"long":  {"x", strings.Repeat("y", 70)},
	}
	var ints []string
	for i, v := range []string{"0", "127", "128", "-1", "-4096", "4095", "4096", "-32768", "32767", "8388607", "-8388608",
		"2147483647", "-2147483648", "9223372036854775807", "-9223372036854775808", "12", "13", "-0", "007"} {
		ints = append(ints, fmt.Sprint(i), v)
	}
	cases["ints"] = ints
	var big []string
	for i := range 200 {
		big = append(big, fmt.Sprint("f", i), strings.Repeat("v", i%80))
	}
	cases["big"] = big
	fieldsOf := func(c *conformance.RawConn, key string) string {
		parts := strings.Split(c.Do("HGETALL", key), "\r\n")
		var pairs []string
		for i := 1; i+3 < len(parts); i += 4 {
			pairs = append(pairs, parts[i+1]+"="+parts[i+3])
		}
		slices.Sort(pairs)
		return strings.Join(pairs, ";")
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range cases {
			if !yield(k) {
				return
			}
		}
	}) {
		args := append([]string{"HSET", name}, cases[name]...)
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
			if a, b := fieldsOf(dir.from, name), fieldsOf(dir.to, copyKey); a != b || a == "" {
				t.Fatalf("%s %s: restored %q, dumped %q", name, dir.label, b, a)
			}
			if a, b := dir.from.Do("OBJECT", "ENCODING", name), dir.to.Do("OBJECT", "ENCODING", copyKey); a != b {
				t.Fatalf("%s %s: encoding %q, restored as %q", name, dir.label, a, b)
			}
			// Over an existing key: BUSYKEY, then REPLACE with a TTL; a
			// corrupt payload is refused as Redis refuses it.
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"RESTORE", copyKey, "0", payload}, "-BUSYKEY Target key name already exists.\r\n"},
				{[]string{"RESTORE", copyKey, "100000", payload, "REPLACE"}, "+OK\r\n"},
				{[]string{"TTL", copyKey}, ":100\r\n"},
				{[]string{"HLEN", copyKey}, dir.from.Do("HLEN", name)},
				{[]string{"RESTORE", copyKey, "0", corruptLast(payload), "REPLACE"}, "-ERR DUMP payload version or checksum are wrong\r\n"},
			} {
				if got := dir.to.Do(c.args...); got != c.want {
					t.Fatalf("%s %s: %q = %q, want %q", name, dir.label, c.args[:2], got, c.want)
				}
			}
		}
	}
}

// corruptLast changes a DUMP payload's last byte (part of its CRC64) to
// another value. Redis's payload of a hashtable follows its dict's order,
// which a per-process seed randomizes: a fixed replacement byte was the
// byte already there once in 256 runs, and the "corrupt" payload restored.
func corruptLast(payload string) string {
	last := payload[len(payload)-1]
	return payload[:len(payload)-1] + string([]byte{last ^ 0xff})
}
