package txn_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/tests/cluster"
)

// TestLockResolution leaves locks behind as a client that crashes mid-commit
// would (raw prewrites and commits at the region leaders) and checks that
// readers and writers going through kvclient settle them correctly. Primary
// keys sort before "m", secondaries after it, so every transaction spans
// both regions.
func TestLockResolution(t *testing.T) {
	c := startCluster(t)
	kc := newClient(t, c, kvclient.Options{})

	t.Run("AbandonedBeforeCommitRollsBack", func(t *testing.T) {
		mustSet(t, kc, "a/abandoned", "old")
		mustSet(t, kc, "z/abandoned", "old")
		startTS := mustTS(t, c)
		c.RawPrewrite(t, startTS, "a/abandoned", 300, map[string]string{"a/abandoned": "new", "z/abandoned": "new"})
		if n := len(locksIn(t, c, "z/abandoned")); n == 0 {
			t.Fatal("the prewrite left no lock")
		}
		// The reader meets the secondary's lock, finds the primary locked
		// too, waits for the TTL to run out and rolls the transaction back.
		wantValue(t, kc, "z/abandoned", "old")
		wantValue(t, kc, "a/abandoned", "old")
		if locks := locksIn(t, c, "z/abandoned"); len(locks) != 0 {
			t.Fatalf("locks left after resolution: %v", locks)
		}
		// The crashed client cannot commit afterwards: its primary carries
		// a rollback record.
		if kerr := c.RawCommit(t, startTS, mustTS(t, c), "a/abandoned"); kerr == nil {
			t.Fatal("a late commit of the rolled-back primary succeeded")
		}
		wantValue(t, kc, "a/abandoned", "old")
		// And the keys are writable again.
		err := kc.RunTxn(testCtx(t), func(txn *kvclient.Txn) error {
			_ = txn.Set([]byte("a/abandoned"), []byte("newer"), 0)
			return txn.Set([]byte("z/abandoned"), []byte("newer"), 0)
		})
		if err != nil {
			t.Fatal(err)
		}
		wantValue(t, kc, "z/abandoned", "newer")
	})

	t.Run("CommittedPrimaryCommitsSecondaries", func(t *testing.T) {
		for _, k := range []string{"a/committed", "z/committed/1", "z/committed/2"} {
			mustSet(t, kc, k, "old")
		}
		startTS := mustTS(t, c)
		// A long TTL: only learning the primary's commit lets readers in.
		c.RawPrewrite(t, startTS, "a/committed", 600_000, map[string]string{
			"a/committed": "new", "z/committed/1": "new", "z/committed/2": "new",
		})
		commitTS := mustTS(t, c)
		if kerr := c.RawCommit(t, startTS, commitTS, "a/committed"); kerr != nil {
			t.Fatalf("commit primary: %v", kerr)
		}
		before := kc.Stats().LocksResolved
		wantValue(t, kc, "z/committed/1", "new")
		got, err := kc.BatchGet(testCtx(t), [][]byte{[]byte("z/committed/1"), []byte("z/committed/2")})
		if err != nil || string(got["z/committed/1"].Value) != "new" || string(got["z/committed/2"].Value) != "new" {
			t.Fatalf("BatchGet = %v, %v", got, err)
		}
		if kc.Stats().LocksResolved <= before {
			t.Fatal("no lock was resolved")
		}
		if locks := locksIn(t, c, "z/committed/1"); len(locks) != 0 {
			t.Fatalf("locks left after resolution: %v", locks)
		}
		// An old snapshot still sees the old values.
		if e, found, err := kc.Snapshot(commitTS-1).Get(testCtx(t), []byte("z/committed/2")); err != nil || !found || string(e.Value) != "old" {
			t.Fatalf("read below the commit: %q, %v, %v", e.Value, found, err)
		}
	})

	t.Run("ResolvedLockKeepsValueAndExpiry", func(t *testing.T) {
		var fakeNow atomic.Int64
		fakeNow.Store(time.Now().UnixMilli())
		fc := newClient(t, c, kvclient.Options{NowMs: fakeNow.Load})
		big := bytes.Repeat([]byte("0123456789"), 1000) // stored outside the lock
		expiresAt := fakeNow.Load() + 5_000
		mustSet(t, fc, "z/keep/del", "doomed")
		startTS := mustTS(t, c)
		c.RawPrewriteMutations(t, startTS, "a/keep", 600_000, []*kvrpcpb.Mutation{
			{Op: kvrpcpb.Op_PUT, Key: []byte("a/keep"), Value: []byte("p"), ExpiresAt: expiresAt},
			{Op: kvrpcpb.Op_PUT, Key: []byte("z/keep/big"), Value: big, ExpiresAt: expiresAt},
			{Op: kvrpcpb.Op_DEL, Key: []byte("z/keep/del")},
		})
		if kerr := c.RawCommit(t, startTS, mustTS(t, c), "a/keep"); kerr != nil {
			t.Fatalf("commit primary: %v", kerr)
		}
		e, found, err := fc.Get(testCtx(t), []byte("z/keep/big"))
		if err != nil || !found || !bytes.Equal(e.Value, big) || e.ExpiresAt != expiresAt {
			t.Fatalf("resolved big value: found %v, %d bytes, expires %d, %v; want %d bytes expiring at %d",
				found, len(e.Value), e.ExpiresAt, err, len(big), expiresAt)
		}
		wantAbsent(t, fc, "z/keep/del")
		fakeNow.Add(10_000)
		wantAbsent(t, fc, "z/keep/big")
		wantAbsent(t, fc, "a/keep")
	})

	t.Run("ScanResolvesLocks", func(t *testing.T) {
		keys := map[string]string{}
		for i := range 5 {
			keys[fmt.Sprintf("c/scanlock/%d", i)] = "new"
			keys[fmt.Sprintf("s/scanlock/%d", i)] = "new"
		}
		startTS := mustTS(t, c)
		c.RawPrewrite(t, startTS, "c/scanlock/0", 600_000, keys)
		if kerr := c.RawCommit(t, startTS, mustTS(t, c), "c/scanlock/0"); kerr != nil {
			t.Fatalf("commit primary: %v", kerr)
		}
		got, err := kc.Scan(testCtx(t), []byte("c/scanlock/"), []byte("s/scanlock0"), 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range got {
			if _, ok := keys[string(e.Key)]; ok {
				if string(e.Value) != "new" {
					t.Fatalf("%s = %q", e.Key, e.Value)
				}
				n++
			}
		}
		if n != len(keys) {
			t.Fatalf("scan saw %d of the transaction's %d keys", n, len(keys))
		}
	})

	t.Run("MissingPrimaryRollsBackAfterTTL", func(t *testing.T) {
		// The client crashed after prewriting a secondary but before its
		// primary: the primary has neither lock nor record.
		mustSet(t, kc, "z/orphan", "old")
		startTS := mustTS(t, c)
		c.RawPrewrite(t, startTS, "a/orphan", 300, map[string]string{"z/orphan": "new"})
		wantValue(t, kc, "z/orphan", "old")
		// The resolver left a rollback record on the primary, so the
		// primary's prewrite, arriving late, fails.
		rc, store := c.MustLeaderContext([]byte("a/orphan"))
		resp, err := c.Client(store).KvPrewrite(testCtx(t), &kvrpcpb.PrewriteRequest{
			Context:     rc,
			Mutations:   []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_PUT, Key: []byte("a/orphan"), Value: []byte("new")}},
			PrimaryLock: []byte("a/orphan"), StartVersion: startTS, LockTtl: 300, TxnSize: 2,
		})
		if err != nil || resp.GetRegionError() != nil {
			t.Fatalf("late prewrite: %v, region error %v", err, resp.GetRegionError())
		}
		if len(resp.GetErrors()) == 0 || resp.GetErrors()[0].GetAbort() == "" {
			t.Fatalf("late prewrite of the primary = %v, want an abort (rolled back)", resp.GetErrors())
		}
		wantAbsent(t, kc, "a/orphan")
	})

	t.Run("WriterResolvesExpiredLock", func(t *testing.T) {
		mustSet(t, kc, "a/blocked", "1")
		startTS := mustTS(t, c)
		c.RawPrewrite(t, startTS, "a/blocked", 300, map[string]string{"a/blocked": "999", "z/blocked": "999"})
		// The writer's prewrite meets the live lock and conflicts until it
		// expires; then its resolution rolls the crashed transaction back.
		if err := incr(testCtx(t), kc, []byte("z/blocked"), 1); err != nil {
			t.Fatal(err)
		}
		if err := incr(testCtx(t), kc, []byte("a/blocked"), 1); err != nil {
			t.Fatal(err)
		}
		wantValue(t, kc, "a/blocked", "2")
		wantValue(t, kc, "z/blocked", "1")
	})

	t.Run("ReadWaitsForLiveLock", func(t *testing.T) {
		// A reader blocked by a live lock gives up after MaxLockWait.
		impatient := newClient(t, c, kvclient.Options{MaxLockWait: 50 * time.Millisecond})
		startTS := mustTS(t, c)
		c.RawPrewrite(t, startTS, "a/live", 600_000, map[string]string{"a/live": "x", "z/live": "x"})
		_, _, err := impatient.Get(testCtx(t), []byte("z/live"))
		if !errors.Is(err, kvclient.ErrLockWaitTimeout) || !errors.Is(err, kvclient.ErrLocked) {
			t.Fatalf("Get under a live lock = %v, want ErrLockWaitTimeout wrapping ErrLocked", err)
		}
		// Once the owner commits, the read goes through.
		if kerr := c.RawCommit(t, startTS, mustTS(t, c), "a/live"); kerr != nil {
			t.Fatalf("commit primary: %v", kerr)
		}
		cluster.Eventually(t, 10*time.Second, func() error {
			e, found, err := impatient.Get(testCtx(t), []byte("z/live"))
			if err != nil {
				return err
			}
			if !found || string(e.Value) != "x" {
				return fmt.Errorf("z/live = %q, %v", e.Value, found)
			}
			return nil
		})
	})
}
