package mvcc

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// TestTwoPhaseCommitVisibility: a put, then a delete, each visible exactly
// from its commit_ts, for short and long values and for keys that are
// prefixes of each other.
func TestTwoPhaseCommitVisibility(t *testing.T) {
	for _, c := range []struct {
		name, key, value string
	}{
		{"short", "a", "v1"},
		{"long", "a", long('x')},
		{"exactly inline", "a", strings.Repeat("s", ShortValueMax)},
		{"one past inline", "a", strings.Repeat("s", ShortValueMax+1)},
		{"empty value", "a", ""},
		{"empty key", "", "v"},
		{"binary key", "\x00\xff\x00", "v"},
		{"prefix key", "a\x00", long('y')},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			// Neighbours sharing a prefix must not bleed into the key.
			e.txn(1, 2, mPut("a\x00\x00", "n1"), mPut(c.key+"\x01", "n2"))

			e.mustPrewrite(10, c.key, mPut(c.key, c.value))
			e.wantValue(c.key, 9, "", false) // the lock is newer than the read
			e.wantLocked(c.key, 15, 10)
			e.mustCommit(10, 20, c.key)
			e.wantValue(c.key, 19, "", false)
			e.wantValue(c.key, 20, c.value, true)
			e.wantValue(c.key, 1<<62, c.value, true)

			e.txn(30, 40, mDel(c.key))
			e.wantValue(c.key, 35, c.value, true)
			e.wantValue(c.key, 40, "", false)
			e.wantValue("a\x00\x00", 40, "n1", true)
			e.wantValue(c.key+"\x01", 40, "n2", true)

			if locks := e.cfString(keys.CFLock); locks != "" {
				t.Errorf("locks left: %s", locks)
			}
			wantDefault := ""
			if len(c.value) > ShortValueMax {
				wantDefault = c.key + "@10"
			}
			if got := e.cfString(keys.CFDefault); got != wantDefault {
				t.Errorf("default CF = %q, want %q", got, wantDefault)
			}
		})
	}
}

func TestPrefixKeysInOneTransaction(t *testing.T) {
	e := newEnv(t)
	e.txn(10, 20, mPut("a", "A"), mPut("a\x00", long('B')), mPut("a\x00\x00\x00\x00\x00\x00\x00\x00", "C"), mPut("", "E"))
	for k, v := range map[string]string{"a": "A", "a\x00": long('B'), "a\x00\x00\x00\x00\x00\x00\x00\x00": "C", "": "E"} {
		e.wantValue(k, 20, v, true)
	}
	e.txn(30, 40, mDel("a"))
	e.wantValue("a", 40, "", false)
	e.wantValue("a\x00", 40, long('B'), true)
}

func TestLocksBlockReads(t *testing.T) {
	for _, op := range []kvrpcpb.Op{kvrpcpb.Op_PUT, kvrpcpb.Op_DEL, kvrpcpb.Op_LOCK} {
		t.Run(op.String(), func(t *testing.T) {
			e := newEnv(t)
			e.txn(1, 2, mPut("k", "old"))
			req := prewriteReq(10, "pk", 777, &kvrpcpb.Mutation{Op: op, Key: []byte("k"), Value: []byte("new")})
			req.TxnSize = 5
			if kerrs := e.prewriteReq(req, 0); kerrs != nil {
				t.Fatal(kerrs)
			}
			for _, c := range []struct {
				ts      uint64
				blocked bool
			}{
				{5, false},                       // the lock is newer than the read
				{10, false},                      // the reader's own transaction
				{11, op != kvrpcpb.Op_LOCK},      // may commit below the read
				{1 << 60, op != kvrpcpb.Op_LOCK}, // long after
			} {
				g := e.get("k", c.ts, 0)
				if !c.blocked {
					if g.kerr != nil || !g.found || g.value != "old" {
						t.Errorf("get@%d = %+v, want old", c.ts, g)
					}
					continue
				}
				want := &kvrpcpb.LockInfo{PrimaryLock: []byte("pk"), LockVersion: 10, Key: []byte("k"), LockTtl: 777, LockType: op, TxnSize: 5}
				if l := g.kerr.GetLocked(); l == nil || l.String() != want.String() {
					t.Errorf("get@%d = %+v, want locked %v", c.ts, g, want)
				}
			}
		})
	}
}

