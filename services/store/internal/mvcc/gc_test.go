package mvcc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// gcFixture builds keys whose histories cover the GC cases; the safe point
// used with it is 50.
func gcFixture(t *testing.T) *env {
	e := newEnv(t)
	// "keep": the newest value at or below 50 stays, everything older goes;
	// versions above 50 are untouched.
	e.txn(10, 11, mPut("keep", long('1')))
	e.txn(20, 21, mPut("keep", "v2"))
	e.txn(30, 31, mDel("keep"))
	e.txn(40, 41, mPut("keep", long('4')))
	e.rollback(45, "keep")
	e.txn(46, 47, mLock("keep"))
	e.rollback(55, "keep")
	e.txn(60, 61, mPut("keep", "v6"))
	// "deleted": newest at or below 50 is a delete: all of it goes.
	e.txn(12, 13, mPut("deleted", long('d')))
	e.txn(32, 33, mDel("deleted"))
	// "expired": newest is a PUT expired by nowMs (1000): all goes.
	e.txn(14, 15, mPut("expired", "old"))
	e.txn(34, 35, mPutExp("expired", long('x'), 1000))
	// "alive": an expiring PUT not yet expired stays.
	e.txn(16, 17, mPut("alive", "old"))
	e.txn(36, 37, mPutExp("alive", "fresh", 5000))
	// "above": only versions above the safe point.
	e.txn(70, 71, mPut("above", "a"))
	e.rollback(80, "above")
	// "marks": only rollback and LOCK records below the safe point.
	e.rollback(22, "marks")
	e.txn(24, 25, mLock("marks"))
	// "a" and "a\x00": prefix keys, each with garbage.
	e.txn(18, 19, mPut("a", "a1"), mPut("a\x00", "b1"))
	e.txn(38, 39, mPut("a", "a2"), mPut("a\x00", "b2"))
	// "dropped, then rewritten above": delete at or below 50, value above.
	e.txn(26, 27, mPut("re", "r1"))
	e.txn(28, 29, mDel("re"))
	e.txn(90, 91, mPut("re", "r2"))
	return e
}

const gcWantWrites = "a@39:PUT a\x00@39:PUT above@80:ROLLBACK above@71:PUT alive@37:PUT keep@61:PUT keep@55:ROLLBACK keep@41:PUT re@91:PUT"
const gcWantDefaults = "keep@40"

// visible records what every key reads as at and above the safe point.
func visible(e *env, ts []uint64, nowMs int64) string {
	var sb strings.Builder
	for _, k := range []string{"a", "a\x00", "above", "alive", "deleted", "expired", "keep", "marks", "re"} {
		for _, t := range ts {
			g := e.get(k, t, nowMs)
			fmt.Fprintf(&sb, "%q@%d=%q/%v ", k, t, trunc(g.value), g.found)
		}
	}
	return sb.String()
}

var gcReadTS = []uint64{50, 56, 61, 75, 85, 95}

func TestGC(t *testing.T) {
	e := gcFixture(t)
	before := visible(e, gcReadTS, 1000)
	mods, next, err := GC(e.snap(), nil, nil, 50, 1000, 0, 0)
	if err != nil || next != nil {
		t.Fatal(next, err)
	}
	e.apply(mods)
	if got := e.cfString(keys.CFWrite); got != gcWantWrites {
		t.Errorf("write CF after GC:\n got %s\nwant %s", got, gcWantWrites)
	}
	if got := e.cfString(keys.CFDefault); got != gcWantDefaults {
		t.Errorf("default CF after GC = %s, want %s", got, gcWantDefaults)
	}
	if after := visible(e, gcReadTS, 1000); after != before {
		t.Errorf("reads changed by GC:\nbefore %s\nafter  %s", before, after)
	}
	// A second pass finds nothing.
	if mods, _, err := GC(e.snap(), nil, nil, 50, 1000, 0, 0); err != nil || mods != nil {
		t.Errorf("second GC = %d modifies, %v", len(mods), err)
	}
}

