package gatewayserver_test

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
)

var (
	bulkShape   = regexp.MustCompile(`\$\d+\r\n[^\r]*\r\n`)
	doubleShape = regexp.MustCompile(`,[^\r]*\r\n`)
)

// shape masks a reply's strings and doubles: random draws differ, their
// types and counts must not.
func shape(reply string) string {
	return doubleShape.ReplaceAllString(bulkShape.ReplaceAllString(reply, "$X\r\n"), ",X\r\n")
}

// The replies of random draws that walk (collections over 128 elements,
// counts below a sixteenth of the size) have Redis's types and counts, in
// both protocols; so do the full-read paths of the same commands.
func TestRandomPickRepliesMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	cmds := [][]string{
		{"SRANDMEMBER", "s"}, {"SRANDMEMBER", "s", "5"}, {"SRANDMEMBER", "s", "-5"}, {"SRANDMEMBER", "s", "1"},
		{"SRANDMEMBER", "s", "-1"}, {"SRANDMEMBER", "s", "100"},
		{"HRANDFIELD", "h"}, {"HRANDFIELD", "h", "3"}, {"HRANDFIELD", "h", "-3"}, {"HRANDFIELD", "h", "1"},
		{"HRANDFIELD", "h", "3", "WITHVALUES"}, {"HRANDFIELD", "h", "-3", "WITHVALUES"}, {"HRANDFIELD", "h", "1", "WITHVALUES"},
		{"HRANDFIELD", "h", "-1", "WITHVALUES"}, {"HRANDFIELD", "h", "100", "WITHVALUES"},
		{"ZRANDMEMBER", "z"}, {"ZRANDMEMBER", "z", "3"}, {"ZRANDMEMBER", "z", "-3"}, {"ZRANDMEMBER", "z", "1"},
		{"ZRANDMEMBER", "z", "3", "WITHSCORES"}, {"ZRANDMEMBER", "z", "-3", "WITHSCORES"}, {"ZRANDMEMBER", "z", "1", "WITHSCORES"},
		{"ZRANDMEMBER", "z", "100", "WITHSCORES"},
		{"SPOP", "s"}, {"SPOP", "s", "1"}, {"SPOP", "s", "5"}, {"SPOP", "s", "0"}, {"SPOP", "s", "100"}, {"SCARD", "s"},
		{"SPOP", "nokey"}, {"SRANDMEMBER", "nokey"}, {"HRANDFIELD", "nokey"}, {"ZRANDMEMBER", "nokey"},
		{"SRANDMEMBER", "nokey", "-5"}, {"HRANDFIELD", "nokey", "-5", "WITHVALUES"}, {"ZRANDMEMBER", "nokey", "5", "WITHSCORES"},
	}
	for _, proto := range []string{"2", "3"} {
		t.Run("RESP"+proto, func(t *testing.T) {
			ours, theirs := conformance.DialRaw(t, srv.Addr()), conformance.DialRaw(t, redisAddr)
			for _, c := range []*conformance.RawConn{ours, theirs} {
				c.Do("HELLO", proto)
				c.Do("FLUSHALL")
				for i := 0; i < 2000; i += 500 {
					sadd, hset, zadd := []string{"SADD", "s"}, []string{"HSET", "h"}, []string{"ZADD", "z"}
					for j := i; j < i+500; j++ {
						m := fmt.Sprintf("m:%04d", j)
						sadd = append(sadd, m)
						hset = append(hset, m, "v"+m)
						zadd = append(zadd, fmt.Sprint(j), m)
					}
					c.Do(sadd...)
					c.Do(hset...)
					c.Do(zadd...)
				}
			}
			for _, cmd := range cmds {
				got, want := ours.Do(cmd...), theirs.Do(cmd...)
				if shape(got) != shape(want) {
					t.Errorf("%q: got %q, redis-server %q", cmd, got, want)
				}
			}
		})
	}
}
