package mvcc

import (
	"testing"

	"github.com/nokv/nokv/api/kvrpcpb"
)

// TestCheckTxnStatusForcedRollback: GC's lock resolution (currentTS =
// ForceRollbackTS) rolls back a transaction whose primary lock would live
// for ever, leaves a committed one committed, and rolls back one whose
// primary never arrived, so that its late prewrite fails.
func TestCheckTxnStatusForcedRollback(t *testing.T) {
	start := tsAt(1_000_000)
	e := newEnv(t)
	if kerrs := e.prewriteReq(prewriteReq(start, "p", ^uint64(0)-1, mPut("p", "v"), mPut("s", "v")), 0); kerrs != nil {
		t.Fatal(kerrs)
	}
	st, err := CheckTxnStatus(e.snap(), []byte("p"), start, tsAt(9_000_000_000_000), false)
	if err != nil || st.LockTTL == 0 {
		t.Fatalf("status at a far-away time = %+v, %v; the lock lives for ever", st, err)
	}
	st, err = CheckTxnStatus(e.snap(), []byte("p"), start, ForceRollbackTS, false)
	if err != nil || st.Error != nil || st.LockTTL != 0 || st.CommitTS != 0 || st.Action != kvrpcpb.Action_TTL_EXPIRE_ROLLBACK {
		t.Fatalf("forced status = %+v, %v; want rolled back", st, err)
	}
	e.apply(st.Modifies)
	if kerr := e.commit(start, start+10, "p"); kerr.GetAbort() == "" {
		t.Fatalf("commit after the forced rollback = %v", kerr)
	}

	committed := tsAt(2_000_000)
	e.txn(committed, committed+5, mPut("q", "v"))
	st, err = CheckTxnStatus(e.snap(), []byte("q"), committed, ForceRollbackTS, true)
	if err != nil || st.CommitTS != committed+5 || st.Modifies != nil {
		t.Fatalf("forced status of a committed transaction = %+v, %v", st, err)
	}

	missing := tsAt(3_000_000)
	st, err = CheckTxnStatus(e.snap(), []byte("r"), missing, ForceRollbackTS, true)
	if err != nil || st.Action != kvrpcpb.Action_LOCK_NOT_EXIST_ROLLBACK {
		t.Fatalf("forced status of a missing primary = %+v, %v", st, err)
	}
	e.apply(st.Modifies)
	if kerrs := e.prewrite(missing, "r", mPut("r", "late")); len(kerrs) != 1 || kerrs[0].GetAbort() == "" {
		t.Fatalf("late prewrite after the forced rollback = %v", kerrs)
	}
}