func TestGCSubrangeAndSafePoints(t *testing.T) {
	e := gcFixture(t)
	mods, next, err := GC(e.snap(), []byte("a"), []byte("alive"), 50, 1000, 0, 0)
	if err != nil || next != nil {
		t.Fatal(next, err)
	}
	e.apply(mods)
	// Only "a", "a\x00" and "above" are in range; "above" has nothing to drop.
	if got := e.cfString(keys.CFWrite); !strings.HasPrefix(got, "a@39:PUT a\x00@39:PUT above@80:ROLLBACK above@71:PUT alive@37:PUT alive@17:PUT") {
		t.Errorf("write CF = %s", got)
	}
	if mods, next, err := GC(e.snap(), []byte("z"), []byte("a"), 50, 1000, 0, 0); mods != nil || next != nil || err != nil {
		t.Errorf("GC over a reversed range = %d modifies, %q, %v", len(mods), next, err)
	}
	// A safe point of 0 keeps everything (nothing is at or below it).
	e2 := gcFixture(t)
	if mods, _, err := GC(e2.snap(), nil, nil, 0, 1000, 0, 0); err != nil || mods != nil {
		t.Errorf("GC at safe point 0 = %d modifies, %v", len(mods), err)
	}
	// nowMs decides expiry: at 0 the expiring PUT stays.
	mods, _, err = GC(e2.snap(), []byte("expired"), []byte("expired\x00"), 50, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	e2.apply(mods)
	if got := e2.cfString(keys.CFWrite); !strings.Contains(got, "expired@35:PUT") || strings.Contains(got, "expired@15") {
		t.Errorf("write CF = %s", got)
	}
}

// TestGCResumes: in small rounds GC reaches the same end state, never lets
// an older value show through between rounds, and never returns much more
// than its limit.
func TestGCResumes(t *testing.T) {
	for _, c := range []struct{ limit, maxBytes int }{{1, 0}, {2, 0}, {3, 0}, {7, 0}, {0, 1}, {0, 100}, {0, 250}} {
		limit, maxBytes := c.limit, c.maxBytes
		t.Run(fmt.Sprint("limit ", limit, " bytes ", maxBytes), func(t *testing.T) {
			e := gcFixture(t)
			// A key with a long history under a delete: it takes many rounds.
			for i := range 12 {
				ts := uint64(100 + 2*i)
				e.txn(ts, ts+1, mPut("long", long(byte('a'+i))))
			}
			e.txn(150, 151, mDel("long"))
			safe := uint64(160)
			before := visible(e, []uint64{160, 200}, 1000) + fmt.Sprint(e.get("long", 160, 1000))
			start := []byte(nil)
			for rounds := 0; ; rounds++ {
				if rounds > 200 {
					t.Fatal("GC does not finish")
				}
				mods, next, err := GC(e.snap(), start, nil, safe, 1000, limit, maxBytes)
				if err != nil {
					t.Fatal(err)
				}
				if limit > 0 && len(mods) > limit+2 {
					t.Fatalf("round %d: %d modifies for limit %d", rounds, len(mods), limit)
				}
				if size := modsSize(mods); maxBytes > 0 && len(mods) > 3 && size > maxBytes+3*(64+modifyOverhead) {
					t.Fatalf("round %d: %d bytes of modifies for a limit of %d", rounds, size, maxBytes)
				}
				e.apply(mods)
				if now := visible(e, []uint64{160, 200}, 1000) + fmt.Sprint(e.get("long", 160, 1000)); now != before {
					t.Fatalf("round %d changed reads:\nbefore %s\nnow    %s", rounds, before, now)
				}
				if next == nil {
					break
				}
				start = next
			}
			// Safe point 160: one version per live key, "long" gone entirely.
			if got, want := e.cfString(keys.CFWrite), "a@39:PUT a\x00@39:PUT above@71:PUT alive@37:PUT keep@61:PUT re@91:PUT"; got != want {
				t.Errorf("write CF:\n got %s\nwant %s", got, want)
			}
			if got := e.cfString(keys.CFDefault); got != "" {
				t.Errorf("default CF = %s", got)
			}
		})
	}
}

// TestGCCutNeverResurrects pins the held-back removal: a delete on top of
// many versions stays until the batch that removes the last of them.
func TestGCCutNeverResurrects(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.txn(uint64(10+2*i), uint64(11+2*i), mPut("k", fmt.Sprint("v", i)))
	}
	e.txn(30, 31, mDel("k"))
	mods, next, err := GC(e.snap(), nil, nil, 40, 0, 2, 0)
	if err != nil || string(next) != "k" || len(mods) != 2 {
		t.Fatalf("first round = %d modifies, next %q, %v", len(mods), next, err)
	}
	for _, m := range mods {
		if strings.Contains(string(m.Key), string(keys.WriteKey([]byte("k"), 31))) {
			t.Fatal("the delete record went before the versions under it")
		}
	}
	e.apply(mods)
	e.wantValue("k", 40, "", false)
	if got := e.cfString(keys.CFWrite); got != "k@31:DEL k@15:PUT k@13:PUT k@11:PUT" {
		t.Errorf("write CF after the cut = %s", got)
	}
}

