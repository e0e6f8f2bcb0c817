package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

func TestExpiry(t *testing.T) {
	e := newEnv(t)
	e.txn(10, 20, mPut("k", "old"))
	e.txn(30, 40, mPutExp("k", "short", 5_000), mPutExp("l", long('l'), 5_000))
	e.txn(50, 60, mPutExp("n", "never", 0))
	for _, c := range []struct {
		key    string
		ts     uint64
		nowMs  int64
		want   string
		wantOK bool
	}{
		{"k", 40, 4_999, "short", true},
		{"k", 40, 5_000, "", false}, // expired: absent, not the older value
		{"k", 39, 1 << 50, "old", true},
		{"l", 40, 4_999, long('l'), true},
		{"l", 40, 5_001, "", false},
		{"n", 60, 1 << 62, "never", true},
	} {
		g := e.get(c.key, c.ts, c.nowMs)
		if g.kerr != nil || g.found != c.wantOK || g.value != c.want {
			t.Errorf("get %q@%d now %d = %+v, want %q %v", c.key, c.ts, c.nowMs, g, trunc(c.want), c.wantOK)
		}
		if c.wantOK && c.key != "n" && c.ts == 40 && g.expiresAt != 5_000 {
			t.Errorf("get %q: expires_at = %d", c.key, g.expiresAt)
		}
	}
	pairs, err := Scan(e.snap(), nil, nil, 0, 100, false, 5_000)
	if err != nil {
		t.Fatal(err)
	}
	if got := pairsString(pairs); got != "n=never" {
		t.Errorf("scan after expiry = %s", got)
	}
	pairs, err = Scan(e.snap(), nil, nil, 0, 100, true, 4_000)
	if err != nil {
		t.Fatal(err)
	}
	if got := pairsString(pairs); got != "k l n" || pairs[0].ExpiresAt != 5_000 {
		t.Errorf("key-only scan before expiry = %s (%v)", got, pairs)
	}
	// Expiry is carried from the lock to the commit record.
	e.mustPrewrite(70, "e", mPutExp("e", long('e'), 9_000))
	e.mustCommit(70, 80, "e")
	if g := e.get("e", 80, 0); g.expiresAt != 9_000 {
		t.Errorf("expires_at after commit = %d", g.expiresAt)
	}
}

// pairsString renders pairs as "k=v" (or "k" without value, "k!" for a lock).
func pairsString(pairs []*kvrpcpb.KvPair) string {
	var parts []string
	for _, p := range pairs {
		switch {
		case p.Error != nil:
			parts = append(parts, fmt.Sprintf("%s!%d", p.Key, p.Error.GetLocked().GetLockVersion()))
		case p.Value == nil:
			parts = append(parts, string(p.Key))
		default:
			parts = append(parts, string(p.Key)+"="+trunc(string(p.Value)))
		}
	}
	return strings.Join(parts, " ")
}

func scanFixture(t *testing.T) *env {
	e := newEnv(t)
	e.txn(10, 11, mPut("", "empty"), mPut("a", "a1"), mPut("a\x00", long('z')), mPut("b", "b1"), mPut("c", "c1"), mPut("d", "d1"))
	e.txn(20, 21, mDel("c"), mPutExp("d", "d2", 1_000))
	for i := range 30 { // many versions: the scan must seek past them
		ts := uint64(100 + 2*i)
		e.txn(ts, ts+1, mPut("e", fmt.Sprintf("e%d", i)))
	}
	e.txn(200, 201, mLock("b"))                         // a LOCK record on top of b's value
	if kerr := e.rollback(210, "a", "f"); kerr != nil { // rollback records: on a value, and alone
		t.Fatal(kerr)
	}
	e.txn(1, 2, mPut("h", "h1"), mPut("i", "i1"))
	e.mustPrewrite(300, "g", mPut("g", "locked")) // a pending lock on a key with no value
	e.mustPrewrite(305, "h", mLock("h"))          // a LOCK-only lock
	return e
}

