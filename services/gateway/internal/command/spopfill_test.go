package command

import (
	"fmt"
	"testing"
)

// SPOP samples filled by SADD (spopfill.go).

// A set built by SADDs (one member at a time, several at once, members
// added twice) is popped from the fill its SADDs kept: no scan, every
// member popped once, none that was not added.
func TestSPopAdoptsTheSAddFill(t *testing.T) {
	e, c := randExecutor(t)
	const n, pops = 3000, 1000
	members := map[string]bool{}
	for i := 0; i < n; {
		if i%10 == 0 && i+3 <= n {
			a, b, d := fmt.Sprintf("m:%05d", i), fmt.Sprintf("m:%05d", i+1), fmt.Sprintf("m:%05d", i+2)
			do(t, e, c, "SADD", "s", a, b, a, d)
			members[a], members[b], members[d] = true, true, true
			i += 3
			continue
		}
		m := fmt.Sprintf("m:%05d", i)
		do(t, e, c, "SADD", "s", m)
		if got := do(t, e, c, "SADD", "s", m); got != ":0\r\n" {
			t.Fatalf("SADD of a member again: %q", got)
		}
		members[m] = true
		i++
	}
	reads, adopted, scanned := popBatchReads.Value(), popFillAdopted.Value(), subKeysScanned.Value()
	popped := map[string]bool{}
	for range pops {
		got := bulks(do(t, e, c, "SPOP", "s"))
		if len(got) != 1 || !members[got[0]] || popped[got[0]] {
			t.Fatalf("SPOP: %q (added: %v, popped before: %v)", got, len(got) == 1 && members[got[0]], len(got) == 1 && popped[got[0]])
		}
		popped[got[0]] = true
	}
	if got := popFillAdopted.Value() - adopted; got != 1 {
		t.Fatalf("%d fills adopted, want 1", got)
	}
	if got := popBatchReads.Value() - reads; got != 0 {
		t.Fatalf("%d samples drawn by a scan, want 0", got)
	}
	if got := subKeysScanned.Value() - scanned; got != 0 {
		t.Fatalf("%d sub-keys scanned by %d pops, want 0", got, pops)
	}
	if got := do(t, e, c, "SCARD", "s"); got != fmt.Sprintf(":%d\r\n", n-pops) {
		t.Fatalf("SCARD = %q, want %d", got, n-pops)
	}
	// Past the fill's members the pops scan as before, and pop the rest.
	for range n - pops {
		got := bulks(do(t, e, c, "SPOP", "s"))
		if len(got) != 1 || !members[got[0]] || popped[got[0]] {
			t.Fatalf("SPOP: %q", got)
		}
		popped[got[0]] = true
	}
	if got := do(t, e, c, "SPOP", "s"); got != "$-1\r\n" {
		t.Fatalf("SPOP of an emptied set: %q", got)
	}
}

// The fill is a uniform sample although it holds fewer members than the
// set: the first member popped is in each tenth of the members (in the
// order they were added) a tenth of the time (chi-square over the tenths;
// a reservoir that favoured early or late members would fail it).
func TestSPopFillIsUniform(t *testing.T) {
	e, c := randExecutor(t)
	defer func(k int) { spopFillSize = k }(spopFillSize)
	spopFillSize = 20
	const n, per, trials = 200, 50, 2000
	var tenths [10]float64
	for range trials {
		do(t, e, c, "DEL", "s")
		for i := 0; i < n; i += per {
			args := []string{"SADD", "s"}
			for j := i; j < i+per; j++ {
				args = append(args, fmt.Sprint(j))
			}
			do(t, e, c, args...)
		}
		adopted := popFillAdopted.Value()
		var i int
		if _, err := fmt.Sscan(bulks(do(t, e, c, "SPOP", "s"))[0], &i); err != nil {
			t.Fatal(err)
		}
		if popFillAdopted.Value() != adopted+1 {
			t.Fatal("the first SPOP did not adopt the fill")
		}
		tenths[i*10/n]++
	}
	want := float64(trials) / 10
	chi := 0.0
	for _, got := range tenths {
		chi += (got - want) * (got - want) / want
	}
	// 9 degrees of freedom: P(chi² > 45) ≈ 1e-6.
	if chi > 45 {
		t.Fatalf("first pops by tenth of the members: %v, chi² %.1f over 9 degrees of freedom", tenths, chi)
	}
}

// Anything but SADD writing the set drops the fill, and the pops scan:
// no member removed (SREM, SMOVE) is popped, no member of an earlier
// incarnation (DEL, then SADD) either.
func TestSAddFillDroppedByOtherWrites(t *testing.T) {
	e, c := randExecutor(t)
	for _, tc := range []struct {
		name    string
		between [][]string
	}{
		{"SREM", [][]string{{"SREM", "s", "m:3"}}},
		{"SMOVE", [][]string{{"SMOVE", "s", "t", "m:7"}}},
		{"SUNIONSTORE", [][]string{{"SADD", "u", "m:1", "z"}, {"SUNIONSTORE", "s", "s", "u"}}},
		{"DEL", [][]string{{"DEL", "s"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			do(t, e, c, "FLUSHALL")
			for i := range 2 * randSmall {
				do(t, e, c, "SADD", "s", fmt.Sprintf("m:%d", i))
			}
			for _, cmd := range tc.between {
				do(t, e, c, cmd...)
			}
			if tc.name == "DEL" {
				for i := range 2 * randSmall {
					do(t, e, c, "SADD", "s", fmt.Sprintf("n:%d", i))
				}
			}
			want := bulks(do(t, e, c, "SMEMBERS", "s"))
			in := map[string]bool{}
			for _, m := range want {
				in[m] = true
			}
			dropped, adopted := popFillDropped.Value(), popFillAdopted.Value()
			for range want {
				got := bulks(do(t, e, c, "SPOP", "s"))
				if len(got) != 1 || !in[got[0]] {
					t.Fatalf("SPOP: %q, not among %q", got, want)
				}
				delete(in, got[0])
			}
			if got := do(t, e, c, "SPOP", "s"); got != "$-1\r\n" {
				t.Fatalf("SPOP of an emptied set: %q", got)
			}
			if tc.name == "DEL" {
				// The second SADD created the set anew: its own fill.
				if popFillAdopted.Value() != adopted+1 {
					t.Fatal("the new incarnation's fill was not adopted")
				}
				return
			}
			if popFillAdopted.Value() != adopted || popFillDropped.Value() == dropped {
				t.Fatalf("fill adopted %d, dropped %d times after %s, want 0 and 1",
					popFillAdopted.Value()-adopted, popFillDropped.Value()-dropped, tc.name)
			}
		})
	}
}

// Many small sets created after a big one do not push the big one's fill
// out: the fill that has seen the fewest members goes first.
func TestSAddFillKeptForTheBigSet(t *testing.T) {
	e, c := randExecutor(t)
	fill(t, e, c, "SADD", "big", 500, func(i int) string { return fmt.Sprint(i) })
	for i := range 3 * popEntries {
		do(t, e, c, "SADD", fmt.Sprintf("small:%d", i), "x", "y")
	}
	adopted, reads := popFillAdopted.Value(), popBatchReads.Value()
	do(t, e, c, "SPOP", "big")
	if popFillAdopted.Value() != adopted+1 || popBatchReads.Value() != reads {
		t.Fatalf("the big set's first SPOP: %d fills adopted, %d scans; want 1 and 0",
			popFillAdopted.Value()-adopted, popBatchReads.Value()-reads)
	}
}
