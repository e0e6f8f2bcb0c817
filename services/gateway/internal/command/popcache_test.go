package command

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// Pop batches (popcache.go).

// Every SPOP of a set popped until empty, over many fresh sets, lands
// each member at a uniform position of the pop order: the sample's order
// and the walks before it hide no bias (a member's mean position over the
// trials is (n-1)/2, within 6 standard deviations).
func TestSPopOrderIsUniform(t *testing.T) {
	e, c := randExecutor(t)
	const n, trials = 200, 150
	names := func(i int) string { return fmt.Sprintf("m:%03d", i) }
	sum := map[string]float64{}
	for range trials {
		do(t, e, c, "DEL", "s")
		fill(t, e, c, "SADD", "s", n, names)
		for pos := range n {
			got := bulks(do(t, e, c, "SPOP", "s"))
			if len(got) != 1 {
				t.Fatalf("SPOP %d of %d: %q", pos, n, got)
			}
			sum[got[0]] += float64(pos)
		}
		if got := do(t, e, c, "EXISTS", "s"); got != ":0\r\n" {
			t.Fatalf("EXISTS after popping every member: %q", got)
		}
	}
	mean := float64(n-1) / 2
	sd := math.Sqrt((float64(n)*float64(n)-1)/12) / math.Sqrt(trials)
	for i := range n {
		m := names(i)
		if got := sum[m] / trials; math.Abs(got-mean) > 6*sd {
			t.Fatalf("%s popped at position %.1f on average, want %.1f ± %.1f", m, got, mean, 6*sd)
		}
	}
	if popBatchHits.Value() == 0 {
		t.Fatal("no SPOP was served from a sample")
	}
}