func TestPrewriteConflicts(t *testing.T) {
	e := newEnv(t)
	e.txn(10, 20, mPut("w", "w1"))
	e.mustPrewrite(30, "l", mPut("l", "l1"))
	e.txn(40, 50, mLock("lk"))
	if kerr := e.rollback(60, "rb"); kerr != nil { // a rollback record of another transaction
		t.Fatal(kerr)
	}

	for _, c := range []struct {
		name    string
		startTS uint64
		muts    []*kvrpcpb.Mutation
		check   func(t *testing.T, kerrs []*kvrpcpb.KeyError)
	}{
		{"write conflict", 15, []*kvrpcpb.Mutation{mPut("w", "x")}, func(t *testing.T, kerrs []*kvrpcpb.KeyError) {
			c := kerrs[0].GetConflict()
			if len(kerrs) != 1 || c == nil || c.StartTs != 15 || c.ConflictTs != 20 || string(c.Key) != "w" || string(c.Primary) != "w" {
				t.Errorf("got %v", kerrs)
			}
		}},
		// A one-phase commit's timestamp is chosen by the store and may equal a
		// later TSO start_ts: that commit is in the transaction's snapshot.
		{"no conflict with a commit at exactly start_ts", 20, []*kvrpcpb.Mutation{mPut("w", "x")}, nil},
		{"no conflict after the commit", 21, []*kvrpcpb.Mutation{mPut("w", "x")}, nil},
		{"lock conflict", 35, []*kvrpcpb.Mutation{mDel("l")}, func(t *testing.T, kerrs []*kvrpcpb.KeyError) {
			if l := kerrs[0].GetLocked(); len(kerrs) != 1 || l == nil || l.LockVersion != 30 || string(l.PrimaryLock) != "l" {
				t.Errorf("got %v", kerrs)
			}
		}},
		{"older transaction meets a newer lock", 25, []*kvrpcpb.Mutation{mPut("l", "x")}, func(t *testing.T, kerrs []*kvrpcpb.KeyError) {
			if len(kerrs) != 1 || kerrs[0].GetLocked() == nil {
				t.Errorf("got %v", kerrs)
			}
		}},
		{"a committed LOCK record conflicts", 45, []*kvrpcpb.Mutation{mPut("lk", "x")}, func(t *testing.T, kerrs []*kvrpcpb.KeyError) {
			if len(kerrs) != 1 || kerrs[0].GetConflict().GetConflictTs() != 50 {
				t.Errorf("got %v", kerrs)
			}
		}},
		{"another transaction's rollback is no conflict", 55, []*kvrpcpb.Mutation{mPut("rb", "x")}, nil},
		{"all errors, no modifies", 16, []*kvrpcpb.Mutation{mPut("free", "x"), mPut("w", "x"), mPut("l", "x")}, func(t *testing.T, kerrs []*kvrpcpb.KeyError) {
			if len(kerrs) != 2 || kerrs[0].GetConflict() == nil || kerrs[1].GetLocked() == nil {
				t.Errorf("got %v", kerrs)
			}
		}},
		{"duplicate key", 70, []*kvrpcpb.Mutation{mPut("d", "1"), mDel("d")}, func(t *testing.T, kerrs []*kvrpcpb.KeyError) {
			if len(kerrs) != 1 || !strings.Contains(kerrs[0].GetAbort(), "twice") {
				t.Errorf("got %v", kerrs)
			}
		}},
		{"rollback op", 70, []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_ROLLBACK, Key: []byte("d")}}, func(t *testing.T, kerrs []*kvrpcpb.KeyError) {
			if len(kerrs) != 1 || kerrs[0].GetAbort() == "" {
				t.Errorf("got %v", kerrs)
			}
		}},
		{"start_ts 0", 0, []*kvrpcpb.Mutation{mPut("d", "1")}, func(t *testing.T, kerrs []*kvrpcpb.KeyError) {
			if len(kerrs) != 1 || kerrs[0].GetAbort() == "" {
				t.Errorf("got %v", kerrs)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			primary := string(c.muts[0].Key)
			mods, kerrs, err := Prewrite(e.snap(), prewriteReq(c.startTS, primary, 100, c.muts...), 0)
			if err != nil {
				t.Fatal(err)
			}
			if c.check == nil {
				if kerrs != nil || len(mods) == 0 {
					t.Fatalf("prewrite = %d modifies, %v; want success", len(mods), kerrs)
				}
				return
			}
			if mods != nil {
				t.Errorf("failed prewrite returned %d modifies", len(mods))
			}
			c.check(t, kerrs)
		})
	}
}

