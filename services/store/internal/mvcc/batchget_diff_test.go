package mvcc

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"

	"github.com/cockroachdb/pebble"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// refBatchGet is BatchGetPage as it was before a batch's locks were read in
// one ordered pass: each key read as Get (or GetHead) reads it, a point
// read of its lock first. TestBatchGetMatchesPerKeyReads holds BatchGetPage
// to it.
func refBatchGet(t *testing.T, r pebble.Reader, keyList [][]byte, ts uint64, nowMs int64, opts ReadOptions) []*kvrpcpb.KvPair {
	t.Helper()
	var pairs []*kvrpcpb.KvPair
	for _, key := range keyList {
		if opts.HeadOnly {
			h, found, kerr, err := GetHead(r, key, ts, nowMs, opts.PrefixLen)
			switch {
			case err != nil:
				t.Fatal(err)
			case kerr != nil:
				pairs = append(pairs, &kvrpcpb.KvPair{Key: key, Error: kerr})
			case found:
				pairs = append(pairs, &kvrpcpb.KvPair{Key: key, Value: h.Prefix, ExpiresAt: h.ExpiresAt, ValueLen: uint64(h.Len)})
			}
			continue
		}
		v, exp, found, kerr, err := Get(r, key, ts, nowMs)
		switch {
		case err != nil:
			t.Fatal(err)
		case kerr != nil:
			pairs = append(pairs, &kvrpcpb.KvPair{Key: key, Error: kerr})
		case found:
			pairs = append(pairs, &kvrpcpb.KvPair{Key: key, Value: v, ExpiresAt: exp})
		}
	}
	return pairs
}

// TestBatchGetMatchesPerKeyReads builds random engine states — locks of
// every kind started below, at and above the read timestamp, PUT (inline
// and in the default column family, some expired), DEL, LOCK and ROLLBACK
// records around it, keys that prefix one another — and checks that
// BatchGetPage answers exactly what a per-key Get (GetHead) answers, for
// key lists in random order with duplicates, values and heads.
func TestBatchGetMatchesPerKeyReads(t *testing.T) {
	rng := rand.New(rand.NewSource(14))
	keyPool := []string{"", "a", "a\x00", "ab", "abcdefgh", "abcdefghi", "b", "k", "k1", "k2", "z", "zz"}
	const readTS, nowMs = 100, 1000
	for round := 0; round < 300; round++ {
		e := newEnv(t)
		for _, k := range keyPool {
			kb := []byte(k)
			if rng.Intn(3) == 0 {
				op := []kvrpcpb.Op{opPut, opDel, opLock}[rng.Intn(3)]
				l := Lock{Op: op, Primary: []byte("p"), StartTS: []uint64{50, readTS - 1, readTS, readTS + 1}[rng.Intn(4)], TTL: 10}
				if op == opPut {
					l.Inline, l.Value = true, []byte("o")
				}
				e.rawPut(keys.LockKey(kb), l.Encode())
			}
			for n := rng.Intn(4); n > 0; n-- {
				cts := []uint64{20, 60, readTS - 1, readTS, readTS + 1, 120}[rng.Intn(6)]
				startTS := cts - 1 - uint64(rng.Intn(5))
				var w Write
				switch rng.Intn(6) {
				case 0:
					w = Write{Kind: opRollback, StartTS: cts}
				case 1:
					w = Write{Kind: opPut, StartTS: startTS, Inline: true, Value: []byte("v" + k), OverlappedRollback: rng.Intn(2) == 0}
				case 2:
					w = Write{Kind: opPut, StartTS: startTS}
					e.rawPut(keys.DefaultKey(kb, startTS), []byte(long('x')+k))
				case 3:
					w = Write{Kind: opPut, StartTS: startTS, Inline: true, Value: []byte("e" + k), ExpiresAt: []int64{nowMs - 1, nowMs, nowMs + 1}[rng.Intn(3)]}
				case 4:
					w = Write{Kind: opDel, StartTS: startTS}
				default:
					w = Write{Kind: opLock, StartTS: startTS}
				}
				e.rawPut(keys.WriteKey(kb, cts), w.Encode())
			}
		}
		for try := 0; try < 6; try++ {
			var ks [][]byte
			for n := rng.Intn(len(keyPool)) + 2; n > 0; n-- {
				ks = append(ks, []byte(keyPool[rng.Intn(len(keyPool))]))
			}
			for _, opts := range []ReadOptions{{}, {HeadOnly: true, PrefixLen: 3}} {
				name := fmt.Sprintf("round %d try %d head %v keys %q", round, try, opts.HeadOnly, ks)
				for _, r := range []pebble.Reader{e.snap(), e.db} {
					got, next, err := BatchGetPage(r, ks, readTS, nowMs, opts)
					if err != nil || next != 0 {
						t.Fatalf("%s: next %d, err %v", name, next, err)
					}
					want := refBatchGet(t, r, ks, readTS, nowMs, opts)
					if len(got) != len(want) {
						t.Fatalf("%s: %d pairs %v, reference %d %v", name, len(got), got, len(want), want)
					}
					for i := range got {
						if !proto.Equal(got[i], want[i]) {
							t.Fatalf("%s: pair %d = %v, reference %v", name, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// BenchmarkBatchGet measures what a combined GET costs the leader's read
// step: a batch read of 20 random keys of 100000 against a memtable holding
// a version of most of them and no lock, as under redis-benchmark -r 100000
// after a SET run (ns/op is per request of 20 keys). "perkey" is the former
// algorithm (a lock point read per key), for comparison.
func BenchmarkBatchGet(b *testing.B) {
	db, key, rng := benchStore(b)
	reqs := make([][][]byte, 256)
	for i := range reqs {
		for range 20 {
			reqs[i] = append(reqs[i], key(rng.Intn(100000)))
		}
	}
	for _, c := range []struct {
		name string
		f    func(ks [][]byte) ([]*kvrpcpb.KvPair, error)
	}{
		{"onepass", func(ks [][]byte) ([]*kvrpcpb.KvPair, error) { return BatchGet(db, ks, 100, 0) }},
		{"perkey", func(ks [][]byte) (pairs []*kvrpcpb.KvPair, err error) {
			rd := reader{r: db}
			defer closeReader(&rd, &err)
			for _, k := range ks {
				v, _, found, _, err := rd.read(k, 100, 0, lockRead{})
				if err != nil {
					return nil, err
				}
				if found {
					pairs = append(pairs, &kvrpcpb.KvPair{Key: k, Value: v})
				}
			}
			return pairs, nil
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				pairs, err := c.f(reqs[i%len(reqs)])
				if err != nil || len(pairs) == 0 || !bytes.Equal(pairs[0].Value, []byte("xxx")) && len(pairs[0].Value) > 0 {
					b.Fatal(pairs, err)
				}
				i++
			}
		})
	}
}