func TestScan(t *testing.T) {
	e := scanFixture(t)
	for _, c := range []struct {
		name       string
		start, end string
		limit      int
		ts         uint64
		keyOnly    bool
		want       string
	}{
		{"everything before the lock", "", "", 0, 250, false, "=empty a=a1 a\x00=zzzzzzzzzzzzzzzzzzzz... b=b1 e=e29 h=h1 i=i1"},
		{"blocked by the lock", "", "", 0, 400, false, "=empty a=a1 a\x00=zzzzzzzzzzzzzzzzzzzz... b=b1 e=e29 g!300"},
		{"limit", "", "", 3, 400, false, "=empty a=a1 a\x00=zzzzzzzzzzzzzzzzzzzz..."},
		{"limit reached at the lock", "", "", 6, 400, false, "=empty a=a1 a\x00=zzzzzzzzzzzzzzzzzzzz... b=b1 e=e29 g!300"},
		{"key only", "", "", 0, 250, true, " a a\x00 b e h i"},
		{"range", "a\x00", "e", 0, 400, false, "a\x00=zzzzzzzzzzzzzzzzzzzz... b=b1"},
		{"range end excludes the key", "a", "a\x00", 0, 400, false, "a=a1"},
		{"unbounded end from inside", "f", "", 0, 250, false, "h=h1 i=i1"},
		{"an old snapshot", "", "", 0, 11, false, "=empty a=a1 a\x00=zzzzzzzzzzzzzzzzzzzz... b=b1 c=c1 d=d1 h=h1 i=i1"},
		{"a version in the middle", "e", "f", 0, 140, false, "e=e19"},
		{"before anything", "", "", 0, 1, false, ""},
		{"only h at ts 2", "h", "", 0, 2, true, "h i"},
		{"empty range", "b", "b", 0, 400, false, ""},
		{"reversed range", "e", "a", 0, 400, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			pairs, err := Scan(e.snap(), []byte(c.start), []byte(c.end), c.limit, c.ts, c.keyOnly, 2_000) // d has expired
			if err != nil {
				t.Fatal(err)
			}
			if got := pairsString(pairs); got != c.want {
				t.Errorf("scan = %q\nwant   %q", got, c.want)
			}
		})
	}
}

