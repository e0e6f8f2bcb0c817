package mvcc

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// env is one in-memory Pebble engine that tests drive the way a store will:
// compute modifies from a snapshot, then apply them in one batch.
type env struct {
	t  *testing.T
	db *pebble.DB
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return &env{t: t, db: db}
}

// snap returns a snapshot of the engine, closed when the test ends.
func (e *env) snap() pebble.Reader {
	s := e.db.NewSnapshot()
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

func (e *env) apply(mods []*raftserverpb.Modify) {
	e.t.Helper()
	b := e.db.NewBatch()
	if err := ApplyModifies(b, mods); err != nil {
		e.t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		e.t.Fatal(err)
	}
}

// rawPut writes engine bytes directly (corruption tests, hand-built states).
func (e *env) rawPut(k, v []byte) {
	e.t.Helper()
	if err := e.db.Set(k, v, pebble.NoSync); err != nil {
		e.t.Fatal(err)
	}
}

func mPut(k, v string) *kvrpcpb.Mutation {
	return &kvrpcpb.Mutation{Op: kvrpcpb.Op_PUT, Key: []byte(k), Value: []byte(v)}
}

func mPutExp(k, v string, expiresAt int64) *kvrpcpb.Mutation {
	m := mPut(k, v)
	m.ExpiresAt = expiresAt
	return m
}

func mDel(k string) *kvrpcpb.Mutation { return &kvrpcpb.Mutation{Op: kvrpcpb.Op_DEL, Key: []byte(k)} }

func mLock(k string) *kvrpcpb.Mutation { return &kvrpcpb.Mutation{Op: kvrpcpb.Op_LOCK, Key: []byte(k)} }

func prewriteReq(startTS uint64, primary string, ttl uint64, muts ...*kvrpcpb.Mutation) *kvrpcpb.PrewriteRequest {
	return &kvrpcpb.PrewriteRequest{
		Mutations: muts, PrimaryLock: []byte(primary), StartVersion: startTS, LockTtl: ttl, TxnSize: uint64(len(muts)),
	}
}

// prewrite runs a prewrite and applies its modifies; it returns the key errors.
func (e *env) prewrite(startTS uint64, primary string, muts ...*kvrpcpb.Mutation) []*kvrpcpb.KeyError {
	e.t.Helper()
	return e.prewriteReq(prewriteReq(startTS, primary, 3000, muts...), 0)
}

func (e *env) prewriteReq(req *kvrpcpb.PrewriteRequest, onePC uint64) []*kvrpcpb.KeyError {
	e.t.Helper()
	mods, kerrs, err := Prewrite(e.snap(), req, onePC)
	if err != nil {
		e.t.Fatalf("prewrite %d: %v", req.StartVersion, err)
	}
	if len(kerrs) > 0 && len(mods) > 0 {
		e.t.Fatalf("prewrite %d returned %d modifies with key errors %v", req.StartVersion, len(mods), kerrs)
	}
	e.apply(mods)
	return kerrs
}

func (e *env) mustPrewrite(startTS uint64, primary string, muts ...*kvrpcpb.Mutation) {
	e.t.Helper()
	if kerrs := e.prewrite(startTS, primary, muts...); len(kerrs) > 0 {
		e.t.Fatalf("prewrite %d: %v", startTS, kerrs)
	}
}

func (e *env) commit(startTS, commitTS uint64, ks ...string) *kvrpcpb.KeyError {
	e.t.Helper()
	mods, kerr, err := Commit(e.snap(), startTS, bs(ks...), commitTS)
	if err != nil {
		e.t.Fatalf("commit %d@%d: %v", startTS, commitTS, err)
	}
	if kerr != nil && len(mods) > 0 {
		e.t.Fatalf("commit returned modifies with key error %v", kerr)
	}
	e.apply(mods)
	return kerr
}

func (e *env) mustCommit(startTS, commitTS uint64, ks ...string) {
	e.t.Helper()
	if kerr := e.commit(startTS, commitTS, ks...); kerr != nil {
		e.t.Fatalf("commit %d@%d: %v", startTS, commitTS, kerr)
	}
}

// txn runs a whole two-phase transaction; the first mutation is the primary.
func (e *env) txn(startTS, commitTS uint64, muts ...*kvrpcpb.Mutation) {
	e.t.Helper()
	e.mustPrewrite(startTS, string(muts[0].Key), muts...)
	var ks []string
	for _, m := range muts {
		ks = append(ks, string(m.Key))
	}
	e.mustCommit(startTS, commitTS, ks...)
}

func (e *env) rollback(startTS uint64, ks ...string) *kvrpcpb.KeyError {
	e.t.Helper()
	mods, kerr, err := BatchRollback(e.snap(), startTS, bs(ks...))
	if err != nil {
		e.t.Fatalf("rollback %d: %v", startTS, err)
	}
	if kerr != nil && len(mods) > 0 {
		e.t.Fatalf("rollback returned modifies with key error %v", kerr)
	}
	e.apply(mods)
	return kerr
}

type getResult struct {
	value     string
	expiresAt int64
	found     bool
	kerr      *kvrpcpb.KeyError
}

func (e *env) get(key string, ts uint64, nowMs int64) getResult {
	e.t.Helper()
	v, exp, found, kerr, err := Get(e.snap(), []byte(key), ts, nowMs)
	if err != nil {
		e.t.Fatalf("get %q@%d: %v", key, ts, err)
	}
	if !found && v != nil {
		e.t.Fatalf("get %q@%d: not found but value %q", key, ts, v)
	}
	return getResult{string(v), exp, found, kerr}
}

// wantValue checks that key reads as value at ts ("" with found=false: absent).
func (e *env) wantValue(key string, ts uint64, value string, found bool) {
	e.t.Helper()
	g := e.get(key, ts, 0)
	if g.kerr != nil {
		e.t.Fatalf("get %q@%d: key error %v", key, ts, g.kerr)
	}
	if g.found != found || g.value != value {
		e.t.Fatalf("get %q@%d = (%q, found %v), want (%q, found %v)", key, ts, trunc(g.value), g.found, trunc(value), found)
	}
}

func (e *env) wantLocked(key string, ts uint64, lockTS uint64) {
	e.t.Helper()
	g := e.get(key, ts, 0)
	if g.kerr.GetLocked() == nil || g.kerr.GetLocked().GetLockVersion() != lockTS {
		e.t.Fatalf("get %q@%d = %+v, want locked by %d", key, ts, g, lockTS)
	}
}

func trunc(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

func bs(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// rawEntry is one engine key, decoded.
type rawEntry struct {
	cf  byte
	key string
	ts  uint64 // commit_ts for write, start_ts for default, 0 for lock
	val []byte
}

// dump lists every data key of the engine, in key order.
func (e *env) dump() []rawEntry {
	e.t.Helper()
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: []byte{keys.CFDefault}, UpperBound: []byte{keys.CFWrite + 1}})
	if err != nil {
		e.t.Fatal(err)
	}
	defer it.Close()
	var out []rawEntry
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		en := rawEntry{cf: k[0], val: bytes.Clone(it.Value())}
		switch k[0] {
		case keys.CFLock:
			raw, err := keys.DecodeLockKey(k)
			if err != nil {
				e.t.Fatal(err)
			}
			en.key = string(raw)
		case keys.CFWrite, keys.CFDefault:
			raw, ts, err := keys.DecodeVersionKey(k)
			if err != nil {
				e.t.Fatal(err)
			}
			en.key, en.ts = string(raw), ts
		default:
			continue
		}
		out = append(out, en)
	}
	return out
}

