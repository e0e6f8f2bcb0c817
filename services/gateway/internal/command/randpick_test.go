package command

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
)

// Random picks (randpick.go) on the embedded backend, with its reverse
// seek and without it (the forward-only walk the raft backend runs;
// conformance.RunRandomPicks covers both backends over the network).

func randExecutor(t *testing.T) (*Executor, *Client) {
	t.Helper()
	st, err := embedded.Open(embedded.Options{Dir: t.TempDir(), Sync: embedded.SyncNo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := New(st, Options{})
	return e, e.NewClient("127.0.0.1:1", "127.0.0.1:2")
}

// do runs one command and returns its reply.
func do(t *testing.T, e *Executor, c *Client, args ...string) string {
	t.Helper()
	if err := e.Exec(context.Background(), c, argv(args...), true); err != nil {
		t.Fatal(err)
	}
	out := string(c.Out.Bytes())
	c.Out.Reset()
	return out
}

var bulkRE = regexp.MustCompile(`\$\d+\r\n([^\r]*)\r\n`)

// bulks returns the bulk strings of a reply, in order.
func bulks(reply string) []string {
	var out []string
	for _, m := range bulkRE.FindAllStringSubmatch(reply, -1) {
		out = append(out, m[1])
	}
	return out
}

// fill adds members names(0..n-1) to key with cmd ("SADD", "HSET" or
// "ZADD"), 1000 per command.
func fill(t *testing.T, e *Executor, c *Client, cmd, key string, n int, name func(int) string) {
	t.Helper()
	for i := 0; i < n; i += 1000 {
		args := []string{cmd, key}
		for j := i; j < min(i+1000, n); j++ {
			switch cmd {
			case "SADD":
				args = append(args, name(j))
			case "HSET":
				args = append(args, name(j), "v")
			case "ZADD":
				args = append(args, fmt.Sprint(j), name(j))
			}
		}
		do(t, e, c, args...)
	}
}

// bothWalks runs fn with the reverse seek and with forward seeks only.
func bothWalks(t *testing.T, fn func(t *testing.T)) {
	for _, last := range []bool{true, false} {
		t.Run(fmt.Sprintf("subIter=%v", last), func(t *testing.T) {
			defer func(old bool) { useSubIter = old }(useSubIter)
			useSubIter = last
			fn(t)
		})
	}
}

// SPOP's walks on 50k members read a bounded number of sub-keys, whatever
// the set's size (it read half the set on average before). Pop batches
// (popcache.go) are off: TestSPopSampleReads measures them.
func TestSPopReadsFewSubKeys(t *testing.T) {
	defer func(old bool) { usePopBatches = old }(usePopBatches)
	usePopBatches = false
	bothWalks(t, func(t *testing.T) {
		e, c := randExecutor(t)
		const n, pops = 50000, 200
		fill(t, e, c, "SADD", "s", n, func(i int) string { return fmt.Sprintf("m:%05d", i) })
		before, seeks := subKeysScanned.Value(), randSeeks.Value()
		for range pops {
			if got := bulks(do(t, e, c, "SPOP", "s")); len(got) != 1 {
				t.Fatalf("SPOP: %q", got)
			}
		}
		read := (subKeysScanned.Value() - before) / pops
		t.Logf("per SPOP: %d sub-keys read, %d seeks", read, (randSeeks.Value()-seeks)/pops)
		// A walk ends reading a subtree of at most smallSubtree elements
		// whole (smallShare): bounded, not O(n).
		if read > smallSubtree+100 {
			t.Fatalf("SPOP read %d sub-keys per pop on average, want <= %d", read, smallSubtree+100)
		}
		if got := do(t, e, c, "SCARD", "s"); got != fmt.Sprintf(":%d\r\n", n-pops) {
			t.Fatalf("SCARD = %q", got)
		}
	})
}

// 20000 draws over 1000 members hit every member, none more than 5x the
// mean, for SRANDMEMBER, HRANDFIELD and ZRANDMEMBER (one draw each, and
// a negative count's draws).
func TestRandomPicksCoverEveryMember(t *testing.T) {
	const n, draws = 1000, 20000
	name := func(i int) string { return fmt.Sprintf("m:%04d", i) }
	check := func(t *testing.T, hits map[string]int) {
		t.Helper()
		total := 0
		for i := range n {
			h := hits[name(i)]
			if h == 0 {
				t.Fatalf("%s never drawn", name(i))
			}
			if h > 5*draws/n {
				t.Fatalf("%s drawn %d times, mean %d", name(i), h, draws/n)
			}
			total += h
		}
		if total != draws || len(hits) != n {
			t.Fatalf("%d draws of %d distinct, want %d of %d", total, len(hits), draws, n)
		}
	}
	bothWalks(t, func(t *testing.T) {
		e, c := randExecutor(t)
		fill(t, e, c, "SADD", "s", n, name)
		fill(t, e, c, "HSET", "h", n, name)
		fill(t, e, c, "ZADD", "z", n, name)
		for _, cmd := range []string{"SRANDMEMBER", "HRANDFIELD", "ZRANDMEMBER"} {
			key := map[string]string{"SRANDMEMBER": "s", "HRANDFIELD": "h", "ZRANDMEMBER": "z"}[cmd]
			t.Run(cmd, func(t *testing.T) {
				hits := map[string]int{}
				for range draws / 2 {
					for _, m := range bulks(do(t, e, c, cmd, key)) {
						hits[m]++
					}
				}
				// -50: 50*16 < 1000, so drawn by walks too.
				for range draws / 2 / 50 {
					got := bulks(do(t, e, c, cmd, key, "-50"))
					if len(got) != 50 {
						t.Fatalf("%s %s -50: %d elements", cmd, key, len(got))
					}
					for _, m := range got {
						hits[m]++
					}
				}
				check(t, hits)
			})
		}
	})
}

// SPOP until the set is empty returns every member once, then the key is
// gone; so does SPOP with a count (walks while count*16 < size, a scan
// after), and SRANDMEMBER's positive count gives distinct members.
func TestSPopUntilEmpty(t *testing.T) {
	bothWalks(t, func(t *testing.T) {
		e, c := randExecutor(t)
		for _, withCount := range []bool{false, true} {
			const n = 3000
			fill(t, e, c, "SADD", "s", n, func(i int) string { return fmt.Sprintf("m:%04d", i) })
			if got := bulks(do(t, e, c, "SRANDMEMBER", "s", "100")); len(got) != 100 || len(distinct(got)) != 100 {
				t.Fatalf("SRANDMEMBER s 100: %d members, %d distinct", len(got), len(distinct(got)))
			}
			popped := map[string]int{}
			for range 2 * n {
				var got []string
				if withCount {
					r := do(t, e, c, "SPOP", "s", "50")
					if r == "*0\r\n" {
						break
					}
					got = bulks(r)
				} else {
					r := do(t, e, c, "SPOP", "s")
					if r == "$-1\r\n" {
						break
					}
					got = bulks(r)
					if len(got) != 1 {
						t.Fatalf("SPOP: %q", r)
					}
				}
				for _, m := range got {
					popped[m]++
				}
			}
			for i := range n {
				if m := fmt.Sprintf("m:%04d", i); popped[m] != 1 {
					t.Fatalf("withCount %v: %s popped %d times", withCount, m, popped[m])
				}
			}
			if len(popped) != n {
				t.Fatalf("withCount %v: %d members popped, want %d", withCount, len(popped), n)
			}
			if got := do(t, e, c, "EXISTS", "s"); got != ":0\r\n" {
				t.Fatalf("EXISTS after the last SPOP: %q", got)
			}
		}
	})
}

// SPOP keeps its walk's levels across pops (pickerCache, afterPop): on
// ragged tries (members that are prefixes of others, uneven lengths) and
// random bytes, popping until empty still returns every member once
// (pop batches off: they would serve most of these pops).
func TestSPopKeptWalksUntilEmpty(t *testing.T) {
	defer func(old bool) { usePopBatches = old }(usePopBatches)
	usePopBatches = false
	bothWalks(t, func(t *testing.T) {
		e, c := randExecutor(t)
		for _, set := range []struct {
			name string
			n    int
			m    func(int) string
		}{
			{"1..2000", 2000, func(i int) string { return strconv.Itoa(i + 1) }},
			{"hex", 2000, func(i int) string { return fmt.Sprintf("%08x", uint32(i)*2654435761) }},
			{"prefixes", 600, func(i int) string { return strings.Repeat("a", i%7) + strconv.Itoa(i/7) }},
		} {
			fill(t, e, c, "SADD", "s", set.n, set.m)
			stale := pickerStale.Value()
			popped := map[string]int{}
			for i := 1; i <= 2*set.n; i++ {
				r := do(t, e, c, "SPOP", "s")
				if r == "$-1\r\n" {
					break
				}
				got := bulks(r)
				if len(got) != 1 {
					t.Fatalf("%s: SPOP: %q", set.name, r)
				}
				popped[got[0]]++
				if i%97 == 0 {
					// Another write in between: the kept walk is dropped.
					do(t, e, c, "SADD", "s", got[0])
					popped[got[0]]--
				}
			}
			for i := range set.n {
				if popped[set.m(i)] != 1 {
					t.Fatalf("%s: %q popped %d times", set.name, set.m(i), popped[set.m(i)])
				}
			}
			if got := do(t, e, c, "EXISTS", "s"); got != ":0\r\n" {
				t.Fatalf("%s: EXISTS after popping every member: %q", set.name, got)
			}
			if n := pickerStale.Value() - stale; n != 0 {
				t.Fatalf("%s: %d SPOPs drew a member that was gone from their kept walk", set.name, n)
			}
		}
	})
}

func distinct(ms []string) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[m] = true
	}
	return out
}

