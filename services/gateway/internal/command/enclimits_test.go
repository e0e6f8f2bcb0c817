package command

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
)

// parseMemory reads values as redis-server 7.0.15's memtoull (each case
// checked with CONFIG SET hash-max-listpack-value there).
func TestParseMemory(t *testing.T) {
	for _, c := range []struct {
		v   string
		n   uint64
		bad bool
	}{
		{v: "0", n: 0}, {v: "", n: 0}, {v: "k", n: 0}, {v: "b", n: 0}, {v: "08", n: 8}, {v: "1b", n: 1}, {v: "1B", n: 1},
		{v: "1k", n: 1000}, {v: "1K", n: 1000}, {v: "1kb", n: 1024}, {v: "1kB", n: 1024}, {v: "5M", n: 5000000},
		{v: "3mb", n: 3 << 20}, {v: "2g", n: 2000000000}, {v: "2G", n: 2000000000}, {v: "1gb", n: 1 << 30},
		{v: "9223372036854775807", n: math.MaxInt64}, {v: "9223372036854775808", n: 1 << 63},
		{v: "18446744073709551615", n: math.MaxUint64},
		// strtoull saturates, the unit's product wraps
		{v: "18446744073709551616", n: math.MaxUint64}, {v: "18446744073709551616kb", n: math.MaxUint64 - 1023},
		{v: "17179869184gb", n: 0}, {v: "17179869185gb", n: 1 << 30},
		{v: strings.Repeat("0", 126) + "7", n: 7}, {v: strings.Repeat("0", 127) + "7", bad: true},
		{v: "-1", bad: true}, {v: "-0", bad: true}, {v: "-", bad: true}, {v: "+1", bad: true}, {v: " 1", bad: true},
		{v: "1 ", bad: true}, {v: "1.5", bad: true}, {v: "0x10", bad: true}, {v: "abc", bad: true}, {v: "1bb", bad: true},
		{v: "1kib", bad: true}, {v: "-9223372036854775808", bad: true},
	} {
		n, err := parseMemory(c.v)
		if (err != nil) != c.bad || (!c.bad && n != c.n) {
			t.Errorf("parseMemory(%q) = %d, %v; want %d, bad %v", c.v, n, err, c.n, c.bad)
		}
	}
}

// quicklistAllowInsert follows _quicklistNodeAllowInsert for each fill
// class: size classes below zero, counts above it (within 8 KiB), and 0 a
// node per element.
func TestQuicklistAllowInsert(t *testing.T) {
	for _, c := range []struct {
		sz, count, n, fill int
		want               bool
	}{
		{100, 10, 10, -2, true}, {8180, 10, 4, -2, true}, {8180, 10, 5, -2, false},
		{4080, 1, 8, -1, true}, {4080, 1, 9, -1, false}, {60000, 1, 5000, -5, true}, {60000, 1, 6000, -5, false},
		{7, 0, 1, 0, false}, {7, 1, 1, 1, false}, {7, 1, 1, 2, true}, {8000, 1, 184, 100, true}, {8000, 1, 185, 100, false},
		{7, 32766, 1, 32767, true}, {7, 32767, 1, 32767, false},
	} {
		if got := quicklistAllowInsert(c.sz, c.count, c.n, c.fill); got != c.want {
			t.Errorf("quicklistAllowInsert(%d, %d, %d, %d) = %v, want %v", c.sz, c.count, c.n, c.fill, got, c.want)
		}
	}
	for v, want := range map[int64]int{-2: -2, -5: -5, -6: -5, math.MinInt32: -5, 0: 0, 32767: 32767, 32768: 32767, math.MaxInt32: 32767} {
		if got := quicklistFill(v); got != want {
			t.Errorf("quicklistFill(%d) = %d, want %d", v, got, want)
		}
	}
}

// CONFIG SET of the thresholds while other clients write and read
// encodings on other goroutines (the raft gateway's way): the race
// detector checks the thresholds' reads, and every reply is well formed.
func TestEncodingLimitsConcurrent(t *testing.T) {
	e, setter := randExecutor(t)
	var wg sync.WaitGroup
	for g := range 4 {
		c := e.NewClient("127.0.0.1:1", fmt.Sprintf("127.0.0.1:%d", 10+g))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := fmt.Sprintf("k%d-%d", g, i%7)
				for _, args := range [][]string{
					{"HSET", "h" + k, fmt.Sprint("f", i), "v"}, {"SADD", "s" + k, fmt.Sprint(i)}, {"ZADD", "z" + k, "1", fmt.Sprint("m", i)},
					{"RPUSH", "l" + k, "e"}, {"OBJECT", "ENCODING", "h" + k}, {"MEMORY", "USAGE", "l" + k},
				} {
					if err := e.Exec(t.Context(), c, argv(args...), true); err != nil {
						t.Error(err)
						return
					}
					if out := string(c.Out.Bytes()); strings.HasPrefix(out, "-") {
						t.Errorf("%q: %q", args, out)
					}
					c.Out.Reset()
				}
			}
		}()
	}
	for i := range 200 {
		n := fmt.Sprint(i % 5)
		if got := do(t, e, setter, "CONFIG", "SET", "hash-max-listpack-entries", n, "set-max-intset-entries", n,
			"zset-max-listpack-value", n+"b", "list-max-listpack-size", n); got != "+OK\r\n" {
			t.Fatalf("CONFIG SET: %q", got)
		}
	}
	wg.Wait()
	if got := do(t, e, setter, "CONFIG", "GET", "list-max-ziplist-size"); got != "*2\r\n$21\r\nlist-max-ziplist-size\r\n$1\r\n4\r\n" {
		t.Errorf("CONFIG GET list-max-ziplist-size: %q", got)
	}
}
