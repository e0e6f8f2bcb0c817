package mvcc

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// heartBeat runs TxnHeartBeat on primary and applies its modifies.
func (e *env) heartBeat(primary string, startTS, advise uint64) (ttl uint64, nmods int, kerr *kvrpcpb.KeyError) {
	e.t.Helper()
	mods, ttl, kerr, err := TxnHeartBeat(e.snap(), []byte(primary), startTS, advise)
	if err != nil {
		e.t.Fatalf("heartbeat %d: %v", startTS, err)
	}
	if kerr != nil && (len(mods) > 0 || ttl != 0) {
		e.t.Fatalf("heartbeat returned %d modifies and ttl %d with key error %v", len(mods), ttl, kerr)
	}
	e.apply(mods)
	return ttl, len(mods), kerr
}

// status reads the primary's fate at currentTS without rolling anything back
// (the modifies CheckTxnStatus returns are not applied).
func (e *env) status(primary string, startTS, currentTS uint64) TxnStatus {
	e.t.Helper()
	st, err := CheckTxnStatus(e.snap(), []byte(primary), startTS, currentTS, false)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func TestTxnHeartBeatRaisesTTL(t *testing.T) {
	start := tsAt(1_000_000)
	e := newEnv(t)
	// prewrite gives the locks a TTL of 3000 ms.
	e.mustPrewrite(start, "p", mPut("p", long('p')), mPut("s", "v"))
	before := e.dump()

	// Past the prewrite's TTL the lock would be rolled back...
	if st := e.status("p", start, tsAt(1_000_000+5_000)); st.Action != kvrpcpb.Action_TTL_EXPIRE_ROLLBACK {
		t.Fatalf("status at +5s before any heartbeat = %+v, want TTL_EXPIRE_ROLLBACK", st)
	}
	// ...and a heartbeat keeps it alive.
	ttl, nmods, kerr := e.heartBeat("p", start, 10_000)
	if kerr != nil || ttl != 10_000 || nmods != 1 {
		t.Fatalf("heartbeat = ttl %d, %d modifies, %v; want ttl 10000 in one modify", ttl, nmods, kerr)
	}
	if st := e.status("p", start, tsAt(1_000_000+5_000)); st.LockTTL != 10_000 || st.Action != kvrpcpb.Action_NO_ACTION {
		t.Fatalf("status at +5s after the heartbeat = %+v, want alive with ttl 10000", st)
	}
	if st := e.status("p", start, tsAt(1_000_000+10_000)); st.Action != kvrpcpb.Action_TTL_EXPIRE_ROLLBACK {
		t.Fatalf("status at +10s = %+v, want expired", st)
	}

	// Only the TTL changed: the lock keeps its value, primary and size, and
	// the secondary is untouched.
	l, locked, err := (&reader{r: e.snap()}).lock([]byte("p"))
	if err != nil || !locked {
		t.Fatalf("lock after heartbeat: %v, %v", locked, err)
	}
	want := Lock{Op: opPut, Primary: []byte("p"), StartTS: start, TTL: 10_000, TxnSize: 2}
	if !l.Equal(&want) {
		t.Fatalf("lock after heartbeat = %+v, want %+v", l, want)
	}
	after := e.dump()
	if len(after) != len(before) {
		t.Fatalf("heartbeat changed the number of engine keys: %d -> %d", len(before), len(after))
	}
	for i := range after {
		if after[i].cf != keys.CFLock && !reflect.DeepEqual(after[i], before[i]) {
			t.Fatalf("heartbeat changed %+v into %+v", before[i], after[i])
		}
	}

	// Never lowered: a smaller or equal advice (a late retry, an older
	// heartbeat) writes nothing and reports the TTL in place.
	for _, advise := range []uint64{0, 1, 3_000, 10_000} {
		if ttl, nmods, kerr := e.heartBeat("p", start, advise); kerr != nil || ttl != 10_000 || nmods != 0 {
			t.Fatalf("heartbeat advising %d = ttl %d, %d modifies, %v; want 10000 and no write", advise, ttl, nmods, kerr)
		}
	}
	// Bounded: advice beyond MaxLockTTL is capped.
	if ttl, _, kerr := e.heartBeat("p", start, MaxLockTTL*10); kerr != nil || ttl != MaxLockTTL {
		t.Fatalf("heartbeat advising 10h = ttl %d, %v; want MaxLockTTL", ttl, kerr)
	}
	if ttl, nmods, _ := e.heartBeat("p", start, MaxLockTTL+1); ttl != MaxLockTTL || nmods != 0 {
		t.Fatalf("second capped heartbeat = ttl %d, %d modifies; want MaxLockTTL, no write", ttl, nmods)
	}

	// The transaction commits as usual, its value intact.
	e.mustCommit(start, start+10, "p", "s")
	e.wantValue("p", start+11, long('p'), true)
	e.wantValue("s", start+11, "v", true)
}

// An expired lock that nobody has rolled back yet can still commit, so a
// heartbeat revives it.
func TestTxnHeartBeatRevivesExpiredLock(t *testing.T) {
	start := tsAt(1_000_000)
	e := newEnv(t)
	e.mustPrewrite(start, "p", mPut("p", "v"))
	if ttl, _, kerr := e.heartBeat("p", start, 60_000); kerr != nil || ttl != 60_000 {
		t.Fatalf("heartbeat = %d, %v", ttl, kerr)
	}
	if st := e.status("p", start, tsAt(1_000_000+30_000)); st.LockTTL != 60_000 {
		t.Fatalf("status = %+v, want alive", st)
	}
}

func TestTxnHeartBeatLockGone(t *testing.T) {
	start := tsAt(1_000_000)
	for _, c := range []struct {
		name  string
		setup func(e *env)
		check func(k *kvrpcpb.KeyError) bool
	}{
		{name: "committed", setup: func(e *env) { e.txn(start, start+5, mPut("p", "v"), mPut("s", "v")) },
			check: func(k *kvrpcpb.KeyError) bool { return k.GetAlreadyCommitted().GetCommitTs() == start+5 }},
		{name: "rolled back by the client", setup: func(e *env) {
			e.mustPrewrite(start, "p", mPut("p", "v"))
			e.rollback(start, "p")
		}, check: func(k *kvrpcpb.KeyError) bool { return strings.Contains(k.GetAbort(), "rolled back") }},
		{name: "rolled back by a reader after the lock expired", setup: func(e *env) {
			e.mustPrewrite(start, "p", mPut("p", "v"))
			st, err := CheckTxnStatus(e.snap(), []byte("p"), start, tsAt(1_000_000+3_000), false)
			if err != nil || st.Action != kvrpcpb.Action_TTL_EXPIRE_ROLLBACK {
				e.t.Fatalf("check txn status = %+v, %v", st, err)
			}
			e.apply(st.Modifies)
		}, check: func(k *kvrpcpb.KeyError) bool { return strings.Contains(k.GetAbort(), "rolled back") }},
		{name: "rolled back by GC", setup: func(e *env) {
			e.mustPrewrite(start, "p", mPut("p", "v"))
			st, err := CheckTxnStatus(e.snap(), []byte("p"), start, ForceRollbackTS, true)
			if err != nil {
				e.t.Fatal(err)
			}
			e.apply(st.Modifies)
		}, check: func(k *kvrpcpb.KeyError) bool { return strings.Contains(k.GetAbort(), "rolled back") }},
		{name: "never locked", setup: func(*env) {},
			check: func(k *kvrpcpb.KeyError) bool {
				return k.GetTxnNotFound().GetStartTs() == start && string(k.GetTxnNotFound().GetPrimaryKey()) == "p"
			}},
		{name: "another transaction's lock (wrong start ts)", setup: func(e *env) { e.mustPrewrite(start+1, "p", mPut("p", "v")) },
			check: func(k *kvrpcpb.KeyError) bool { return k.GetTxnNotFound() != nil }},
		{name: "a secondary, not the primary", setup: func(e *env) { e.mustPrewrite(start, "s", mPut("s", "v"), mPut("p", "v")) },
			check: func(k *kvrpcpb.KeyError) bool { return strings.Contains(k.GetAbort(), "names primary") }},
		{name: "start ts 0", setup: func(*env) {},
			check: func(k *kvrpcpb.KeyError) bool { return strings.Contains(k.GetAbort(), "start_version is 0") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			c.setup(e)
			before := e.dump()
			ts := start
			if c.name == "start ts 0" {
				ts = 0
			}
			_, _, kerr := e.heartBeat("p", ts, 60_000)
			if kerr == nil || !c.check(kerr) {
				t.Fatalf("heartbeat error = %v", kerr)
			}
			if after := e.dump(); !reflect.DeepEqual(after, before) {
				t.Fatalf("a failed heartbeat wrote:\n%v\n->\n%v", before, after)
			}
			// Whatever held the key is untouched: the other transaction's
			// lock keeps its TTL.
			if l, locked, _ := (&reader{r: e.snap()}).lock([]byte("p")); locked && l.TTL != 3000 {
				t.Fatalf("lock on p has ttl %d after a refused heartbeat", l.TTL)
			}
		})
	}
}