func TestIdempotentRetries(t *testing.T) {
	e := newEnv(t)
	muts := []*kvrpcpb.Mutation{mPut("p", "v"), mPut("s", long('s'))}

	e.mustPrewrite(10, "p", muts...)
	mods, kerrs, err := Prewrite(e.snap(), prewriteReq(10, "p", 3000, muts...), 0)
	if err != nil || kerrs != nil || mods != nil {
		t.Fatalf("prewrite retry = %d modifies, %v, %v; want nothing", len(mods), kerrs, err)
	}

	e.mustCommit(10, 20, "p", "s")
	mods, kerr, err := Commit(e.snap(), 10, bs("p", "s"), 20)
	if err != nil || kerr != nil || mods != nil {
		t.Fatalf("commit retry = %d modifies, %v, %v", len(mods), kerr, err)
	}
	// A late retry of the prewrite, after the commit, changes nothing.
	mods, kerrs, err = Prewrite(e.snap(), prewriteReq(10, "p", 3000, muts...), 0)
	if err != nil || kerrs != nil || mods != nil {
		t.Fatalf("prewrite after commit = %d modifies, %v, %v", len(mods), kerrs, err)
	}
	// Still fine once a newer transaction committed on top.
	e.txn(30, 40, mPut("p", "v2"))
	mods, kerr, err = Commit(e.snap(), 10, bs("p", "s"), 20)
	if err != nil || kerr != nil || mods != nil {
		t.Fatalf("commit retry under a newer version = %d modifies, %v, %v", len(mods), kerr, err)
	}
	mods, kerrs, err = Prewrite(e.snap(), prewriteReq(10, "p", 3000, muts...), 0)
	if err != nil || kerrs != nil || mods != nil {
		t.Fatalf("prewrite retry under a newer version = %d modifies, %v, %v", len(mods), kerrs, err)
	}
	e.wantValue("s", 20, long('s'), true)

	// Rollback, twice, of a locked key and of a key never seen.
	e.mustPrewrite(50, "r", mPut("r", long('r')))
	if kerr := e.rollback(50, "r", "never", "r"); kerr != nil {
		t.Fatal(kerr)
	}
	mods, kerr, err = BatchRollback(e.snap(), 50, bs("r", "never"))
	if err != nil || kerr != nil || mods != nil {
		t.Fatalf("rollback retry = %d modifies, %v, %v", len(mods), kerr, err)
	}
	if got := e.cfString(keys.CFLock); got != "" {
		t.Errorf("locks after rollback: %s", got)
	}
	if got := e.cfString(keys.CFDefault); got != "s@10" {
		t.Errorf("default CF after rollback = %q, want only s@10", got)
	}
	if got := e.cfString(keys.CFWrite); !strings.Contains(got, "never@50:ROLLBACK") || !strings.Contains(got, "r@50:ROLLBACK") {
		t.Errorf("write CF = %s, want rollback records", got)
	}
}

func TestRollbackAndCommitInterplay(t *testing.T) {
	e := newEnv(t)
	e.mustPrewrite(10, "a", mPut("a", "1"), mPut("b", "2"))
	if kerr := e.rollback(10, "a", "b"); kerr != nil {
		t.Fatal(kerr)
	}
	if kerr := e.commit(10, 20, "a"); !strings.Contains(kerr.GetAbort(), "rolled back") {
		t.Errorf("commit after rollback = %v, want an abort error", kerr)
	}
	kerrs := e.prewrite(10, "a", mPut("a", "1"), mPut("b", "2"))
	if len(kerrs) != 2 || !strings.Contains(kerrs[0].GetAbort(), "rolled back") {
		t.Errorf("late prewrite after rollback = %v, want abort errors", kerrs)
	}
	// A rollback arriving before the prewrite stops it too.
	if kerr := e.rollback(30, "c"); kerr != nil {
		t.Fatal(kerr)
	}
	if kerrs := e.prewrite(30, "c", mPut("c", "x")); len(kerrs) != 1 || kerrs[0].GetAbort() == "" {
		t.Errorf("prewrite after an early rollback = %v", kerrs)
	}

	e.txn(40, 50, mPut("d", "x"))
	if kerr := e.rollback(40, "d"); kerr.GetAlreadyCommitted().GetCommitTs() != 50 {
		t.Errorf("rollback after commit = %v, want AlreadyCommitted 50", kerr)
	}
	e.wantValue("d", 50, "x", true)

	if kerr := e.commit(60, 70, "nothing"); kerr.GetTxnNotFound().GetStartTs() != 60 {
		t.Errorf("commit without a prewrite = %v, want TxnNotFound", kerr)
	}
	e.mustPrewrite(80, "o", mPut("o", "x"))
	if kerr := e.commit(75, 90, "o"); kerr.GetTxnNotFound() == nil {
		t.Errorf("commit over another transaction's lock = %v, want TxnNotFound", kerr)
	}
	for _, commitTS := range []uint64{80, 79} {
		if kerr := e.commit(80, commitTS, "o"); kerr.GetAbort() == "" {
			t.Errorf("commit_ts %d <= start_ts 80: %v, want an abort error", commitTS, kerr)
		}
	}
	// A failing key in a multi-key commit leaves every key as it was.
	mods, kerr, err := Commit(e.snap(), 80, bs("o", "nothing"), 90)
	if err != nil || kerr.GetTxnNotFound() == nil || mods != nil {
		t.Errorf("partial commit = %d modifies, %v, %v", len(mods), kerr, err)
	}
}

