package gatewayserver_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// Byte-for-byte comparison of LCS with redis-server: every option, error
// and its order, extreme MINMATCHLEN values, random strings (so that ties
// in the walk back are broken as Redis breaks them), and the table-size
// limit at a small proto-max-bulk-len.

func lcsFixedSteps() []step {
	s := []step{
		cmd("SET", "a", "ohmytext"), cmd("SET", "b", "mynewtext"), cmd("SET", "e", ""),
		cmd("LCS", "a", "b"), cmd("LCS", "a", "b", "LEN"), cmd("LCS", "a", "b", "IDX"), cmd("LCS", "a", "b", "idx", "withmatchlen"),
		cmd("LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"), cmd("LCS", "a", "b", "LEN", "IDX"),
		cmd("LCS", "a", "b", "IDX", "LEN"), cmd("LCS", "a", "b", "LEN", "LEN"), cmd("LCS", "a", "b", "WITHMATCHLEN"),
		cmd("LCS", "a", "b", "MINMATCHLEN", "2"), cmd("LCS", "a", "b", "MINMATCHLEN"), cmd("LCS", "a", "b", "MINMATCHLEN", "x"),
		// (WRONGTYPE, "The specified keys must contain string values", needs a second type: issue 15.)
		cmd("LCS", "a", "b", "FOO"),
		cmd("LCS", "nokey", "nokey2"), cmd("LCS", "nokey", "nokey2", "IDX"), cmd("LCS", "nokey", "a", "LEN"),
		cmd("LCS", "a", "e", "IDX"), cmd("LCS", "a", "a", "IDX", "WITHMATCHLEN"), cmd("LCS", "a"), cmd("LCS"),
		cmd("LCS", "a", "b", "MINMATCHLEN", "1", "MINMATCHLEN", "9", "IDX"),
		cmd("SET", "n", "12345"), cmd("INCR", "n"), cmd("LCS", "n", "a"), cmd("LCS", "n", "n", "IDX"),
		cmd("SET", "x", "\x00\xff\x00"), cmd("SET", "y", "\xff\x00\xff"), cmd("LCS", "x", "y"), cmd("LCS", "x", "y", "IDX"),
	}
	for _, v := range []string{"0", "1", "-1", "2147483648", "-2147483649", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "18446744073709551616", "1.5", "", "+3", "007", "abc"} {
		s = append(s, cmd("LCS", "a", "b", "IDX", "MINMATCHLEN", v, "WITHMATCHLEN"), cmd("LCS", "a", "b", "MINMATCHLEN", v, "LEN"))
	}
	return s
}

// lcsRandomSteps compare the subsequence and the ranges of random strings
// over small alphabets, where many different subsequences tie.
func lcsRandomSteps() []step {
	rng := rand.New(rand.NewPCG(11, 13))
	word := func(n int, alphabet string) string {
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	var s []step
	for i := range 150 {
		alphabet := []string{"ab", "abc", "acgt", "abcdefghij"}[i%4]
		s = append(s, cmd("SET", "r1", word(rng.IntN(60), alphabet)), cmd("SET", "r2", word(rng.IntN(60), alphabet)),
			cmd("LCS", "r1", "r2"), cmd("LCS", "r1", "r2", "LEN"), cmd("LCS", "r1", "r2", "IDX", "WITHMATCHLEN"),
			cmd("LCS", "r2", "r1", "IDX", "MINMATCHLEN", "2"))
	}
	return s
}

// With proto-max-bulk-len 1 MiB the table may have 262144 cells: 511×511
// (261121) fits, 512×512 (263169) does not.
func lcsLimitSteps() []step {
	return []step{
		cmd("SET", "p", strings.Repeat("ab", 255)), cmd("SET", "q", strings.Repeat("ba", 255)),
		cmd("LCS", "p", "q", "LEN"), cmd("APPEND", "p", "a"), cmd("APPEND", "q", "b"), cmd("LCS", "p", "q", "LEN"),
		cmd("LCS", "p", "q", "IDX", "MINMATCHLEN", "3"), cmd("LCS", "p", "nokey", "IDX"),
	}
}

func TestLCSMatchesRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	t.Run("fixed", func(t *testing.T) { runBitSteps(t, srv.Addr(), redisAddr, lcsFixedSteps(), "2", "3") })
	t.Run("random", func(t *testing.T) { runBitSteps(t, srv.Addr(), redisAddr, lcsRandomSteps(), "2", "3") })
}

func TestLCSLimitMatchesRedisServer(t *testing.T) {
	redisAddr := startRedis(t, "--proto-max-bulk-len", "1mb")
	srv := startServer(t, func(c *gatewayserver.Config) { c.MaxBulkLen = 1 << 20 })
	runBitSteps(t, srv.Addr(), redisAddr, lcsLimitSteps(), "2", "3")
}