// cfString summarises one column family of the engine, for comparisons:
// "key@ts:KIND" per write record, "key@ts" per default value, "key:OP@start"
// per lock.
func (e *env) cfString(cf byte) string {
	e.t.Helper()
	var parts []string
	for _, en := range e.dump() {
		if en.cf != cf {
			continue
		}
		switch cf {
		case keys.CFWrite:
			w, err := DecodeWrite(en.val)
			if err != nil {
				e.t.Fatal(err)
			}
			s := en.key + "@" + itoa(en.ts) + ":" + w.Kind.String()
			if w.OverlappedRollback {
				s += "+R"
			}
			parts = append(parts, s)
		case keys.CFDefault:
			parts = append(parts, en.key+"@"+itoa(en.ts))
		case keys.CFLock:
			l, err := DecodeLock(en.val)
			if err != nil {
				e.t.Fatal(err)
			}
			parts = append(parts, en.key+":"+l.Op.String()+"@"+itoa(l.StartTS))
		}
	}
	return strings.Join(parts, " ")
}

func itoa(u uint64) string { return strconv.FormatUint(u, 10) }

// tsAt is a TSO timestamp at physical time ms.
func tsAt(ms int64) uint64 { return uint64(ms) << PhysicalShift }

func long(c byte) string { return strings.Repeat(string(c), ShortValueMax+45) }