func TestOnePhaseCommit(t *testing.T) {
	e := newEnv(t)
	e.txn(1, 2, mPut("c", "old"))
	muts := []*kvrpcpb.Mutation{mPut("a", "short"), mPut("b", long('b')), mDel("c"), mLock("d")}
	if kerrs := e.prewriteReq(prewriteReq(10, "a", 3000, muts...), 20); kerrs != nil {
		t.Fatal(kerrs)
	}
	if got := e.cfString(keys.CFLock); got != "" {
		t.Errorf("1PC left locks: %s", got)
	}
	if got, want := e.cfString(keys.CFWrite), "a@20:PUT b@20:PUT c@20:DEL c@2:PUT d@20:LOCK"; got != want {
		t.Errorf("write CF = %s, want %s", got, want)
	}
	e.wantValue("a", 19, "", false)
	e.wantValue("a", 20, "short", true)
	e.wantValue("b", 20, long('b'), true)
	e.wantValue("c", 19, "old", true)
	e.wantValue("c", 20, "", false)

	// Retrying the same request changes nothing.
	mods, kerrs, err := Prewrite(e.snap(), prewriteReq(10, "a", 3000, muts...), 20)
	if err != nil || kerrs != nil || mods != nil {
		t.Errorf("1PC retry = %d modifies, %v, %v", len(mods), kerrs, err)
	}
	// A conflict writes nothing at all.
	mods, kerrs, err = Prewrite(e.snap(), prewriteReq(15, "x", 3000, mPut("x", "1"), mPut("a", "2")), 30)
	if err != nil || len(kerrs) != 1 || kerrs[0].GetConflict() == nil || mods != nil {
		t.Errorf("conflicting 1PC = %d modifies, %v, %v", len(mods), kerrs, err)
	}
	mods, kerrs, err = Prewrite(e.snap(), prewriteReq(40, "x", 3000, mPut("x", "1")), 40)
	if err != nil || len(kerrs) != 1 || kerrs[0].GetAbort() == "" || mods != nil {
		t.Errorf("1PC at commit_ts = start_ts: %d modifies, %v, %v", len(mods), kerrs, err)
	}
	// A 1PC retry of a transaction whose 2PC prewrite already landed commits its locks.
	e.mustPrewrite(50, "y", mPut("y", "1"), mPut("z", long('z')))
	if kerrs := e.prewriteReq(prewriteReq(50, "y", 3000, mPut("y", "1"), mPut("z", long('z'))), 60); kerrs != nil {
		t.Fatal(kerrs)
	}
	if got := e.cfString(keys.CFLock); got != "" {
		t.Errorf("locks left: %s", got)
	}
	e.wantValue("z", 60, long('z'), true)
}