func modsSize(mods []*raftserverpb.Modify) int {
	n := 0
	for _, m := range mods {
		n += len(m.GetKey()) + len(m.GetValue()) + modifyOverhead
	}
	return n
}

// gcToFixpoint collects at safePoint and nowMs until a call finds nothing
// and returns that call's summary.
func gcToFixpoint(t *testing.T, e *env, safePoint uint64, nowMs int64) GCSummary {
	t.Helper()
	for range 10 {
		var sum GCSummary
		mods, next, err := GCSummarized(e.snap(), nil, nil, safePoint, nowMs, 0, 0, &sum)
		if err != nil {
			t.Fatal(err)
		}
		if len(mods) == 0 && next == nil {
			return sum
		}
		e.apply(mods)
	}
	t.Fatal("GC did not reach a fixpoint")
	return GCSummary{}
}

// TestGCSummaryIdle: whenever the summary of a pass that found nothing says
// a later pass over the same data is idle, that pass finds nothing, and it
// says so only then: records between the two safe points, or a kept value
// expiring by the new one's time, make it collect again.
func TestGCSummaryIdle(t *testing.T) {
	e := gcFixture(t)
	sum := gcToFixpoint(t, e, 50, 1000)
	// Above 50: keep@55 (rollback), keep@61, above@71, above@80, re@91.
	if sum.NewestCommit != 91 || sum.OldestAbove != 55 || sum.NextExpiry != 5000 {
		t.Fatalf("summary at 50 = %+v, want newest commit 91, oldest above 55, next expiry 5000", sum)
	}
	for _, c := range []struct {
		sp       uint64
		nowMs    int64
		putSince uint64
		want     bool
	}{
		{50, 1000, math.MaxUint64, true},
		{54, 4999, math.MaxUint64, true},
		{54, 4999, 55, true},
		{54, 4999, 54, false}, // a record put at 54 since
		{55, 1000, math.MaxUint64, false},
		{100, 1000, math.MaxUint64, false},
		{54, 5000, math.MaxUint64, false}, // "alive" expires
		{49, 1000, math.MaxUint64, false},
	} {
		if got := sum.Idle(50, c.sp, c.nowMs, c.putSince); got != c.want {
			t.Errorf("Idle(50, %d, %d, %d) = %v, want %v", c.sp, c.nowMs, c.putSince, got, c.want)
		}
	}
	// At 55 the rollback record there goes: Idle was right not to skip.
	if mods, _, _ := GC(e.snap(), nil, nil, 55, 1000, 0, 0); len(mods) == 0 {
		t.Fatal("GC at 55 found nothing, though keep@55 is a rollback record at or below it")
	}
	sum = gcToFixpoint(t, e, 100, 1000)
	if sum.OldestAbove != 0 {
		t.Fatalf("oldest above 100 = %d, want none", sum.OldestAbove)
	}
	for _, c := range []struct {
		sp    uint64
		nowMs int64
	}{{100, 1000}, {200, 4999}, {200, 5000}, {1 << 40, 6000}, {99, 1000}} {
		idle := sum.Idle(100, c.sp, c.nowMs, math.MaxUint64)
		mods, _, err := GC(e.snap(), nil, nil, c.sp, c.nowMs, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if idle && len(mods) > 0 {
			t.Errorf("idle at %d/%d but GC removes %d records", c.sp, c.nowMs, len(mods))
		}
		if wantIdle := c.sp >= 100 && c.nowMs < 5000; idle != wantIdle {
			t.Errorf("Idle(100, %d, %d) = %v, want %v", c.sp, c.nowMs, idle, wantIdle)
		}
	}
	// "alive" expires at 5000: a pass at that time collects it although
	// nothing was written.
	if mods, _, _ := GC(e.snap(), nil, nil, 200, 5000, 0, 0); len(mods) == 0 {
		t.Fatal("the expired value was not collected")
	}
	// A range with no records at all is idle at any later safe point.
	empty := newEnv(t)
	if s := gcToFixpoint(t, empty, 10, 0); !s.Idle(10, 1<<50, 1<<40, math.MaxUint64) {
		t.Fatalf("an empty range is not idle: %+v", s)
	}
}

// TestGCSummaryIdleRandom holds GCSummary to its promise over random
// histories: OldestAbove is the lowest commit_ts above the safe point in
// the write column family (keys with many versions above it take the seek
// path), and whenever Idle says a pass at a later safe point, after more
// records were put, finds nothing, GC there finds nothing.
func TestGCSummaryIdleRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 14))
	idle := 0
	for round := range 150 {
		e := newEnv(t)
		var ts uint64 = 10
		ks := []string{"a", "a\x00", "b", "hot", "c", "d\x00\x01"}
		write := func(n int) (lowest uint64) {
			lowest = math.MaxUint64
			for range n {
				k := ks[rng.IntN(len(ks))]
				if rng.IntN(3) == 0 {
					k = "hot"
				}
				start, commit := ts+1, ts+2
				ts += 2 + uint64(rng.IntN(3))
				rec := commit
				switch rng.IntN(6) {
				case 0:
					e.txn(start, commit, mDel(k))
				case 1:
					e.rollback(start, k)
					rec = start
				case 2:
					e.txn(start, commit, mLock(k))
				case 3:
					e.txn(start, commit, mPutExp(k, "v", int64(1000+rng.IntN(200))))
				case 4:
					e.txn(start, commit, mPut(k, long('l')))
				default:
					e.txn(start, commit, mPut(k, "v"))
				}
				lowest = min(lowest, rec)
			}
			return lowest
		}
		write(10 + rng.IntN(60))
		sp1 := 10 + uint64(rng.IntN(int(ts)))
		now1 := int64(900 + rng.IntN(200))
		sum := gcToFixpoint(t, e, sp1, now1)
		var want uint64
		for _, en := range e.dump() {
			if en.cf == keys.CFWrite && en.ts > sp1 && (want == 0 || en.ts < want) {
				want = en.ts
			}
		}
		if sum.OldestAbove != want {
			t.Fatalf("round %d: oldest above %d = %d, want %d", round, sp1, sum.OldestAbove, want)
		}
		putSince := uint64(math.MaxUint64)
		if rng.IntN(2) == 0 {
			putSince = write(1 + rng.IntN(10))
		}
		for range 10 {
			sp2 := sp1 + uint64(rng.IntN(max(1, int(ts)-int(sp1)+5)))
			now2 := now1 + int64(rng.IntN(100))
			if !sum.Idle(sp1, sp2, now2, putSince) {
				continue
			}
			idle++
			mods, next, err := GC(e.snap(), nil, nil, sp2, now2, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(mods) > 0 || next != nil {
				t.Fatalf("round %d: Idle(%d, %d, %d, %d) but GC removes %d records", round, sp1, sp2, now2, putSince, len(mods))
			}
		}
	}
	if idle < 100 {
		t.Fatalf("only %d idle verdicts: the test exercises too little", idle)
	}
}