// Walks over members of uneven lengths and bytes (an element that is a
// prefix of others, 0x00 and 0xff bytes) reach every member.
func TestRandomPicksOddMembers(t *testing.T) {
	bothWalks(t, func(t *testing.T) {
		e, c := randExecutor(t)
		members := []string{"", "a", "ab", "abc", "abd", "a\x00", "a\xff", "\xff", "\xff\xff", "\xff\xff\x00", "b"}
		for i := range 6 {
			members = append(members, strings.Repeat("z", i+1))
		}
		// More than randSmall members, so that draws walk.
		for i := range 200 {
			members = append(members, fmt.Sprintf("q%03d", i))
		}
		do(t, e, c, append([]string{"SADD", "s"}, members...)...)
		hits := map[string]int{}
		for range 20000 {
			got := bulks(do(t, e, c, "SRANDMEMBER", "s"))
			if len(got) != 1 {
				t.Fatalf("SRANDMEMBER: %q", got)
			}
			hits[got[0]]++
		}
		for _, m := range members {
			if hits[m] == 0 {
				t.Fatalf("%q never drawn (%d distinct drawn)", m, len(hits))
			}
		}
		if len(hits) != len(members) {
			t.Fatalf("%d distinct drawn, %d members", len(hits), len(members))
		}
	})
}