func TestCheckTxnStatus(t *testing.T) {
	const ttl = 100
	start := tsAt(1_000_000)
	type setup func(e *env)
	locked := func(e *env) {
		if kerrs := e.prewriteReq(prewriteReq(start, "p", ttl, mPut("p", long('p')), mPut("s", "v")), 0); kerrs != nil {
			e.t.Fatal(kerrs)
		}
	}
	for _, c := range []struct {
		name               string
		setup              setup
		primary            string
		currentTS          uint64
		rollbackIfNotExist bool
		want               TxnStatus // Modifies checked by hasMods
		hasMods            bool
		errCheck           func(*kvrpcpb.KeyError) bool
		// after applying: commit must give this (nil: succeed)
		commitAfter func(*kvrpcpb.KeyError) bool
	}{
		{name: "alive", setup: locked, primary: "p", currentTS: tsAt(1_000_000 + ttl - 1),
			want: TxnStatus{LockTTL: ttl, Lock: &kvrpcpb.LockInfo{PrimaryLock: []byte("p"), LockVersion: start, Key: []byte("p"), LockTtl: ttl, TxnSize: 2}}},
		{name: "alive, checker's clock behind", setup: locked, primary: "p", currentTS: 1,
			want: TxnStatus{LockTTL: ttl, Lock: &kvrpcpb.LockInfo{PrimaryLock: []byte("p"), LockVersion: start, Key: []byte("p"), LockTtl: ttl, TxnSize: 2}}},
		{name: "expired", setup: locked, primary: "p", currentTS: tsAt(1_000_000 + ttl),
			want: TxnStatus{Action: kvrpcpb.Action_TTL_EXPIRE_ROLLBACK}, hasMods: true,
			commitAfter: func(k *kvrpcpb.KeyError) bool { return strings.Contains(k.GetAbort(), "rolled back") }},
		{name: "committed", setup: func(e *env) { locked(e); e.mustCommit(start, start+5, "p") }, primary: "p", currentTS: tsAt(2_000_000),
			want: TxnStatus{CommitTS: start + 5}},
		{name: "rolled back", setup: func(e *env) { locked(e); e.rollback(start, "p") }, primary: "p", currentTS: tsAt(2_000_000),
			want: TxnStatus{}},
		{name: "not exist, roll back", setup: func(*env) {}, primary: "p", currentTS: tsAt(2_000_000), rollbackIfNotExist: true,
			want: TxnStatus{Action: kvrpcpb.Action_LOCK_NOT_EXIST_ROLLBACK}, hasMods: true,
			commitAfter: func(k *kvrpcpb.KeyError) bool { return k.GetAbort() != "" }},
		{name: "not exist", setup: func(*env) {}, primary: "p", currentTS: tsAt(2_000_000),
			errCheck: func(k *kvrpcpb.KeyError) bool {
				return k.GetTxnNotFound().GetStartTs() == start && string(k.GetTxnNotFound().GetPrimaryKey()) == "p"
			}},
		{name: "another transaction's lock on the primary", setup: func(e *env) { e.mustPrewrite(start+7, "p", mPut("p", "x")) }, primary: "p",
			currentTS: tsAt(2_000_000), errCheck: func(k *kvrpcpb.KeyError) bool { return k.GetTxnNotFound() != nil }},
		{name: "not the primary", setup: locked, primary: "s", currentTS: tsAt(2_000_000),
			errCheck: func(k *kvrpcpb.KeyError) bool { return strings.Contains(k.GetAbort(), "names primary") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			c.setup(e)
			st, err := CheckTxnStatus(e.snap(), []byte(c.primary), start, c.currentTS, c.rollbackIfNotExist)
			if err != nil {
				t.Fatal(err)
			}
			if c.errCheck != nil {
				if !c.errCheck(st.Error) || st.Modifies != nil {
					t.Fatalf("status = %+v, unexpected error or modifies", st)
				}
				return
			}
			if st.Error != nil || (len(st.Modifies) > 0) != c.hasMods {
				t.Fatalf("status = %+v, want %d modifies and no error", st, map[bool]int{false: 0, true: 1}[c.hasMods])
			}
			gotResp, wantResp := st.Response(), c.want.Response()
			if gotResp.String() != wantResp.String() {
				t.Fatalf("status = %v, want %v", gotResp, wantResp)
			}
			e.apply(st.Modifies)
			if c.hasMods {
				// Asked again, the answer is settled and writes nothing.
				again, err := CheckTxnStatus(e.snap(), []byte(c.primary), start, c.currentTS, c.rollbackIfNotExist)
				if err != nil || again.Modifies != nil || again.Error != nil || again.LockTTL != 0 || again.CommitTS != 0 {
					t.Errorf("second check = %+v, %v; want rolled back", again, err)
				}
			}
			if c.commitAfter != nil {
				if kerr := e.commit(start, start+10, "p"); !c.commitAfter(kerr) {
					t.Errorf("commit after check = %v", kerr)
				}
				if kerrs := e.prewrite(start, "p", mPut("p", "late")); len(kerrs) != 1 || kerrs[0].GetAbort() == "" {
					t.Errorf("late prewrite after check = %v", kerrs)
				}
				if got := e.cfString(keys.CFDefault); got != "" {
					t.Errorf("default CF after rollback: %s", got)
				}
			}
		})
	}
}