// TestScanBoundsResume: a scan cut by any of its bounds resumes where it
// stopped, and the pages add up to the whole scan; dead keys count as
// visited.
func TestScanBoundsResume(t *testing.T) {
	e := scanFixture(t)
	const whole = "=empty a=a1 a\x00=zzzzzzzzzzzzzzzzzzzz... b=b1 e=e29 h=h1 i=i1"
	// "", a, a\x00, b, c (deleted), d (expired), e, f (a rollback record
	// only), g (a lock only), h, i.
	const keysThere = 11
	for _, opts := range []ScanOptions{
		{}, {MaxVisit: 1}, {MaxVisit: 3}, {MaxBytes: 1}, {Limit: 2}, {MaxBytes: 300, MaxVisit: 4}, {Limit: 1, KeyOnly: true},
	} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			var (
				all     []*kvrpcpb.KvPair
				start   []byte
				visited int
			)
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatal("the scan does not end")
				}
				res, err := ScanWith(e.snap(), start, nil, 250, 2_000, opts)
				if err != nil {
					t.Fatal(err)
				}
				if opts.MaxVisit > 0 && res.Visited > opts.MaxVisit {
					t.Fatalf("page %d visited %d keys, limit %d", pages, res.Visited, opts.MaxVisit)
				}
				if opts.MaxBytes > 0 && opts.MaxVisit == 0 && res.Resume != nil && len(res.Pairs) == 0 {
					t.Fatalf("page %d: the byte budget stopped the scan before its first pair", pages)
				}
				all = append(all, res.Pairs...)
				visited += res.Visited
				if res.Resume == nil {
					break
				}
				start = res.Resume
			}
			want := whole
			if opts.KeyOnly {
				want = " a a\x00 b e h i"
			}
			if got := pairsString(all); got != want {
				t.Errorf("pages = %q\nwant    %q", got, want)
			}
			if visited != keysThere {
				t.Errorf("visited %d keys, want %d", visited, keysThere)
			}
		})
	}
	// Deleted, expired, rolled-back and lock-only keys use up the visits.
	res, err := ScanWith(e.snap(), []byte("b"), nil, 250, 2_000, ScanOptions{MaxVisit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got := pairsString(res.Pairs); got != "b=b1 e=e29" || res.Visited != 5 || string(res.Resume) != "f\x00" {
		t.Errorf("visit limit 5 from b = %q, visited %d, resume %q", got, res.Visited, res.Resume)
	}
	// A lock stops the scan: no resume key, the lock is the last pair.
	res, err = ScanWith(e.snap(), []byte("b"), nil, 400, 2_000, ScanOptions{MaxVisit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := pairsString(res.Pairs); got != "b=b1 e=e29 g!300" || res.Resume != nil {
		t.Errorf("scan into a lock = %q, resume %q", got, res.Resume)
	}
	// A range that ends where the bounds stop it has nothing to resume.
	res, err = ScanWith(e.snap(), []byte("h"), []byte("i"), 250, 2_000, ScanOptions{Limit: 1})
	if err != nil || pairsString(res.Pairs) != "h=h1" || res.Resume != nil {
		t.Errorf("scan of [h, i) limit 1 = %q, resume %q, %v", pairsString(res.Pairs), res.Resume, err)
	}
}

func TestBatchGetPage(t *testing.T) {
	e := scanFixture(t)
	ks := bs("a", "a\x00", "nope", "b")
	var got []string
	for from, pages := 0, 0; ; pages++ {
		pairs, next, err := BatchGetPage(e.snap(), ks[from:], 250, 2_000, ReadOptions{MaxBytes: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(pairs) == 0 && next != 0 {
			t.Fatalf("page %d read nothing", pages)
		}
		got = append(got, pairsString(pairs))
		if next == 0 {
			break
		}
		from += next
	}
	if g, want := strings.Join(got, "|"), "a=a1|a\x00=zzzzzzzzzzzzzzzzzzzz...|b=b1"; g != want {
		t.Errorf("pages = %q, want %q", g, want)
	}
	if pairs, next, err := BatchGetPage(e.snap(), ks, 250, 2_000, ReadOptions{MaxBytes: 1 << 20}); err != nil || next != 0 || len(pairs) != 3 {
		t.Errorf("one page = %d pairs, next %d, %v", len(pairs), next, err)
	}
}

func TestBatchGet(t *testing.T) {
	e := scanFixture(t)
	pairs, err := BatchGet(e.snap(), bs("i", "c", "a\x00", "g", "nope", ""), 400, 500)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pairsString(pairs), "i=i1 a\x00=zzzzzzzzzzzzzzzzzzzz... g!300 =empty"; got != want {
		t.Errorf("batch get = %q, want %q", got, want)
	}
}

func TestScanLock(t *testing.T) {
	e := scanFixture(t)
	e.mustPrewrite(350, "j", mDel("j"))
	for _, c := range []struct {
		maxTS      uint64
		start, end string
		limit      int
		want       string
	}{
		{1000, "", "", 0, "g@300 h@305 j@350"},
		{305, "", "", 0, "g@300 h@305"},
		{299, "", "", 0, ""},
		{1000, "h", "j", 0, "h@305"},
		{1000, "", "", 2, "g@300 h@305"},
		{1000, "j", "g", 0, ""},
	} {
		locks, err := ScanLock(e.snap(), c.maxTS, []byte(c.start), []byte(c.end), c.limit)
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, l := range locks {
			parts = append(parts, fmt.Sprintf("%s@%d", l.Key, l.LockVersion))
		}
		if got := strings.Join(parts, " "); got != c.want {
			t.Errorf("scan locks %+v = %q, want %q", c, got, c.want)
		}
	}
}

// TestScanMatchesGet runs random transactions over keys that are prefixes
// of each other and checks, at many timestamps, that a scan returns exactly
// what per-key reads return, stopping at the first blocking lock.
func TestScanMatchesGet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	universe := []string{"", "\x00", "a", "a\x00", "a\x00\x00", "ab", "abcdefgh", "abcdefgh\x00", "b", "\xff", "\xff\xff"}
	e := newEnv(t)
	ts := uint64(10)
	for range 150 {
		startTS := ts
		ts += 2
		var muts []*kvrpcpb.Mutation
		seen := map[string]bool{}
		for range 1 + rng.IntN(3) {
			k := universe[rng.IntN(len(universe))]
			if seen[k] {
				continue
			}
			seen[k] = true
			switch rng.IntN(5) {
			case 0:
				muts = append(muts, mDel(k))
			case 1:
				muts = append(muts, mLock(k))
			case 2:
				muts = append(muts, mPut(k, strings.Repeat("L", 300)+fmt.Sprint(startTS)))
			default:
				muts = append(muts, mPutExp(k, fmt.Sprint(startTS), int64(rng.IntN(3))*1000))
			}
		}
		if len(e.prewrite(startTS, string(muts[0].Key), muts...)) > 0 {
			continue // conflicts with a lock left pending
		}
		var ks []string
		for _, m := range muts {
			ks = append(ks, string(m.Key))
		}
		switch rng.IntN(6) {
		case 0:
			e.rollback(startTS, ks...)
		case 1: // left pending
		default:
			e.mustCommit(startTS, ts, ks...)
			ts++
		}
	}
	for readTS := uint64(5); readTS <= ts+5; readTS += 7 {
		for _, nowMs := range []int64{0, 1500} {
			pairs, err := Scan(e.snap(), nil, nil, 0, readTS, false, nowMs)
			if err != nil {
				t.Fatal(err)
			}
			var want []*kvrpcpb.KvPair
			for _, k := range universe {
				v, exp, found, kerr, err := Get(e.snap(), []byte(k), readTS, nowMs)
				if err != nil {
					t.Fatal(err)
				}
				if kerr != nil {
					want = append(want, &kvrpcpb.KvPair{Key: []byte(k), Error: kerr})
					break
				}
				if found {
					want = append(want, &kvrpcpb.KvPair{Key: []byte(k), Value: v, ExpiresAt: exp})
				}
			}
			if len(pairs) != len(want) {
				t.Fatalf("ts %d now %d: scan %q, gets %q", readTS, nowMs, pairsString(pairs), pairsString(want))
			}
			for i := range pairs {
				if pairs[i].String() != want[i].String() {
					t.Fatalf("ts %d now %d: pair %d: scan %v, get %v", readTS, nowMs, i, pairs[i], want[i])
				}
			}
		}
	}
}

func TestCorruptRecordsAreErrors(t *testing.T) {
	garbage := []byte{1, 0xff, 3}
	for _, c := range []struct {
		name  string
		plant func(e *env)
		ops   []string
	}{
		{"lock value", func(e *env) { e.rawPut(keys.LockKey([]byte("k")), garbage) }, []string{"get", "scan", "prewrite", "commit", "rollback", "check", "cleanup", "scanlock", "resolve"}},
		{"write value", func(e *env) { e.rawPut(keys.WriteKey([]byte("k"), 5), garbage) }, []string{"get", "scan", "prewrite", "commit", "rollback", "check", "cleanup", "gc"}},
		{"missing long value", func(e *env) {
			e.rawPut(keys.WriteKey([]byte("k"), 5), (&Write{Kind: kvrpcpb.Op_PUT, StartTS: 4}).Encode())
		}, []string{"get", "scan"}},
		{"write key suffix", func(e *env) {
			e.rawPut(append(keys.WriteKey([]byte("k"), 5), 0), (&Write{Kind: kvrpcpb.Op_DEL, StartTS: 4}).Encode())
		}, []string{"get", "scan", "gc", "prewrite"}},
		{"lock key encoding", func(e *env) {
			e.rawPut([]byte{keys.CFLock, 'k'}, (&Lock{Op: kvrpcpb.Op_PUT, StartTS: 4}).Encode())
		}, []string{"scanlock", "resolve"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			c.plant(e)
			k := []byte("k")
			for _, op := range c.ops {
				var err error
				r := e.snap()
				switch op {
				case "get":
					_, _, _, _, err = Get(r, k, 10, 0)
				case "scan":
					_, err = Scan(r, nil, nil, 0, 10, false, 0)
				case "prewrite":
					_, _, err = Prewrite(r, prewriteReq(4, "k", 1, mPut("k", "v")), 0)
				case "commit":
					_, _, err = Commit(r, 4, bs("k"), 9)
				case "rollback":
					_, _, err = BatchRollback(r, 4, bs("k"))
				case "check":
					_, err = CheckTxnStatus(r, k, 4, 0, true)
				case "cleanup":
					_, _, _, err = Cleanup(r, k, 4, 0)
				case "scanlock":
					_, err = ScanLock(r, 100, nil, nil, 0)
				case "resolve":
					_, _, _, err = ResolveLock(r, 4, 0, nil, nil, nil, 0)
				case "gc":
					_, _, err = GC(r, nil, nil, 100, 0, 0, 0)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s: err = %v, want ErrCorrupt", op, err)
				}
			}
		})
	}
}

func TestApplyModifiesRejectsUnknownOp(t *testing.T) {
	e := newEnv(t)
	mods, _, err := Prewrite(e.snap(), prewriteReq(4, "k", 1, mPut("k", "v")), 0)
	if err != nil {
		t.Fatal(err)
	}
	mods[0].Op = 7
	b := e.db.NewBatch()
	defer b.Close()
	if err := ApplyModifies(b, mods); err == nil {
		t.Error("unknown modify op accepted")
	}
}

func BenchmarkGet(b *testing.B) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	batch := db.NewBatch()
	for i := range 1000 {
		k := []byte(fmt.Sprintf("key%04d", i))
		for v := uint64(1); v <= 5; v++ {
			w := Write{Kind: kvrpcpb.Op_PUT, StartTS: 10 * v, Inline: true, Value: bytes.Repeat([]byte{'v'}, 100)}
			_ = batch.Set(keys.WriteKey(k, 10*v+1), w.Encode(), nil)
		}
	}
	if err := batch.Commit(nil); err != nil {
		b.Fatal(err)
	}
	key := []byte("key0500")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, found, _, err := Get(db, key, 35, 0); err != nil || !found {
			b.Fatal(found, err)
		}
	}
}

// stepCounter is a pebble.Reader whose lock column family iterators count
// the keys they step over (deleted ones included).
type stepCounter struct {
	pebble.Reader
	lockSteps *int
}

func (s stepCounter) NewIter(o *pebble.IterOptions) (*pebble.Iterator, error) {
	if o != nil && len(o.LowerBound) > 0 && o.LowerBound[0] == keys.CFLock {
		oo := *o
		oo.SkipPoint = func([]byte) bool { *s.lockSteps++; return false }
		o = &oo
	}
	return s.Reader.NewIter(o)
}

// A range whose keys were all written by 2PC transactions holds a deleted
// lock per key: a scan in pages steps over each of them about once, not
// over all those left in the range at every page (which made an SPOP
// sample of a big set on the raft backend quadratic in the set's size).
func TestScanPagesStepOverDeletedLocksOnce(t *testing.T) {
	e := newEnv(t)
	const n, page = 2000, 16
	for i := range n / 100 {
		var muts []*kvrpcpb.Mutation
		for j := range 100 {
			muts = append(muts, mPut(fmt.Sprintf("k%05d", i*100+j), "v"))
		}
		ts := uint64(10 + 2*i)
		e.txn(ts, ts+1, muts...)
	}
	// A lock-only key among them and one past the last: still seen.
	e.mustPrewrite(300, "k01000x", mPut("k01000x", "p"))
	e.mustPrewrite(301, "z", mPut("z", "p"))
	steps := 0
	r := stepCounter{Reader: e.snap(), lockSteps: &steps}
	var start []byte
	pairs, visited := 0, 0
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("the scan does not end")
		}
		res, err := ScanWith(r, start, nil, 250, 2_000, ScanOptions{Limit: page})
		if err != nil {
			t.Fatal(err)
		}
		pairs += len(res.Pairs)
		visited += res.Visited
		if res.Resume == nil {
			break
		}
		start = res.Resume
	}
	if pairs != n || visited != n+2 {
		t.Fatalf("scanned %d pairs, visited %d keys, want %d and %d", pairs, visited, n, n+2)
	}
	// Each page may look at the lock of the key after its last: 2 per
	// key and page at most.
	if maxSteps := 2 * (n + 2 + n/page + 1); steps > maxSteps {
		t.Errorf("the lock iterators stepped over %d keys for %d keys in pages of %d, want at most %d", steps, n+2, page, maxSteps)
	}
}