// The sample is exact: over many draws of k of n members each member is
// in it k/n of the time, and each is first in it 1/n of the time.
func TestSampleMembersIsUniform(t *testing.T) {
	e, c := randExecutor(t)
	const n, k, draws = 300, 30, 6000
	fill(t, e, c, "SADD", "s", n, func(i int) string { return strconv.Itoa(i) })
	in, first := make([]int, n), make([]int, n)
	r := &Request{ctx: context.Background(), e: e, c: c}
	for range draws {
		err := r.readSet([]byte("s"), func(s *coll) error {
			b, err := s.sampleMembers(k)
			if err != nil {
				return err
			}
			if b.left() != k {
				t.Fatalf("sample of %d members, want %d", b.left(), k)
			}
			seen := map[string]bool{}
			for i, m := range b.elems {
				if seen[string(m)] {
					t.Fatalf("%s twice in one sample", m)
				}
				seen[string(m)] = true
				j, _ := strconv.Atoi(string(m))
				in[j]++
				if i == 0 {
					first[j]++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// in[j] is binomial(draws, k/n): 600 ± 23; first[j] binomial(draws,
	// 1/n): 20 ± 4.5. Six standard deviations.
	pIn, pFirst := float64(k)/n, 1.0/n
	sdIn, sdFirst := math.Sqrt(draws*pIn*(1-pIn)), math.Sqrt(draws*pFirst*(1-pFirst))
	for j := range n {
		if math.Abs(float64(in[j])-draws*pIn) > 6*sdIn {
			t.Fatalf("member %d in %d of %d samples, want %.0f ± %.0f", j, in[j], draws, draws*pIn, 6*sdIn)
		}
		if math.Abs(float64(first[j])-draws*pFirst) > 6*sdFirst+1 {
			t.Fatalf("member %d first in %d of %d samples, want %.0f ± %.0f", j, first[j], draws, draws*pFirst, 6*sdFirst)
		}
	}
}

// A sample keeps its members' bytes, short ones (copied into shared
// chunks) and long ones alike, and draws each once.
func TestSampleMembersKeepsMembers(t *testing.T) {
	e, c := randExecutor(t)
	const n = 3000
	name := func(i int) string { return fmt.Sprintf("%d:%s", i, strings.Repeat("x", i%(2*sampleShort))) }
	fill(t, e, c, "SADD", "s", n, name)
	r := &Request{ctx: context.Background(), e: e, c: c}
	for _, k := range []int{64, 750, n} {
		err := r.readSet([]byte("s"), func(s *coll) error {
			b, err := s.sampleMembers(k)
			if err != nil {
				return err
			}
			if b.left() != k {
				t.Fatalf("sample of %d members, want %d", b.left(), k)
			}
			seen := map[string]bool{}
			for b.left() > 0 {
				m := string(b.next())
				i, err := strconv.Atoi(m[:strings.IndexByte(m, ':')])
				if err != nil || m != name(i) || seen[m] {
					t.Fatalf("sample of %d: member %q (seen before: %v)", k, m, seen[m])
				}
				seen[m] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// SPOP from samples reads a few members per pop (one scan of the set per
// sample, a sixteenth of it and then bigger ones as the pops go on), not
// the set per pop.
func TestSPopSampleReads(t *testing.T) {
	e, c := randExecutor(t)
	const n, pops = 50000, 8000
	fill(t, e, c, "SADD", "s", n, func(i int) string { return fmt.Sprintf("m:%05d", i) })
	before, reads := subKeysScanned.Value(), popBatchReads.Value()
	for range pops {
		if got := bulks(do(t, e, c, "SPOP", "s")); len(got) != 1 {
			t.Fatalf("SPOP: %q", got)
		}
	}
	read := (subKeysScanned.Value() - before) / pops
	t.Logf("per SPOP: %d sub-keys read; %d samples drawn", read, popBatchReads.Value()-reads)
	if read > spopSampleFew {
		t.Fatalf("SPOP read %d sub-keys per pop on average, want <= %d", read, spopSampleFew)
	}
	if got := do(t, e, c, "SCARD", "s"); got != fmt.Sprintf(":%d\r\n", n-pops) {
		t.Fatalf("SCARD = %q", got)
	}
}

// A set written between pops (one SADD per pop) keeps the walks: no
// sample, so no scan of the set, per pop.
func TestSPopInterleavedWritesWalk(t *testing.T) {
	e, c := randExecutor(t)
	const n, pops = 20000, 300
	fill(t, e, c, "SADD", "s", n, func(i int) string { return fmt.Sprintf("m:%05d", i) })
	do(t, e, c, "SPOP", "s") // the first pop of a set never seen samples it
	before := subKeysScanned.Value()
	for i := range pops {
		do(t, e, c, "SADD", "s", fmt.Sprintf("x:%d", i))
		if got := bulks(do(t, e, c, "SPOP", "s")); len(got) != 1 {
			t.Fatalf("SPOP: %q", got)
		}
	}
	if read := (subKeysScanned.Value() - before) / pops; read > smallSubtree+100 {
		t.Fatalf("SPOP between SADDs read %d sub-keys per pop on average, want <= %d", read, smallSubtree+100)
	}
}

// A set popped in a long run, then loaded, then popped again, samples at
// the first pop after the load (its last run repaid a scan), instead of
// walking for count/spopSampleAfter pops first; a short run after that
// (pops between writes) walks again.
func TestSPopAfterLoadSamples(t *testing.T) {
	e, c := randExecutor(t)
	const n, pops = 20000, 1000
	names := func(i int) string { return fmt.Sprintf("m:%05d", i) }
	fill(t, e, c, "SADD", "s", n, names)
	for range pops {
		do(t, e, c, "SPOP", "s")
	}
	fill(t, e, c, "SADD", "s", n, func(i int) string { return fmt.Sprintf("x:%05d", i) })
	reads, walks := popBatchReads.Value(), randWalks.Value()
	for range pops {
		if got := bulks(do(t, e, c, "SPOP", "s")); len(got) != 1 {
			t.Fatalf("SPOP: %q", got)
		}
	}
	if got := popBatchReads.Value() - reads; got != 1 {
		t.Fatalf("%d samples drawn for %d pops after a load, want 1", got, pops)
	}
	if got := randWalks.Value() - walks; got != 0 {
		t.Fatalf("%d walks for %d pops after a load, want 0", got, pops)
	}
	// Pops between writes: the run before was long, so the first pop
	// samples once more; the runs of one pop after it walk.
	do(t, e, c, "SADD", "s", "y")
	do(t, e, c, "SPOP", "s")
	reads = popBatchReads.Value()
	for i := range 20 {
		do(t, e, c, "SADD", "s", fmt.Sprintf("y:%d", i))
		do(t, e, c, "SPOP", "s")
	}
	if got := popBatchReads.Value() - reads; got != 0 {
		t.Fatalf("%d samples drawn for pops between writes, want 0", got)
	}
}

// Sets and sorted sets written in every way between pops, in and out of
// MULTI: the pops served from batches must give what pops without them
// give (sorted sets: byte for byte, against a second executor without
// batches; sets: members of the set, against a model).
func TestPopBatchesSeeEveryWrite(t *testing.T) {
	defer func(old bool) { usePopBatches = old }(usePopBatches)
	with, cw := randExecutor(t)
	without, cn := randExecutor(t)
	run := func(args ...string) string {
		usePopBatches = true
		got := do(t, with, cw, args...)
		usePopBatches = false
		want := do(t, without, cn, args...)
		if got != want {
			t.Fatalf("%q: %q with pop batches, %q without", args, got, want)
		}
		return got
	}
	rng := rand.New(rand.NewPCG(7, 8))
	member := func() string { return fmt.Sprintf("m%03d", rng.IntN(400)) }
	score := func() string { return strconv.Itoa(rng.IntN(50) - 25) }
	for i := range 3000 {
		switch op := rng.IntN(20); {
		case op < 6:
			run("ZADD", "z", score(), member(), score(), member())
		case op < 9:
			run("ZPOPMIN", "z")
		case op < 11:
			run("ZPOPMAX", "z")
		case op == 11:
			run("ZPOPMIN", "z", strconv.Itoa(rng.IntN(80)))
		case op == 12:
			run("ZPOPMAX", "z", strconv.Itoa(rng.IntN(80)))
		case op == 13:
			run("ZREM", "z", member(), member())
		case op == 14:
			run("ZINCRBY", "z", score(), member())
		case op == 15:
			run("MULTI")
			run("ZPOPMIN", "z")
			run("ZADD", "z", "-100", member())
			run("ZPOPMIN", "z")
			run("ZPOPMAX", "z")
			run("EXEC")
		case op == 16:
			run("ZREMRANGEBYRANK", "z", "0", "2")
		case op == 17:
			run("RENAME", "z", "z2")
			run("ZADD", "z2", "1000", member())
			run("RENAME", "z2", "z")
		case op == 18 && i%300 == 0:
			run("DEL", "z")
		default:
			run("BZPOPMIN", "z", "0.01")
		}
	}
	run("ZRANGE", "z", "0", "-1", "WITHSCORES")

	// Sets: SPOP's members are random, so checked against a model.
	usePopBatches = true
	e, c := with, cw
	model := map[string]bool{}
	add := func(ms ...string) {
		do(t, e, c, append([]string{"SADD", "s"}, ms...)...)
		for _, m := range ms {
			model[m] = true
		}
	}
	for i := range 2000 {
		add(fmt.Sprintf("s%04d", i))
	}
	hits := popBatchHits.Value()
	for range 4000 {
		switch op := rng.IntN(12); {
		case op < 7:
			r := do(t, e, c, "SPOP", "s")
			if r == "$-1\r\n" {
				if len(model) != 0 {
					t.Fatalf("SPOP found no member, %d in the model", len(model))
				}
				continue
			}
			got := bulks(r)
			if len(got) != 1 || !model[got[0]] {
				t.Fatalf("SPOP gave %q, not a member", r)
			}
			delete(model, got[0])
		case op < 9:
			add(fmt.Sprintf("s%04d", rng.IntN(4000)), fmt.Sprintf("s%04d", rng.IntN(4000)))
		case op == 9:
			m := fmt.Sprintf("s%04d", rng.IntN(4000))
			do(t, e, c, "SREM", "s", m)
			delete(model, m)
		case op == 10:
			do(t, e, c, "MULTI")
			do(t, e, c, "SPOP", "s")
			do(t, e, c, "SADD", "s", "multi")
			r := do(t, e, c, "EXEC")
			got := bulks(r)
			switch {
			case len(got) == 0 && len(model) == 0:
			case len(got) != 1 || !model[got[0]]:
				t.Fatalf("EXEC of SPOP, SADD: %q", r)
			default:
				delete(model, got[0])
			}
			model["multi"] = true
		default:
			m := fmt.Sprintf("s%04d", rng.IntN(4000))
			if do(t, e, c, "SMOVE", "s", "other", m) == ":1\r\n" {
				delete(model, m)
			}
		}
	}
	if popBatchHits.Value() == hits {
		t.Fatal("no SPOP was served from a sample")
	}
	var want, got []string
	for m := range model {
		want = append(want, m)
	}
	got = bulks(do(t, e, c, "SMEMBERS", "s"))
	sort.Strings(want)
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("SMEMBERS after the pops: %d members, the model %d", len(got), len(want))
	}
	if got := do(t, e, c, "SCARD", "s"); got != fmt.Sprintf(":%d\r\n", len(want)) {
		t.Fatalf("SCARD = %q, want %d", got, len(want))
	}
}

// TestListPopBatchesSeeEveryWrite runs random list writes and pops, in and
// out of MULTI, on an executor with list pop batches and one without,
// byte for byte: a kept batch must never answer a pop once anything else
// changed the list (a push at the popped end, LSET, LINSERT, LREM, LTRIM,
// a rotation, a rename, a deletion). Both run once command by command and
// once under a batch context (the event loop's group), synced every few
// commands.
func TestListPopBatchesSeeEveryWrite(t *testing.T) {
	defer func(old bool) { usePopBatches = old }(usePopBatches)
	for _, grouped := range []bool{false, true} {
		t.Run(fmt.Sprintf("grouped=%v", grouped), func(t *testing.T) {
			with, cw := randExecutor(t)
			without, cn := randExecutor(t)
			ctxWith, ctxWithout := context.Background(), context.Background()
			if grouped {
				ctxWith = with.be.(backend.Batcher).Batch(ctxWith)
				ctxWithout = without.be.(backend.Batcher).Batch(ctxWithout)
			}
			exec := func(e *Executor, c *Client, ctx context.Context, args []string) string {
				t.Helper()
				if err := e.Exec(ctx, c, argv(args...), true); err != nil {
					t.Fatal(err)
				}
				out := string(c.Out.Bytes())
				c.Out.Reset()
				return out
			}
			n := 0
			run := func(args ...string) string {
				t.Helper()
				usePopBatches = true
				got := exec(with, cw, ctxWith, args)
				usePopBatches = false
				want := exec(without, cn, ctxWithout, args)
				if got != want {
					t.Fatalf("%q: %q with pop batches, %q without", args, got, want)
				}
				if n++; grouped && n%7 == 0 {
					if err := with.be.Sync(ctxWith); err != nil {
						t.Fatal(err)
					}
					if err := without.be.Sync(ctxWithout); err != nil {
						t.Fatal(err)
					}
				}
				return got
			}
			rng := rand.New(rand.NewPCG(9, 10))
			elem := func() string { return fmt.Sprintf("e%03d", rng.IntN(300)) }
			side := func() string { return []string{"LEFT", "RIGHT"}[rng.IntN(2)] }
			hits := popBatchHits.Value()
			for i := range 1500 {
				switch op := rng.IntN(24); {
				case op < 5:
					args := []string{"RPUSH", "l"}
					for range 1 + rng.IntN(40) {
						args = append(args, elem())
					}
					run(args...)
				case op < 7:
					run("LPUSH", "l", elem(), elem())
				case op < 11:
					run("RPOP", "l")
				case op < 14:
					run("LPOP", "l")
				case op == 14:
					run("RPOP", "l", strconv.Itoa(rng.IntN(90)))
				case op == 15:
					run("LPOP", "l", strconv.Itoa(rng.IntN(90)))
				case op == 16:
					run("LMOVE", "l", "l", side(), side())
				case op == 17:
					run("LMOVE", "l", "other", side(), side())
					run("LMOVE", "other", "l", side(), side())
				case op == 18:
					run("LSET", "l", strconv.Itoa(rng.IntN(20)-10), elem())
					run("LINSERT", "l", "BEFORE", elem(), elem())
				case op == 19:
					run("LREM", "l", strconv.Itoa(rng.IntN(5)-2), elem())
					run("LTRIM", "l", strconv.Itoa(rng.IntN(3)), strconv.Itoa(-1-rng.IntN(3)))
				case op == 20:
					run("MULTI")
					run("RPOP", "l")
					run("RPUSH", "l", elem())
					run("RPOP", "l")
					run("LPOP", "l")
					run("LMPOP", "1", "l", side(), "COUNT", "3")
					run("EXEC")
				case op == 21:
					run("RENAME", "l", "l2")
					run("RPUSH", "l2", elem())
					run("RENAME", "l2", "l")
				case op == 22 && i%300 == 0:
					run("DEL", "l")
				default:
					run("BRPOP", "l", "0.01")
					run("RPOPLPUSH", "l", "l")
				}
			}
			run("LRANGE", "l", "0", "-1")
			if popBatchHits.Value() == hits {
				t.Fatal("no pop was served from a batch")
			}
		})
	}
}

// TestListPopReadsAheadWithinBytes pops from a list of big elements: a pop
// must read ahead no more than popBatchBytes past what it takes (a list of
// 64 elements of 100 MiB must not make one RPOP read 6 GiB), and the pops
// must still come out right.
func TestListPopReadsAheadWithinBytes(t *testing.T) {
	const n = 60
	e, c := popBigElements(t, n, "big", "LPOP", "RPOP", 1, func(i int, elem string) []string {
		return []string{"RPUSH", "big", elem}
	})
	if got := do(t, e, c, "LLEN", "big"); got != fmt.Sprintf(":%d\r\n", n-20) {
		t.Fatalf("LLEN: %q", got)
	}
}

// TestZPopReadsAheadWithinBytes is TestListPopReadsAheadWithinBytes for a
// sorted set of big members.
func TestZPopReadsAheadWithinBytes(t *testing.T) {
	popBigElements(t, 60, "bigz", "ZPOPMIN", "ZPOPMAX", 2, func(i int, member string) []string {
		return []string{"ZADD", "bigz", strconv.Itoa(i), member}
	})
}

// popBigElements writes n elements of 100 KiB to key (fill gives the
// command writing element i, whose order is i), then pops ten from each
// end in turn (popFirst takes element i, popLast element n-1-i; a reply
// holds replyBulks bulk strings, the element first), checking each element
// and that no pop read more than 1 MiB past it.
func popBigElements(t *testing.T, n int, key, popFirst, popLast string, replyBulks int, fill func(i int, elem string) []string) (*Executor, *Client) {
	t.Helper()
	defer func(old bool) { usePopBatches = old }(usePopBatches)
	usePopBatches = true
	e, c := randExecutor(t)
	const size = 100 << 10
	elem := func(i int) string { return fmt.Sprintf("%03d", i) + strings.Repeat("x", size-3) }
	for i := range n {
		do(t, e, c, fill(i, elem(i))...)
	}
	for i := range 10 {
		for _, last := range []bool{false, true} {
			cmd, want := popFirst, elem(i)
			if last {
				cmd, want = popLast, elem(n-1-i)
			}
			before := subKeysScanned.Value()
			got := bulks(do(t, e, c, cmd, key))
			if len(got) != replyBulks || got[0] != want {
				t.Fatalf("%s %d: got %.10q..., want %.10q...", cmd, i, got, want)
			}
			// Up to 1 MiB past the popped element: 11 elements of 100 KiB.
			if read := subKeysScanned.Value() - before; read > popBatchBytes/size+2 {
				t.Fatalf("%s %d read %d elements of %d bytes", cmd, i, read, size)
			}
		}
	}
	return e, c
}