func TestLockExpired(t *testing.T) {
	for _, c := range []struct {
		startMs, ttl, nowMs uint64
		want                bool
	}{
		{1000, 100, 1099, false},
		{1000, 100, 1100, true},
		{1000, 0, 0, true}, // a zero TTL never reads as alive
		{1000, ^uint64(0), ^uint64(0) >> PhysicalShift, false},
	} {
		l := Lock{StartTS: c.startMs << PhysicalShift, TTL: c.ttl}
		if got := l.Expired(c.nowMs << PhysicalShift); got != c.want {
			t.Errorf("lock at %dms ttl %d, now %dms: expired = %v", c.startMs, c.ttl, c.nowMs, got)
		}
	}
}

func TestResolveLock(t *testing.T) {
	ks := []string{"k1", "k2", "k3", "k4", "k5"}
	build := func(t *testing.T) *env {
		e := newEnv(t)
		var muts []*kvrpcpb.Mutation
		for _, k := range ks {
			muts = append(muts, mPut(k, long(k[1])))
		}
		e.mustPrewrite(10, "k1", muts...)
		e.mustPrewrite(12, "k2a", mPut("k2a", "other")) // another transaction, left alone
		return e
	}
	// resolveAll resolves by scan in rounds of limit locks and returns the rounds taken.
	resolveAll := func(t *testing.T, e *env, commitTS uint64, start, end string, limit int) int {
		rounds := 0
		next := []byte(start)
		for {
			mods, nxt, kerr, err := ResolveLock(e.snap(), 10, commitTS, nil, next, []byte(end), limit)
			if err != nil || kerr != nil {
				t.Fatalf("resolve: %v %v", kerr, err)
			}
			if limit > 0 && len(mods) > 3*limit {
				t.Fatalf("round of limit %d gave %d modifies", limit, len(mods))
			}
			e.apply(mods)
			rounds++
			if nxt == nil {
				return rounds
			}
			next = nxt
		}
	}

	t.Run("commit by scan with limit", func(t *testing.T) {
		e := build(t)
		if rounds := resolveAll(t, e, 20, "", "", 2); rounds != 3 {
			t.Errorf("%d rounds, want 3", rounds)
		}
		for _, k := range ks {
			e.wantValue(k, 20, long(k[1]), true)
		}
		if got := e.cfString(keys.CFLock); got != "k2a:PUT@12" {
			t.Errorf("locks = %s, want only the other transaction's", got)
		}
	})
	t.Run("rollback by scan over a range", func(t *testing.T) {
		e := build(t)
		if rounds := resolveAll(t, e, 0, "k2", "k4", 0); rounds != 1 {
			t.Errorf("%d rounds", rounds)
		}
		if got := e.cfString(keys.CFLock); got != "k1:PUT@10 k2a:PUT@12 k4:PUT@10 k5:PUT@10" {
			t.Errorf("locks = %s", got)
		}
		if got := e.cfString(keys.CFDefault); got != "k1@10 k4@10 k5@10" {
			t.Errorf("default CF = %s", got)
		}
		if got := e.cfString(keys.CFWrite); got != "k2@10:ROLLBACK k3@10:ROLLBACK" {
			t.Errorf("write CF = %s", got)
		}
	})
	t.Run("limit exactly the lock count", func(t *testing.T) {
		e := build(t)
		mods, next, _, err := ResolveLock(e.snap(), 10, 20, nil, nil, nil, 5)
		if err != nil || next != nil || len(mods) != 10 {
			t.Errorf("resolve = %d modifies, next %q, %v", len(mods), next, err)
		}
	})
	t.Run("by keys", func(t *testing.T) {
		e := build(t)
		mods, next, kerr, err := ResolveLock(e.snap(), 10, 20, bs("k1", "k2"), nil, nil, 0)
		if err != nil || kerr != nil || next != nil {
			t.Fatal(kerr, err)
		}
		e.apply(mods)
		mods, _, kerr, err = ResolveLock(e.snap(), 10, 0, bs("k3"), nil, nil, 0)
		if err != nil || kerr != nil {
			t.Fatal(kerr, err)
		}
		e.apply(mods)
		e.wantValue("k1", 20, long('1'), true)
		e.wantValue("k3", 20, "", false)
		if got := e.cfString(keys.CFLock); got != "k2a:PUT@12 k4:PUT@10 k5:PUT@10" {
			t.Errorf("locks = %s", got)
		}
		// Retries are harmless; resolving the wrong way is an error.
		if mods, _, kerr, err := ResolveLock(e.snap(), 10, 20, bs("k1", "k2"), nil, nil, 0); mods != nil || kerr != nil || err != nil {
			t.Errorf("retry = %d modifies, %v, %v", len(mods), kerr, err)
		}
		if _, _, kerr, _ := ResolveLock(e.snap(), 10, 0, bs("k1"), nil, nil, 0); kerr.GetAlreadyCommitted() == nil {
			t.Errorf("rolling back a committed key = %v", kerr)
		}
		if _, _, kerr, _ := ResolveLock(e.snap(), 10, 20, bs("k3"), nil, nil, 0); kerr.GetAbort() == "" {
			t.Errorf("committing a rolled back key = %v", kerr)
		}
	})
	// The service finds the locks to latch from the modifies of a scan:
	// each resolved lock must show up as a delete of its lock key.
	t.Run("every resolved lock is a lock delete", func(t *testing.T) {
		e := build(t)
		for _, commitTS := range []uint64{0, 20} {
			mods, _, kerr, err := ResolveLock(e.snap(), 10, commitTS, nil, []byte("k2"), nil, 3)
			if err != nil || kerr != nil {
				t.Fatal(kerr, err)
			}
			var got []string
			for _, m := range mods {
				if m.Op == raftserverpb.ModifyOp_MODIFY_DELETE && m.Key[0] == keys.CFLock {
					k, err := keys.DecodeLockKey(m.Key)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, string(k))
				}
			}
			if strings.Join(got, " ") != "k2 k3 k4" {
				t.Errorf("commit_ts %d: lock deletes for %q, want k2 k3 k4", commitTS, got)
			}
		}
		if mods, next, kerr, err := ResolveLock(e.snap(), 10, 0, nil, []byte("k5"), []byte("k1"), 0); mods != nil || next != nil || kerr != nil || err != nil {
			t.Errorf("reversed range = %d modifies, %q, %v, %v", len(mods), next, kerr, err)
		}
	})
	t.Run("commit_ts not above start_ts", func(t *testing.T) {
		e := build(t)
		if _, _, kerr, _ := ResolveLock(e.snap(), 10, 10, nil, nil, nil, 0); kerr.GetAbort() == "" {
			t.Errorf("got %v", kerr)
		}
	})
}

