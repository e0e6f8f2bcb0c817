package mvcc

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// refPrewrite is Prewrite as it was before the request's locks were read in
// one pass and the one-phase commit slot was judged from the version scan:
// a point read of the lock per key, and putCommit's point read of the slot.
// TestPrewriteMatchesPerKeyReference holds Prewrite to it.
func refPrewrite(r pebble.Reader, req *kvrpcpb.PrewriteRequest, onePCCommitTS uint64) (mods []*raftserverpb.Modify, keyErrs []*kvrpcpb.KeyError, err error) {
	startTS := req.GetStartVersion()
	if startTS == 0 {
		return nil, []*kvrpcpb.KeyError{abortf("prewrite: start_version is 0")}, nil
	}
	if onePCCommitTS != 0 && onePCCommitTS <= startTS {
		return nil, []*kvrpcpb.KeyError{abortf("prewrite: one-phase commit_ts %d is not above start_version %d", onePCCommitTS, startTS)}, nil
	}
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	var m modifies
	seen := map[string]struct{}{}
	for _, mut := range req.GetMutations() {
		if _, dup := seen[string(mut.GetKey())]; dup {
			keyErrs = append(keyErrs, abortf("prewrite: key %q appears twice in one request", mut.GetKey()))
			continue
		}
		seen[string(mut.GetKey())] = struct{}{}
		kerr, err := rd.refPrewriteKey(&m, req, mut, onePCCommitTS)
		if err != nil {
			return nil, nil, err
		}
		if kerr != nil {
			keyErrs = append(keyErrs, kerr)
		}
	}
	if len(keyErrs) > 0 {
		return nil, keyErrs, nil
	}
	return m.list, nil, nil
}

func (rd *reader) refPrewriteKey(m *modifies, req *kvrpcpb.PrewriteRequest, mut *kvrpcpb.Mutation, onePCCommitTS uint64) (*kvrpcpb.KeyError, error) {
	key, op, startTS := mut.GetKey(), mut.GetOp(), req.GetStartVersion()
	if op != opPut && op != opDel && op != opLock {
		return abortf("prewrite: key %q: mutation op %v", key, op), nil
	}
	l, locked, err := rd.lock(key)
	if err != nil {
		return nil, err
	}
	if locked {
		if l.StartTS != startTS {
			return lockedError(&l, key), nil
		}
		if onePCCommitTS != 0 {
			return rd.commitLock(m, key, &l, onePCCommitTS)
		}
		return nil, nil
	}
	ok, err := rd.seekVersions(key, ^uint64(0), startTS)
	if err != nil {
		return nil, err
	}
	var conflictTS uint64
	for ; ok; ok = rd.wit.Next() {
		commitTS, w, err := rd.version(key)
		if err != nil {
			return nil, err
		}
		switch {
		case commitTS == startTS && (w.Kind == opRollback || w.OverlappedRollback):
			return abortf("prewrite: transaction %d already rolled back on key %q", startTS, key), nil
		case w.StartTS == startTS && w.Kind != opRollback:
			return nil, nil
		case w.Kind != opRollback && conflictTS == 0 && commitTS > startTS:
			conflictTS = commitTS
		}
	}
	if err := rd.iterErr(key); err != nil {
		return nil, err
	}
	if conflictTS != 0 {
		return &kvrpcpb.KeyError{Conflict: &kvrpcpb.WriteConflict{
			StartTs: startTS, ConflictTs: conflictTS, Key: key, Primary: req.GetPrimaryLock(),
		}}, nil
	}
	value := mut.GetValue()
	inline := op == opPut && len(value) <= ShortValueMax
	var expiresAt int64
	if op == opPut {
		expiresAt = mut.GetExpiresAt()
		if !inline {
			m.put(keys.DefaultKey(key, startTS), value)
		}
	}
	if !inline {
		value = nil
	}
	if onePCCommitTS != 0 {
		return rd.putCommit(m, key, Write{Kind: op, StartTS: startTS, ExpiresAt: expiresAt, Inline: inline, Value: value}, onePCCommitTS)
	}
	l = Lock{
		Op: op, Primary: req.GetPrimaryLock(), StartTS: startTS, TTL: req.GetLockTtl(), TxnSize: req.GetTxnSize(),
		ExpiresAt: expiresAt, Inline: inline, Value: value,
	}
	m.put(keys.LockKey(key), l.Encode())
	return nil, nil
}