// TestRandomPickSkew measures (NOKV_RAND_SKEW=1; not a check) how far
// draws are from uniform on members "1".."N" and hex strings, and the
// walks per draw: the figures docs/architecture.md quotes.
func TestRandomPickSkew(t *testing.T) {
	if os.Getenv("NOKV_RAND_SKEW") == "" {
		t.Skip("set NOKV_RAND_SKEW=1 to measure")
	}
	for _, set := range []struct {
		name string
		n    int
		m    func(int) string
	}{
		{"1..5000", 5000, func(i int) string { return strconv.Itoa(i + 1) }},
		{"m:0000..m:4999", 5000, func(i int) string { return fmt.Sprintf("m:%04d", i) }},
		{"hex", 5000, func(i int) string { return fmt.Sprintf("%08x", uint32(i)*2654435761) }},
	} {
		e, c := randExecutor(t)
		fill(t, e, c, "SADD", "s", set.n, set.m)
		const draws = 500000
		hits := map[string]int{}
		walks, d := randWalks.Value(), randDraws.Value()
		for range draws / 300 {
			for _, m := range bulks(do(t, e, c, "SRANDMEMBER", "s", "-300")) {
				hits[m]++
			}
		}
		lo, hi := draws, 0
		for i := range set.n {
			h := hits[set.m(i)]
			lo, hi = min(lo, h), max(hi, h)
		}
		mean := float64(draws/300*300) / float64(set.n)
		t.Logf("%s: %d draws, least drawn %.2f x mean, most %.2f x mean, %.2f walks per draw",
			set.name, draws, float64(lo)/mean, float64(hi)/mean, float64(randWalks.Value()-walks)/float64(randDraws.Value()-d))
	}
}