func TestCleanup(t *testing.T) {
	start := tsAt(5_000)
	for _, c := range []struct {
		name       string
		setup      func(e *env)
		currentTS  uint64
		wantLocked bool
		wantCommit uint64
		wantMods   bool
		wantWrite  string
	}{
		{name: "alive", setup: func(e *env) { e.mustPrewrite(start, "k", mPut("k", "v")) }, currentTS: tsAt(5_050), wantLocked: true},
		{name: "expired", setup: func(e *env) { e.mustPrewrite(start, "k", mPut("k", long('v'))) }, currentTS: tsAt(10_000), wantMods: true,
			wantWrite: "k@" + itoa(start) + ":ROLLBACK"},
		{name: "forced", setup: func(e *env) { e.mustPrewrite(start, "k", mPut("k", "v")) }, currentTS: 0, wantMods: true,
			wantWrite: "k@" + itoa(start) + ":ROLLBACK"},
		{name: "committed", setup: func(e *env) { e.txn(start, start+9, mPut("k", "v")) }, currentTS: tsAt(10_000), wantCommit: start + 9,
			wantWrite: "k@" + itoa(start+9) + ":PUT"},
		{name: "rolled back", setup: func(e *env) { e.rollback(start, "k") }, currentTS: tsAt(10_000),
			wantWrite: "k@" + itoa(start) + ":ROLLBACK"},
		{name: "nothing", setup: func(*env) {}, currentTS: tsAt(10_000), wantMods: true,
			wantWrite: "k@" + itoa(start) + ":ROLLBACK"},
		{name: "another transaction's lock", setup: func(e *env) { e.mustPrewrite(start+1, "k", mPut("k", "v")) }, currentTS: 0, wantMods: true,
			wantWrite: "k@" + itoa(start) + ":ROLLBACK"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			c.setup(e)
			mods, commitTS, kerr, err := Cleanup(e.snap(), []byte("k"), start, c.currentTS)
			if err != nil {
				t.Fatal(err)
			}
			if c.wantLocked {
				if kerr.GetLocked().GetLockVersion() != start || mods != nil {
					t.Fatalf("cleanup = %d modifies, %v; want Locked", len(mods), kerr)
				}
				return
			}
			if kerr != nil || commitTS != c.wantCommit || (len(mods) > 0) != c.wantMods {
				t.Fatalf("cleanup = %d modifies, commit %d, %v", len(mods), commitTS, kerr)
			}
			e.apply(mods)
			if got := e.cfString(keys.CFWrite); got != c.wantWrite {
				t.Errorf("write CF = %q, want %q", got, c.wantWrite)
			}
			if got := e.cfString(keys.CFDefault); got != "" {
				t.Errorf("default CF = %q", got)
			}
			// Once cleaned up, cleaning up again writes nothing.
			mods, _, kerr, err = Cleanup(e.snap(), []byte("k"), start, c.currentTS)
			if mods != nil || kerr != nil || err != nil {
				t.Errorf("second cleanup = %d modifies, %v, %v", len(mods), kerr, err)
			}
		})
	}
}

