package conformance

import (
	"expvar"
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RandomPicks sizes RunRandomPicks; zero fields take the defaults.
type RandomPicks struct {
	// Big is the size of the set SPOP's reads are bounded on (50000), and
	// Pops the SPOPs measured there (100).
	Big, Pops int
	// Members is the size of the collections drawn from (1000), Draws the
	// draws of each command (20000): every member must be drawn, none more
	// than 5 times the mean (Draws/Members, at least 20 for the first to
	// hold by chance).
	Members, Draws int
	// FewValueDraws makes HRANDFIELD and ZRANDMEMBER draw ten counts'
	// worth only, checking values and scores but not fairness (the raft
	// backend, where every draw is dozens of requests; the walk is the
	// SRANDMEMBER one).
	FewValueDraws bool
	// MembersOnly checks that SRANDMEMBER's draws (Draws of them) are
	// members, not that they are fair: for a backend whose walk the command
	// package's tests already judge for fairness (the raft backend's
	// forward-only walk, command/randpick_test.go) and where the draws
	// that fairness needs cost minutes under the race detector.
	MembersOnly bool
}

// maxSubKeysPerPop bounds the sub-keys one SPOP may read on average: a
// walk's seeks read two each, and a subtree expected to hold at most 128
// elements is read whole (command/randpick.go, smallShare: ~100 here).
// Reading up to a uniform position, as SPOP did, read Big/2. On top of it
// SPOP may pop from a sample of the set, drawn by one scan of the whole
// set per Big/sampleDiv pops (command/popcache.go: a sample holds a
// sixteenth of the set, and a set seen first is sampled at once): the
// check allows one scan plus one per sixteenth of the set popped.
const (
	maxSubKeysPerPop = 200
	sampleDiv        = 16
)

// RunRandomPicks checks SPOP, SRANDMEMBER, HRANDFIELD and ZRANDMEMBER's
// random draws against the server at addr: SPOP on a big set reads a
// bounded number of sub-keys (when the server runs in this process: the
// expvar nokv_coll_random), draws cover every member fairly, values and
// scores come with the right members, and SPOP until empty returns every
// member once and deletes the key.
func RunRandomPicks(t *testing.T, addr string, o RandomPicks) {
	o.Big, o.Pops = cmp0(o.Big, 50000), cmp0(o.Pops, 100)
	o.Members, o.Draws = cmp0(o.Members, 1000), cmp0(o.Draws, 20000)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: -1, WriteTimeout: -1})
	t.Cleanup(func() { _ = c.Close() })
	noErr(t, c.Del(bg, "rp:big", "rp:s", "rp:h", "rp:z").Err())
	name := func(i int) string { return fmt.Sprintf("m:%04d", i) }

	t.Run("SPopReadsFew", func(t *testing.T) {
		addMembers(t, c, "rp:big", o.Big, func(i int) string { return fmt.Sprintf("m:%06d", i) })
		scanned := scannedVar()
		var before int64
		if scanned != nil {
			before = scanned()
		}
		for range o.Pops {
			_, err := c.SPop(bg, "rp:big").Result()
			noErr(t, err)
		}
		if scanned != nil {
			per := (scanned() - before) / int64(o.Pops)
			samples := 1 + o.Pops*sampleDiv/o.Big
			want := int64(maxSubKeysPerPop + samples*o.Big/o.Pops)
			t.Logf("%d sub-keys read per SPOP of a %d-member set", per, o.Big)
			if per > want {
				t.Fatalf("SPOP read %d sub-keys per pop, want <= %d", per, want)
			}
		}
		n, err := c.SCard(bg, "rp:big").Result()
		expect(t, n, err, int64(o.Big-o.Pops))
		noErr(t, c.Del(bg, "rp:big").Err())
	})

	// A count that the server draws by walks (count*16 < size), so that
	// every draw checked here is a walk's.
	batch := min(50, max(1, o.Members/16-1))
	fair := func(t *testing.T, hits map[string]int) {
		t.Helper()
		total := 0
		for i := range o.Members {
			h := hits[name(i)]
			if h == 0 || h > 5*o.Draws/o.Members {
				t.Fatalf("%s drawn %d times in %d draws of %d members", name(i), h, o.Draws, o.Members)
			}
			total += h
		}
		if total != o.Draws || len(hits) != o.Members {
			t.Fatalf("%d draws of %d distinct members, want %d of %d", total, len(hits), o.Draws, o.Members)
		}
	}
	t.Run("SRandMemberIsFair", func(t *testing.T) {
		addMembers(t, c, "rp:s", o.Members, name)
		hits := map[string]int{}
		singles := min(o.Draws/4, 250)
		for range singles {
			m, err := c.SRandMember(bg, "rp:s").Result()
			noErr(t, err)
			hits[m]++
		}
		for drawn := singles; drawn < o.Draws; drawn += batch {
			n := min(batch, o.Draws-drawn)
			ms, err := c.Do(bg, "SRANDMEMBER", "rp:s", -n).StringSlice()
			noErr(t, err)
			if len(ms) != n {
				t.Fatalf("SRANDMEMBER rp:s %d: %d members", -n, len(ms))
			}
			for _, m := range ms {
				hits[m]++
			}
		}
		if o.MembersOnly {
			for m := range hits {
				var i int
				if _, err := fmt.Sscanf(m, "m:%04d", &i); err != nil || i >= o.Members || name(i) != m {
					t.Fatalf("SRANDMEMBER rp:s drew %q, not a member", m)
				}
			}
		} else {
			fair(t, hits)
		}
		ms, err := c.SRandMemberN(bg, "rp:s", int64(batch)).Result()
		noErr(t, err)
		if len(ms) != batch || len(distinct(ms)) != batch {
			t.Fatalf("SRANDMEMBER rp:s %d: %d members, %d distinct", batch, len(ms), len(distinct(ms)))
		}
	})
	t.Run("HRandFieldAndZRandMember", func(t *testing.T) {
		fields := map[string]any{}
		var zs []redis.Z
		for i := range o.Members {
			fields[name(i)] = "v" + name(i)
			zs = append(zs, redis.Z{Score: float64(i), Member: name(i)})
		}
		noErr(t, c.HSet(bg, "rp:h", fields).Err())
		noErr(t, c.ZAdd(bg, "rp:z", zs...).Err())
		hhits, zhits := map[string]int{}, map[string]int{}
		draws := o.Draws
		if o.FewValueDraws {
			draws = 10 * batch
		}
		for drawn := 0; drawn < draws; drawn += batch {
			n := min(batch, draws-drawn)
			kv, err := c.HRandFieldWithValues(bg, "rp:h", -n).Result()
			noErr(t, err)
			zv, err := c.ZRandMemberWithScores(bg, "rp:z", -n).Result()
			noErr(t, err)
			if len(kv) != n || len(zv) != n {
				t.Fatalf("HRANDFIELD/ZRANDMEMBER %d: %d, %d elements", -n, len(kv), len(zv))
			}
			for i := range n {
				if kv[i].Value != "v"+kv[i].Key {
					t.Fatalf("HRANDFIELD: field %s with value %s", kv[i].Key, kv[i].Value)
				}
				if m := zv[i].Member.(string); m != name(int(zv[i].Score)) {
					t.Fatalf("ZRANDMEMBER: member %s with score %v", m, zv[i].Score)
				}
				hhits[kv[i].Key]++
				zhits[zv[i].Member.(string)]++
			}
		}
		if !o.FewValueDraws {
			fair(t, hhits)
			fair(t, zhits)
		}
		f, err := c.HRandField(bg, "rp:h", 1).Result()
		noErr(t, err)
		if len(f) != 1 {
			t.Fatalf("HRANDFIELD rp:h 1: %q", f)
		}
		z, err := c.ZRandMember(bg, "rp:z", batch).Result()
		noErr(t, err)
		if len(distinct(z)) != batch {
			t.Fatalf("ZRANDMEMBER rp:z %d: %d distinct of %d", batch, len(distinct(z)), len(z))
		}
	})
	t.Run("SPopUntilEmpty", func(t *testing.T) {
		for _, count := range []int{0, batch} {
			addMembers(t, c, "rp:s", o.Members, name)
			popped := map[string]int{}
			for range 2 * o.Members {
				var ms []string
				if count == 0 {
					m, err := c.SPop(bg, "rp:s").Result()
					if err == redis.Nil {
						break
					}
					noErr(t, err)
					ms = []string{m}
				} else {
					var err error
					ms, err = c.SPopN(bg, "rp:s", int64(count)).Result()
					noErr(t, err)
					if len(ms) == 0 {
						break
					}
				}
				for _, m := range ms {
					popped[m]++
				}
			}
			for i := range o.Members {
				if popped[name(i)] != 1 {
					t.Fatalf("SPOP count %d: %s popped %d times", count, name(i), popped[name(i)])
				}
			}
			if len(popped) != o.Members {
				t.Fatalf("SPOP count %d: %d members popped, want %d", count, len(popped), o.Members)
			}
			n, err := c.Exists(bg, "rp:s").Result()
			expect(t, n, err, int64(0))
		}
	})
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// addMembers adds members name(0..n-1) to key, 1000 per SADD.
func addMembers(t *testing.T, c *redis.Client, key string, n int, name func(int) string) {
	t.Helper()
	for i := 0; i < n; i += 1000 {
		var ms []any
		for j := i; j < min(i+1000, n); j++ {
			ms = append(ms, name(j))
		}
		noErr(t, c.SAdd(bg, key, ms...).Err())
	}
}

// scannedVar reads the sub-keys the gateway's collection scans read, when
// it runs in this process (nil otherwise).
func scannedVar() func() int64 {
	m, ok := expvar.Get("nokv_coll_random").(*expvar.Map)
	if !ok {
		return nil
	}
	return func() int64 {
		v, err := strconv.ParseInt(m.Get("subkeys_scanned").String(), 10, 64)
		if err != nil {
			return 0
		}
		return v
	}
}

func distinct(ms []string) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[m] = true
	}
	return out
}