// TestPrewriteMatchesPerKeyReference builds random engine states — locks of
// the requesting and of other transactions, commits, rollbacks and
// overlapped rollbacks around the request's start and one-phase commit
// timestamps, keys that prefix one another — and checks that Prewrite
// returns exactly what the per-key reference returns, for two-phase and
// one-phase requests naming the keys in random order (duplicates included).
func TestPrewriteMatchesPerKeyReference(t *testing.T) {
	rng := rand.New(rand.NewSource(14))
	keyPool := []string{"", "a", "a\x00", "ab", "abcdefgh", "abcdefghi", "b", "k", "k1", "k2", "z", "zz"}
	for round := 0; round < 400; round++ {
		e := newEnv(t)
		const startTS, commitTS = 100, 110
		// Hand-built state, as the store could hold it.
		for _, k := range keyPool {
			kb := []byte(k)
			switch rng.Intn(4) {
			case 0: // another transaction's lock
				ts := uint64(rng.Intn(150) + 1)
				l := Lock{Op: kvrpcpb.Op_PUT, Primary: []byte("p"), StartTS: ts, TTL: 10, Inline: true, Value: []byte("o")}
				e.rawPut(keys.LockKey(kb), l.Encode())
			case 1: // this transaction's own lock
				l := Lock{Op: kvrpcpb.Op_PUT, Primary: []byte("p"), StartTS: startTS, TTL: 10, Inline: true, Value: []byte("mine")}
				e.rawPut(keys.LockKey(kb), l.Encode())
			}
			for n := rng.Intn(4); n > 0; n-- {
				cts := []uint64{50, 99, startTS, 105, commitTS, 120}[rng.Intn(6)]
				var w Write
				switch rng.Intn(5) {
				case 0:
					w = Write{Kind: opRollback, StartTS: cts}
				case 1:
					w = Write{Kind: opPut, StartTS: cts - 1, Inline: true, Value: []byte("v"), OverlappedRollback: rng.Intn(2) == 0}
				case 2:
					w = Write{Kind: opPut, StartTS: startTS, Inline: true, Value: []byte("own")}
				case 3:
					w = Write{Kind: opDel, StartTS: cts - 1}
				default:
					w = Write{Kind: opLock, StartTS: cts - 1}
				}
				if w.StartTS > cts {
					continue
				}
				e.rawPut(keys.WriteKey(kb, cts), w.Encode())
			}
		}
		for try := 0; try < 6; try++ {
			var muts []*kvrpcpb.Mutation
			for n := rng.Intn(len(keyPool)) + 1; n > 0; n-- {
				k := keyPool[rng.Intn(len(keyPool))]
				switch rng.Intn(4) {
				case 0:
					muts = append(muts, mDel(k))
				case 1:
					muts = append(muts, mPut(k, long('x')))
				default:
					muts = append(muts, mPut(k, "v"+k))
				}
			}
			req := prewriteReq(startTS, string(muts[0].Key), 3000, muts...)
			for _, onePC := range []uint64{0, commitTS} {
				name := fmt.Sprintf("round %d try %d 1pc %d", round, try, onePC)
				snap := e.snap()
				gotM, gotE, gotErr := Prewrite(snap, req, onePC)
				wantM, wantE, wantErr := refPrewrite(snap, req, onePC)
				if (gotErr != nil) != (wantErr != nil) {
					t.Fatalf("%s: err %v, reference %v", name, gotErr, wantErr)
				}
				if len(gotM) != len(wantM) || len(gotE) != len(wantE) {
					t.Fatalf("%s: %d modifies %v, reference %d %v", name, len(gotM), gotE, len(wantM), wantE)
				}
				for i := range gotM {
					if !proto.Equal(gotM[i], wantM[i]) {
						t.Fatalf("%s: modify %d = %v, reference %v", name, i, gotM[i], wantM[i])
					}
				}
				for i := range gotE {
					if !proto.Equal(gotE[i], wantE[i]) {
						t.Fatalf("%s: key error %d = %v, reference %v", name, i, gotE[i], wantE[i])
					}
				}
			}
		}
	}
}

// BenchmarkPrewrite1PC measures what a combined SET costs the leader's
// compute step: a one-phase prewrite of 20 random keys of 100000 against a
// memtable holding a version of most of them, as under redis-benchmark
// -r 100000 (ns/op is per request of 20 keys). "perkey" is the former
// algorithm (refPrewrite), for comparison.
func BenchmarkPrewrite1PC(b *testing.B) {
	db, key, rng := benchStore(b)
	reqs := make([]*kvrpcpb.PrewriteRequest, 256)
	for i := range reqs {
		var muts []*kvrpcpb.Mutation
		for range 20 {
			muts = append(muts, &kvrpcpb.Mutation{Op: kvrpcpb.Op_PUT, Key: key(rng.Intn(100000)), Value: []byte("xxx")})
		}
		reqs[i] = prewriteReq(100, string(muts[0].Key), 3000, muts...)
	}
	for _, c := range []struct {
		name string
		f    func(pebble.Reader, *kvrpcpb.PrewriteRequest, uint64) ([]*raftserverpb.Modify, []*kvrpcpb.KeyError, error)
	}{{"onepass", Prewrite}, {"perkey", refPrewrite}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, kerrs, err := c.f(db, reqs[i%len(reqs)], 110); err != nil || len(kerrs) > 0 {
					if err != nil || kerrs[0].GetAbort() != "" {
						b.Fatal(kerrs, err)
					}
				}
				i++
			}
		})
	}
}

// benchStore opens the in-memory store the leader-step benchmarks read: a
// memtable holding zero to two committed versions of each of 100000 keys
// (as after redis-benchmark -r 100000), and no lock. key names the i-th
// key; rng draws the requests.
func benchStore(b *testing.B) (db *pebble.DB, key func(int) []byte, rng *rand.Rand) {
	b.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), MemTableSize: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	rng = rand.New(rand.NewSource(1))
	key = func(i int) []byte { return []byte(fmt.Sprintf("\x00\x00\x00\x00key:%012d", i)) }
	batch := db.NewBatch()
	for i := range 100000 {
		for v := uint64(1); v <= uint64(rng.Intn(3)); v++ {
			w := Write{Kind: kvrpcpb.Op_PUT, StartTS: 10 * v, Inline: true, Value: []byte("xxx")}
			_ = batch.Set(keys.WriteKey(key(i), 10*v+1), w.Encode(), nil)
		}
	}
	if err := batch.Commit(nil); err != nil {
		b.Fatal(err)
	}
	return db, key, rng
}