// TestOverlappedRollback: a commit and another transaction's rollback that
// want the same write CF slot both survive.
func TestOverlappedRollback(t *testing.T) {
	t.Run("rollback onto a commit", func(t *testing.T) {
		e := newEnv(t)
		e.txn(10, 20, mPut("k", "v"))
		if kerr := e.rollback(20, "k"); kerr != nil {
			t.Fatal(kerr)
		}
		if got := e.cfString(keys.CFWrite); got != "k@20:PUT+R" {
			t.Fatalf("write CF = %s", got)
		}
		e.wantValue("k", 20, "v", true)
		if kerrs := e.prewrite(20, "k", mPut("k", "late")); len(kerrs) != 1 || kerrs[0].GetAbort() == "" {
			t.Errorf("late prewrite = %v", kerrs)
		}
		if kerr := e.commit(10, 20, "k"); kerr != nil {
			t.Errorf("commit retry of the owner = %v", kerr)
		}
		st, err := CheckTxnStatus(e.snap(), []byte("k"), 20, 0, true)
		if err != nil || st.Modifies != nil || st.CommitTS != 0 || st.LockTTL != 0 || st.Error != nil {
			t.Errorf("status of the rolled back transaction = %+v, %v", st, err)
		}
		if kerr := e.rollback(20, "k"); kerr != nil || e.cfString(keys.CFWrite) != "k@20:PUT+R" {
			t.Errorf("second rollback = %v, write CF %s", kerr, e.cfString(keys.CFWrite))
		}
	})
	t.Run("commit onto a rollback", func(t *testing.T) {
		e := newEnv(t)
		if kerr := e.rollback(30, "k"); kerr != nil {
			t.Fatal(kerr)
		}
		e.mustPrewrite(25, "k", mPut("k", "v"))
		e.mustCommit(25, 30, "k")
		if got := e.cfString(keys.CFWrite); got != "k@30:PUT+R" {
			t.Fatalf("write CF = %s", got)
		}
		e.wantValue("k", 30, "v", true)
		if kerrs := e.prewrite(30, "k", mPut("k", "late")); len(kerrs) != 1 || kerrs[0].GetAbort() == "" {
			t.Errorf("late prewrite = %v", kerrs)
		}
	})
	t.Run("commit onto another commit", func(t *testing.T) {
		e := newEnv(t)
		e.txn(10, 30, mPut("k", "a"))
		// Only reachable with a broken TSO: txn 20 cannot prewrite over a
		// commit at 30, so plant its lock by hand.
		l := Lock{Op: kvrpcpb.Op_PUT, Primary: []byte("k"), StartTS: 20, TTL: 1, Inline: true, Value: []byte("b")}
		e.rawPut(keys.LockKey([]byte("k")), l.Encode())
		if kerr := e.commit(20, 30, "k"); !strings.Contains(kerr.GetAbort(), "collides") {
			t.Errorf("commit = %v, want a collision abort", kerr)
		}
		if got := e.cfString(keys.CFWrite); got != "k@30:PUT" {
			t.Errorf("write CF = %s, want the first commit untouched", got)
		}
	})
}

// TestReaders: the functions work on every kind of pebble.Reader the store uses.
func TestReaders(t *testing.T) {
	e := newEnv(t)
	e.txn(10, 20, mPut("k", long('k')))
	b := e.db.NewIndexedBatch()
	defer b.Close()
	mods, _, err := Prewrite(b, prewriteReq(30, "k", 10, mDel("k")), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyModifies(b, mods); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]pebble.Reader{"db": e.db, "snapshot": e.snap(), "indexed batch": b} {
		v, _, found, kerr, err := Get(r, []byte("k"), 25, 0)
		if err != nil || kerr != nil || !found || !bytes.Equal(v, []byte(long('k'))) {
			t.Errorf("%s: get = %q, %v, %v, %v", name, trunc(string(v)), found, kerr, err)
		}
		_, _, _, kerr, err = Get(r, []byte("k"), 35, 0)
		if wantLocked := name == "indexed batch"; (kerr != nil) != wantLocked || err != nil {
			t.Errorf("%s: get above the batch's lock = %v, %v", name, kerr, err)
		}
	}
}
