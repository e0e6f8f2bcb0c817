package conformance

import (
	"expvar"
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

// maxStepsPerZPop bounds the sub-keys the backend may step over per pop
// (expvar nokv_subkeys_stepped), deletions included: a few seeks, or the
// raft backend's forward-only search for the highest member (a binary
// search of at most 8 seeks of two keys per byte it builds), or there, on
// a set of at most 256 members, one read of them. Before the score index's
// marks, pop k stepped over the k-1 deletions earlier pops left
// (command/zmarks.go).
const maxStepsPerZPop = 300

// RunZPopSteps pops every member of an n-member sorted set one at a time
// through the server at addr, from both ends (ZPOPMIN, ZPOPMAX, ZMPOP,
// BZPOPMIN, BZPOPMAX, BZMPOP), checks each member and score, and, when
// the server runs in this process, that no pop stepped over more than a
// bounded number of sub-keys.
func RunZPopSteps(t *testing.T, addr string, n int) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: -1, WriteTimeout: -1})
	t.Cleanup(func() { _ = c.Close() })
	noErr(t, c.Del(bg, "zs:q").Err())
	name := func(i int) string { return fmt.Sprintf("m:%06d", i) }
	for i := 0; i < n; i += 1000 {
		var zs []redis.Z
		for j := i; j < min(i+1000, n); j++ {
			zs = append(zs, redis.Z{Score: float64(j), Member: name(j)})
		}
		noErr(t, c.ZAdd(bg, "zs:q", zs...).Err())
	}
	stepped := steppedVar()
	lo, hi := 0, n-1
	worst := int64(0)
	var total int64
	for i := 0; lo <= hi; i++ {
		var before int64
		if stepped != nil {
			before = stepped()
		}
		var got []redis.Z
		var err error
		popMax := i%2 == 1
		switch i % 6 {
		case 0:
			got, err = c.ZPopMin(bg, "zs:q").Result()
		case 1:
			got, err = c.ZPopMax(bg, "zs:q").Result()
		case 2, 3:
			dir := "MIN"
			if popMax {
				dir = "MAX"
			}
			_, got, err = c.ZMPop(bg, dir, 1, "zs:q").Result()
		case 4:
			var kz *redis.ZWithKey
			kz, err = c.BZPopMin(bg, 0, "zs:q").Result()
			if err == nil {
				got = []redis.Z{kz.Z}
			}
		case 5:
			var kz *redis.ZWithKey
			kz, err = c.BZPopMax(bg, 0, "zs:q").Result()
			if err == nil {
				got = []redis.Z{kz.Z}
			}
		}
		noErr(t, err)
		want := lo
		if popMax {
			want = hi
			hi--
		} else {
			lo++
		}
		if len(got) != 1 || got[0].Member != name(want) || got[0].Score != float64(want) {
			t.Fatalf("pop %d (kind %d) = %v, want %s %d", i, i%6, got, name(want), want)
		}
		if stepped != nil {
			steps := stepped() - before
			total += steps
			worst = max(worst, steps)
		}
	}
	if stepped != nil {
		t.Logf("%d pops: %d sub-keys stepped per pop on average, %d at most", n, total/int64(n), worst)
		if worst > maxStepsPerZPop {
			t.Fatalf("a pop stepped over %d sub-keys, want <= %d", worst, maxStepsPerZPop)
		}
	}
	if n, err := c.Exists(bg, "zs:q").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after popping every member = %d, %v", n, err)
	}
}

// steppedVar reads the sub-keys the backend's scans stepped over, when
// the gateway runs in this process (nil otherwise).
func steppedVar() func() int64 {
	v, ok := expvar.Get("nokv_subkeys_stepped").(*expvar.Int)
	if !ok {
		return nil
	}
	return func() int64 {
		n, err := strconv.ParseInt(v.String(), 10, 64)
		if err != nil {
			return 0
		}
		return n
	}
}
