package command

import (
	"context"
	"errors"
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

// A set written between pops (one SADD per pop, a job queue) keeps its
// sample across the writes: no walk, one sample for the pops a sixteenth
// of the set serves, and one read of the popped member per pop (a write
// came between). Before, every pop after a write walked.
func TestSPopInterleavedWritesKeepTheSample(t *testing.T) {
	e, c := randExecutor(t)
	const n, pops = 20000, 300
	fill(t, e, c, "SADD", "s", n, func(i int) string { return fmt.Sprintf("m:%05d", i) })
	do(t, e, c, "SPOP", "s") // the first pop of a set never seen samples it
	before, reads, walks := subKeysScanned.Value(), popBatchReads.Value(), randWalks.Value()
	verified := popSampleVerified.Value()
	for i := range pops {
		do(t, e, c, "SADD", "s", fmt.Sprintf("x:%d", i))
		if got := bulks(do(t, e, c, "SPOP", "s")); len(got) != 1 {
			t.Fatalf("SPOP: %q", got)
		}
	}
	if got := randWalks.Value() - walks; got != 0 {
		t.Fatalf("%d walks for %d SPOPs between SADDs, want 0", got, pops)
	}
	if got := popBatchReads.Value() - reads; got != 0 {
		t.Fatalf("%d samples drawn for %d SPOPs between SADDs, want 0 (the first one's serves %d)", got, pops, n/spopSampleFew)
	}
	if got := popSampleVerified.Value() - verified; got != pops {
		t.Fatalf("%d members read to verify them for %d SPOPs, want one each", got, pops)
	}
	if read := (subKeysScanned.Value() - before) / pops; read > 2 {
		t.Fatalf("SPOP between SADDs read %d sub-keys per pop on average, want <= 2", read)
	}
	if got := do(t, e, c, "SCARD", "s"); got != fmt.Sprintf(":%d\r\n", n-1) {
		t.Fatalf("SCARD = %q, want %d", got, n-1)
	}
}

// SPOP on a job queue (SADD of a new member, SPOP, over and over) keeps
// its draws fair in the sense docs/architecture.md ("Pop batches") gives:
// each pop is uniform over the members present both at the sample and
// now, and the members added since (at most count/spopStaleDiv, else a new
// sample) wait for the next sample. Each pop's member is placed by its age
// among the set's members at that pop: the oldest nine tenths are drawn
// uniformly (chi-square over their nine deciles), the newest tenth at
// least as often as the bound allows, and no pop walks (the sample serves
// them all). At the end the set is popped until empty: every member, old
// or added, comes out exactly once.
func TestSPopFairWithInterleavedWrites(t *testing.T) {
	e, c := randExecutor(t)
	const n, rounds = 2000, 30000
	name := func(i int) string { return fmt.Sprintf("m:%06d", i) }
	fill(t, e, c, "SADD", "s", n, name)
	// Members by age (their index); tree counts the present ones
	// (Fenwick), for the rank of the popped one.
	total := n + rounds
	tree := make([]int, total+1)
	addAt := func(i, d int) {
		for i++; i <= total; i += i & -i {
			tree[i] += d
		}
	}
	below := func(i int) (s int) { // present members older than i
		for ; i > 0; i -= i & -i {
			s += tree[i]
		}
		return s
	}
	present := map[string]int{}
	for i := range n {
		addAt(i, 1)
		present[name(i)] = i
	}
	var deciles [10]int
	walks := randWalks.Value()
	rng := rand.New(rand.NewPCG(15, 16))
	next := n
	for range rounds {
		// Mostly one SADD per SPOP, now and then a burst or a pause.
		adds := 1
		if r := rng.IntN(20); r == 0 {
			adds = 4
		} else if r == 1 {
			adds = 0
		}
		for range adds {
			if next < total {
				do(t, e, c, "SADD", "s", name(next))
				addAt(next, 1)
				present[name(next)] = next
				next++
			}
		}
		got := bulks(do(t, e, c, "SPOP", "s"))
		if len(got) != 1 {
			t.Fatalf("SPOP: %q", got)
		}
		i, ok := present[got[0]]
		if !ok {
			t.Fatalf("SPOP gave %q, not a member", got[0])
		}
		size := len(present)
		deciles[below(i)*10/size]++
		delete(present, got[0])
		addAt(i, -1)
	}
	if got := randWalks.Value() - walks; got != 0 {
		t.Fatalf("%d walks for %d SPOPs, want 0 (samples only)", got, rounds)
	}
	t.Logf("pops by age decile, oldest first: %v", deciles)
	old := 0
	for _, d := range deciles[:9] {
		old += d
	}
	chi := 0.0
	for _, d := range deciles[:9] {
		want := float64(old) / 9
		chi += (float64(d) - want) * (float64(d) - want) / want
	}
	// 8 degrees of freedom: P(chi² > 45) ≈ 4e-7.
	if chi > 45 {
		t.Fatalf("the oldest nine deciles drawn unevenly: %v, chi² %.1f over 8 degrees of freedom", deciles[:9], chi)
	}
	// The newest tenth: at most count/16 of the set (of its 1/10) not yet
	// sampled at any pop, so at least 1/10-1/16 of the draws, six
	// standard deviations below that at most. (It is drawn less than a
	// tenth: the cost of the kept sample, half the bound on average.)
	floor := rounds * (1.0/10 - 1.0/spopStaleDiv)
	if got := float64(deciles[9]); got < floor-6*math.Sqrt(floor) {
		t.Fatalf("the newest decile drawn %d times of %d, want >= %.0f", deciles[9], rounds, floor)
	}
	for len(present) > 0 {
		got := bulks(do(t, e, c, "SPOP", "s"))
		if len(got) != 1 {
			t.Fatalf("SPOP with %d members left: %q", len(present), got)
		}
		if _, ok := present[got[0]]; !ok {
			t.Fatalf("SPOP gave %q, popped before or never added", got[0])
		}
		delete(present, got[0])
	}
	if got := do(t, e, c, "EXISTS", "s"); got != ":0\r\n" {
		t.Fatalf("EXISTS after popping every member: %q", got)
	}
}

// Two executors over one store (two gateways) pop one set kept written
// between pops by both: each keeps its own sample, whose members the other
// pops, so their pops read each member first and skip those gone. Every
// SPOP must give a member present, each once; SCARD and SMEMBERS must
// match a model.
func TestSPopTwoGatewaysShareTheSet(t *testing.T) {
	e1, c1 := randExecutor(t)
	e2 := New(e1.be, Options{})
	c2 := e2.NewClient("127.0.0.1:3", "127.0.0.1:4")
	const n, rounds = 5000, 6000
	name := func(i int) string { return fmt.Sprintf("m:%06d", i) }
	fill(t, e1, c1, "SADD", "s", n, name)
	present := map[string]bool{}
	for i := range n {
		present[name(i)] = true
	}
	gone, verified := popSampleGone.Value(), popSampleVerified.Value()
	rng := rand.New(rand.NewPCG(17, 18))
	next := n
	for range rounds {
		e, c := e1, c1
		if rng.IntN(2) == 0 {
			e, c = e2, c2
		}
		switch op := rng.IntN(10); {
		case op < 5:
			got := bulks(do(t, e, c, "SPOP", "s"))
			if len(got) != 1 || !present[got[0]] {
				t.Fatalf("SPOP gave %q, not a member", got)
			}
			delete(present, got[0])
		case op < 9:
			do(t, e, c, "SADD", "s", name(next))
			present[name(next)] = true
			next++
		default:
			m := name(rng.IntN(next))
			do(t, e, c, "SREM", "s", m)
			delete(present, m)
		}
	}
	if popSampleGone.Value() == gone || popSampleVerified.Value() == verified {
		t.Fatal("no pop read a member the other gateway had popped: the test misses its case")
	}
	got := bulks(do(t, e2, c2, "SMEMBERS", "s"))
	if len(got) != len(present) {
		t.Fatalf("SMEMBERS: %d members, the model %d", len(got), len(present))
	}
	for _, m := range got {
		if !present[m] {
			t.Fatalf("SMEMBERS holds %q, not in the model", m)
		}
	}
	if r := do(t, e1, c1, "SCARD", "s"); r != fmt.Sprintf(":%d\r\n", len(present)) {
		t.Fatalf("SCARD = %q, want %d", r, len(present))
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
				// Before Close (cleanups run last first), the end of the
				// loop's last iteration: the groups let go of the writers'
				// lock, which the sweeper Close waits for may be waiting on
				// (a CI rehearsal hung here for 15 minutes).
				t.Cleanup(func() {
					_ = with.be.Sync(ctxWith)
					_ = without.be.Sync(ctxWithout)
				})
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

// retryingBackend runs every write twice, as the raft backend does when a
// transaction conflicts: the first run's writes are thrown away (its fn
// returns, then the transaction fails), the second commits.
type retryingBackend struct{ backend.Backend }

var errRetryRun = errors.New("test: this run is thrown away")

func (b retryingBackend) Update(ctx context.Context, opts backend.WriteOptions, keys [][]byte, fn func(backend.Txn) error) error {
	err := b.Backend.Update(ctx, opts, keys, func(tx backend.Txn) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRetryRun
	})
	if !errors.Is(err, errRetryRun) {
		return err
	}
	return b.Backend.Update(ctx, opts, keys, fn)
}

// An SPOP whose transaction runs again pops, if it is still in the set,
// the member its first run took from the sample: a retry loses no member
// from the sample (each would wait for the next sample), and every pop
// still gives a member of the set, once.
func TestSPopRetryPopsTheMemberTaken(t *testing.T) {
	e0, _ := randExecutor(t)
	e := New(retryingBackend{e0.be}, Options{})
	c := e.NewClient("127.0.0.1:5", "127.0.0.1:6")
	const n, pops = 3000, 150 // a sample of n/16 serves them all
	fill(t, e, c, "SADD", "s", n, func(i int) string { return fmt.Sprintf("m:%05d", i) })
	retaken, reads := popSampleRetaken.Value(), popBatchReads.Value()
	seen := map[string]bool{}
	for range pops {
		got := bulks(do(t, e, c, "SPOP", "s"))
		if len(got) != 1 || seen[got[0]] || !strings.HasPrefix(got[0], "m:") {
			t.Fatalf("SPOP gave %q (popped before: %v)", got, seen[got[0]])
		}
		seen[got[0]] = true
	}
	if got := popSampleRetaken.Value() - retaken; got != pops {
		t.Fatalf("%d of %d retried SPOPs popped the member their first run took", got, pops)
	}
	if got := popBatchReads.Value() - reads; got != 1 {
		t.Fatalf("%d samples drawn for %d pops, want 1", got, pops)
	}
	if got := do(t, e, c, "SCARD", "s"); got != fmt.Sprintf(":%d\r\n", n-pops) {
		t.Fatalf("SCARD = %q, want %d", got, n-pops)
	}
	for m := range seen {
		if got := do(t, e, c, "SISMEMBER", "s", m); got != ":0\r\n" {
			t.Fatalf("SISMEMBER %s after its SPOP: %q", m, got)
		}
	}
}
